"""The project's Dagster instance: DAGSTER_HOME under the data dir, with the project's dagster.yaml."""

from __future__ import annotations

import os
import shutil
import warnings

from core.settings import PROJECT_ROOT, Settings


def prepare_dagster_home(settings: Settings) -> str:
    """Create DAGSTER_HOME and give it the project's dagster.yaml, so CLI runs show in the UI."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    source, target = PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)


def load_definitions():
    """Import the code location quietly: Beta warnings are for Dagster developers, not CLI users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import definitions

    return definitions.defs
