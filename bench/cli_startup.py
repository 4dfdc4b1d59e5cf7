"""Start-up time of the ``knowledge`` command (issue 14): prints figures, never a test.

Each command runs ``--runs`` times in a fresh interpreter (``python -m knowledge_plane.cli.main``,
what the ``knowledge`` script does) against an empty data directory; the median and the minimum
wall-clock time are printed, and which heavy libraries the command imported. ``--source DIR`` runs
another checkout of the code (e.g. ``git archive <commit> | tar -x -C DIR``) to compare before/after.

    .venv/bin/python bench/cli_startup.py [--runs 7] [--source DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["--help"], ["status"], ["query", "--help"], ["serve", "--help"])
HEAVY = ("numpy", "sqlalchemy", "alembic", "detect_secrets", "dagster", "docling", "torch", "fastapi", "pyarrow")
# Imports the command, then lists which heavy libraries it loaded (on stderr, after the command's output).
PROBE = ("import sys, atexit\n"
         "def heavy():\n"
         f"    print('heavy:', ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))) or '-',"
         " file=sys.stderr)\n"
         "atexit.register(heavy)\n"
         "from knowledge_plane.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")


def run(source: Path, data: Path, args: list[str], runs: int) -> tuple[list[float], str]:
    env = {**os.environ, "PYTHONPATH": str(source), "KNOWLEDGE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    times, heavy = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                              cwd=source)
        times.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"knowledge {' '.join(args)} failed: {done.stderr[-2000:]}")
        heavy = done.stderr.strip().splitlines()[-1].removeprefix("heavy: ")
    return times, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        run(options.source, Path(tmp), ["status"], 1)  # creates the registry: later runs only read it
        print(f"source {options.source}, {options.runs} runs each, Python {sys.version.split()[0]}")
        for args in COMMANDS:
            times, heavy = run(options.source, Path(tmp), args, options.runs)
            print(f"knowledge {' '.join(args):<14} median {statistics.median(times):.2f} s  "
                  f"min {min(times):.2f} s  heavy imports: {heavy}")


if __name__ == "__main__":
    main()
