"""Settings from the environment: the one place the configuration contract of DESIGN.md is read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def env_value(name: str, default: str = "") -> str:
    """A variable's value, or the content of the file ``<NAME>_FILE`` names (Docker/K8s secrets)."""
    value = os.environ.get(name, "").strip()
    if not value and os.environ.get(f"{name}_FILE"):
        value = Path(os.environ[f"{name}_FILE"]).read_text(encoding="utf-8").strip()
    return value or default


_env = env_value


@dataclass(frozen=True)
class Settings:
    """Everything a plane needs to find its data; built from environment variables."""

    data_dir: Path
    tenant_id: str = "default"
    registry_url: str = ""
    project_root: Path = PROJECT_ROOT
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    max_file_bytes: int = 10 * 1024 * 1024
    max_metadata_bytes: int = 64 * 1024  # an upload's object metadata or sidecar, a corpus sidecar
    max_text_chars: int = 5_000_000  # text extracted from one document (a small DOCX can expand a lot)
    keep_versions: int = 3
    docling_artifacts_path: str | None = None
    progress_bar: bool = False
    object_store: str = "local"  # local | s3
    bucket: str = "knowledge"
    s3_endpoint_url: str | None = None
    cache_root: Path | None = None  # content-keyed caches; shareable between data dirs (CI, tests)
    eval_margin: float = 0.05  # how far an evaluation figure may fall below @latest's (build.evaluation)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        data_dir = Path(_env("KNOWLEDGE_DATA_DIR", str(PROJECT_ROOT / ".knowledge-data"))).resolve()
        values: dict[str, object] = {
            "data_dir": data_dir,
            "tenant_id": _env("KNOWLEDGE_TENANT_ID", "default"),
            "registry_url": _env("KNOWLEDGE_REGISTRY_URL", f"sqlite:///{data_dir / 'registry.db'}"),
            "knowledge_dir": Path(_env("KNOWLEDGE_CORPUS_DIR", str(PROJECT_ROOT / "knowledge"))).resolve(),
            "max_file_bytes": int(_env("KNOWLEDGE_MAX_FILE_BYTES", str(10 * 1024 * 1024))),
            "max_metadata_bytes": int(_env("KNOWLEDGE_MAX_METADATA_BYTES", str(64 * 1024))),
            "max_text_chars": int(_env("KNOWLEDGE_MAX_TEXT_CHARS", "5000000")),
            "keep_versions": int(_env("KNOWLEDGE_KEEP_VERSIONS", "3")),
            "docling_artifacts_path": os.environ.get("DOCLING_ARTIFACTS_PATH") or None,
            "progress_bar": _env("KNOWLEDGE_PROGRESS_BAR", "0") == "1",
            "object_store": _env("KNOWLEDGE_OBJECT_STORE", "local"),
            "bucket": _env("KNOWLEDGE_BUCKET", "knowledge"),
            "s3_endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
            "cache_root": Path(os.environ["KNOWLEDGE_CACHE_DIR"]).resolve()
            if os.environ.get("KNOWLEDGE_CACHE_DIR")
            else None,
            "eval_margin": float(_env("KNOWLEDGE_EVAL_MARGIN", "0.05")),
        }
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        from knowledge_plane.domain.ids import validate_tenant_id

        validate_tenant_id(self.tenant_id)
        if self.keep_versions < 2:
            raise ValueError("KNOWLEDGE_KEEP_VERSIONS must be at least 2 (@latest and @rollback)")
        if self.object_store not in ("local", "s3"):
            raise ValueError(f"KNOWLEDGE_OBJECT_STORE must be 'local' or 's3', got {self.object_store!r}")
        if not 0.0 <= self.eval_margin <= 1.0:
            raise ValueError("KNOWLEDGE_EVAL_MARGIN must be between 0 and 1")
        if self.max_file_bytes <= 0:
            raise ValueError("KNOWLEDGE_MAX_FILE_BYTES must be a positive number of bytes")
        if self.max_metadata_bytes <= 0:
            raise ValueError("KNOWLEDGE_MAX_METADATA_BYTES must be a positive number of bytes")
        if self.max_text_chars <= 0:
            raise ValueError("KNOWLEDGE_MAX_TEXT_CHARS must be a positive number of characters")

    @property
    def dagster_home(self) -> Path:
        return Path(_env("DAGSTER_HOME", str(self.data_dir / "dagster"))).resolve()

    @property
    def cache_dir(self) -> Path:
        return self.cache_root or self.data_dir / "cache"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def stages_dir(self) -> Path:
        return self.data_dir / "stages"

    @property
    def indexes_dir(self) -> Path:
        return self.data_dir / "indexes"
