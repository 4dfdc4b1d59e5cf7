"""Same result, any scale: a namespace embedded on a real Ray cluster (two nodes on loopback, started
here) is the version the single process builds, even when an embedding worker is killed mid-run; a
rerun on the cluster embeds nothing the workers embedded before.

Skipped without the ``ray`` extra (``pip install -e ".[ray]"``): the default install needs no cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
from ray._private.authentication_test_utils import reset_auth_token_state  # noqa: E402 - Ray's own test helper

from knowledge_plane.build import distributed  # noqa: E402 - after the skip: it needs pyarrow only, Ray lazily
from knowledge_plane.serving.embedding import onnx_model_path  # noqa: E402
from knowledge_plane.storage.index_store import read_version  # noqa: E402
from knowledge_plane.storage.registry import Registry  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")  # the ray extra's command, beside this interpreter
NAMESPACES = ["knowledge:faq", "knowledge:guides"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # --block keeps the node's processes under this one process group, which teardown ends by its id.
    with open(log, "ab") as out:
        return subprocess.Popen([RAY, "start", "--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                                 "--disable-usage-stats", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A head and a worker node of one CPU each on 127.0.0.1, this process connected as the driver."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="kpray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    token = secrets.token_hex(32)
    # The nodes' workers import this checkout; the cluster and its driver share a fresh token.
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    nodes = [_node(["--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", str(temp)], env,
                   temp / "head.log")]
    address = f"127.0.0.1:{port}"
    try:
        _wait(lambda: _listening(port), 60, temp / "head.log")
        nodes.append(_node(["--address", address], env, temp / "worker.log"))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RAY_AUTH_MODE", "token")
            patch.setenv("RAY_AUTH_TOKEN", token)
            reset_auth_token_state()  # Ray read its auth settings when imported: read them again
            ray.init(address=address, log_to_driver=False)
            _wait(lambda: sum(n["Alive"] for n in ray.nodes()) == 2, 60, temp / "worker.log")
            yield address
    finally:
        ray.shutdown()
        for node in reversed(nodes):
            os.killpg(node.pid, signal.SIGKILL)  # the node's processes, by their group: nothing else's
            node.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)
        reset_auth_token_state()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(ready, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(log.read_text(errors="replace")[-3000:])
        time.sleep(0.2)


def _actor_pids() -> list[int]:
    """The embedding actors' processes (Ray names each after its class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"EmbedBatch" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _rows(cache: Path) -> int:
    if not cache.exists():
        return 0
    with sqlite3.connect(cache, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not created yet
            return 0


class ActorKiller(threading.Thread):
    """Kills one embedding actor (SIGKILL) as soon as the driver has stored the first slice of vectors."""

    def __init__(self, cache: Path):
        super().__init__(daemon=True)
        self.cache, self.killed, self.stored_at_kill = cache, None, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _actor_pids()
            if pids and (stored := _rows(self.cache)) > 0:
                os.kill(pids[0], signal.SIGKILL)
                self.killed, self.stored_at_kill = pids[0], stored
                return
            time.sleep(0.02)


def _version(settings, namespace: str, version: str):
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    return read_version(Path(registry.version(namespace, version).path))


def test_a_build_on_a_ray_cluster_is_the_in_process_version_even_when_a_worker_dies(
        settings, ray_cluster, build_corpus, monkeypatch):
    ok, local = build_corpus(settings, NAMESPACES)
    assert ok, local

    # The cluster's build: its own data, registry and caches (nothing embedded yet), the model's export linked in.
    data = settings.paths.data_dir.parent / "ray-data"
    on_ray = settings.updated(paths={"data_dir": data, "cache_dir": data / "cache"},
                              registry={"url": f"sqlite:///{data / 'registry.db'}"},
                              build={"executor": "ray", "ray_address": ray_cluster, "ray_workers": 2})
    export = onnx_model_path(settings.paths.cache_dir)
    (on_ray.paths.cache_dir / "models").mkdir(parents=True)
    os.link(export, on_ray.paths.cache_dir / "models" / export.name)
    monkeypatch.setattr(distributed, "RAY_BATCH_TEXTS", 8)  # many small tasks: the kill lands mid-run
    killer = ActorKiller(on_ray.paths.cache_dir / "embeddings.sqlite")
    killer.start()
    try:
        ok, remote = build_corpus(on_ray, NAMESPACES)
    finally:
        killer.stop.set()
        killer.join()
    assert ok, remote
    total = sum(remote[ns]["chunks_embedded"] for ns in NAMESPACES)
    assert killer.killed is not None and 0 < killer.stored_at_kill < total, (killer.killed, killer.stored_at_kill)

    for namespace in NAMESPACES:
        mine = _version(settings, namespace, local[namespace]["version"])
        theirs = _version(on_ray, namespace, remote[namespace]["version"])
        assert theirs.manifest["fingerprint"] == mine.manifest["fingerprint"]
        assert theirs.manifest["counts"] == mine.manifest["counts"]
        assert [p["chunk_id"] for p in theirs.payloads] == [p["chunk_id"] for p in mine.payloads]
        cosines = np.einsum("ij,ij->i", np.asarray(theirs.vectors), np.asarray(mine.vectors))
        assert cosines.min() >= 0.9999, cosines.min()

    # A rerun on the cluster: every vector is in the driver's cache, nothing goes to the workers.
    ok, again = build_corpus(on_ray, NAMESPACES)
    assert ok and all(again[ns]["chunks_embedded"] == 0 for ns in NAMESPACES), again
    assert all(again[ns]["version"] == remote[ns]["version"] for ns in NAMESPACES)
