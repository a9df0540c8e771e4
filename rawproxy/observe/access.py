"""The access log: one line per exchange, when it ends, in text or (``--log-format json``) as fields.

Never a key: the record holds names and numbers only. At a level above info the line is not even built.
``upstream`` names the configured upstream that answered (or failed), ``error`` the fault of a failed
exchange (errors.py ``kind``): a 502 says whose it was and where.
"""

from __future__ import annotations

import logging
import time

from .._types import AccessRecord

__all__ = ["log_exchange"]

access_log = logging.getLogger("rawproxy.access")


def log_exchange(record: AccessRecord) -> float:
    """Log ``record``; returns the exchange's duration in milliseconds (for the metrics)."""
    duration_ms = (time.perf_counter() - record.received) * 1000
    if not access_log.isEnabledFor(logging.INFO):
        return duration_ms
    usage = record.usage
    fields = {
        "rid": record.rid,
        "method": record.method,
        "path": record.path,
        "client_model": record.client_model,
        "upstream": record.upstream,
        "upstream_model": record.upstream_model,
        "status": record.status,
        "ttft_ms": round(record.ttft_ms, 2) if record.ttft_ms is not None else None,
        "duration_ms": round(duration_ms, 2),
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cached_tokens": usage.cache_read_input_tokens if usage else None,
    }
    if record.error_kind is not None:
        fields["error"] = record.error_kind
    access_log.info(
        "%s %s %s model=%s->%s status=%d ttft=%s dur=%.1fms in=%s out=%s cached=%s upstream=%s%s",
        record.rid,
        record.method,
        record.path,
        record.client_model,
        record.upstream_model,
        record.status,
        f"{record.ttft_ms:.1f}ms" if record.ttft_ms is not None else "-",
        duration_ms,
        usage.input_tokens if usage else "-",
        usage.output_tokens if usage else "-",
        usage.cache_read_input_tokens if usage else "-",
        record.upstream,
        f" error={record.error_kind}" if record.error_kind is not None else "",
        extra={"access": fields},  # --log-format json writes these fields instead of the text
    )
    return duration_ms
