"""The Knowledge Plane code location: the per-folder definitions merged once."""

import dagster as dg

import assets
import jobs
import resources
import sensors

defs = dg.Definitions.merge(assets.defs(), resources.defs(), jobs.defs(), sensors.defs())
