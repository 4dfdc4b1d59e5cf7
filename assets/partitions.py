"""Namespaces as partitions: one per knowledge/<domain> folder, plus internal:code.

Read when the code location loads, so a new folder shows up as a new partition on reload.
Every asset uses a single-run backfill policy: a run over many namespaces is one step per stage,
which is what lets the embedding stage batch chunks across namespaces.
"""

import dagster as dg

from knowledge_plane.build.sources import discover_namespaces
from knowledge_plane.settings import Settings

namespaces = dg.StaticPartitionsDefinition(discover_namespaces(Settings()))
single_run = dg.BackfillPolicy.single_run()
