"""Sensors and schedules that start builds when sources change."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions()
