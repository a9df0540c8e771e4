"""The bench's Markdown table (with the issue's targets, pass/fail) and its chart, from a result dict.

python bench/report.py [bench/results/latest.json]   # re-render latest.md and latest.png
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROXY_PATHS = ("a2o", "o2a", "pass-anthropic", "pass-openai")
ALL_PATHS = (*PROXY_PATHS, "relay-openai", "relay-anthropic")
LABELS = {
    "a2o": "A2O",
    "o2a": "O2A",
    "pass-anthropic": "pass Anthropic",
    "pass-openai": "pass OpenAI",
    "relay-openai": "relay floor (OpenAI)",
    "relay-anthropic": "relay floor (Anthropic)",
}


def _f(v: float | None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def _ttft(result: dict[str, Any], delay: int, conc: int) -> dict[str, Any]:
    for phase in result["ttft"]:
        if phase["upstream_ttft_ms"] == delay and phase["concurrency"] == conc:
            return dict(phase["paths"])
    return {}


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    limit: float
    higher_is_better: bool
    value: Callable[[dict[str, Any], str], float | None]  # (result, path) -> measured
    unit: str = "ms"
    digits: int = 2

    def ok(self, v: float | None) -> bool:
        if v is None or math.isnan(v):
            return False
        return v >= self.limit if self.higher_is_better else v <= self.limit


def _get(d: Any, *keys: Any) -> float | None:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return float(d) if isinstance(d, int | float) else None


def _tool_vs_text(metric: str) -> Callable[[dict[str, Any], str], float | None]:
    """Overhead p50 of the 100-fragment tool call minus that of the 100-event text stream."""

    def value(r: dict[str, Any], p: str) -> float | None:
        tool = _get(r, "streams", "tool100", metric, p, "overhead_ms", "p50")
        text = _get(r, "streams", "text100", metric, p, "overhead_ms", "p50")
        return None if tool is None or text is None else tool - text

    return value


TARGETS = [
    Target(
        "TTFT overhead, 1 stream, upstream 0 ms: p50",
        0.4,
        False,
        lambda r, p: _get(_ttft(r, 0, 1), p, "overhead_ms", "p50"),
    ),
    Target(
        "TTFT overhead, 1 stream, upstream 0 ms: p99",
        1.5,
        False,
        lambda r, p: _get(_ttft(r, 0, 1), p, "overhead_ms", "p99"),
    ),
    Target(
        "TTFT overhead, 1 stream, upstream 50 ms: p50",
        0.4,
        False,
        lambda r, p: _get(_ttft(r, 50, 1), p, "overhead_ms", "p50"),
    ),
    Target(
        "TTFT overhead, 1 stream, upstream 50 ms: p99",
        1.5,
        False,
        lambda r, p: _get(_ttft(r, 50, 1), p, "overhead_ms", "p99"),
    ),
    Target(
        "TTFT overhead, 32 streams, upstream 0 ms: p50",
        3.0,
        False,
        lambda r, p: _get(_ttft(r, 0, 32), p, "overhead_ms", "p50"),
    ),
    Target(
        "TTFT overhead, 32 streams, upstream 50 ms: p50",
        3.0,
        False,
        lambda r, p: _get(_ttft(r, 50, 32), p, "overhead_ms", "p50"),
    ),
    Target(
        "non-streamed throughput, 64 clients",
        3000,
        True,
        lambda r, p: _get(r, "throughput", "non_streamed", p, "requests_per_s"),
        "req/s",
        0,
    ),
    Target(
        "proxy CPU per non-streamed request",
        0.3,
        False,
        lambda r, p: _get(r, "throughput", "non_streamed", p, "proxy_cpu_ms_per_request"),
        "ms",
        3,
    ),
    Target(
        "short-stream throughput, 64 clients",
        2000,
        True,
        lambda r, p: _get(r, "throughput", "streamed", p, "requests_per_s"),
        "req/s",
        0,
    ),
    Target(
        "60 KB request: extra TTFT overhead vs small, p50",
        0.5,
        False,
        lambda r, p: _get(r, "request_size", "paths", p, "extra_p50_ms"),
    ),
    Target(
        "streamed tool call vs text (100 events each): first-token overhead p50, tool minus text",
        0.1,
        False,
        _tool_vs_text("first_token"),
    ),
    Target(
        "streamed tool call vs text (100 events each): whole-stream overhead p50, tool minus text",
        0.1,
        False,
        _tool_vs_text("total"),
    ),
]
PROCESS_TARGETS = [
    Target("RSS idle", 35, False, lambda r, p: _get(r, "memory_mb", "proxy", "idle"), "MB", 1),
    Target("RSS peak", 50, False, lambda r, p: _get(r, "memory_mb", "proxy", "peak"), "MB", 1),
    Target("cold start (process start to first answered request)", 0.25, False,
           lambda r, p: _get(r, "cold_start", "proxy", "first_answer_s"), "s", 3),
]  # fmt: skip


def _pf(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def targets_table(r: dict[str, Any]) -> list[str]:
    out = [
        "| target | limit | A2O | O2A | pass Anthropic | pass OpenAI | pass/fail |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in TARGETS:
        cells, failed = [], []
        for p in PROXY_PATHS:
            v = t.value(r, p)
            mark = "" if t.ok(v) else " ✗"
            cells.append(_f(v, t.digits) + mark)
            if not t.ok(v):
                failed.append(LABELS[p])
        op = "≥" if t.higher_is_better else "≤"
        verdict = "pass" if not failed else "**FAIL** (" + ", ".join(failed) + ")"
        out.append(f"| {t.label} | {op} {_f(t.limit, t.digits)} {t.unit} | {' | '.join(cells)} | {verdict} |")
    for t in PROCESS_TARGETS:
        v = t.value(r, "")
        op = "≥" if t.higher_is_better else "≤"
        out.append(
            f"| {t.label} | {op} {_f(t.limit, t.digits)} {t.unit} | {_f(v, t.digits)} {t.unit} (one process, all paths)"
            f" | | | | {_pf(t.ok(v))} |"
        )
    return out


def routing_table(r: dict[str, Any]) -> list[str]:
    """Issue 5: TTFT through a proxy with a 20-route file vs two proxies with flags alone. Measurable
    means slower than both flags processes, each beyond its 95 % interval; anywhere within or below
    their spread is the noise between two processes of the same code."""
    routing = r.get("routing")
    if not routing or "flags2_minus_flags_ms" not in next(iter(routing["paths"].values()), {}):
        return []
    out = [
        f"### Routing (issue 5): {routing['routes']} routes in a file vs flags alone, 1 stream, "
        f"{routing['rounds']} rounds",
        "",
        "Medians of the per-round differences (95 % bootstrap interval), ms. Two proxies of the same code and "
        "flags differ by some tens of µs: the last column but one is that noise.",
        "",
        "| path | flags p50 | flags (twin) p50 | 20 routes p50 | routes − flags | routes − flags twin "
        "| flags twin − flags (noise) | measurable? |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(d: dict[str, float]) -> str:
        return f"{_f(d['median'], 3)} ({_f(d['low'], 3)} .. {_f(d['high'], 3)})"

    for p in PROXY_PATHS:
        row = routing["paths"].get(p)
        if row is None:
            continue
        a, b = row["routes_minus_flags_ms"], row["routes_minus_flags2_ms"]
        slower = a["low"] > 0 and b["low"] > 0
        out.append(
            f"| {LABELS[p]} | {_f(row['flags_p50_ms'], 3)} | {_f(row['flags2_p50_ms'], 3)} "
            f"| {_f(row['routes_p50_ms'], 3)} | {cell(a)} | {cell(b)} | {cell(row['flags2_minus_flags_ms'])} "
            f"| {'**yes: FAIL**' if slower else 'no (within noise): pass'} |"
        )
    cost = routing.get("decide_us")
    if cost:
        out += [
            "",
            "The routing decision alone (`Router.decide`, in the bench process), µs a call: "
            + ", ".join(f"{k} {v:.2f}" for k, v in cost.items())
            + ".",
        ]
    return [*out, ""]


def _label(name: str) -> str:
    path, _, proxy = name.partition("@")
    return LABELS.get(path, path) + (f" (proxy at {proxy})" if proxy else "")


def validation_lines(r: dict[str, Any]) -> list[str]:
    """Issue 19: how many responses were checked, how many failed, and each failing arm's first failure."""
    v = r.get("validation")
    if v is None:
        return ["Responses: not checked (a run from before issue 19).", ""]
    if not v["failures"]:
        return [
            f"Responses: all {v['checked']} checked (status, whole body for its dialect, the upstream's text, "
            "the terminal event): pass.",
            "",
        ]
    out = [
        f"**Responses: {v['failures']} of {v['checked']} FAILED their check: these figures are not to be "
        "quoted.**",
        "",
        "| arm | failed | the first failure |",
        "|---|---|---|",
    ]
    for arm, n in sorted(v["failed_by_arm"].items()):
        first = v["first_failure_by_arm"].get(arm, "").replace("|", "\\|")
        out.append(f"| {arm} | {n} | {first} |")
    return [*out, ""]


def _proxy_line(r: dict[str, Any]) -> str:
    proxy = r.get("proxy")
    if proxy is None:
        return "Proxy log level: warning (runs before issue 19)."
    logs = proxy.get("logs", {}).get("proxy", {})
    line = (
        f"Proxy log level: {proxy['log_level']}; it wrote {logs.get('access_lines', 0)} access-log lines "
        f"({logs.get('bytes', 0) // 1024} KB, to a file)"
    )
    problem = logs.get("first_problem")
    line += f"; its first warning or error: `{problem}`." if problem else ", no warning or error."
    if proxy.get("log_level_compared"):
        line += (
            f" A second proxy at {proxy['log_level_compared']} ran beside it, its arms in the same rounds."
        )
    return line


def log_level_table(r: dict[str, Any]) -> list[str]:
    """``--log-level both``: TTFT overhead p50 / p99 of the proxy at its default level and at warning, and
    proxy CPU per request, side by side."""
    if not any("paths_warning" in ph for ph in r["ttft"]):
        return []
    out = [
        "### Log level: the default (info, access log) vs warning, same rounds",
        "",
        "TTFT overhead p50 / p99 (ms), default | warning:",
        "",
        "| path | 1 stream, 0 ms | 1 stream, 50 ms | 32 streams, 0 ms | 32 streams, 50 ms "
        "| proxy CPU ms/req non-streamed | proxy CPU ms/req streamed |",
        "|---|---|---|---|---|---|---|",
    ]
    t = r["throughput"]
    for p in PROXY_PATHS:
        cells = []
        for d, c in ((0, 1), (50, 1), (0, 32), (50, 32)):
            ph: dict[str, Any] = next(
                (x for x in r["ttft"] if x["upstream_ttft_ms"] == d and x["concurrency"] == c), {}
            )
            both = []
            for key in ("paths", "paths_warning"):
                o = ph.get(key, {}).get(p, {}).get("overhead_ms", {})
                both.append(f"{_f(o.get('p50'))} / {_f(o.get('p99'))}")
            cells.append(" \\| ".join(both))
        for kind in ("non_streamed", "streamed"):
            a = t.get(kind, {}).get(p, {}).get("proxy_cpu_ms_per_request")
            b = t.get(kind, {}).get(f"{p}@warning", {}).get("proxy_cpu_ms_per_request")
            cells.append(f"{_f(a, 3)} \\| {_f(b, 3)}")
        out.append(f"| {LABELS[p]} | {' | '.join(cells)} |")
    return [*out, ""]


def paced_table(r: dict[str, Any]) -> list[str]:
    """Issue 19: the short answer with the upstream writing back to back, and with a gap between tokens."""
    phases = r.get("paced")
    if not phases:
        return []
    gap, tokens = phases[0]["gap_ms"], phases[0]["tokens"]
    out = [
        f"### Pacing: {tokens} text events back to back vs {gap} ms between tokens: overhead p50 / p99 (ms)",
        "",
        "First token, and the whole stream (its last token), each against the direct arm of the same pacing. "
        f"The paced whole-stream overhead is what the proxy adds to a token after sitting idle {gap} ms.",
        "",
        "| path | "
        + " | ".join(
            f"{ph['concurrency']} stream{'s' if ph['concurrency'] > 1 else ''}: {what}"
            for ph in phases
            for what in ("first token, back to back", f"first token, {gap} ms gaps", "whole, back to back",
                         f"whole, {gap} ms gaps")
        )
        + " |",
        "|---|" + "---|" * (4 * len(phases)),
    ]  # fmt: skip
    proxies = ["default", *(["warning"] if r.get("proxy", {}).get("log_level_compared") else [])]
    for proxy in proxies:
        for p in ALL_PATHS:
            if proxy != "default" and p not in PROXY_PATHS:
                continue
            cells = []
            for ph in phases:
                for metric in ("first_token", "total"):
                    for pacing in ("back_to_back", "paced"):
                        o = ph[pacing][metric].get(proxy, {}).get(p, {}).get("overhead_ms", {})
                        cells.append(f"{_f(o.get('p50'))} / {_f(o.get('p99'))}")
            # columns: first b2b, first paced, whole b2b, whole paced
            name = LABELS[p] + ("" if proxy == "default" else f" (proxy at {proxy})")
            out.append(f"| {name} | {' | '.join(cells)} |")
    direct = []
    for ph in phases:
        d = ph["paced"]["total"]["default"].get("a2o", {}).get("direct_ms", {}).get("p50")
        direct.append(f"{ph['concurrency']} stream(s): {_f(d)} ms over {ph['rounds']} rounds")
    out += ["", "Direct OpenAI whole paced stream p50: " + "; ".join(direct) + ".", ""]
    return out


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"## rawproxy bench ({r['mode']}, {r['when']})",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['implementation']} {m['python']}, "
        f"uvloop {m['uvloop'] or 'off'}, rawproxy {m['rawproxy_commit']}; run took {r['seconds']} s. "
        "Overhead = percentile through the path minus the same percentile of the direct arm "
        "(interleaved rounds); ms.",
        "",
        _proxy_line(r),
        "",
        *validation_lines(r),
        "### Targets (issue 4)",
        "",
        *targets_table(r),
        "",
        *routing_table(r),
        "### Time to first token: overhead p50 / p90 / p99 (ms)",
        "",
        "| path | 1 stream, upstream 0 ms | 1 stream, 50 ms | 32 streams, 0 ms | 32 streams, 50 ms |",
        "|---|---|---|---|---|",
    ]
    scenarios = [(0, 1), (50, 1), (0, 32), (50, 32)]
    for p in ALL_PATHS:
        cells = []
        for d, c in scenarios:
            o = _ttft(r, d, c).get(p, {}).get("overhead_ms", {})
            cells.append(" / ".join(_f(o.get(q)) for q in ("p50", "p90", "p99")))
        lines.append(f"| {LABELS[p]} | {' | '.join(cells)} |")
    direct_cells = []
    for d, c in scenarios:
        a2o = _ttft(r, d, c).get("a2o", {})
        o2a = _ttft(r, d, c).get("o2a", {})
        direct_cells.append(
            f"OpenAI {_f(a2o.get('direct_ms', {}).get('p50'))}, Anthropic {_f(o2a.get('direct_ms', {}).get('p50'))}"
        )
    lines.append(f"| *direct TTFT p50* | {' | '.join(direct_cells)} |")
    ns = [
        f"{ph['rounds']} rounds ({ph['paths'].get('a2o', {}).get('n', 0)} samples an arm, client "
        f"{ph['client_cpu_us_per_request']} µs CPU/request, {ph.get('client_user_cpu_us_per_request', '–')} µs of it user)"
        for ph in r["ttft"]
    ]
    lines += ["", "Samples: " + "; ".join(ns) + ".", ""]
    lines += log_level_table(r)
    lines += paced_table(r)

    s = r["streams"]
    lines += [
        "### Whole streams at 1 stream: overhead p50 / p90 / p99 (ms)",
        "",
        "| path | 200 text events: total | 100 text events: total | tool call, 100 fragments: total "
        "| 100 text events: first token | tool call: first argument fragment |",
        "|---|---|---|---|---|---|",
    ]
    for p in ALL_PATHS:
        cells = []
        for kind, metric in (
            ("stream200", "total"),
            ("text100", "total"),
            ("tool100", "total"),
            ("text100", "first_token"),
            ("tool100", "first_token"),
        ):
            o = s.get(kind, {}).get(metric, {}).get(p, {}).get("overhead_ms", {})
            cells.append(" / ".join(_f(o.get(q)) for q in ("p50", "p90", "p99")))
        lines.append(f"| {LABELS[p]} | {' | '.join(cells)} |")
    direct = [
        f"{kind} {_f(s.get(kind, {}).get('total', {}).get('a2o', {}).get('direct_ms', {}).get('p50'))} ms"
        for kind in ("stream200", "text100", "tool100")
    ]
    lines += ["", f"{s['rounds']} rounds; direct OpenAI whole-stream p50: {', '.join(direct)}.", ""]

    b = r["request_size"]
    lines += [
        f"### Claude-Code-sized request ({b['anthropic_big_bytes'] // 1024} KB Anthropic / "
        f"{b['openai_big_bytes'] // 1024} KB OpenAI: 48 KB system prompt, 40 tools) vs a small one, 1 stream",
        "",
        "| path | small: TTFT overhead p50 / p99 | large: TTFT overhead p50 / p99 | extra p50 |",
        "|---|---|---|---|",
    ]
    for p in ALL_PATHS:
        row = b["paths"].get(p)
        if row is None:
            continue
        so, bo = row["small_overhead_ms"], row["big_overhead_ms"]
        lines.append(
            f"| {LABELS[p]} | {_f(so['p50'])} / {_f(so['p99'])} | {_f(bo['p50'])} / {_f(bo['p99'])} | {_f(row['extra_p50_ms'])} |"
        )
    lines += ["", f"{b['rounds']} rounds.", ""]

    t = r["throughput"]
    lines += [
        f"### Throughput, {t['concurrency']} concurrent clients, {t['seconds']} s an arm",
        "",
        "| arm | non-streamed req/s | server CPU ms/req (user) | streamed req/s | server CPU ms/req (user) | client CPU ms/req (non-str. / str.) | upstream CPU ms/req (non-str. / str.) | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, ns_row in t["non_streamed"].items():
        st_row = t["streamed"][name]

        def server_cpu(row: dict[str, Any]) -> str:
            for who in ("proxy", "relay"):
                if f"{who}_cpu_ms_per_request" in row:
                    user = row.get(f"{who}_user_cpu_ms_per_request")
                    return f"{_f(row[f'{who}_cpu_ms_per_request'], 3)} ({_f(user, 3)})"
            return "(upstream)"

        lines.append(
            f"| {_label(name)} | {_f(ns_row['requests_per_s'], 0)} | {server_cpu(ns_row)} | "
            f"{_f(st_row['requests_per_s'], 0)} | {server_cpu(st_row)} | "
            f"{_f(ns_row['client_cpu_ms_per_request'], 3)} / {_f(st_row['client_cpu_ms_per_request'], 3)} | "
            f"{_f(ns_row['upstream_cpu_ms_per_request'], 3)} / {_f(st_row['upstream_cpu_ms_per_request'], 3)} | "
            f"{ns_row['errors'] + st_row['errors']} |"
        )

    mem, cold, imp = r["memory_mb"], r["cold_start"], r["import_ms"]
    lines += [
        "",
        "### Process",
        "",
        "| process | RSS at start | RSS idle (warm) | RSS peak | port open after | first answer after | import time |",
        "|---|---|---|---|---|---|---|",
        f"| proxy | {_f(mem['proxy'].get('start'), 1)} MB | {_f(mem['proxy']['idle'], 1)} MB | {_f(mem['proxy']['peak'], 1)} MB | "
        f"{_f(cold['proxy']['ready_s'], 3)} s | {_f(cold['proxy']['first_answer_s'], 3)} s | "
        f"`import rawproxy` {_f(imp.get('rawproxy'))} ms, `rawproxy.__main__` {_f(imp.get('rawproxy.__main__'))} ms |",
        f"| relay floor | {_f(mem['relay'].get('start'), 1)} MB | {_f(mem['relay']['idle'], 1)} MB | {_f(mem['relay']['peak'], 1)} MB | "
        f"{_f(cold['relay']['ready_s'], 3)} s | {_f(cold['relay']['first_answer_s'], 3)} s | – |",
        "",
        f"Cold start: median of {cold['proxy']['runs']} fresh processes; the first answer is a translated (A2O) "
        "non-streamed request. RSS idle is after every path has been used once; peak is VmHWM at the end.",
        "",
    ]
    return "\n".join(lines)


def write_chart(r: dict[str, Any], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (make bench installs it)"
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    qs = list(range(1, 100))
    styles = {
        "a2o": ("tab:blue", "-"),
        "o2a": ("tab:orange", "-"),
        "pass-anthropic": ("tab:green", "--"),
        "pass-openai": ("tab:red", "--"),
        "relay-openai": ("black", ":"),
        "relay-anthropic": ("grey", ":"),
    }
    for ax, (delay, conc) in zip(axes.flat, [(0, 1), (50, 1), (0, 32), (50, 32)], strict=True):
        paths = _ttft(r, delay, conc)
        for p, (color, ls) in styles.items():
            if p in paths:
                ax.plot(qs, paths[p]["curve_ms"], color=color, linestyle=ls, label=LABELS[p])
        ax.axhline(0, color="lightgrey", linewidth=0.8)
        ax.set_title(f"{conc} concurrent stream{'s' if conc > 1 else ''}, upstream first token at {delay} ms")
        ax.set_ylabel("TTFT overhead (ms)")
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("percentile")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(
        f"rawproxy: time-to-first-token overhead vs the direct upstream, by percentile "
        f"({r['mode']}, {r['machine']['cpus']} CPUs, {r['when']})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart: {path}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    src = Path(args[0]) if args else Path(__file__).resolve().parent / "results" / "latest.json"
    r = json.loads(src.read_text())
    table = markdown(r)
    (src.parent / "latest.md").write_text(table)
    print(table)
    print(write_chart(r, src.parent / "latest.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
