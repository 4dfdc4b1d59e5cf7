"""The service's long-lived state: the served snapshot, quarantine checks, keys, limiters, query log.

A background thread reads the aliases every ``alias_poll_seconds``. When one moves it loads the
new version beside the old (unchanged namespaces are shared), runs the quarantine checks and
replaces the snapshot reference in one assignment: a request holds the reference it started with,
so it is answered from one set of versions, and the old versions are freed with the last request
that holds them. A namespace whose new version fails keeps its last good version; one with none is
quarantined for the actors that read it (503), and nothing at all servable is 503 for everyone.

With ``KNOWLEDGE_VECTOR_BACKEND`` set to qdrant or weaviate, the service opens that store
read-only (with the runtime's read-only key) and serves through its aliases instead of the files.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time

from knowledge_plane.domain.embedding_model import DIMENSION, MODEL_NAME
from knowledge_plane.service.bearer import JwtVerifier
from knowledge_plane.service.querylog import QueryLogWriter
from knowledge_plane.service.ratelimit import EndUserLimits, RateLimit, open_storage
from knowledge_plane.serving.access import ApiKeyring
from knowledge_plane.serving.config import retrieval_config
from knowledge_plane.serving.query_encoder import QueryEncoder
from knowledge_plane.serving.query_engine import QueryEmbedder, QueryEngine
from knowledge_plane.serving.snapshot import Check, Snapshot, current_aliases, load_snapshot
from knowledge_plane.settings import ServiceSettings, Settings
from knowledge_plane.storage.registry import Registry
from knowledge_plane.storage.vector_backends import open_vector_backend

log = logging.getLogger("knowledge.query")
RETRY_FAILED_EVERY = 10  # polls between two attempts at a version that failed its checks


def limit_blas_threads(threads: int) -> None:
    """One BLAS thread per request: a 100k × 384 product is memory-bound, and concurrent requests
    each spawning every core's worth of threads only fight over the cores (measured: 1 thread
    13 ms, 2 threads 16 ms on two cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the limit is an optimisation; without threadpoolctl BLAS keeps its default
        log.info("threadpoolctl is not installed: BLAS keeps its default thread count")
        return
    threadpool_limits(threads, user_api="blas")


def release_memory() -> None:
    """Free what replaced versions held and hand it back to the OS (glibc keeps freed heap otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is reused by the process instead
        pass


class ServiceState:
    def __init__(self, settings: Settings, service: ServiceSettings, embedder: QueryEmbedder | None = None):
        self.settings = settings
        self.service = service
        self.keyring = ApiKeyring.parse(service.api_keys.get_secret_value())
        # Read and append to query_log only: the build plane (or `knowledge db upgrade`) owns the schema.
        self.registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id, migrate=False)
        self.backend = open_vector_backend(settings, read_only=True)  # None: the local version files
        limit_blas_threads(service.threads_per_request)
        encoder = embedder or QueryEncoder(service.threads_per_request, backend=settings.build.embedding_backend,
                                           cache_dir=settings.paths.cache_dir)
        self.engine = QueryEngine(encoder, retrieval_config(service), settings.tenant_id)
        limits_storage = open_storage(service.rate_limit_storage.get_secret_value())
        self.limits = EndUserLimits(limits_storage, service.rate_limit_per_minute,
                                    service.rate_limit_per_actor_per_minute, service.rate_limit_block_after,
                                    service.rate_limit_block_seconds)
        self.auth_failure_limiter = RateLimit("failed-auth", service.rate_limit_per_minute, limits_storage)
        self.trusted_proxies = service.trusted_networks()
        self.jwt_verifier = JwtVerifier.from_settings(service)
        self.query_log: QueryLogWriter | None = None
        self.model = MODEL_NAME
        self.dimension = DIMENSION
        self.checks: list[Check] = [Check("startup", False, "loading the embedding model and the aliased versions")]
        self._snapshot: Snapshot | None = None
        self._loaded: Snapshot | None = None  # last snapshot that passed, kept to share unchanged versions
        self._attempted: dict[str, str] | None = None
        self._polls_since_attempt = 0
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time (poller and explicit calls)
        self._thread: threading.Thread | None = None
        if not len(self.keyring):
            log.warning("KNOWLEDGE_API_KEYS is empty: every query will be refused with 401")

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot being served, or None while quarantined. Read it once per request."""
        return self._snapshot

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the poller and the query-log writer; a second call while running does nothing."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.query_log = QueryLogWriter(self.registry)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alias-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.query_log is not None:
            self.query_log.close()
        if self.backend is not None:
            self.backend.close()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the first refresh to finish; True when it is serving."""
        self._ready.wait(timeout)
        return self._snapshot is not None

    def _run(self) -> None:
        try:
            self._warm_model()
        except Exception as exc:  # nothing can be answered without the model: stay quarantined
            log.exception("the embedding model did not load")
            self.checks = [Check("embedding_model", False, f"{self.model} did not load: {exc}")]
            self._ready.set()
            return
        try:
            self.refresh(force=True)
            release_memory()  # what loading allocated and freed (payload parsing, tokens) goes back to the OS
        except Exception as exc:
            log.exception("start-up refresh failed; staying in quarantine")
            self.checks = [self._model_check(), Check("registry", False, f"cannot read the aliases: {exc}")]
        finally:
            self._ready.set()
        release_pending = False
        while not self._stop.wait(self.service.alias_poll_seconds):
            if release_pending:  # one poll after a swap, the requests on the old versions are done
                release_pending = False
                release_memory()
            try:
                release_pending = self.refresh()
            except Exception:  # a transient registry error must not kill the poller
                log.exception("alias poll failed; serving the current snapshot")

    def _warm_model(self) -> None:
        """Load the model before serving and learn its real output dimension for the checks."""
        vector = self.engine.embedder.encode_query("démarrage du service")
        self.dimension = int(vector.shape[-1])

    def _model_check(self) -> Check:
        return Check("embedding_model", True, f"{self.model} loaded, {self.dimension} dimensions")

    # -- refresh --------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Swap to the versions the aliases point to now; True when the served snapshot changed."""
        with self._lock:
            aliases = current_aliases(self.registry, self.backend)
            serving = self._snapshot
            self._polls_since_attempt += 1
            if not force and aliases == self._attempted:
                # Same aliases as last time: nothing to do, unless some version failed, which is
                # retried every RETRY_FAILED_EVERY polls (a file restored, a store back up).
                all_served = serving is not None and not serving.failing
                if all_served or self._polls_since_attempt < RETRY_FAILED_EVERY:
                    return False
            self._attempted, self._polls_since_attempt = dict(aliases), 0
            started = time.perf_counter()
            snapshot, checks = load_snapshot(self.registry, aliases, previous=self._loaded,
                                             previous_checks=self.checks, model=self.model, dimension=self.dimension,
                                             backend=self.backend)
            self.checks = checks = [self._model_check(), *checks]
            failed = "; ".join(f"{c.namespace or '-'}@{c.version or '-'} {c.name}: {c.detail}"
                               for c in checks if not c.passed)
            if snapshot is None:
                self._snapshot = None
                log.error("QUARANTINE: not serving, checks failed: %s", failed)
                return serving is not None
            changed = (serving is None or serving.aliases != snapshot.aliases
                       or serving.quarantined != snapshot.quarantined)
            self._snapshot = self._loaded = snapshot
            versions = ", ".join(f"{ns}@{v}" for ns, v in sorted(snapshot.aliases.items()))
            if snapshot.failing:
                log.error("QUARANTINE PARTIAL: serving %s; quarantined: %s; kept last good instead of: %s; "
                          "checks failed: %s", versions, ", ".join(sorted(snapshot.quarantined)) or "-",
                          ", ".join(f"{ns}@{v}" for ns, v in sorted(snapshot.stale.items())) or "-", failed)
            else:
                log.info("QUARANTINE PASSED: serving %s (loaded in %.2fs)", versions, time.perf_counter() - started)
            return changed
