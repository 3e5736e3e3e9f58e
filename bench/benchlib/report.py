"""Markdown tables of a benchmark run."""

from __future__ import annotations

import statistics

from .scenarios import SCENARIOS

TITLES = dict(SCENARIOS)
STACD = ("stacd-postgres", "stacd-sqlite")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×" if a / b < 10 else f"{a / b:.1f}×"


def aggregate(measurements: list[dict]) -> dict:
    """Median over rounds of each metric per (scenario, concurrency, server); peak RSS is the maximum."""
    groups: dict[tuple, list[dict]] = {}
    for m in measurements:
        groups.setdefault((m["scenario"], m["concurrency"], m["server"]), []).append(m)
    result = {}
    for key, runs in groups.items():
        result[key] = {
            "rps": median(r.get("rps") for r in runs),
            "p50_ms": median(r.get("p50_ms") for r in runs),
            "p99_ms": median(r.get("p99_ms") for r in runs),
            "rss_mb": max((r.get("rss_mb") or 0) for r in runs) or None,
            "cpu": median(r.get("cpu_percent") for r in runs),
            "db_cpu": median(r.get("db_cpu_percent") for r in runs),
            "errors": sum((r.get("socket_errors") or 0) + (r.get("non_2xx") or 0) for r in runs),
            "completed": sum(r.get("requests") or 0 for r in runs) if runs[0].get("requests") is not None else None,
            "rounds": len(runs),
            "rps_rounds": [round(r.get("rps") or 0) for r in runs],
        }
    return result


def throughput_table(agg: dict, servers: list[str], concurrency: list[int], items_per_page: dict,
                     unsupported: dict) -> list[str]:
    header = ["scenario", "c"]
    for server in servers:
        header.append(f"{server} req/s")
    if "peer" in servers:
        header += [f"{s} / peer" for s in servers if s in STACD]
    header += ["pgbench tx/s", "stacd-postgres / pgbench"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, title in SCENARIOS:
        for c in concurrency:
            row = [title, str(c)]
            values = {}
            for server in servers:
                if (server, key) in unsupported:
                    row.append("not supported")
                    continue
                cell = agg.get((key, c, server))
                values[server] = cell["rps"] if cell else None
                text = fmt(values[server])
                if cell and cell["completed"] == 0:
                    text = "0 (no request completed; see errors)"
                if cell and cell["errors"]:
                    text += f" ({cell['errors']} errors)"
                if key == "limit_1000" and values[server] is not None:
                    text += f" ({fmt(values[server] * items_per_page, 0)} items/s)"
                row.append(text)
            if "peer" in servers:
                for server in servers:
                    if server in STACD:
                        row.append(ratio(values.get(server), values.get("peer")))
            bench = agg.get((key, c, "pgbench"))
            row.append(fmt(bench["rps"]) if bench else "–")
            row.append(ratio(values.get("stacd-postgres"), bench["rps"] if bench else None))
            lines.append("| " + " | ".join(row) + " |")
    return lines


def latency_table(agg: dict, servers: list[str], concurrency: list[int], unsupported: dict) -> list[str]:
    columns = servers + ["pgbench"]
    header = ["scenario", "c"] + [f"{s} p50 / p99 ms" for s in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, title in SCENARIOS:
        for c in concurrency:
            row = [title, str(c)]
            for server in columns:
                if (server, key) in unsupported:
                    row.append("not supported")
                    continue
                cell = agg.get((key, c, server))
                if cell and cell["completed"] == 0:
                    row.append("none completed")
                    continue
                row.append(f"{fmt(cell['p50_ms'], 2)} / {fmt(cell['p99_ms'], 2)}" if cell else "–")
            lines.append("| " + " | ".join(row) + " |")
    return lines


def resource_table(agg: dict, servers: list[str], concurrency: list[int], unsupported: dict) -> list[str]:
    header = ["scenario", "c"] + [f"{s} RSS MB / CPU % / DB CPU %" for s in servers]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, title in SCENARIOS:
        for c in concurrency:
            row = [title, str(c)]
            for server in servers:
                if (server, key) in unsupported:
                    row.append("not supported")
                    continue
                cell = agg.get((key, c, server))
                if not cell:
                    row.append("–")
                    continue
                db = fmt(cell["db_cpu"]) if server != "stacd-sqlite" else "–"
                row.append(f"{fmt(cell['rss_mb'], 1)} / {fmt(cell['cpu'])} / {db}")
            lines.append("| " + " | ".join(row) + " |")
    return lines


def render(run: dict) -> str:
    servers = run["servers"]
    concurrency = run["concurrency"]
    agg = aggregate(run["measurements"])
    unsupported = {tuple(k.split("|")): v for k, v in run.get("unsupported", {}).items()}
    out = [f"# stacd benchmark, {run['items']:,} items", ""]
    out.append(f"- started {run['started']}, finished {run.get('finished', '?')}; "
               f"{run['rounds']} round(s) of {run['duration']} s per measurement, after a 1 s warm-up")
    out.append(f"- stacd {run['stacd_version']} (commit {run['commit']}); peer: {run.get('peer_versions', 'not run')}")
    out.append(f"- machine: {run['machine']}")
    if run.get("stacd_env"):
        out.append(f"- extra stacd environment: {run['stacd_env']}")
    out.append(f"- load average before the run: {run['load_before']}; after: {run.get('load_after', '?')}")
    out.append("")
    out.append("## Requests per second (median of rounds)")
    out.append("")
    out += throughput_table(agg, servers, concurrency, run["items_per_1000_page"], unsupported)
    out.append("")
    out.append("## Latency (median of rounds)")
    out.append("")
    out += latency_table(agg, servers, concurrency, unsupported)
    out.append("")
    out.append("## Server resources (peak RSS over rounds; CPU as % of one core, 200 % = both cores)")
    out.append("")
    out += resource_table(agg, servers, concurrency, unsupported)
    out.append("")
    if unsupported:
        out.append("## Not supported")
        out.append("")
        for (server, scenario), text in sorted(unsupported.items()):
            out.append(f"- {server}, {TITLES[scenario]}: {text}")
        out.append("")
    if run.get("walks"):
        out.append("## Following `next` links, one client, cost per page (median over the walks, ms)")
        out.append("")
        out.append("| server | page 1 | page 10 | page 100 | walks |")
        out.append("|---|---|---|---|---|")
        for server, walk in run["walks"].items():
            out.append(f"| {server} | {fmt(walk.get('1'), 2)} | {fmt(walk.get('10'), 2)} | "
                       f"{fmt(walk.get('100'), 2)} | {walk.get('walks', 0)} |")
        out.append("")
    if run.get("ingest"):
        out.append("## Ingest")
        out.append("")
        out.append("| store | tool | seconds | items/s |")
        out.append("|---|---|---|---|")
        for row in run["ingest"]:
            out.append(f"| {row['store']} | {row['tool']} | {row['seconds']:.1f} | {fmt(row['items_per_second'])} |")
        out.append("")
    if run.get("startup"):
        out.append("## Start-up to the first answered GET /collections")
        out.append("")
        out.append("| server | seconds (each start) |")
        out.append("|---|---|")
        for server, times in run["startup"].items():
            out.append(f"| {server} | {', '.join(f'{t:.3f}' for t in times)} |")
        out.append("")
    out.append("## Correctness")
    out.append("")
    out.append(f"{run['checks']['passed']} passed, {run['checks']['failed']} failed")
    for line in run["checks"].get("failures", []):
        out.append(f"- {line}")
    for key, text in sorted(run.get("notes", {}).items()):
        server, check = key.split("|")
        if check == "antimeridian":
            out.append(f"- not counted: {server}, bbox across the antimeridian: {text}")
    out.append("")
    out += targets(run, agg)
    return "\n".join(out) + "\n"


def targets(run: dict, agg: dict) -> list[str]:
    """Evaluate the performance targets on this run (they are defined for 1,000,000 items)."""
    lines = [f"## Targets, evaluated at {run['items']:,} items (they are set for 1,000,000)", ""]
    lines.append("| target | stacd-postgres | stacd-sqlite |")
    lines.append("|---|---|---|")
    search = ["item", "bbox_small", "bbox_month", "intersects", "cql2"]
    unsupported = {tuple(k.split("|")) for k in run.get("unsupported", {})}

    def row(name, evaluate):
        lines.append(f"| {name} | {evaluate('stacd-postgres')} | {evaluate('stacd-sqlite')} |")

    def tenfold(server):
        parts = []
        for key in search:
            if (server, key) in unsupported:
                parts.append(f"{key}: not supported")
                continue
            mine, peer = agg.get((key, 16, server)), agg.get((key, 16, "peer"))
            if not mine or not peer or not peer["rps"]:
                parts.append(f"{key}: –")
                continue
            value = mine["rps"] / peer["rps"]
            parts.append(f"{key}: {value:.1f}× {'met' if value >= 10 else 'MISSED'}")
        return "; ".join(parts)

    def p99(server):
        parts = []
        for key in search:
            if (server, key) in unsupported:
                parts.append(f"{key}: not supported")
                continue
            mine = agg.get((key, 16, server))
            if not mine:
                parts.append(f"{key}: –")
                continue
            parts.append(f"{key}: {mine['p99_ms']:.1f} ms {'met' if mine['p99_ms'] < 25 else 'MISSED'}")
        return "; ".join(parts)

    def pgbench_share(server):
        if server != "stacd-postgres":
            return "n/a"
        parts = []
        for key, _ in SCENARIOS:
            mine, bench = agg.get((key, 16, server)), agg.get((key, 16, "pgbench"))
            if mine and bench and bench["rps"]:
                value = mine["rps"] / bench["rps"]
                parts.append(f"{key}: {value:.2f} {'met' if value >= 0.7 else 'MISSED'}")
        return "; ".join(parts) or "–"

    def page_rate(server):
        best = max((agg[k]["rps"] for k in agg if k[0] == "limit_1000" and k[2] == server), default=None)
        if best is None:
            return "–"
        value = best * run["items_per_1000_page"]
        return f"{value:,.0f} items/s (best concurrency) {'met' if value >= 50_000 else 'MISSED'}"

    def rss(server):
        values = [agg[k]["rss_mb"] for k in agg if k[1] == 64 and k[2] == server and agg[k]["rss_mb"]]
        if not values:
            return "not measured (no run at concurrency 64)"
        return f"{max(values):.0f} MB {'met' if max(values) < 150 else 'MISSED'}"

    def startup(server):
        times = run.get("startup", {}).get(server)
        if not times:
            return "–"
        value = statistics.median(times)
        return f"{value:.3f} s {'met' if value < 1 else 'MISSED'}"

    def ingest(server):
        rows = {r["store"]: r for r in run.get("ingest", [])}
        mine = rows.get(server)
        peer = rows.get("peer")
        if not mine:
            return "not measured"
        text = f"{mine['items_per_second']:,.0f} items/s {'met' if mine['items_per_second'] >= 30_000 else 'MISSED'}"
        if peer:
            value = mine["items_per_second"] / peer["items_per_second"]
            text += f"; {value:.1f}× pypgstac {'met' if value >= 5 else 'MISSED'}"
        return text

    row("search ≥ 10× peer req/s at c=16", tenfold)
    row("search p99 < 25 ms at c=16", p99)
    row("req/s ≥ 0.7 × pgbench (c=16)", pgbench_share)
    row("limit=1000 ≥ 50,000 items/s", page_rate)
    row("peak RSS < 150 MB at c=64", rss)
    row("start-up < 1 s (median)", startup)
    row("ingest ≥ 30,000 items/s and ≥ 5× pypgstac", ingest)
    lines.append("")
    return lines
