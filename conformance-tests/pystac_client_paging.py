"""Check paging and searches of a STAC API with pystac-client.

Usage: python pystac_client_paging.py ROOT_URL STAC_DATA_DIR

STAC_DATA_DIR must contain naip/items.ndjson and joplin/items.ndjson, and the
server at ROOT_URL must serve exactly those items, plus the collection
validator-scratch. Every search follows the server's "next" links through all
pages, with GET and POST separately. The returned item ids are compared with
ids computed from the files. For bbox and intersects, shapely computes them
when it can be imported, otherwise the small planar geometry functions below.

Prints one line per check and a closing line 'N passed, N failed'. Exit status
1 if any check failed.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from pystac_client import Client

try:
    from shapely.geometry import box as shapely_box
    from shapely.geometry import shape as shapely_shape
except ImportError:
    shapely_box = None
    shapely_shape = None

Position = tuple[float, float]
Ring = list[Position]

SEARCH_BBOX = [-86.0, 30.6, -85.6, 31.0]
JOPLIN_POINT = {"type": "Point", "coordinates": [-94.67, 37.045]}
YEAR_2021 = "2021-01-01T00:00:00Z/2021-12-31T23:59:59Z"
EXPECTED_COLLECTIONS = {"naip", "joplin", "validator-scratch"}
METHODS = ("GET", "POST")


# --- expected ids from the data files ----------------------------------------------


def load_items(data_dir: Path, collection: str) -> list[dict]:
    path = data_dir / collection / "items.ndjson"
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def item_interval(item: dict) -> tuple[datetime, datetime]:
    """Return the item's time as an interval: an instant, or start_datetime to end_datetime."""
    properties = item["properties"]
    if properties.get("datetime"):
        instant = parse_datetime(properties["datetime"])
        return instant, instant
    return parse_datetime(properties["start_datetime"]), parse_datetime(properties["end_datetime"])


def overlaps_interval(item: dict, interval: str) -> bool:
    """Return True if the item's time overlaps the closed interval 'START/END' (both ends given)."""
    start_text, end_text = interval.split("/")
    item_start, item_end = item_interval(item)
    return item_start <= parse_datetime(end_text) and item_end >= parse_datetime(start_text)


def polygons_of(geometry: dict) -> list[list[Ring]]:
    """Return the polygons of a Polygon or MultiPolygon, each a list of rings (exterior first)."""
    if geometry["type"] == "Polygon":
        polygons = [geometry["coordinates"]]
    elif geometry["type"] == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        raise ValueError(f"item geometry type {geometry['type']} is not supported without shapely")
    return [[[(p[0], p[1]) for p in ring] for ring in polygon] for polygon in polygons]


def on_segment(point: Position, a: Position, b: Position) -> bool:
    cross = (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0])
    if abs(cross) > 1e-12:
        return False
    return (min(a[0], b[0]) - 1e-12 <= point[0] <= max(a[0], b[0]) + 1e-12
            and min(a[1], b[1]) - 1e-12 <= point[1] <= max(a[1], b[1]) + 1e-12)


def inside_ring(point: Position, ring: Ring) -> bool:
    """Return True if the point is strictly inside the closed ring (ray casting)."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def on_ring(point: Position, ring: Ring) -> bool:
    return any(on_segment(point, a, b) for a, b in zip(ring, ring[1:]))


def polygon_contains_point(polygon: list[Ring], point: Position) -> bool:
    """Return True if the point is in the polygon's interior or on its boundary (holes excluded)."""
    exterior, holes = polygon[0], polygon[1:]
    if on_ring(point, exterior) or any(on_ring(point, hole) for hole in holes):
        return True
    return inside_ring(point, exterior) and not any(inside_ring(point, hole) for hole in holes)


def orientation(a: Position, b: Position, c: Position) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def segments_intersect(p1: Position, p2: Position, q1: Position, q2: Position) -> bool:
    d1, d2 = orientation(q1, q2, p1), orientation(q1, q2, p2)
    d3, d4 = orientation(p1, p2, q1), orientation(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0) and d1 != 0 and d2 != 0) and ((d3 > 0) != (d4 > 0) and d3 != 0 and d4 != 0):
        return True
    return on_segment(p1, q1, q2) or on_segment(p2, q1, q2) or on_segment(q1, p1, p2) or on_segment(q2, p1, p2)


def polygon_intersects_polygon(a: list[Ring], b: list[Ring]) -> bool:
    """Return True if two polygons intersect in the plane, boundaries included."""
    edges_a = [edge for ring in a for edge in zip(ring, ring[1:])]
    edges_b = [edge for ring in b for edge in zip(ring, ring[1:])]
    if any(segments_intersect(p1, p2, q1, q2) for p1, p2 in edges_a for q1, q2 in edges_b):
        return True
    # With no crossing edges, the polygons intersect only if one lies inside the other.
    return polygon_contains_point(b, a[0][0]) or polygon_contains_point(a, b[0][0])


def geometry_intersects_bbox(geometry: dict, bbox: list[float]) -> bool:
    if shapely_shape is not None:
        return shapely_shape(geometry).intersects(shapely_box(*bbox))
    west, south, east, north = bbox
    box_polygon = [[(west, south), (east, south), (east, north), (west, north), (west, south)]]
    return any(polygon_intersects_polygon(polygon, box_polygon) for polygon in polygons_of(geometry))


def geometry_intersects_point(geometry: dict, point: dict) -> bool:
    if shapely_shape is not None:
        return shapely_shape(geometry).intersects(shapely_shape(point))
    position = (point["coordinates"][0], point["coordinates"][1])
    return any(polygon_contains_point(polygon, position) for polygon in polygons_of(geometry))


# --- running the checks ------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def report(self, name: str, problems: list[str], detail: str) -> None:
        if problems:
            self.failed += 1
            print(f"FAIL  {name}: {'; '.join(problems)} ({detail})", flush=True)
        else:
            self.passed += 1
            print(f"PASS  {name}: {detail}", flush=True)

    def run(self, name: str, check: Callable[[], tuple[list[str], str]]) -> None:
        """Run one check, which returns its problems and a detail line.

        An exception (an HTTP error, an invalid response) fails this check only,
        so the remaining checks still run.
        """
        try:
            problems, detail = check()
        except Exception as error:  # noqa: BLE001 - any error fails this check and the run goes on.
            problems, detail = [f"{type(error).__name__}: {error}"], "raised"
        self.report(name, problems, detail)


def compare_ids(returned: list[str], expected: set[str]) -> list[str]:
    problems = []
    duplicates = len(returned) - len(set(returned))
    if duplicates:
        problems.append(f"{duplicates} duplicate ids across pages")
    missing = expected - set(returned)
    unexpected = set(returned) - expected
    if missing:
        problems.append(f"{len(missing)} expected ids missing, e.g. {sorted(missing)[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ids, e.g. {sorted(unexpected)[:3]}")
    return problems


def search_check(
    client: Client,
    expected: set[str],
    limit: int,
    collections: Iterable[str] | None = None,
    **parameters,
) -> Callable[[], tuple[list[str], str]]:
    """Build a check that pages through a search and compares the returned ids with `expected`.

    Each page must hold at most `limit` items. The number of pages must be what
    `limit` implies, with at most one extra (empty) page at the end. Paging stops
    with a failure after twice that number, in case the server keeps returning
    "next" links.
    """
    wanted_collections = set(collections) if collections else None

    def check() -> tuple[list[str], str]:
        search = client.search(
            collections=list(wanted_collections) if wanted_collections else None, limit=limit, **parameters
        )
        min_pages = max(1, math.ceil(len(expected) / limit))

        ids: list[str] = []
        pages = 0
        oversized_pages = 0
        wrong_collection = 0
        problems: list[str] = []
        for page in search.pages_as_dicts():
            pages += 1
            features = page.get("features", [])
            if len(features) > limit:
                oversized_pages += 1
            for feature in features:
                ids.append(feature["id"])
                if wanted_collections and feature.get("collection") not in wanted_collections:
                    wrong_collection += 1
            if pages >= 2 * min_pages + 2:
                problems.append(f"paging did not end after {pages} pages")
                break

        problems += compare_ids(ids, expected)
        if oversized_pages:
            problems.append(f"{oversized_pages} pages hold more than limit={limit} items")
        if wrong_collection:
            problems.append(f"{wrong_collection} items from collections other than {sorted(wanted_collections)}")
        if pages < min_pages:
            problems.append(f"{pages} pages, expected at least {min_pages} for limit={limit}")
        elif pages > min_pages + 1:
            problems.append(f"{pages} pages, expected {min_pages} (or one more, empty) for limit={limit}")
        return problems, f"{len(ids)} ids in {pages} pages, expected {len(expected)} ids"

    return check


def collections_check(client: Client) -> Callable[[], tuple[list[str], str]]:
    def check() -> tuple[list[str], str]:
        ids = [collection.id for collection in client.get_collections()]
        problems = []
        missing = EXPECTED_COLLECTIONS - set(ids)
        if missing:
            problems.append(f"missing collections {sorted(missing)}")
        if len(ids) != len(set(ids)):
            problems.append("a collection is listed twice")
        return problems, f"collections {sorted(ids)}"

    return check


def collection_items_check(client: Client, collection_id: str, expected: set[str]) -> Callable[[], tuple[list[str], str]]:
    def check() -> tuple[list[str], str]:
        ids = [item.id for item in client.get_collection(collection_id).get_items()]
        return compare_ids(ids, expected), f"{len(ids)} items, expected {len(expected)}"

    return check


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: pystac_client_paging.py ROOT_URL STAC_DATA_DIR", file=sys.stderr)
        return 2
    root_url = sys.argv[1]
    data_dir = Path(sys.argv[2])

    naip = load_items(data_dir, "naip")
    joplin = load_items(data_dir, "joplin")
    every_item = naip + joplin
    naip_ids = {item["id"] for item in naip}
    joplin_ids = {item["id"] for item in joplin}
    geometry_library = "shapely" if shapely_shape is not None else "built-in planar functions"
    print(f"data: {len(naip)} naip items, {len(joplin)} joplin items; bbox and intersects expected ids from "
          f"{geometry_library}", flush=True)

    checks = Checks()
    try:
        client = Client.open(root_url)
    except Exception as error:  # noqa: BLE001 - report any failure to open the catalog as a failed check.
        checks.report("open the catalog", [f"{type(error).__name__}: {error}"], root_url)
        print(f"{checks.passed} passed, {checks.failed} failed")
        return 1

    in_bbox = {item["id"] for item in every_item if geometry_intersects_bbox(item["geometry"], SEARCH_BBOX)}
    naip_2021 = {item["id"] for item in naip if overlaps_interval(item, YEAR_2021)}
    at_point = {item["id"] for item in every_item if geometry_intersects_point(item["geometry"], JOPLIN_POINT)}
    naip_sorted = sorted(naip_ids)
    joplin_sorted = sorted(joplin_ids)
    picked_ids = {naip_sorted[0], naip_sorted[len(naip_sorted) // 2], naip_sorted[-1], joplin_sorted[0], joplin_sorted[-1]}

    for method in METHODS:
        checks.run(f"naip all, {method}, limit=7",
                   search_check(client, naip_ids, 7, ["naip"], method=method))
    for method in METHODS:
        checks.run(f"joplin all, {method}, limit=10",
                   search_check(client, joplin_ids, 10, ["joplin"], method=method))
    for method in METHODS:
        checks.run(f"bbox {SEARCH_BBOX}, {method}, limit=50",
                   search_check(client, in_bbox, 50, bbox=SEARCH_BBOX, method=method))
    for method in METHODS:
        checks.run(f"naip datetime {YEAR_2021}, {method}, limit=100",
                   search_check(client, naip_2021, 100, ["naip"], datetime=YEAR_2021, method=method))
    for method in METHODS:
        # An id that matches no item must be ignored, not fail the search.
        checks.run(f"ids (5 items and an unknown id), {method}",
                   search_check(client, picked_ids, 10, ids=sorted(picked_ids) + ["no-such-item"], method=method))
    for method in METHODS:
        checks.run(f"intersects point {JOPLIN_POINT['coordinates']}, {method}",
                   search_check(client, at_point, 10, intersects=JOPLIN_POINT, method=method))
    checks.run("get_collections lists naip, joplin, validator-scratch", collections_check(client))
    checks.run("get_collection('joplin').get_items()", collection_items_check(client, "joplin", joplin_ids))

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
