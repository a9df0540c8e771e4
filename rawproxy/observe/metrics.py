"""``GET /metrics``: counters and histograms in the Prometheus text exposition format (version 0.0.4). Pure.

Each request is observed once, when it ends (``App._log``), so the hot path pays a few dict updates per
request and nothing per event. Model names come from clients: past ``MAX_SERIES`` label sets, new ones
are counted under ``model="other"`` so that a client cannot grow the proxy's memory without bound.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import TYPE_CHECKING

from ..dialects import protocol_of_path

if TYPE_CHECKING:
    from .._types import AccessRecord
    from ..errors import ProxyError
    from ..routing import Upstream

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
MAX_SERIES = 1000
TTFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)

Labels = tuple[tuple[str, str], ...]


class _Histogram:
    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1


# The metric's kind of an upstream failure, by its fault (errors.py); an upstream's own error status is
# told apart further by its status.
_BY_FAULT = {
    "upstream_unreachable": "connect",
    "upstream_timeout": "timeout",
    "upstream_protocol": "server_error",
}


def error_kind(error: ProxyError) -> str:
    """The ``kind`` label of ``rawproxy_upstream_errors_total`` for a failed try."""
    status = error.info.status
    if error.kind == "upstream_unreachable" and status == 529:
        return "overloaded"  # no connection was free
    by_fault = _BY_FAULT.get(error.kind)
    if by_fault is not None:
        return by_fault
    if status == 504 or error.info.type == "timeout_error":
        return "timeout"
    if status == 429:
        return "rate_limited"
    if status in (503, 529):
        return "overloaded"
    if status >= 500:
        return "server_error"
    return "rejected"  # a 4xx: the upstream refused the request


class Metrics:
    def __init__(self) -> None:
        self.requests: defaultdict[Labels, int] = defaultdict(int)
        self.tokens: defaultdict[Labels, int] = defaultdict(int)
        self.errors: defaultdict[Labels, int] = defaultdict(int)
        self.ttft: dict[Labels, _Histogram] = {}
        self.duration: dict[Labels, _Histogram] = {}
        self.in_flight = 0
        self._series: dict[tuple[str, str, str, int], tuple[Labels, Labels]] = {}

    def _model(self, model: str, labels: Labels) -> str:
        return model if labels in self.requests or len(self.requests) < MAX_SERIES else "other"

    def _labels(self, protocol: str, upstream: str, model: str, status: int) -> tuple[Labels, Labels]:
        """(the series' labels, the request counter's: those and the status), built once per series."""
        found = self._series.get((protocol, upstream, model, status))
        if found is not None:
            return found
        base: Labels = (("protocol", protocol), ("upstream", upstream), ("model", model))
        named = self._model(model, (*base, ("status", str(status))))
        key: Labels = (("protocol", protocol), ("upstream", upstream), ("model", named))
        found = (key, (*key, ("status", str(status))))
        if named == model:  # a series past MAX_SERIES is counted under "other" and not kept here
            self._series[(protocol, upstream, model, status)] = found
        return found

    def observe(self, record: AccessRecord, duration_ms: float) -> None:
        protocol = protocol_of_path(record.path)
        if protocol == "other":
            return  # health checks, model lists: not model traffic
        key, counter = self._labels(protocol, record.upstream, record.upstream_model, record.status)
        self.requests[counter] += 1
        self.duration.setdefault(key, _Histogram(DURATION_BUCKETS)).observe(duration_ms / 1000)
        if record.ttft_ms is not None:
            self.ttft.setdefault(key, _Histogram(TTFT_BUCKETS)).observe(record.ttft_ms / 1000)
        usage = record.usage
        if usage is not None:
            for kind, value in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached", usage.cache_read_input_tokens),
            ):
                if value:
                    self.tokens[(*key[1:], ("kind", kind))] += value

    def upstream_error(self, upstream: Upstream, error: ProxyError) -> None:
        key: Labels = (("upstream", upstream.name), ("kind", error_kind(error)))
        self.errors[key] += 1

    def render(self) -> bytes:
        out: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        family(
            "rawproxy_requests_total",
            "counter",
            "Requests answered, by client protocol, upstream, model, status.",
        )
        out += [f"rawproxy_requests_total{_labels(k)} {v}" for k, v in sorted(self.requests.items())]
        for name, text, table in (
            ("rawproxy_time_to_first_token_seconds", "Time from the request to its first token.", self.ttft),
            (
                "rawproxy_request_duration_seconds",
                "Time from the request to the end of its response.",
                self.duration,
            ),
        ):
            family(name, "histogram", text)
            for labels, hist in sorted(table.items()):
                running = 0
                for bound, count in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f"{name}_bucket{_labels((*labels, ('le', le)))} {running}")
                out.append(f"{name}_sum{_labels(labels)} {hist.total!r}")
                out.append(f"{name}_count{_labels(labels)} {hist.count}")
        family(
            "rawproxy_tokens_total",
            "counter",
            "Tokens the upstreams reported, by kind (input, output, cached).",
        )
        out += [f"rawproxy_tokens_total{_labels(k)} {v}" for k, v in sorted(self.tokens.items())]
        family(
            "rawproxy_upstream_errors_total", "counter", "Upstream failures before the first byte, by kind."
        )
        out += [f"rawproxy_upstream_errors_total{_labels(k)} {v}" for k, v in sorted(self.errors.items())]
        family("rawproxy_in_flight_requests", "gauge", "Requests being answered now (streams included).")
        out.append(f"rawproxy_in_flight_requests {self.in_flight}")
        return ("\n".join(out) + "\n").encode()


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
