#!/usr/bin/env python3
"""Compare R*Tree layouts of a stacd SQLite store on the small-bbox and bbox + datetime queries.

Usage: bench/rtree_time_unit.py STORE SCENARIOS

STORE is a stacd SQLite store that contains a benchmark catalog, and SCENARIOS the
`scenarios-v4.json` of that catalog (both are in the benchmark cache after a run).
The script works on a copy of STORE in a temporary folder. It builds trees from
the store's own: footprints only (stacd's tree for searches without a datetime),
footprints and time in microseconds, and footprints and time in units of 2^50
(stacd's tree for searches with a datetime) and 2^56 microseconds. For each tree
and scenario it runs the 100 queries three times, each the page statement and
the candidate lookup, and prints the mean time per query and the candidates found.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

# Tree name -> divisor of the microsecond times, or None for a tree without time.
LAYOUTS = {
    "footprint only": None,
    "time in microseconds": 1.0,
    "time in 2^50 microseconds": float(2**50),
    "time in 2^56 microseconds": float(2**56),
}
REPEATS = 3


def microseconds(text: str) -> int:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1_000_000)


def build(db: sqlite3.Connection) -> None:
    """Create one tree per layout, filled in primary-key order as stacd load does."""
    for n, divisor in enumerate(LAYOUTS.values()):
        if divisor is None:
            db.execute(f"CREATE VIRTUAL TABLE tree{n} USING rtree (pk, min_x, max_x, min_y, max_y)")
            db.execute(
                f"INSERT INTO tree{n} SELECT pk, min_x, max_x, min_y, max_y FROM items_space_time ORDER BY pk"
            )
        else:
            db.execute(
                f"CREATE VIRTUAL TABLE tree{n} USING rtree (pk, min_x, max_x, min_y, max_y, min_t, max_t)"
            )
            db.execute(
                f"INSERT INTO tree{n} SELECT r.pk, r.min_x, r.max_x, r.min_y, r.max_y, "
                f"i.start_datetime / {divisor!r}, i.end_datetime / {divisor!r} "
                "FROM items_space_time r JOIN items i ON i.pk = r.pk ORDER BY r.pk"
            )
    db.commit()


def measure(db: sqlite3.Connection, tree: str, divisor: float | None, requests: list[dict]) -> tuple[float, int]:
    """Return the mean milliseconds per query and the candidates of one pass."""
    candidates = 0
    started = time.perf_counter()
    for _ in range(REPEATS):
        candidates = 0
        for request in requests:
            west, south, east, north = request["bbox"]
            lookup = f"SELECT pk FROM {tree} WHERE max_x >= ? AND min_x <= ? AND max_y >= ? AND min_y <= ?"
            lookup_args: list[float] = [west, east, south, north]
            exact, exact_args = "", []
            if "datetime" in request:
                start, end = (microseconds(t) for t in request["datetime"])
                if divisor is not None:
                    lookup += " AND max_t >= ? AND min_t <= ?"
                    lookup_args += [start / divisor, end / divisor]
                exact = " AND i.end_datetime >= ? AND i.start_datetime <= ?"
                exact_args = [start, end]
            page = (
                f"SELECT i.content FROM items i WHERE i.pk IN ({lookup}){exact} "
                "ORDER BY i.datetime DESC, i.collection, i.id"
            )
            db.execute(page, lookup_args + exact_args).fetchall()
            candidates += len(db.execute(lookup, lookup_args).fetchall())
    seconds = time.perf_counter() - started
    return seconds / REPEATS / len(requests) * 1000, candidates


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    store, scenarios = Path(sys.argv[1]), Path(sys.argv[2])
    requests = json.loads(scenarios.read_text())["requests"]
    with tempfile.TemporaryDirectory(prefix="stacd-rtree-") as work:
        db = sqlite3.connect(Path(work) / "store.sqlite")
        # The backup API also copies pages still in the write-ahead log, which copying the file would miss.
        source = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        source.backup(db)
        source.close()
        build(db)
        print("| R*Tree | scenario | ms per query | candidates of the 100 queries |")
        print("| --- | --- | --- | --- |")
        for scenario in ("bbox_small", "bbox_month"):
            for n, (name, divisor) in enumerate(LAYOUTS.items()):
                milliseconds, candidates = measure(db, f"tree{n}", divisor, requests[scenario])
                print(f"| {name} | {scenario} | {milliseconds:.2f} | {candidates:,} |")
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
