"""Embedding on a Ray cluster (``KNOWLEDGE_EXECUTOR=ray``, the ``ray`` extra): the chunk texts the
embedding cache misses, spread over an actor pool that loads the model once per actor.

The embedding stage (``stages.embed_chunks``) still decides what to embed and writes the cache: it
hands this module the misses as an Arrow table (``text_hash``, ``embed_text``), Ray Data feeds them
in batches to ``KNOWLEDGE_RAY_WORKERS`` actors (each one ``Embedder``, one CPU), and the vectors
stream back to the driver slice by slice, which stores each slice as it arrives. So the cache every
worker shares is the driver's: a rerun on the cluster embeds only what no worker embedded before, and
a run killed meanwhile loses at most the slices in flight.

A worker lost mid-run (its process or its node) is Ray's to recover: the pool's actors restart and
their unfinished batches are retried (``MAX_RESTARTS``, ``MAX_TASK_RETRIES``), so the run yields the
same vectors; a worker that keeps dying fails the stage instead of looping.

Ray is imported here only, and only when the executor is chosen: the default install has no Ray.
The workers run the build image (this package, the model package and ONNX Runtime importable);
each exports the ONNX graph into its own cache directory once if the driver's is not shared.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from knowledge_plane.serving.embedding import DIMENSION, Embedder

# A lost actor is restarted and its batches retried this many times; beyond, the stage fails (Ray
# Data's default, -1, retries forever: a worker that crashes on every start would hang the build).
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
# Texts per Ray task: large enough that one task outweighs its scheduling (a few ms), small enough that a
# lost worker costs seconds and that the driver stores vectors often (the "at most one slice" promise).
RAY_BATCH_TEXTS = 64


class EmbedBatch:
    """One actor of the pool: the model loaded once, then Arrow batches of texts in, vectors out."""

    def __init__(self, backend: str, cache_dir: str, batch_size: int, threads: int):
        self.embedder = Embedder(batch_size=batch_size, backend=backend, cache_dir=Path(cache_dir), threads=threads)
        self.embedder.load()

    def __call__(self, batch: pa.Table) -> pa.Table:
        vectors = self.embedder.encode(batch.column("embed_text").to_pylist())
        return pa.table({"text_hash": batch.column("text_hash"), "vector": vectors_column(vectors)})


def vectors_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """float32 vectors as one Arrow column of fixed-size lists (no copy of the values)."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, DIMENSION)


def misses_table(hashes: list[str], texts: dict[str, str]) -> pa.Table:
    """The texts to embed, keyed by their hash, as the table the cluster reads."""
    return pa.table({"text_hash": pa.array(hashes, pa.string()),
                     "embed_text": pa.array([texts[h] for h in hashes], pa.string())})


def connect(address: str | None) -> None:
    """Join the configured cluster once per process (a local Ray instance when no address is set)."""
    import ray

    if not ray.is_initialized():
        # The driver's Ray logs stay in Ray's session directory; the build's log says what it did.
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=True)


def embed_on_ray(misses: pa.Table, *, address: str | None, workers: int, backend: str, cache_dir: Path,
                 batch_size: int, threads: int = 1) -> Iterator[tuple[list[str], np.ndarray]]:
    """(text hashes, their unit-norm float32 vectors), one slice at a time as the cluster returns them.

    ``threads`` is each actor's ONNX Runtime threads: one, as each actor holds one CPU of the cluster.
    """
    import ray

    connect(address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the stage reports progress itself
    context.print_on_execution_start = False
    # The texts sorted by length, so each batch pads little (the in-process path sorts the same way).
    lengths = pc.utf8_length(misses.column("embed_text"))
    misses = misses.take(pc.sort_indices(pa.table({"n": lengths}), sort_keys=[("n", "descending")]))
    # One block per batch, made here: a repartition on the cluster would need CPUs the actors hold.
    blocks = [misses.slice(start, RAY_BATCH_TEXTS) for start in range(0, misses.num_rows, RAY_BATCH_TEXTS)]
    with warnings.catch_warnings():
        # Ray 2.60 deprecates passing actor options as keyword arguments but names no parameter for
        # these two yet; its defaults (-1) would retry forever.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        vectors = ray.data.from_arrow(blocks).map_batches(
            EmbedBatch,
            fn_constructor_kwargs={"backend": backend, "cache_dir": str(cache_dir), "batch_size": batch_size,
                                   "threads": threads},
            batch_format="pyarrow",
            batch_size=RAY_BATCH_TEXTS,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_TASK_RETRIES,
        )
    for batch in vectors.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=0):
        column = batch.column("vector").combine_chunks()
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        yield batch.column("text_hash").to_pylist(), values.reshape(-1, DIMENSION)
