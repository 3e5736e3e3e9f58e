"""The benchmark requests and their expected results, computed from items.ndjson.

Two streaming passes over the catalog: the first draws a reservoir sample of
items, around which the queries are placed (so that no query is empty); the
second tests every item against every query with the planar geometry in
`geometry.py`, which shares no code with the servers. Memory stays bounded:
only match lists of the checked queries and the first items of ordered
queries are kept.
"""

from __future__ import annotations

import calendar
import json
import math
import random
import urllib.parse
from pathlib import Path

from . import geometry

# Bump when the scenario definitions change, so that cached files are rebuilt.
SCENARIO_VERSION = 4

VARIANTS = 100
SAMPLE_SIZE = 2_000
# Size of a city block for the small bbox, and of the district for bbox + month, in metres.
BLOCK_M = 150.0
DISTRICT_M = 5_000.0
AOI_RADIUS_M = 1_500.0
AOI_VERTICES = 20
WALK_PAGE_SIZE = 10
WALK_PAGES = 100
CHECKED_PER_SCENARIO = 3
# Grid cell for matching query envelopes to items, in degrees.
CELL = 0.1

# stacd's default --count-limit: numberMatched is counted exactly up to it.
STACD_COUNT_LIMIT = 10_000

SCENARIOS = [
    # (key, title)
    ("item", "item by id"),
    ("bbox_small", "small bbox (city block), limit=10"),
    ("bbox_month", "bbox + datetime (one month), limit=10"),
    ("intersects", "POST /search intersects (20-vertex AOI), limit=10"),
    ("cql2", "CQL2 property filter, limit=10"),
    ("page_1", "paging: page 1 (limit=10)"),
    ("page_10", "paging: page 10 (limit=10)"),
    ("page_100", "paging: page 100 (limit=10)"),
    ("limit_1000", "limit=1000 page"),
    ("collections", "collection listing"),
]


def iter_items(path: Path):
    with path.open("r", encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)


def sort_time(item: dict) -> str:
    """Return the item's sort datetime: `datetime`, or `start_datetime` when it is null."""
    properties = item["properties"]
    return properties.get("datetime") or properties["start_datetime"]


def span(item: dict) -> tuple[str, str]:
    properties = item["properties"]
    if properties.get("datetime"):
        return properties["datetime"], properties["datetime"]
    return properties["start_datetime"], properties["end_datetime"]


def centre(item: dict) -> tuple[float, float]:
    ring = geometry.polygons_of(item["geometry"])[0]
    xs = [p[0] for p in ring[:-1]]
    ys = [p[1] for p in ring[:-1]]
    return sum(xs) / len(xs), sum(ys) / len(ys)


def metres_box(lon: float, lat: float, width_m: float) -> list[float]:
    """Return a square bbox centred on lon/lat; one that reaches past ±180° crosses the antimeridian (west > east)."""
    half_lon = width_m / 2 / (111_320.0 * math.cos(math.radians(lat)))
    half_lat = width_m / 2 / 111_132.0
    west, east = lon - half_lon, lon + half_lon
    if east > 180.0:
        east -= 360.0
    if west < -180.0:
        west += 360.0
    return [round(west, 6), round(lat - half_lat, 6), round(east, 6), round(lat + half_lat, 6)]


def month_interval(timestamp: str) -> tuple[str, str]:
    year, month = int(timestamp[:4]), int(timestamp[5:7])
    last = calendar.monthrange(year, month)[1]
    return f"{year:04d}-{month:02d}-01T00:00:00Z", f"{year:04d}-{month:02d}-{last:02d}T23:59:59Z"


def search_path(params: list[tuple[str, str]]) -> str:
    return "/search?" + urllib.parse.urlencode(params, safe=",:/")


class OrderedMatches:
    """The first `keep` matches of a query in stacd's order (datetime desc, collection, id), and the count."""

    def __init__(self, keep: int):
        self.keep = keep
        self.count = 0
        self.rows: list[tuple[str, str, str]] = []

    def add(self, row: tuple[str, str, str]) -> None:
        self.count += 1
        self.rows.append(row)
        if len(self.rows) > 4 * self.keep + 1_000:
            self.rows = order(self.rows)[: self.keep]

    def first(self) -> list[tuple[str, str, str]]:
        self.rows = order(self.rows)[: self.keep]
        return self.rows


def order(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Sort (datetime, collection, id) rows by datetime descending, then collection and id ascending."""
    rows = sorted(rows, key=lambda r: (r[1], r[2]))
    return sorted(rows, key=lambda r: r[0], reverse=True)


def sample_items(path: Path, seed: int) -> tuple[list[dict], dict[str, int]]:
    """First pass: a reservoir sample of items, and the item count per collection."""
    rng = random.Random(seed * 7_919 + 1)
    sample: list[dict] = []
    counts: dict[str, int] = {}
    seen = 0
    for item in iter_items(path):
        counts[item["collection"]] = counts.get(item["collection"], 0) + 1
        summary = {
            "collection": item["collection"],
            "id": item["id"],
            "centre": centre(item),
            "time": sort_time(item),
            "range": item["properties"].get("datetime") is None,
            "split": item["geometry"]["type"] == "MultiPolygon",
        }
        seen += 1
        if len(sample) < SAMPLE_SIZE:
            sample.append(summary)
        else:
            slot = rng.randrange(seen)
            if slot < SAMPLE_SIZE:
                sample[slot] = summary
    return sample, counts


def build(data_dir: Path, seed: int) -> dict:
    """Build the scenario file for the catalog in data_dir (see module docstring)."""
    manifest = json.loads((data_dir / "manifest.json").read_text())
    items_path = data_dir / "items.ndjson"
    sample, counts = sample_items(items_path, seed)
    rng = random.Random(seed * 104_729 + 3)
    collections = sorted(manifest["collections"])

    # Sampled items, with one range item and one antimeridian item first when there are any.
    special = [s for s in (next((s for s in sample if s["split"]), None),
                           next((s for s in sample if s["range"]), None)) if s is not None]
    rest = [s for s in sample if s not in special]
    rng.shuffle(rest)
    picks = special + rest

    queries: dict[str, list[dict]] = {key: [] for key, _ in SCENARIOS}
    for summary in picks[:VARIANTS]:
        queries["item"].append({
            "method": "GET",
            "path": "/collections/{}/items/{}".format(
                urllib.parse.quote(summary["collection"], safe=""), urllib.parse.quote(summary["id"], safe="")),
            "collection": summary["collection"],
            "id": summary["id"],
        })

    spatial_pool = picks[VARIANTS:] + picks[:VARIANTS]
    for index in range(VARIANTS):
        lon, lat = spatial_pool[index]["centre"]
        box = metres_box(lon, lat, BLOCK_M)
        queries["bbox_small"].append({
            "method": "GET",
            "path": search_path([("bbox", ",".join(map(str, box))), ("limit", "10")]),
            "bbox": box,
            "limit": 10,
        })

        summary = spatial_pool[(index + VARIANTS // 3) % len(spatial_pool)]
        lon, lat = summary["centre"]
        box = metres_box(lon, lat, DISTRICT_M)
        start, end = month_interval(summary["time"])
        queries["bbox_month"].append({
            "method": "GET",
            "path": search_path([("bbox", ",".join(map(str, box))), ("datetime", f"{start}/{end}"), ("limit", "10")]),
            "bbox": box,
            "datetime": [start, end],
            "limit": 10,
        })

        lon, lat = spatial_pool[(index + 2 * VARIANTS // 3) % len(spatial_pool)]["centre"]
        # A GeoJSON polygon may not cross the antimeridian, so an AOI next to it moves to one side.
        reach = AOI_RADIUS_M / (111_320.0 * math.cos(math.radians(lat)))
        lon = min(max(lon, -180.0 + reach), 180.0 - reach)
        ring = geometry.star_polygon(lon, lat, AOI_RADIUS_M, AOI_VERTICES,
                                     [rng.uniform(0.6, 1.0) for _ in range(AOI_VERTICES)])
        polygon = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
        queries["intersects"].append({
            "method": "POST",
            "path": "/search",
            "body": {"intersects": polygon, "limit": 10},
            "ring": ring,
            "limit": 10,
        })

        platform = ["dji-matrice-350-rtk", "dji-mavic-3-enterprise", "wingtra-one-gen-ii", "sensefly-ebee-x"][index % 4]
        threshold = round(rng.uniform(0.02, 0.045), 3)
        text = f"platform = '{platform}' AND gsd < {threshold}"
        queries["cql2"].append({
            "method": "GET",
            "path": search_path([("filter-lang", "cql2-text"), ("filter", text), ("limit", "10")]),
            "platform": platform,
            "gsd_below": threshold,
            "limit": 10,
        })

    walks = [None] + collections
    for collection in walks:
        params = [("collections", collection)] if collection else []
        queries["page_1"].append({
            "method": "GET",
            "path": search_path(params + [("limit", str(WALK_PAGE_SIZE))]),
            "collection": collection,
            "limit": WALK_PAGE_SIZE,
        })
        queries["limit_1000"].append({
            "method": "GET",
            "path": search_path(params + [("limit", "1000")]),
            "collection": collection,
            "limit": 1000,
        })
    queries["collections"].append({"method": "GET", "path": "/collections"})

    # Checks with full paging use a page size of 100 to need fewer requests.
    checks = {
        "item": queries["item"][:5],
        "bbox_small": [dict(q, path=q["path"]) for q in queries["bbox_small"][:CHECKED_PER_SCENARIO]],
        "bbox_month": [dict(q, path=q["path"].replace("limit=10", "limit=100"), limit=100)
                       for q in queries["bbox_month"][:CHECKED_PER_SCENARIO]],
        "intersects": [dict(q, body=dict(q["body"], limit=100), limit=100)
                       for q in queries["intersects"][:CHECKED_PER_SCENARIO]],
        "antimeridian": [],
        "cql2": [],
        "walk": queries["page_1"],
        "limit_1000": queries["limit_1000"][:3],
    }
    am_box = [179.95, -16.95, -179.95, -16.75]
    checks["antimeridian"].append({
        "method": "GET",
        "path": search_path([("bbox", ",".join(map(str, am_box))), ("limit", "100")]),
        "bbox": am_box,
        "limit": 100,
    })
    for collection, platform in ((collections[0], "wingtra-one-gen-ii"), (collections[-1], "sensefly-ebee-x")):
        text = f"platform = '{platform}' AND gsd < 0.0165"
        checks["cql2"].append({
            "method": "GET",
            "path": search_path([("collections", collection), ("filter-lang", "cql2-text"), ("filter", text),
                                 ("limit", "100")]),
            "collection": collection,
            "platform": platform,
            "gsd_below": 0.0165,
            "limit": 100,
        })

    expected = match_all(items_path, queries, checks)
    return {
        "version": SCENARIO_VERSION,
        "seed": seed,
        "items": manifest["items"],
        "collections": collections,
        "items_per_collection": counts,
        "requests": queries,
        "checks": checks,
        "expected": expected,
    }


def spatial_tests(queries: dict[str, list[dict]], checks: dict[str, list[dict]]):
    """Yield (name, index, polygons, query) for every query with a spatial filter."""
    for source, prefix in ((queries, "q"), (checks, "c")):
        for scenario in ("bbox_small", "bbox_month", "intersects", "antimeridian"):
            for index, query in enumerate(source.get(scenario, [])):
                if "ring" in query:
                    polygons = [query["ring"]]
                else:
                    polygons = geometry.bbox_polygons(query["bbox"])
                yield f"{prefix}:{scenario}", index, polygons, query


def match_all(items_path: Path, queries: dict[str, list[dict]], checks: dict[str, list[dict]]) -> dict:
    """Second pass: for every query, the count and the first items in order; for checked ones, every id."""
    grid: dict[tuple[int, int], list[tuple[str, int, list, dict]]] = {}
    tests = list(spatial_tests(queries, checks))
    results: dict[str, list[OrderedMatches]] = {}
    full: dict[str, list[list[str]]] = {}
    for name, index, polygons, query in tests:
        # Checked queries are read to the end, so their whole order is kept.
        keep = 10_000_000 if name.startswith("c:") else query.get("limit", 10)
        results.setdefault(name, []).append(OrderedMatches(keep=keep))
        full.setdefault(name, []).append([])
        for ring in polygons:
            west, south, east, north = geometry.envelope(ring)
            for cx in range(math.floor(west / CELL), math.floor(east / CELL) + 1):
                for cy in range(math.floor(south / CELL), math.floor(north / CELL) + 1):
                    grid.setdefault((cx, cy), []).append((name, index, polygons, query))

    walk_results = [OrderedMatches(keep=WALK_PAGE_SIZE * WALK_PAGES) for _ in checks["walk"]]
    limit_results = [OrderedMatches(keep=1000) for _ in queries["limit_1000"]]
    cql2_counts = [0 for _ in queries["cql2"]]
    cql2_first = [OrderedMatches(keep=10) for _ in queries["cql2"]]
    cql2_checks = [[] for _ in checks["cql2"]]
    collection_ids: set[str] = set()

    for item in iter_items(items_path):
        row = (sort_time(item), item["collection"], item["id"])
        collection_ids.add(item["collection"])
        polygons = None
        candidates = {}
        for ring in geometry.polygons_of(item["geometry"]):
            west, south, east, north = geometry.envelope(ring)
            for cx in range(math.floor(west / CELL), math.floor(east / CELL) + 1):
                for cy in range(math.floor(south / CELL), math.floor(north / CELL) + 1):
                    for entry in grid.get((cx, cy), ()):
                        candidates[(entry[0], entry[1])] = entry
        if candidates:
            polygons = geometry.polygons_of(item["geometry"])
            start, end = span(item)
        for (name, index), (_, _, query_polygons, query) in candidates.items():
            if "datetime" in query:
                low, high = query["datetime"]
                if start > high or end < low:
                    continue
            if geometry.intersects(polygons, query_polygons):
                results[name][index].add(row)
                if name.startswith("c:"):
                    full[name][index].append(item["id"])

        for index, walk in enumerate(checks["walk"]):
            if walk["collection"] in (None, item["collection"]):
                walk_results[index].add(row)
        for index, query in enumerate(queries["limit_1000"]):
            if query["collection"] in (None, item["collection"]):
                limit_results[index].add(row)
        properties = item["properties"]
        for index, query in enumerate(queries["cql2"]):
            if properties["platform"] == query["platform"] and properties["gsd"] < query["gsd_below"]:
                cql2_counts[index] += 1
                cql2_first[index].add(row)
        for index, query in enumerate(checks["cql2"]):
            if (item["collection"] == query["collection"] and properties["platform"] == query["platform"]
                    and properties["gsd"] < query["gsd_below"]):
                cql2_checks[index].append(item["id"])

    expected: dict = {}
    for name, per_query in results.items():
        expected[name] = [
            {"count": m.count, "first": [list(r) for r in m.first()],
             **({"ids": sorted(full[name][i])} if name.startswith("c:") else {})}
            for i, m in enumerate(per_query)
        ]
    expected["walk"] = [{"count": m.count, "first": [list(r) for r in m.first()]} for m in walk_results]
    expected["limit_1000"] = [{"count": m.count, "first": [list(r) for r in m.first()]} for m in limit_results]
    expected["cql2"] = [{"count": c, "first": [list(r) for r in m.first()]} for c, m in zip(cql2_counts, cql2_first)]
    expected["c:cql2"] = [{"count": len(ids), "ids": sorted(ids)} for ids in cql2_checks]
    expected["collections"] = sorted(collection_ids)
    return expected


def load_or_build(data_dir: Path, seed: int, log) -> dict:
    path = data_dir / f"scenarios-v{SCENARIO_VERSION}.json"
    if path.exists():
        return json.loads(path.read_text())
    log(f"computing the benchmark queries and their expected answers from {data_dir / 'items.ndjson'}")
    scenarios = build(data_dir, seed)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(scenarios))
    partial.replace(path)
    return scenarios
