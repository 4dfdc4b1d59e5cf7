"""Which process wrote what: temporary paths named after their writer, and the clean-up of the ones
a killed process left behind.

Every temporary file or folder the build plane writes is ``.<final name>.tmp-<pid>`` beside its
target and renamed into place when complete. A process killed before the rename leaves it there;
the next build removes those whose writer is gone, or whose pid now belongs to a process started
after the temporary was last written (the pid was reused).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_TMP_RE = re.compile(r"^\..+\.tmp-(\d+)$")
_SLACK_SECONDS = 2.0  # clock-tick rounding of a process's start time


def tmp_path(target: Path) -> Path:
    """Where this process writes ``target`` before renaming it into place."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def process_started_at(pid: int) -> float | None:
    """When the process ``pid`` started (seconds since the epoch), or None when there is none.

    Linux: from /proc; elsewhere only whether it exists (0.0 when it does)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0
    try:
        stat = (proc / str(pid) / "stat").read_text()
        boot = next(line for line in (proc / "stat").read_text().splitlines() if line.startswith("btime "))
    except OSError:
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22 of proc(5), counted after "(comm)"
    return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")


def _stale(path: Path, pid: int) -> bool:
    if pid == os.getpid():
        return False
    started = process_started_at(pid)
    if started is None:
        return True
    try:
        written = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return started > written + _SLACK_SECONDS


def clean_stale_temporaries(roots: list[Path]) -> list[Path]:
    """Remove the temporary files and folders under ``roots`` left by processes that are gone."""
    removed = []
    for root in roots:
        if not root.is_dir():
            continue
        for folder, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                match = _TMP_RE.match(name)
                path = Path(folder) / name
                if not match or not _stale(path, int(match.group(1))):
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                    dirs.remove(name)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed
