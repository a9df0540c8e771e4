"""Issue 7: ``GET /metrics`` in the Prometheus text format, parsed with prometheus_client's own parser;
``--log-format json`` access lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, T, build_request, messages_body, start

pytestmark = pytest.mark.integration


async def get_metrics(proxy: Any) -> dict[str, Any]:
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        response = await conn.request("GET", "/metrics", timeout=T)
    assert response.status == 200
    assert response.header("content-type").startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(response.body.decode())}


def samples(family: Any, name: str, **labels: str) -> list[float]:
    return [
        s.value
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


async def test_issue7_metrics_count_requests_tokens_ttft_and_errors(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await start(proxy_factory)
    fake.enqueue(Script(), Script(), Script(status=429, headers=[("retry-after", "1")]))
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        for stream in (False, True):
            ok = await conn.request(
                "POST", "/v1/messages", ANTHROPIC, messages_body("hi", stream=stream), timeout=T
            )
            assert ok.status == 200
        limited = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("hi"), timeout=T)
        assert limited.status == 429
    families = await get_metrics(proxy)
    labels = {"protocol": "anthropic", "upstream": "openai", "model": "claude-sonnet-4-5"}
    requests = families["rawproxy_requests"]  # the parser drops _total from a counter's family name
    assert samples(requests, "rawproxy_requests_total", status="200", **labels) == [2.0]
    assert samples(requests, "rawproxy_requests_total", status="429", **labels) == [1.0]
    ttft = families["rawproxy_time_to_first_token_seconds"]
    assert samples(ttft, "rawproxy_time_to_first_token_seconds_count", **labels) == [1.0]  # the stream
    assert samples(ttft, "rawproxy_time_to_first_token_seconds_bucket", le="+Inf", **labels) == [1.0]
    duration = families["rawproxy_request_duration_seconds"]
    assert samples(duration, "rawproxy_request_duration_seconds_count", **labels) == [3.0]
    tokens = families["rawproxy_tokens"]
    assert samples(tokens, "rawproxy_tokens_total", kind="input", upstream="openai") == [24.0]  # 12 twice
    errors = families["rawproxy_upstream_errors"]
    assert samples(errors, "rawproxy_upstream_errors_total", upstream="openai", kind="rate_limited") == [1.0]
    assert samples(families["rawproxy_in_flight_requests"], "rawproxy_in_flight_requests") == [
        1.0
    ]  # this GET


async def test_issue7_metrics_model_label_is_bounded(proxy_factory: Any, fake: FakeUpstream) -> None:
    from rawproxy.observe import metrics

    proxy = await start(proxy_factory)
    app_metrics = metrics.Metrics()
    record: Any = type("R", (), {})()
    for i in range(metrics.MAX_SERIES + 50):
        record.path, record.upstream, record.upstream_model = "/v1/messages", "u", f"model-{i}"
        record.status, record.ttft_ms, record.usage = 200, None, None
        app_metrics.observe(record, 1.0)
    assert len(app_metrics.requests) <= metrics.MAX_SERIES + 1
    assert any(dict(k)["model"] == "other" for k in app_metrics.requests)
    assert await get_metrics(proxy)  # and a fresh proxy renders parseable output with no samples


def test_issue7_json_access_log(tmp_path: Path) -> None:
    fake = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "fake-upstream", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert fake.stdout is not None
    url = re.search(r"http://\S+/v1", fake.stdout.readline())
    assert url is not None
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rawproxy",
            "--port",
            "0",
            "--openai-upstream",
            url.group(0),
            "--log-format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        assert proxy.stdout is not None
        ready = json.loads(proxy.stdout.readline())  # in JSON mode the ready line is JSON too (OPS-04)
        port = int(re.search(r":(\d+)$", ready["url"]).group(1))  # type: ignore[union-attr]
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(build_request("POST", "/v1/messages", ANTHROPIC, messages_body("hi")))
            assert b" 200 " in sock.recv(65536)
    finally:
        proxy.terminate()
        _, err = proxy.communicate(timeout=10)
        fake.terminate()
        fake.communicate(timeout=10)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    (access,) = [line for line in lines if line["logger"] == "rawproxy.access"]
    assert access["method"] == "POST" and access["path"] == "/v1/messages" and access["status"] == 200
    assert access["upstream"] == "openai" and access["input_tokens"] == 12
    assert isinstance(access["duration_ms"], float) and access["time"].endswith("Z")


async def test_issue8_responses_requests_are_model_traffic_too(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await start(proxy_factory)
    body = json.dumps({"model": "gpt-5", "input": "hi", "stream": True}).encode()
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        ok = await conn.request(
            "POST", "/v1/responses", [("content-type", "application/json")], body, timeout=T
        )
    assert ok.status == 200 and b"response.completed" in ok.body
    families = await get_metrics(proxy)
    labels = {"protocol": "openai_responses", "upstream": "openai", "model": "gpt-5"}
    assert samples(families["rawproxy_requests"], "rawproxy_requests_total", status="200", **labels) == [1.0]
    ttft = families["rawproxy_time_to_first_token_seconds"]
    assert samples(ttft, "rawproxy_time_to_first_token_seconds_count", **labels) == [1.0]
