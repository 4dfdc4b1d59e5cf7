"""Documentation that is tested: every CLI command, asset, job, sensor and schedule is in the README."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from knowledge_plane.cli.reference import command_paths

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", command_paths())
def test_every_cli_command_is_documented(command):
    words = command.split()
    # "knowledge facts approve" may be written "knowledge facts show ID | approve ID…"
    assert command in README or (" ".join(words[:2]) in README and f" {words[-1]} " in README), command


def definition_names() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from definitions import defs
    names = [key.to_user_string() for a in defs.assets for key in a.keys]
    names += [j.name for j in defs.jobs] + [s.name for s in defs.sensors] + [s.name for s in defs.schedules]
    return names


@pytest.mark.parametrize("name", definition_names())
def test_every_asset_job_sensor_and_schedule_is_documented(name):
    assert f"`{name}`" in README or name in README, name
