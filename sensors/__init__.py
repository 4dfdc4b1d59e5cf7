"""Sensors that start builds when sources change: the bucket of uploads and the Git corpus."""

import dagster as dg

from sensors.git import GitWatch, git_sensor
from sensors.uploads import upload_sensor


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(sensors=[upload_sensor, git_sensor], resources={"git": GitWatch()})
