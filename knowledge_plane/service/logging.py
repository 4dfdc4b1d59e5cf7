"""The query service's logs as JSON, one object per line, for a log shipper.

Every record of the process goes through structlog's formatter for standard-library records:
timestamp (UTC, ISO 8601), level, logger, event (the message) and the record's ``extra`` fields.
The request line (``knowledge_plane.service.metrics``) puts the request id, actor, caller app,
route, status and latency there; no log line of the service holds a question.
"""

from __future__ import annotations

import logging
import sys

import structlog


def json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.stdlib.add_log_level,
                           structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer(ensure_ascii=False)],
    )


def configure_json_logging(level: int = logging.INFO) -> None:
    """Replace the root logger's handlers by one writing JSON lines to stderr (uvicorn's access log,
    which would repeat each request as text, is silenced: the request line replaces it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
