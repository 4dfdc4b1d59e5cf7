"""How the knowledge command talks: usage errors, JSON alone on stdout, tables for a terminal or a pipe,
and its reference page (docs/cli.md) kept in step with the declarations."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge_plane.cli.main import main
from knowledge_plane.cli.output import emit, json_document
from knowledge_plane.cli.reference import reference

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_the_reference_page_is_generated_from_the_commands():
    page = (PROJECT_ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == reference(), "regenerate it: python -m knowledge_plane.cli.reference > docs/cli.md"
    assert "- `knowledge facts approve [ID]… [--json] [--by NAME] [--all]" in page


@pytest.mark.parametrize(("argv", "message"), [
    (["query", "why?", "--actor", "root"], "error: knowledge query: Invalid value for '--actor': 'root' is not one of"),
    (["status", "--verbose"], "error: knowledge status: No such option '--verbose'."),
    (["facts", "reject", "0123456789"], "error: knowledge facts reject: Missing option '--reason'."),
    (["packs", "remove", "pack-a"], "error: knowledge packs: No such command 'remove'. Did you mean 'revoke'?"),
    (["facts", "merge", "0123456789"], "error: knowledge facts merge: Missing argument 'DUPLICATES...'."),
])
def test_a_usage_error_is_one_line_on_stderr_and_exit_code_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1, err


def test_help_exits_0_and_a_bare_group_shows_its_commands(capsys):
    assert main(["facts", "types", "-h"]) == 0
    assert "Usage: knowledge facts types [OPTIONS] COMMAND" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["facts"])
    assert exc.value.code == 2 and "timeline" in capsys.readouterr().err


def test_with_json_whatever_else_prints_goes_to_stderr(capsys):
    with json_document():
        print("a library talking on stdout")
        emit(True, {"namespace": "knowledge:faq"}, str)
    out, err = capsys.readouterr()
    assert json.loads(out) == {"namespace": "knowledge:faq"}
    assert err == "a library talking on stdout\n"


def test_tables_are_rich_on_a_terminal_and_plain_in_a_pipe(settings, capsys, monkeypatch):
    env = {"KNOWLEDGE_DATA_DIR": str(settings.paths.data_dir), "KNOWLEDGE_CORPUS_DIR": str(settings.paths.corpus_dir),
           "KNOWLEDGE_REGISTRY_URL": settings.registry.url.get_secret_value()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["packs", "create", "pack-a", "--name", "[draft] notes"]) == 0
    capsys.readouterr()
    assert main(["packs", "list"]) == 0
    piped = capsys.readouterr().out.splitlines()
    assert piped[0].split() == ["pack", "name", "active", "may", "publish", "(namespace", "≤", "strongest", "truth",
                                "level)"]
    assert set(piped[1]) == {"-", " "} and piped[2].split()[:4] == ["pack-a", "[draft]", "notes", "True"]

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "knowledge_plane.cli.main", "packs", "list"], cwd=PROJECT_ROOT,
                               env={**os.environ, **env, "COLUMNS": "150", "TERM": "xterm-256color"},
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    shown = b""
    while chunk := _read(leader):
        shown += chunk
    os.close(leader)
    assert process.wait(60) == 0, process.stderr.read()
    text = shown.decode()
    assert "\x1b[1m" in text and "─" in text  # bold header over a rule: rich, not the plain columns
    assert "[draft] notes" in text  # a value is shown as it is, never read as rich markup


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other end is closed, the command has finished
        return b""
