"""Source discovery: namespaces, the files behind each, .ragignore, content hashes and Git provenance."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import pathspec

from knowledge_plane.domain.ids import NAMESPACE_RE, sha256_hex
from knowledge_plane.domain.quarantine import EMPTY_FILE, SYMLINK, TOO_LARGE, QuarantinedFile, QuarantineError
from knowledge_plane.settings import Settings

CODE_NAMESPACE = "internal:code"
# The application's own code, indexed as internal:code (tests and benchmarks are not product code).
CODE_ROOTS = ("knowledge_plane", "assets", "resources", "sensors", "jobs", "definitions.py")
SIDECAR_SUFFIX = ".meta.json"
RAGIGNORE = ".ragignore"
# Bump when what a namespace's sources are changes (walk, .ragignore, screening before parsing): the
# Dagster UI then marks raw_documents and everything below it stale (the asset's code_version).
SOURCES_VERSION = "sources-1"
GOLDEN_FILE = "_golden.yaml"  # a namespace's evaluation questions (knowledge_plane.build.evaluation), not a document


@dataclass(frozen=True)
class SourceFile:
    """One file of a namespace as found on disk, before anything is parsed."""

    namespace: str
    source_path: str  # what citations show, relative to the corpus' parent or the project root
    abs_path: str
    size: int
    content_hash: str
    commit: str | None
    origin: str = "git"  # git | upload
    metadata: dict | None = None  # an upload's metadata: pack_id, source_app, caller_app, title, tags…

    def to_dict(self) -> dict:
        return asdict(self)


def discover_namespaces(settings: Settings) -> list[str]:
    """``knowledge/<domain>/`` → ``knowledge:<domain>``, plus ``internal:code`` and the uploads' default."""
    from knowledge_plane.build.uploads import DEFAULT_UPLOAD_NAMESPACE

    found = [CODE_NAMESPACE, DEFAULT_UPLOAD_NAMESPACE]
    if settings.paths.corpus_dir.is_dir():
        for child in settings.paths.corpus_dir.iterdir():
            name = f"knowledge:{child.name}"
            if child.is_dir() and not child.name.startswith((".", "_")) and NAMESPACE_RE.match(name):
                found.append(name)
    return sorted(set(found))


def ragignore_spec(settings: Settings) -> pathspec.PathSpec:
    """Patterns of the project's .ragignore and the corpus' own, if it has one (gitignore syntax)."""
    lines: list[str] = []
    for root in dict.fromkeys((settings.paths.project_root, settings.paths.corpus_dir)):
        path = root / RAGIGNORE
        if path.is_file():
            lines.extend(path.read_text(encoding="utf-8").splitlines())
    return pathspec.PathSpec.from_lines("gitignore", lines)


def _walk(top: Path) -> tuple[list[Path], list[Path]]:
    """(regular files, symbolic links) under ``top``, never descending through a link: a link may
    point anywhere (another namespace, /etc), and only the corpus' own files are read."""
    if top.is_symlink():
        return [], [top]
    if top.is_file():
        return [top], []
    files: list[Path] = []
    links: list[Path] = []
    for folder, dirs, names in os.walk(top):  # os.walk does not follow links to folders by default
        for name in [*dirs, *names]:
            path = Path(folder) / name
            if path.is_symlink():
                links.append(path)
            elif name in names and path.is_file():
                files.append(path)
    return files, links


def _namespace_files(settings: Settings, namespace: str) -> tuple[Path, list[Path], list[Path]]:
    """(root the source paths are relative to, candidate files, symbolic links) for a namespace."""
    if namespace == CODE_NAMESPACE:
        root = settings.paths.project_root
        files: list[Path] = []
        links: list[Path] = []
        for entry in CODE_ROOTS:
            found, linked = _walk(root / entry) if os.path.lexists(root / entry) else ([], [])
            files += [p for p in found if p.suffix == ".py" and "__pycache__" not in p.parts]
            links += linked
        return root, sorted(files), sorted(links)
    domain = namespace.split(":", 1)[1]
    folder = settings.paths.corpus_dir / domain
    files, links = _walk(folder) if os.path.lexists(folder) else ([], [])
    files = [p for p in files if not p.name.endswith(SIDECAR_SUFFIX) and p.name not in (RAGIGNORE, GOLDEN_FILE)]
    return settings.paths.corpus_dir.parent, sorted(files), sorted(links)


def read_corpus_file(path: Path) -> bytes:
    """The bytes of a corpus file, refusing a symbolic link even if one replaced the file since it was
    listed (O_NOFOLLOW): nothing outside the corpus is ever read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            detail = f"{path.name} became a symbolic link to {os.readlink(path)!r}: not followed"
            raise QuarantineError(SYMLINK, detail) from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _link_quarantine(link: Path, source_path: str, what: str = "") -> QuarantinedFile:
    kind = "folder" if link.is_dir() else "file"
    detail = (
        f"{what}a symbolic link to {os.readlink(link)!r} ({kind}): links are not followed, "
        "only the corpus' own files are read"
    )
    return QuarantinedFile(source_path, SYMLINK, detail, "raw")


def git_commits(root: Path, paths: list[Path]) -> dict[str, str]:
    """Last commit touching each path, from one ``git log`` pass (absolute path → SHA).

    The log is read as it streams, newest first, and stopped once every path has its commit: on a
    corpus with a long history a rebuild reads the few newest commits, not all of them. Paths are
    compared as git prints them (relative to the top level), so no log line is resolved on disk.
    """
    if not paths:
        return {}
    try:
        top = Path(subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()).resolve()
    except (OSError, subprocess.SubprocessError):
        return {}
    wanted: dict[str, str] = {}
    for path in paths:
        absolute = str(path.resolve())
        with contextlib.suppress(ValueError):  # outside the repository: no commit
            wanted[Path(absolute).relative_to(top).as_posix()] = absolute
    commits: dict[str, str] = {}
    try:
        log = subprocess.Popen(
            ["git", "-C", str(top), "-c", "core.quotePath=false", "log", "--format=%x00%H", "--name-only",
             "--", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    except OSError:
        return {}
    with log:
        sha = ""
        for line in log.stdout:
            line = line.rstrip("\n")
            if line.startswith("\x00"):
                sha = line[1:]
            elif line in wanted and wanted[line] not in commits:
                commits[wanted[line]] = sha
                if len(commits) == len(wanted):
                    break
        log.kill()  # a no-op once git has finished; stops the rest of the history otherwise
    return commits


def head_commit(root: Path) -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def scan_namespace(settings: Settings, namespace: str) -> tuple[list[SourceFile], list[QuarantinedFile], int]:
    """Hash every file of a namespace; returns (files, quarantined, ignored_count).

    Size and emptiness are judged here, before anything is read into a parser.
    """
    root, candidates, links = _namespace_files(settings, namespace)
    spec = ragignore_spec(settings)
    # Patterns apply relative to the namespace's root, wherever the corpus is mounted.
    kept = [p for p in candidates if not spec.match_file(p.relative_to(root).as_posix())]
    ignored = len(candidates) - len(kept)
    commits = git_commits(root, kept)
    files: list[SourceFile] = []
    quarantined = [
        _link_quarantine(p, p.relative_to(root).as_posix())
        for p in links
        if not p.name.endswith(SIDECAR_SUFFIX) and not spec.match_file(p.relative_to(root).as_posix())
    ]
    for path in kept:
        source_path = path.relative_to(root).as_posix()
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if sidecar.is_symlink():
            quarantined.append(_link_quarantine(sidecar, source_path, "its metadata sidecar is "))
            continue
        size = path.stat().st_size
        if size == 0:
            quarantined.append(QuarantinedFile(source_path, EMPTY_FILE, "the file is empty (0 bytes)", "raw"))
            continue
        if size > settings.build.max_file_bytes:
            quarantined.append(
                QuarantinedFile(
                    source_path,
                    TOO_LARGE,
                    f"{size} bytes is above the limit of {settings.build.max_file_bytes} bytes "
                    "(KNOWLEDGE_MAX_FILE_BYTES)",
                    "raw",
                )
            )
            continue
        try:
            digest = sha256_hex(read_corpus_file(path))
            if sidecar.is_file():  # metadata is part of the document's identity
                digest = sha256_hex(digest + sha256_hex(read_corpus_file(sidecar)))
        except QuarantineError as exc:  # replaced by a link since the walk
            quarantined.append(QuarantinedFile(source_path, exc.reason, exc.detail, "raw"))
            continue
        files.append(SourceFile(namespace, source_path, str(path), size, digest, commits.get(str(path.resolve()))))
    return files, quarantined, ignored
