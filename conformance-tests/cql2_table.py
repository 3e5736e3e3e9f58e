"""Check the STAC API Filter extension (CQL2) of a STAC API against a table of cases.

Usage: python cql2_table.py ROOT_URL STAC_DATA_DIR
       python cql2_table.py --self-check STAC_DATA_DIR

STAC_DATA_DIR must contain naip/items.ndjson and joplin/items.ndjson, and the
server at ROOT_URL must serve exactly those items (other collections may exist:
every request names naip and/or joplin). Each case has a cql2-text string, the
equivalent cql2-json object and a Python predicate that computes the expected
item ids from the files, with shapely for the spatial relations. Each case is
sent four ways, following "next" links with limit=100:

  get-text    GET /search?filter=TEXT&filter-lang=cql2-text&collections=...
  post-json   POST /search {"filter": JSON, "filter-lang": "cql2-json", ...}
  items-text  GET /collections/{id}/items?filter=TEXT&filter-lang=cql2-text, per collection
  post-text   POST /search {"filter": TEXT, "filter-lang": "cql2-text", ...}

Error cases expect HTTP 400 with a JSON body that has "code" and "description".
SQL injection cases accept a 400 error or the exact expected ids, each request
within INJECTION_SECONDS, and the collection sizes must be unchanged afterwards.

--self-check needs no server. It parses each cql2-text string with the small
parser below and compares the result with the cql2-json object. It evaluates
the cql2-json object with a second, generic evaluator and compares those ids
with the predicate's. It prints the size of every expected set.

Prints one PASS or FAIL line per case and way and a closing line
'N passed, N failed'. Exit status 0 only if every check passed.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from shapely.geometry import box as shapely_box
from shapely.geometry import shape as shapely_shape

COLLECTIONS = ("naip", "joplin")
PAGE_LIMIT = 100
MAX_PAGES = 200
REQUEST_TIMEOUT_SECONDS = 60
# A filter that smuggled pg_sleep(5) into SQL would take at least 5 s.
INJECTION_SECONDS = 4.0
WAYS = ("get-text", "post-json", "items-text", "post-text")
TEXT_WAYS = ("get-text", "items-text", "post-text")
JSON_WAYS = ("post-json",)

NS_PER_SECOND = 1_000_000_000
# The cql2 crate (0.6.0, src/temporal.rs) ends DATE('d') one nanosecond before the next day.
DAY_NS = 86_400 * NS_PER_SECOND
MINUS_INFINITY = -math.inf
PLUS_INFINITY = math.inf

Item = dict[str, Any]
Key = tuple[str, str]  # (collection, item id)


# --- data ----------------------------------------------------------------------------


def load_items(data_dir: Path, collection: str) -> list[Item]:
    path = data_dir / collection / "items.ndjson"
    with path.open(encoding="utf-8") as lines:
        items = [json.loads(line) for line in lines if line.strip()]
    for item in items:
        item.setdefault("collection", collection)
    return items


def to_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp or a date (midnight UTC) into nanoseconds since the epoch."""
    text = text.strip().replace(" ", "T")
    if len(text) == 10:
        text += "T00:00:00Z"
    match = re.fullmatch(r"(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text)
    if not match:
        raise ValueError(f"invalid timestamp: {text!r}")
    whole, fraction, zone = match.groups()
    parsed = datetime.fromisoformat(whole + (zone or "Z").replace("Z", "+00:00"))
    seconds = int(parsed.astimezone(timezone.utc).timestamp())
    nanos = int((fraction or "").ljust(9, "0")[:9])
    return seconds * NS_PER_SECOND + nanos


class Data:
    """The items of the tested collections, with their shapely geometries and time intervals."""

    def __init__(self, data_dir: Path) -> None:
        self.items: list[Item] = []
        for collection in COLLECTIONS:
            self.items.extend(load_items(data_dir, collection))
        self._shapes = {key(item): shapely_shape(item["geometry"]) for item in self.items}
        self.names: dict[str, set[str]] = {c: {"id", "collection", "geometry"} for c in COLLECTIONS}
        for item in self.items:
            self.names[item["collection"]].update(item.get("properties", {}))

    def of(self, collection: str) -> list[Item]:
        return [item for item in self.items if item["collection"] == collection]

    def shape(self, item: Item):
        return self._shapes[key(item)]


def referenced_properties(node: Any) -> set[str]:
    """Return the property names that a cql2-json filter refers to."""
    if isinstance(node, list):
        return set().union(*(referenced_properties(element) for element in node))
    if not isinstance(node, dict):
        return set()
    if isinstance(node.get("property"), str):
        return {node["property"]}
    return set().union(*(referenced_properties(member) for member in node.values()))


def key(item: Item) -> Key:
    return (item["collection"], item["id"])


MISSING = object()


def value(item: Item, name: str) -> Any:
    """Return a queryable's value as the API names it, or MISSING when the item has none."""
    if name in ("id", "collection", "geometry"):
        return item.get(name, MISSING)
    return item.get("properties", {}).get(name, MISSING)


def has(item: Item, name: str) -> bool:
    return value(item, name) not in (MISSING, None)


def interval_of(item: Item) -> tuple[int, int]:
    """Return the item's time: [start_datetime, end_datetime] when it has both, else [datetime, datetime]."""
    properties = item["properties"]
    if properties.get("start_datetime") and properties.get("end_datetime"):
        return to_ns(properties["start_datetime"]), to_ns(properties["end_datetime"])
    instant = to_ns(properties["datetime"])
    return instant, instant


def like_regex(pattern: str) -> re.Pattern:
    """Translate a case-sensitive LIKE pattern ('%' any run, '_' one character) into a regex."""
    parts = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def like(text: Any, pattern: str) -> bool:
    return isinstance(text, str) and like_regex(pattern).fullmatch(text) is not None


# --- literals: cql2-text, cql2-json and the Python value of each ---------------------


@dataclass(frozen=True)
class TimeLiteral:
    text: str
    json: dict
    start: float
    end: float


def timestamp(text: str) -> TimeLiteral:
    instant = to_ns(text)
    return TimeLiteral(f"TIMESTAMP('{text}')", {"timestamp": text}, instant, instant)


def date(text: str) -> TimeLiteral:
    start = to_ns(text)
    return TimeLiteral(f"DATE('{text}')", {"date": text}, start, start + DAY_NS - 1)


def interval(start: str, end: str) -> TimeLiteral:
    """INTERVAL('start', 'end'), where '..' is an open end."""
    return TimeLiteral(
        f"INTERVAL('{start}', '{end}')",
        {"interval": [start, end]},
        MINUS_INFINITY if start == ".." else to_ns(start),
        PLUS_INFINITY if end == ".." else to_ns(end),
    )


@dataclass(frozen=True)
class GeometryLiteral:
    text: str
    json: dict
    shape: Any


def number_text(number: float) -> str:
    return repr(number) if isinstance(number, float) else str(number)


def wkt_position(position: list) -> str:
    return " ".join(number_text(n) for n in position)


def wkt_positions(positions: list) -> str:
    return "(" + ", ".join(wkt_position(p) for p in positions) + ")"


def wkt(geojson: dict) -> str:
    """Write a GeoJSON geometry as WKT, with the same numbers, as cql2-text needs it."""
    kind, coordinates = geojson["type"], geojson["coordinates"]
    if kind == "Point":
        body = "(" + wkt_position(coordinates) + ")"
    elif kind in ("LineString", "MultiPoint"):
        body = wkt_positions(coordinates)
    elif kind in ("Polygon", "MultiLineString"):
        body = "(" + ", ".join(wkt_positions(ring) for ring in coordinates) + ")"
    elif kind == "MultiPolygon":
        polygons = ("(" + ", ".join(wkt_positions(r) for r in polygon) + ")" for polygon in coordinates)
        body = "(" + ", ".join(polygons) + ")"
    else:
        raise ValueError(f"geometry type {kind} is not supported")
    return kind.upper() + body


def geometry(geojson: dict) -> GeometryLiteral:
    return GeometryLiteral(wkt(geojson), geojson, shapely_shape(geojson))


def point(x: float, y: float) -> GeometryLiteral:
    return geometry({"type": "Point", "coordinates": [x, y]})


def polygon(*positions: tuple[float, float]) -> GeometryLiteral:
    ring = [list(p) for p in positions]
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return geometry({"type": "Polygon", "coordinates": [ring]})


def bbox(minx: float, miny: float, maxx: float, maxy: float) -> GeometryLiteral:
    numbers = [minx, miny, maxx, maxy]
    text = "BBOX(" + ", ".join(number_text(n) for n in numbers) + ")"
    return GeometryLiteral(text, {"bbox": numbers}, shapely_box(minx, miny, maxx, maxy))


def prop(name: str) -> dict:
    return {"property": name}


def op(name: str, *args: Any) -> dict:
    return {"op": name, "args": list(args)}


def quote(text: str) -> str:
    """Write a cql2-text string literal, doubling single quotes."""
    return "'" + text.replace("'", "''") + "'"


# --- the table -----------------------------------------------------------------------


@dataclass
class Case:
    """One filter, the expected ids, and the response the server must send.

    kind is "match" (200 with exactly the expected ids), "error" (400 with a
    JSON error body), or "injection" (400 with a JSON error body, or 200 with
    exactly the expected ids, each request within INJECTION_SECONDS).
    """

    name: str
    text: str | None
    json: Any
    predicate: Callable[[Item], bool] | None = None
    collections: tuple[str, ...] = COLLECTIONS
    kind: str = "match"
    max_seconds: float | None = None
    ways: tuple[str, ...] = field(default=WAYS)

    def __post_init__(self) -> None:
        if self.text is None:
            self.ways = tuple(w for w in self.ways if w in JSON_WAYS)
        if self.json is None:
            self.ways = tuple(w for w in self.ways if w in TEXT_WAYS)


def expected_keys(case: Case, data: Data) -> set[Key]:
    items = [item for item in data.items if item["collection"] in case.collections]
    return {key(item) for item in items if case.predicate(item)}


def never(_item: Item) -> bool:
    return False


def build_cases(data: Data) -> list[Case]:
    cases: list[Case] = []
    cases += basic_cases(data)
    cases += advanced_comparison_cases(data)
    cases += spatial_cases(data)
    cases += temporal_cases()
    cases += array_cases()
    cases += property_and_arithmetic_cases()
    cases += error_cases()
    cases += injection_cases(data)
    return cases


def num(item: Item, name: str) -> float | None:
    """Return a numeric property, or None when the item lacks it."""
    found = value(item, name)
    return found if isinstance(found, (int, float)) and not isinstance(found, bool) else None


def text_of(item: Item, name: str) -> str | None:
    found = value(item, name)
    return found if isinstance(found, str) else None


def instant(item: Item) -> int:
    return to_ns(item["properties"]["datetime"])


def basic_cases(data: Data) -> list[Case]:
    first_naip = data.of("naip")[0]["id"]
    first_joplin = data.of("joplin")[0]["id"]
    year = lambda item: text_of(item, "naip:year")  # noqa: E731
    gsd = lambda item: num(item, "gsd")  # noqa: E731
    ts_2021 = timestamp("2021-11-13T16:00:00Z")
    ts_2011 = timestamp("2011-08-16T00:00:00Z")
    ts_2019 = timestamp("2019-11-15T00:00:00Z")
    return [
        Case("basic/eq-number", "gsd = 0.6", op("=", prop("gsd"), 0.6), lambda i: gsd(i) == 0.6),
        Case("basic/ne-number", "gsd <> 1", op("<>", prop("gsd"), 1), lambda i: gsd(i) != 1),
        Case("basic/lt-number", "gsd < 0.6", op("<", prop("gsd"), 0.6), lambda i: gsd(i) < 0.6),
        Case("basic/le-number", "gsd <= 0.6", op("<=", prop("gsd"), 0.6), lambda i: gsd(i) <= 0.6),
        Case("basic/gt-number", "gsd > 0.6", op(">", prop("gsd"), 0.6), lambda i: gsd(i) > 0.6),
        Case("basic/ge-number", "gsd >= 0.6", op(">=", prop("gsd"), 0.6), lambda i: gsd(i) >= 0.6),
        Case(
            "basic/eq-integer",
            "proj:epsg = 3857",
            op("=", prop("proj:epsg"), 3857),
            lambda i: num(i, "proj:epsg") == 3857,
        ),
        Case(
            "basic/eq-string",
            "naip:year = '2015'",
            op("=", prop("naip:year"), "2015"),
            lambda i: year(i) == "2015",
        ),
        # Joplin items have no naip:year, so the comparison is NULL there and does not match.
        Case(
            "basic/ne-string",
            "naip:year <> '2015'",
            op("<>", prop("naip:year"), "2015"),
            lambda i: year(i) is not None and year(i) != "2015",
        ),
        Case(
            "basic/lt-string",
            "naip:year < '2015'",
            op("<", prop("naip:year"), "2015"),
            lambda i: year(i) is not None and year(i) < "2015",
        ),
        Case(
            "basic/le-string",
            "naip:year <= '2015'",
            op("<=", prop("naip:year"), "2015"),
            lambda i: year(i) is not None and year(i) <= "2015",
        ),
        Case(
            "basic/gt-string",
            "naip:year > '2019'",
            op(">", prop("naip:year"), "2019"),
            lambda i: year(i) is not None and year(i) > "2019",
        ),
        Case(
            "basic/ge-string",
            "naip:year >= '2019'",
            op(">=", prop("naip:year"), "2019"),
            lambda i: year(i) is not None and year(i) >= "2019",
        ),
        Case(
            "basic/eq-id",
            f"id = '{first_naip}'",
            op("=", prop("id"), first_naip),
            lambda i: i["id"] == first_naip,
        ),
        Case(
            "basic/eq-collection",
            "collection = 'joplin'",
            op("=", prop("collection"), "joplin"),
            lambda i: i["collection"] == "joplin",
        ),
        Case(
            "basic/ge-timestamp",
            f"datetime >= {ts_2021.text}",
            op(">=", prop("datetime"), ts_2021.json),
            lambda i: instant(i) >= ts_2021.start,
        ),
        Case(
            "basic/lt-timestamp",
            f"datetime < {ts_2011.text}",
            op("<", prop("datetime"), ts_2011.json),
            lambda i: instant(i) < ts_2011.start,
        ),
        Case(
            "basic/and",
            "gsd = 0.6 AND naip:year = '2019'",
            op("and", op("=", prop("gsd"), 0.6), op("=", prop("naip:year"), "2019")),
            lambda i: gsd(i) == 0.6 and year(i) == "2019",
        ),
        Case(
            "basic/or",
            "naip:year = '2011' OR collection = 'joplin'",
            op("or", op("=", prop("naip:year"), "2011"), op("=", prop("collection"), "joplin")),
            lambda i: year(i) == "2011" or i["collection"] == "joplin",
        ),
        Case(
            "basic/not",
            "NOT (gsd = 1)",
            op("not", op("=", prop("gsd"), 1)),
            lambda i: not gsd(i) == 1,
        ),
        # With three-valued logic, NOT NULL is NULL, so joplin items (no naip:year) do not match.
        Case(
            "basic/not-missing-property",
            "NOT (naip:year = '2011')",
            op("not", op("=", prop("naip:year"), "2011")),
            lambda i: year(i) is not None and year(i) != "2011",
        ),
        Case(
            "basic/nested-logic",
            f"(naip:year = '2011' OR naip:year = '2023' OR id = '{first_joplin}') "
            f"AND NOT (gsd < 0.5 OR datetime > {ts_2019.text})",
            op(
                "and",
                op(
                    "or",
                    op("=", prop("naip:year"), "2011"),
                    op("=", prop("naip:year"), "2023"),
                    op("=", prop("id"), first_joplin),
                ),
                op("not", op("or", op("<", prop("gsd"), 0.5), op(">", prop("datetime"), ts_2019.json))),
            ),
            lambda i: (year(i) in ("2011", "2023") or i["id"] == first_joplin)
            and not (gsd(i) < 0.5 or instant(i) > ts_2019.start),
        ),
        Case(
            "basic/is-null",
            "providers IS NULL",
            op("isNull", prop("providers")),
            lambda i: not has(i, "providers"),
        ),
        # IS NULL applies to any property, also to proj:centroid, a JSON object on some NAIP items.
        Case(
            "basic/is-null-object-property",
            "proj:centroid IS NULL",
            op("isNull", prop("proj:centroid")),
            lambda i: not has(i, "proj:centroid"),
        ),
        Case(
            "basic/is-null-other-collection",
            "naip:year IS NULL",
            op("isNull", prop("naip:year")),
            lambda i: not has(i, "naip:year"),
        ),
        Case(
            "basic/is-not-null",
            "providers IS NOT NULL",
            op("not", op("isNull", prop("providers"))),
            lambda i: has(i, "providers"),
        ),
    ]


def advanced_comparison_cases(data: Data) -> list[Case]:
    ids = [item["id"] for item in data.items]
    picked = [ids[3], ids[500], ids[-1]]
    year = lambda item: text_of(item, "naip:year")  # noqa: E731
    gsd = lambda item: num(item, "gsd")  # noqa: E731
    return [
        Case(
            "like/prefix",
            "id LIKE 'al_m_3008501%'",
            op("like", prop("id"), "al_m_3008501%"),
            lambda i: like(i["id"], "al_m_3008501%"),
        ),
        Case(
            "like/suffix",
            "id LIKE '%_20211103'",
            op("like", prop("id"), "%_20211103"),
            lambda i: like(i["id"], "%_20211103"),
        ),
        Case(
            "like/single-character",
            "naip:year LIKE '20_1'",
            op("like", prop("naip:year"), "20_1"),
            lambda i: like(year(i), "20_1"),
        ),
        # LIKE is case-sensitive, and every NAIP id starts with a lower-case "al_m_".
        Case(
            "like/case-sensitive",
            "id LIKE 'AL_M_%'",
            op("like", prop("id"), "AL_M_%"),
            lambda i: like(i["id"], "AL_M_%"),
        ),
        Case(
            "like/not-like",
            "id NOT LIKE 'al%'",
            op("not", op("like", prop("id"), "al%")),
            lambda i: not like(i["id"], "al%"),
        ),
        Case(
            "between/number",
            "gsd BETWEEN 0.5 AND 0.7",
            op("between", prop("gsd"), 0.5, 0.7),
            lambda i: 0.5 <= gsd(i) <= 0.7,
        ),
        Case(
            "between/integer",
            "proj:epsg BETWEEN 3000 AND 4000",
            op("between", prop("proj:epsg"), 3000, 4000),
            lambda i: 3000 <= num(i, "proj:epsg") <= 4000,
        ),
        Case(
            "between/not-between",
            "gsd NOT BETWEEN 0.5 AND 0.7",
            op("not", op("between", prop("gsd"), 0.5, 0.7)),
            lambda i: not 0.5 <= gsd(i) <= 0.7,
        ),
        Case(
            "in/strings",
            "naip:year IN ('2011', '2023')",
            op("in", prop("naip:year"), ["2011", "2023"]),
            lambda i: year(i) in ("2011", "2023"),
        ),
        Case(
            "in/numbers",
            "gsd IN (0.3, 1)",
            op("in", prop("gsd"), [0.3, 1]),
            lambda i: gsd(i) in (0.3, 1),
        ),
        Case(
            "in/ids",
            "id IN ('no-such-item', " + ", ".join(quote(i) for i in picked) + ")",
            op("in", prop("id"), ["no-such-item", *picked]),
            lambda i: i["id"] in picked,
        ),
        Case(
            "in/not-in",
            "naip:year NOT IN ('2011')",
            op("not", op("in", prop("naip:year"), ["2011"])),
            lambda i: year(i) is not None and year(i) != "2011",
        ),
        Case(
            "casei/eq-property",
            "CASEI(naip:state) = CASEI('AL')",
            op("=", op("casei", prop("naip:state")), op("casei", "AL")),
            lambda i: text_of(i, "naip:state") is not None and text_of(i, "naip:state").lower() == "al",
        ),
        Case(
            "casei/eq-collection",
            "CASEI(collection) = CASEI('JoPLin')",
            op("=", op("casei", prop("collection")), op("casei", "JoPLin")),
            lambda i: i["collection"].lower() == "joplin",
        ),
        Case(
            "casei/like-id",
            "CASEI(id) LIKE CASEI('AL_M_3008501%')",
            op("like", op("casei", prop("id")), op("casei", "AL_M_3008501%")),
            lambda i: like(i["id"].lower(), "al_m_3008501%"),
        ),
    ]


def most_shared_geometry(data: Data) -> tuple[dict, str]:
    """Return the geometry that most items share exactly, and the smallest id among them."""
    groups: dict[str, list[Item]] = {}
    for item in data.items:
        groups.setdefault(json.dumps(item["geometry"], sort_keys=True), []).append(item)
    largest = max(groups.values(), key=lambda group: (len(group), [-ord(c) for c in min(i["id"] for i in group)]))
    first = min(largest, key=lambda item: item["id"])
    return first["geometry"], first["id"]


def spatial_cases(data: Data) -> list[Case]:
    shape = data.shape
    search_box = bbox(-86.0, 30.6, -85.6, 31.0)
    naip_point = point(-85.9, 30.95)
    joplin_point = point(-94.67, 37.045)
    triangle = polygon((-94.7, 37.0), (-94.55, 37.0), (-94.7, 37.09))
    # Seven NAIP footprints contain this 0.002 degree square.
    small_square = polygon((-85.901, 30.949), (-85.899, 30.949), (-85.899, 30.951), (-85.901, 30.951))
    within_box = bbox(-86.2, 30.85, -85.6, 31.1)
    overlap_polygon = polygon((-86.0, 30.9), (-85.5, 30.9), (-85.5, 31.1), (-86.0, 31.1))
    # This polygon lies west of the two joplin footprints whose west edge is at -94.6884155 and
    # shares only that edge with them. It overlaps the footprint to their north-west, which reaches -94.6911621.
    touching = polygon((-94.7, 37.04), (-94.6884155, 37.04), (-94.6884155, 37.09), (-94.7, 37.09))
    # Lies within 7 NAIP footprints and crosses the edges of 12 others.
    line = geometry({"type": "LineString", "coordinates": [[-87.637, 30.878], [-87.627, 30.878]]})
    two_points = geometry({"type": "MultiPoint", "coordinates": [[-85.9, 30.95], [-94.67, 37.045]]})

    shared, shared_id = most_shared_geometry(data)
    same = geometry(shared)
    # The same footprint with its ring reversed and started at another vertex is equal as a point set.
    ring = shared["coordinates"][0][:-1]
    rotated = list(reversed(ring[1:] + ring[:1]))
    same_reordered = geometry({"type": "Polygon", "coordinates": [rotated + [rotated[0]]]})

    def spatial(name: str, function: str, literal: GeometryLiteral, relation: Callable) -> Case:
        return Case(
            f"spatial/{name}",
            f"{function.upper()}(geometry, {literal.text})",
            op(function, prop("geometry"), literal.json),
            lambda i: relation(shape(i), literal.shape),
        )

    return [
        spatial("s-intersects-bbox", "s_intersects", search_box, lambda g, lit: g.intersects(lit)),
        spatial("s-intersects-point", "s_intersects", naip_point, lambda g, lit: g.intersects(lit)),
        spatial("s-intersects-joplin-point", "s_intersects", joplin_point, lambda g, lit: g.intersects(lit)),
        spatial("s-intersects-polygon", "s_intersects", triangle, lambda g, lit: g.intersects(lit)),
        spatial("s-intersects-multipoint", "s_intersects", two_points, lambda g, lit: g.intersects(lit)),
        spatial("s-contains-point", "s_contains", naip_point, lambda g, lit: g.contains(lit)),
        spatial("s-contains-polygon", "s_contains", small_square, lambda g, lit: g.contains(lit)),
        spatial("s-within-bbox", "s_within", within_box, lambda g, lit: g.within(lit)),
        spatial("s-disjoint-bbox", "s_disjoint", search_box, lambda g, lit: g.disjoint(lit)),
        spatial(f"s-equals-{shared_id}", "s_equals", same, lambda g, lit: g.equals(lit)),
        spatial("s-equals-reordered-ring", "s_equals", same_reordered, lambda g, lit: g.equals(lit)),
        spatial("s-overlaps-polygon", "s_overlaps", overlap_polygon, lambda g, lit: g.overlaps(lit)),
        spatial("s-overlaps-triangle", "s_overlaps", triangle, lambda g, lit: g.overlaps(lit)),
        spatial("s-touches-polygon", "s_touches", touching, lambda g, lit: g.touches(lit)),
        spatial("s-intersects-touching-polygon", "s_intersects", touching, lambda g, lit: g.intersects(lit)),
        spatial("s-crosses-linestring", "s_crosses", line, lambda g, lit: g.crosses(lit)),
        spatial("s-intersects-linestring", "s_intersects", line, lambda g, lit: g.intersects(lit)),
    ]


def temporal_cases() -> list[Case]:
    """Cases for every T_ function, with left = the item's interval and right = the literal.

    Every item of the data has an instant, so overlaps, overlappedBy, contains,
    startedBy and finishedBy cannot hold with the item on the left. Those
    relations get an empty case, plus a case with the literal on the left or
    with two literals.
    """

    def item_vs(name: str, function: str, literal: TimeLiteral, relation: Callable) -> Case:
        def predicate(item: Item) -> bool:
            start, end = interval_of(item)
            return relation(start, end, literal.start, literal.end)

        return Case(
            f"temporal/{name}",
            f"{function.upper()}(datetime, {literal.text})",
            op(function, prop("datetime"), literal.json),
            predicate,
        )

    def literal_vs(name: str, function: str, literal: TimeLiteral, relation: Callable) -> Case:
        def predicate(item: Item) -> bool:
            start, end = interval_of(item)
            return relation(literal.start, literal.end, start, end)

        return Case(
            f"temporal/{name}",
            f"{function.upper()}({literal.text}, datetime)",
            op(function, literal.json, prop("datetime")),
            predicate,
        )

    # Allen's relations, each a function of (left start, left end, right start, right end).
    def before(ls, le, rs, re_):
        return le < rs

    def after(ls, le, rs, re_):
        return ls > re_

    def meets(ls, le, rs, re_):
        return le == rs

    def met_by(ls, le, rs, re_):
        return ls == re_

    def overlaps(ls, le, rs, re_):
        return ls < rs < le < re_

    def overlapped_by(ls, le, rs, re_):
        return rs < ls < re_ < le

    def starts(ls, le, rs, re_):
        return ls == rs and le < re_

    def started_by(ls, le, rs, re_):
        return ls == rs and le > re_

    def during(ls, le, rs, re_):
        return ls > rs and le < re_

    def contains(ls, le, rs, re_):
        return ls < rs and le > re_

    def finishes(ls, le, rs, re_):
        return ls > rs and le == re_

    def finished_by(ls, le, rs, re_):
        return ls < rs and le == re_

    def equals(ls, le, rs, re_):
        return ls == rs and le == re_

    def intersects(ls, le, rs, re_):
        return ls <= re_ and le >= rs

    def disjoint(ls, le, rs, re_):
        return not intersects(ls, le, rs, re_)

    early = interval("2015-01-01T00:00:00Z", "2016-01-01T00:00:00Z")
    late = interval("2015-06-01T00:00:00Z", "2017-01-01T00:00:00Z")
    cases = [
        item_vs("t-after-timestamp", "t_after", timestamp("2019-11-15T00:00:00Z"), after),
        item_vs("t-after-open-interval", "t_after", interval("..", "2017-10-24T00:00:00Z"), after),
        item_vs("t-before-date", "t_before", date("2015-08-27"), before),
        item_vs("t-before-open-interval", "t_before", interval("2013-08-06T00:00:00Z", ".."), before),
        item_vs("t-contains-interval", "t_contains", interval("2015-01-01T00:00:00Z", "2016-01-01T00:00:00Z"), contains),
        literal_vs("t-contains-literal-left", "t_contains", interval("2015-01-01T00:00:00Z", "2016-01-01T00:00:00Z"), contains),
        item_vs("t-disjoint-interval", "t_disjoint", interval("2015-01-01T00:00:00Z", "2017-12-31T23:59:59Z"), disjoint),
        item_vs("t-during-interval", "t_during", interval("2015-08-27T00:00:00Z", "2017-10-24T00:00:00Z"), during),
        item_vs("t-during-date", "t_during", date("2021-11-13"), during),
        item_vs("t-equals-timestamp", "t_equals", timestamp("2021-11-03T16:00:00Z"), equals),
        item_vs("t-equals-instant-interval", "t_equals", interval("2019-11-15T00:00:00Z", "2019-11-15T00:00:00Z"), equals),
        item_vs("t-equals-date", "t_equals", date("2015-08-27"), equals),
        item_vs("t-finishedby-interval", "t_finishedBy", interval("..", "2015-08-27T00:00:00Z"), finished_by),
        literal_vs("t-finishedby-literal-left", "t_finishedBy", interval("2015-01-01T00:00:00Z", "2015-08-27T00:00:00Z"), finished_by),
        item_vs("t-finishes-open-interval", "t_finishes", interval("..", "2017-10-24T00:00:00Z"), finishes),
        item_vs("t-finishes-interval", "t_finishes", interval("2017-10-01T00:00:00Z", "2017-10-24T00:00:00Z"), finishes),
        # An instant equals itself, and neither starts nor finishes itself.
        item_vs("t-finishes-timestamp", "t_finishes", timestamp("2017-10-24T00:00:00Z"), finishes),
        item_vs("t-intersects-date", "t_intersects", date("2015-08-27"), intersects),
        item_vs("t-intersects-open-interval", "t_intersects", interval("2023-01-01T00:00:00Z", ".."), intersects),
        item_vs("t-intersects-closed-end", "t_intersects", interval("2013-01-01T00:00:00Z", "2013-08-06T00:00:00Z"), intersects),
        # The bounds are dates. No item falls on 2015-12-31, so reading the end as midnight or as
        # the end of that day gives the same ids.
        item_vs("t-intersects-date-interval", "t_intersects", interval("2015-01-01", "2015-12-31"), intersects),
        item_vs("t-meets-open-interval", "t_meets", interval("2011-08-16T00:00:00Z", ".."), meets),
        item_vs("t-metby-open-interval", "t_metBy", interval("..", "2013-08-06T00:00:00Z"), met_by),
        item_vs("t-overlappedby-interval", "t_overlappedBy", interval("2015-01-01T00:00:00Z", "2015-08-27T00:00:00Z"), overlapped_by),
        item_vs("t-overlaps-interval", "t_overlaps", interval("2015-08-27T00:00:00Z", "2016-01-01T00:00:00Z"), overlaps),
        item_vs("t-startedby-interval", "t_startedBy", interval("2015-08-27T00:00:00Z", ".."), started_by),
        literal_vs("t-startedby-literal-left", "t_startedBy", interval("2019-11-15T00:00:00Z", "2020-01-01T00:00:00Z"), started_by),
        item_vs("t-starts-open-interval", "t_starts", interval("2023-07-30T16:00:00Z", ".."), starts),
        item_vs("t-starts-date", "t_starts", date("2015-08-27"), starts),
        item_vs("t-starts-timestamp", "t_starts", timestamp("2015-08-27T00:00:00Z"), starts),
    ]
    # With two literals the relation is a constant, so the property test after it decides the ids.
    # The second case of each pair swaps the literals, which makes the relation false.
    cases += [
        Case(
            "temporal/t-overlaps-literals",
            f"T_OVERLAPS({early.text}, {late.text}) AND naip:year = '2015'",
            op("and", op("t_overlaps", early.json, late.json), op("=", prop("naip:year"), "2015")),
            lambda i: overlaps(early.start, early.end, late.start, late.end) and text_of(i, "naip:year") == "2015",
        ),
        Case(
            "temporal/t-overlaps-literals-swapped",
            f"T_OVERLAPS({late.text}, {early.text}) OR naip:year = '2011'",
            op("or", op("t_overlaps", late.json, early.json), op("=", prop("naip:year"), "2011")),
            lambda i: overlaps(late.start, late.end, early.start, early.end) or text_of(i, "naip:year") == "2011",
        ),
        Case(
            "temporal/t-overlappedby-literals",
            f"T_OVERLAPPEDBY({late.text}, {early.text}) AND naip:year = '2013'",
            op("and", op("t_overlappedBy", late.json, early.json), op("=", prop("naip:year"), "2013")),
            lambda i: overlapped_by(late.start, late.end, early.start, early.end)
            and text_of(i, "naip:year") == "2013",
        ),
        Case(
            "temporal/t-overlappedby-literals-swapped",
            f"T_OVERLAPPEDBY({early.text}, {late.text}) OR naip:year = '2017'",
            op("or", op("t_overlappedBy", early.json, late.json), op("=", prop("naip:year"), "2017")),
            lambda i: overlapped_by(early.start, early.end, late.start, late.end)
            or text_of(i, "naip:year") == "2017",
        ),
    ]
    return cases


def number_set(item: Item, name: str) -> set[float] | None:
    found = value(item, name)
    if not isinstance(found, list):
        return None
    return {float(n) for n in found}


def array_cases() -> list[Case]:
    """A_ functions on proj:shape and proj:transform, numeric arrays of the NAIP items, compared as sets."""
    shape = lambda item: number_set(item, "proj:shape")  # noqa: E731
    transform = lambda item: number_set(item, "proj:transform")  # noqa: E731
    listed = {12280.0, 10690.0, 12300.0, 10720.0, 12290.0, 10730.0}
    return [
        Case(
            "array/a-equals",
            "A_EQUALS(proj:shape, (12280, 10690))",
            op("a_equals", prop("proj:shape"), [12280, 10690]),
            lambda i: shape(i) == {12280.0, 10690.0},
        ),
        Case(
            "array/a-equals-other-order",
            "A_EQUALS(proj:shape, (10690, 12280))",
            op("a_equals", prop("proj:shape"), [10690, 12280]),
            lambda i: shape(i) == {12280.0, 10690.0},
        ),
        Case(
            "array/a-contains",
            "A_CONTAINS(proj:shape, (12280))",
            op("a_contains", prop("proj:shape"), [12280]),
            lambda i: shape(i) is not None and 12280.0 in shape(i),
        ),
        Case(
            "array/a-contains-decimals",
            "A_CONTAINS(proj:transform, (0.6, -0.6))",
            op("a_contains", prop("proj:transform"), [0.6, -0.6]),
            lambda i: transform(i) is not None and {0.6, -0.6} <= transform(i),
        ),
        Case(
            "array/a-containedby",
            "A_CONTAINEDBY(proj:shape, (12280, 10690, 12300, 10720, 12290, 10730))",
            op("a_containedBy", prop("proj:shape"), [12280, 10690, 12300, 10720, 12290, 10730]),
            lambda i: shape(i) is not None and shape(i) <= listed,
        ),
        Case(
            "array/a-overlaps",
            "A_OVERLAPS(proj:shape, (12280, 10720, 1))",
            op("a_overlaps", prop("proj:shape"), [12280, 10720, 1]),
            lambda i: shape(i) is not None and bool(shape(i) & {12280.0, 10720.0, 1.0}),
        ),
    ]


def property_and_arithmetic_cases() -> list[Case]:
    gsd = lambda item: num(item, "gsd")  # noqa: E731
    epsg = lambda item: num(item, "proj:epsg")  # noqa: E731
    return [
        Case(
            "property/eq-numbers",
            "height = width",
            op("=", prop("height"), prop("width")),
            lambda i: num(i, "height") is not None and num(i, "height") == num(i, "width"),
        ),
        Case(
            "property/gt-numbers",
            "proj:epsg > height",
            op(">", prop("proj:epsg"), prop("height")),
            lambda i: num(i, "height") is not None and epsg(i) > num(i, "height"),
        ),
        Case(
            "property/lt-strings",
            "naip:year < naip:state",
            op("<", prop("naip:year"), prop("naip:state")),
            lambda i: text_of(i, "naip:year") is not None and text_of(i, "naip:year") < text_of(i, "naip:state"),
        ),
        Case(
            "property/arithmetic",
            "gsd * 30000 < proj:epsg",
            op("<", op("*", prop("gsd"), 30000), prop("proj:epsg")),
            lambda i: gsd(i) * 30000 < epsg(i),
        ),
        Case(
            "arithmetic/multiply",
            "gsd * 2 > 1.1",
            op(">", op("*", prop("gsd"), 2), 1.1),
            lambda i: gsd(i) * 2 > 1.1,
        ),
        Case(
            "arithmetic/add",
            "gsd + 0.5 < 1",
            op("<", op("+", prop("gsd"), 0.5), 1),
            lambda i: gsd(i) + 0.5 < 1,
        ),
        Case(
            "arithmetic/subtract",
            "gsd - 0.5 > 0",
            op(">", op("-", prop("gsd"), 0.5), 0),
            lambda i: gsd(i) - 0.5 > 0,
        ),
        # 3857 / 2 is 1928.5 because "/" divides exactly, also when both operands are integers.
        Case(
            "arithmetic/divide",
            "proj:epsg / 2 = 1928.5",
            op("=", op("/", prop("proj:epsg"), 2), 1928.5),
            lambda i: epsg(i) / 2 == 1928.5,
        ),
        # Read left to right without precedence, this would be (gsd * 10 - 2) * 3 > 1.
        Case(
            "arithmetic/precedence",
            "gsd * 10 - 2 * 3 > 1",
            op(">", op("-", op("*", prop("gsd"), 10), op("*", 2, 3)), 1),
            lambda i: gsd(i) * 10 - 2 * 3 > 1,
        ),
        Case(
            "arithmetic/parentheses",
            "(gsd + 1) * 2 > 3",
            op(">", op("*", op("+", prop("gsd"), 1), 2), 3),
            lambda i: (gsd(i) + 1) * 2 > 3,
        ),
    ]


def error_cases() -> list[Case]:
    return [
        Case("error/string-vs-number", "naip:state = 5", op("=", prop("naip:state"), 5), kind="error"),
        Case("error/number-vs-string", "gsd = 'abc'", op("=", prop("gsd"), "abc"), kind="error"),
        Case("error/unknown-function", "foo_bar(gsd) = 1", op("=", op("foo_bar", prop("gsd")), 1), kind="error"),
        Case("error/invalid-timestamp", "T_AFTER(datetime, TIMESTAMP('not a time'))",
             op("t_after", prop("datetime"), {"timestamp": "not a time"}), kind="error"),
        Case("error/text-double-operator", "gsd = = 1", None, kind="error"),
        Case("error/text-unfinished", "gsd >", None, kind="error"),
        Case("error/text-unbalanced", "(gsd = 1 AND naip:year = '2011'", None, kind="error"),
        Case("error/json-missing-argument", None, op("=", prop("gsd")), kind="error"),
        Case("error/json-unknown-member", None, {"op": "=", "arguments": [prop("gsd"), 1]}, kind="error"),
        Case("error/json-string", None, "gsd = 1", kind="error"),
    ]


def injection_cases(data: Data) -> list[Case]:
    real_id = data.of("joplin")[0]["id"]
    tricky = "x' OR '1'='1"
    quoted_like = "%' OR 'a'='a"

    def injection(name: str, text: str, json_: Any, predicate=never, kind: str = "injection") -> Case:
        return Case(f"injection/{name}", text, json_, predicate, kind=kind, max_seconds=INJECTION_SECONDS)

    property_sql = "id'; DROP TABLE stacd.items; --"
    cast_sql = "properties')::text; SELECT 1; --"
    quote_in_name = 'gsd" = 1 OR "1'
    return [
        injection("property-drop-table", f'"{property_sql}" = \'x\'', op("=", prop(property_sql), "x")),
        injection("property-cast", f'"{cast_sql}" = 1', op("=", prop(cast_sql), 1)),
        injection("property-double-quote", '"gsd"" = 1 OR ""1" = 1', op("=", prop(quote_in_name), 1)),
        injection("function-pg-sleep", "pg_sleep(5) IS NULL", op("isNull", op("pg_sleep", 5))),
        injection("function-name-sql", None, op("=", op("pg_sleep(5); --", 1), 1)),
        injection("json-string-for-number", None, op("=", prop("gsd"), "1 OR 1=1")),
        # These valid filters carry SQL in their strings, so they must run and match only the ids they name.
        injection(
            "string-or-true",
            f"id = {quote(tricky)}",
            op("=", prop("id"), tricky),
            kind="match",
        ),
        injection(
            "string-in-list",
            f"id IN ({quote(tricky)}, '{real_id}')",
            op("in", prop("id"), [tricky, real_id]),
            lambda i: i["id"] == real_id,
            kind="match",
        ),
        injection(
            "like-pattern",
            f"id LIKE {quote(quoted_like)}",
            op("like", prop("id"), quoted_like),
            kind="match",
        ),
        injection(
            "string-backslash",
            "id IN ('a\\', 'b')",
            op("in", prop("id"), ["a\\", "b"]),
            kind="match",
        ),
    ]


# --- a second evaluator of cql2-json, for --self-check ---------------------------------


class EvaluationError(Exception):
    """A filter that the second evaluator rejects, as a server must with HTTP 400."""


@dataclass(frozen=True)
class Span:
    start: float
    end: float


def canonical(name: str) -> str:
    return name.lower()


KNOWN_OPS = {
    "not", "isnull", "casei", "=", "<>", "<", "<=", ">", ">=", "like", "between", "in", "+", "-", "*", "/",
    *(f"s_{n}" for n in ("intersects", "contains", "within", "disjoint", "equals", "overlaps", "touches", "crosses")),
    *(f"t_{n}" for n in ("after", "before", "contains", "disjoint", "during", "equals", "finishedby", "finishes",
                         "intersects", "meets", "metby", "overlappedby", "overlaps", "startedby", "starts")),
    "a_equals", "a_contains", "a_containedby", "a_overlaps",
}


class JsonEvaluator:
    """Evaluate cql2-json against one item with three-valued logic, where None is NULL."""

    def __init__(self, data: Data, item: Item) -> None:
        self.data = data
        self.item = item

    def matches(self, node: Any) -> bool:
        result = self.evaluate(node)
        if result is not None and not isinstance(result, bool):
            raise EvaluationError(f"a filter must be a predicate, not {result!r}")
        return result is True

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, bool) or node is None or isinstance(node, str):
            return node
        if isinstance(node, (int, float)):
            return float(node)
        if isinstance(node, list):
            return [self.evaluate(element) for element in node]
        if not isinstance(node, dict):
            raise EvaluationError(f"not a cql2-json node: {node!r}")
        if "property" in node:
            return self.property(node["property"])
        if "timestamp" in node:
            return self.span(timestamp, node["timestamp"])
        if "date" in node:
            return self.span(date, node["date"])
        if "interval" in node:
            return self.span(interval, *node["interval"])
        if "bbox" in node:
            return shapely_box(*node["bbox"])
        if "type" in node and "coordinates" in node:
            return shapely_shape(node)
        if set(node) == {"op", "args"} and isinstance(node["args"], list):
            return self.operation(canonical(node["op"]), node["args"])
        raise EvaluationError(f"not a cql2-json node: {node!r}")

    @staticmethod
    def span(build: Callable[..., TimeLiteral], *texts: str) -> Span:
        try:
            literal = build(*texts)
        except (ValueError, TypeError) as error:
            raise EvaluationError(f"invalid temporal literal {texts!r}: {error}") from error
        return Span(literal.start, literal.end)

    def property(self, name: str) -> Any:
        found = value(self.item, name)
        if found is MISSING or found is None:
            return None
        if name == "geometry":
            return self.data.shape(self.item)
        if name == "datetime":
            return Span(*interval_of(self.item))
        if isinstance(found, list):
            return [self.scalar(element) for element in found]
        return self.scalar(found)

    @staticmethod
    def scalar(found: Any) -> Any:
        """Return a property value: numbers as floats, other JSON values unchanged."""
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return float(found)
        return found

    def operation(self, name: str, raw_args: list) -> Any:
        if name in ("and", "or"):
            return self.connective(name, [self.evaluate(a) for a in raw_args])
        if name not in KNOWN_OPS:
            raise EvaluationError(f"unknown function {name!r}")
        args = [self.evaluate(a) for a in raw_args]
        arity = {"not": 1, "isnull": 1, "casei": 1, "between": 3}.get(name, 2)
        if len(args) != arity:
            raise EvaluationError(f"{name} takes {arity} arguments, got {len(args)}")

        if name == "isnull":
            return args[0] is None
        # Every other operator returns NULL when an operand is NULL.
        if any(a is None for a in args):
            return None

        if name == "not":
            return not self.boolean(args[0])
        if name == "casei":
            return self.string(args[0]).lower()
        if name in ("=", "<>", "<", "<=", ">", ">="):
            return self.compare(name, *args)
        if name == "like":
            return like_regex(self.string(args[1])).fullmatch(self.string(args[0])) is not None
        if name == "between":
            return self.compare(">=", args[0], args[1]) and self.compare("<=", args[0], args[2])
        if name == "in":
            if not isinstance(args[1], list):
                raise EvaluationError("in needs a list")
            return any(self.compare("=", args[0], candidate) for candidate in args[1])

        if name in ("+", "-", "*", "/"):
            left, right = self.number(args[0]), self.number(args[1])
            return {"+": left + right, "-": left - right, "*": left * right, "/": left / right}[name]
        if name.startswith("s_"):
            return self.spatial(name, *args)
        if name.startswith("t_"):
            return self.temporal(name, *args)
        if name.startswith("a_"):
            return self.array(name, *args)
        raise EvaluationError(f"unknown function {name!r}")

    @staticmethod
    def connective(name: str, values: list) -> Any:
        for found in values:
            if found is not None and not isinstance(found, bool):
                raise EvaluationError(f"{name} needs booleans, got {found!r}")
        deciding = name == "or"
        if deciding in values:
            return deciding
        return None if None in values else not deciding

    @staticmethod
    def boolean(found: Any) -> bool:
        if not isinstance(found, bool):
            raise EvaluationError(f"expected a boolean, got {found!r}")
        return found

    @staticmethod
    def string(found: Any) -> str:
        if not isinstance(found, str):
            raise EvaluationError(f"expected a string, got {found!r}")
        return found

    @staticmethod
    def number(found: Any) -> float:
        if not isinstance(found, float):
            raise EvaluationError(f"expected a number, got {found!r}")
        return found

    @staticmethod
    def compare(name: str, left: Any, right: Any) -> bool:
        if isinstance(left, Span) and isinstance(right, Span):
            # As the cql2 crate orders DateRange values, two spans are equal when their bounds are,
            # and one is less than the other when it ends before the other starts.
            equal = left.start == right.start and left.end == right.end
            less = not equal and left.end < right.start
            greater = not equal and left.start > right.end
            results = {
                "=": equal,
                "<>": not equal,
                "<": less,
                "<=": less or equal,
                ">": greater,
                ">=": greater or equal,
            }
            return results[name]
        same_kind = (isinstance(left, float) and isinstance(right, float)) or (
            isinstance(left, str) and isinstance(right, str)
        )
        if not same_kind:
            raise EvaluationError(f"cannot compare {left!r} with {right!r}")
        results = {
            "=": left == right,
            "<>": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }
        return results[name]

    @staticmethod
    def spatial(name: str, left: Any, right: Any) -> bool:
        methods = {
            "s_intersects": "intersects",
            "s_contains": "contains",
            "s_within": "within",
            "s_disjoint": "disjoint",
            "s_equals": "equals",
            "s_overlaps": "overlaps",
            "s_touches": "touches",
            "s_crosses": "crosses",
        }
        if name not in methods or not hasattr(left, "geom_type") or not hasattr(right, "geom_type"):
            raise EvaluationError(f"invalid spatial predicate {name}({left!r}, {right!r})")
        return getattr(left, methods[name])(right)

    @staticmethod
    def temporal(name: str, left: Any, right: Any) -> bool:
        if not isinstance(left, Span) or not isinstance(right, Span):
            raise EvaluationError(f"{name} needs temporal operands")
        # As in the cql2 crate, each inverse relation is its counterpart with the operands swapped.
        inverses = {
            "t_after": "t_before",
            "t_metby": "t_meets",
            "t_overlappedby": "t_overlaps",
            "t_startedby": "t_starts",
            "t_contains": "t_during",
            "t_finishedby": "t_finishes",
        }
        if name in inverses:
            name, left, right = inverses[name], right, left
        a, b = left, right
        relations = {
            "t_before": lambda: a.end < b.start,
            "t_meets": lambda: a.end == b.start,
            "t_overlaps": lambda: a.start < b.start and b.start < a.end and a.end < b.end,
            "t_starts": lambda: a.start == b.start and a.end < b.end,
            "t_during": lambda: a.start > b.start and a.end < b.end,
            "t_finishes": lambda: a.start > b.start and a.end == b.end,
            "t_equals": lambda: a.start == b.start and a.end == b.end,
            "t_intersects": lambda: a.start <= b.end and a.end >= b.start,
            "t_disjoint": lambda: not (a.start <= b.end and a.end >= b.start),
        }
        if name not in relations:
            raise EvaluationError(f"unknown temporal function {name}")
        return relations[name]()

    @staticmethod
    def array(name: str, left: Any, right: Any) -> bool:
        if not isinstance(left, list) or not isinstance(right, list):
            raise EvaluationError(f"{name} needs arrays")
        left_set, right_set = set(left), set(right)
        relations = {
            "a_equals": left_set == right_set,
            "a_contains": left_set >= right_set,
            "a_containedby": left_set <= right_set,
            "a_overlaps": bool(left_set & right_set),
        }
        if name not in relations:
            raise EvaluationError(f"unknown array function {name}")
        return relations[name]


# --- a cql2-text parser, for --self-check ------------------------------------------------

TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")*")
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
    | (?P<symbol><>|<=|>=|!=|[=<>+\-*/(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_:.]*)
    )""",
    re.VERBOSE,
)
GEOMETRY_TYPES = {
    "POINT": "Point",
    "LINESTRING": "LineString",
    "POLYGON": "Polygon",
    "MULTIPOINT": "MultiPoint",
    "MULTILINESTRING": "MultiLineString",
    "MULTIPOLYGON": "MultiPolygon",
}
# The cql2-json spelling of the functions whose names are not all lower case.
CAMEL_CASE_OPS = {
    "t_metby": "t_metBy",
    "t_overlappedby": "t_overlappedBy",
    "t_startedby": "t_startedBy",
    "t_finishedby": "t_finishedBy",
    "a_containedby": "a_containedBy",
    "a_contained_by": "a_containedBy",
}
STANDARD_FUNCTIONS = {
    *(f"s_{n}" for n in ("intersects", "contains", "within", "disjoint", "equals", "overlaps", "touches", "crosses")),
    *(f"t_{n}" for n in ("after", "before", "contains", "disjoint", "during", "equals", "finishes", "intersects",
                         "meets", "overlaps", "starts")),
    "a_equals", "a_contains", "a_overlaps", "casei", "accenti",
}


class TextSyntaxError(Exception):
    pass


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise TextSyntaxError(f"unexpected character at {position}: {text[position:]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    tokens.append(("end", ""))
    return tokens


class TextParser:
    """Recursive-descent parser of the cql2-text used in this table, producing cql2-json."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.position = 0

    def parse(self) -> Any:
        node = self.disjunction()
        if self.peek()[0] != "end":
            raise TextSyntaxError(f"unexpected {self.peek()[1]!r}")
        return node

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.position + offset, len(self.tokens) - 1)]

    def next(self) -> tuple[str, str]:
        token = self.peek()
        self.position += 1
        return token

    def keyword(self, word: str, offset: int = 0) -> bool:
        kind, text = self.peek(offset)
        return kind == "word" and text.upper() == word

    def symbol(self, text: str) -> bool:
        return self.peek() == ("symbol", text)

    def expect(self, text: str) -> None:
        token = self.next()
        if token != ("symbol", text) and not (token[0] == "word" and token[1].upper() == text):
            raise TextSyntaxError(f"expected {text!r}, got {token[1]!r}")

    def disjunction(self) -> Any:
        args = [self.conjunction()]
        while self.keyword("OR"):
            self.next()
            args.append(self.conjunction())
        return args[0] if len(args) == 1 else op("or", *args)

    def conjunction(self) -> Any:
        args = [self.negation()]
        while self.keyword("AND"):
            self.next()
            args.append(self.negation())
        return args[0] if len(args) == 1 else op("and", *args)

    def negation(self) -> Any:
        if self.keyword("NOT"):
            self.next()
            return op("not", self.negation())
        return self.predicate()

    def predicate(self) -> Any:
        left = self.sum()
        kind, text = self.peek()
        if kind == "symbol" and text in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.next()
            return op("<>" if text == "!=" else text, left, self.sum())
        negated = self.keyword("NOT") and any(self.keyword(w, 1) for w in ("LIKE", "BETWEEN", "IN"))
        if negated:
            self.next()
        if self.keyword("LIKE"):
            self.next()
            node = op("like", left, self.sum())
        elif self.keyword("BETWEEN"):
            self.next()
            low = self.sum()
            self.expect("AND")
            node = op("between", left, low, self.sum())
        elif self.keyword("IN"):
            self.next()
            self.expect("(")
            node = op("in", left, self.list_until(")"))
        elif self.keyword("IS"):
            self.next()
            is_not = self.keyword("NOT")
            if is_not:
                self.next()
            self.expect("NULL")
            node = op("isNull", left)
            return op("not", node) if is_not else node
        else:
            return left
        return op("not", node) if negated else node

    def list_until(self, closing: str) -> list:
        items = []
        if not self.symbol(closing):
            items.append(self.disjunction())
            while self.symbol(","):
                self.next()
                items.append(self.disjunction())
        self.expect(closing)
        return items

    def sum(self) -> Any:
        node = self.product()
        while self.symbol("+") or self.symbol("-"):
            node = op(self.next()[1], node, self.product())
        return node

    def product(self) -> Any:
        node = self.unary()
        while self.symbol("*") or self.symbol("/"):
            node = op(self.next()[1], node, self.unary())
        return node

    def unary(self) -> Any:
        if self.symbol("-"):
            self.next()
            operand = self.unary()
            return -operand if isinstance(operand, (int, float)) else op("*", -1, operand)
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.next()
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "quoted":
            return prop(text[1:-1].replace('""', '"'))
        if kind == "symbol" and text == "(":
            items = self.list_until(")")
            return items[0] if len(items) == 1 else items
        if kind != "word":
            raise TextSyntaxError(f"unexpected {text!r}")
        upper = text.upper()
        if upper in ("TRUE", "FALSE"):
            return upper == "TRUE"
        if upper == "NULL":
            return None
        if upper in GEOMETRY_TYPES:
            return self.geometry(GEOMETRY_TYPES[upper])
        if self.symbol("("):
            self.next()
            return self.function(text, self.list_until(")"))
        return prop(text)

    def function(self, name: str, args: list) -> Any:
        lower = name.lower()
        if lower == "timestamp":
            return {"timestamp": args[0]}
        if lower == "date":
            return {"date": args[0]}
        if lower == "interval":
            return {"interval": args}
        if lower == "bbox":
            return {"bbox": args}
        name = CAMEL_CASE_OPS.get(lower, lower if lower in STANDARD_FUNCTIONS else name)
        if lower.startswith("a_"):
            args = [a if isinstance(a, (list, dict)) else [a] for a in args]
        return op(name, *args)

    def geometry(self, kind: str) -> dict:
        coordinates = self.coordinates()
        if kind == "Point":
            coordinates = coordinates[0]
        elif kind == "MultiPoint" and coordinates and isinstance(coordinates[0][0], list):
            coordinates = [c[0] for c in coordinates]
        return {"type": kind, "coordinates": coordinates}

    def coordinates(self) -> list:
        """Parse '(' followed by positions or by nested lists, up to the matching ')'."""
        self.expect("(")
        items = []
        while True:
            if self.symbol("("):
                items.append(self.coordinates())
            else:
                position = []
                while self.peek()[0] == "number" or self.symbol("-"):
                    sign = -1 if self.symbol("-") else 1
                    if sign < 0:
                        self.next()
                    number = self.next()[1]
                    position.append(sign * (float(number) if "." in number else int(number)))
                items.append(position)
            if not self.symbol(","):
                break
            self.next()
        self.expect(")")
        return items


def normalize(node: Any) -> Any:
    """Make two cql2-json trees comparable: numbers as floats, nested AND/OR flattened."""
    if isinstance(node, bool) or node is None or isinstance(node, str):
        return node
    if isinstance(node, (int, float)):
        return float(node)
    if isinstance(node, list):
        return [normalize(element) for element in node]
    if isinstance(node, dict):
        if node.get("op") in ("and", "or") and isinstance(node.get("args"), list):
            args = []
            for arg in node["args"]:
                if isinstance(arg, dict) and arg.get("op") == node["op"]:
                    args.extend(normalize(arg)["args"])
                else:
                    args.append(normalize(arg))
            return {"op": node["op"], "args": args}
        return {name: normalize(member) for name, member in node.items()}
    return node


# --- checks --------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, label: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {label}" + (f": {detail}" if detail else ""), flush=True)

    def close(self) -> int:
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


def describe_difference(expected: set[Key], returned: set[Key]) -> str:
    missing = sorted(expected - returned)
    extra = sorted(returned - expected)
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} (first: {', '.join(i for _, i in missing[:5])})")
    if extra:
        parts.append(f"extra {len(extra)} (first: {', '.join(i for _, i in extra[:5])})")
    return f"expected {len(expected)}, got {len(returned)}; " + "; ".join(parts)


def self_check(data: Data, cases: list[Case]) -> int:
    """Check the table itself: text and json agree, and two evaluators agree on every case."""
    report = Report()
    print(f"{len(cases)} cases over {len(data.items)} items ({', '.join(COLLECTIONS)})")
    for case in cases:
        problems = []
        parsed = None
        if case.text is not None:
            try:
                parsed = TextParser(case.text).parse()
            except (TextSyntaxError, IndexError) as error:
                if case.kind != "error" or case.json is not None:
                    problems.append(f"cql2-text does not parse: {error}")
        if parsed is not None and case.json is not None and normalize(parsed) != normalize(case.json):
            problems.append(f"cql2-text parses to {json.dumps(parsed)}, not to the cql2-json")
        if case.kind == "error" and case.text is not None and case.json is None and parsed is not None:
            problems.append("the invalid cql2-text parses")

        rejected = None
        selected: set[Key] = set()
        if case.json is not None:
            try:
                for item in data.items:
                    if item["collection"] in case.collections and JsonEvaluator(data, item).matches(case.json):
                        selected.add(key(item))
            except EvaluationError as error:
                rejected = str(error)
        if case.kind == "error" and case.json is not None and rejected is None:
            problems.append("the second evaluator accepts this error case")
        if case.kind == "match" and rejected is not None:
            problems.append(f"the second evaluator rejects it: {rejected}")

        size = ""
        if case.predicate is not None:
            expected = expected_keys(case, data)
            total = sum(1 for item in data.items if item["collection"] in case.collections)
            size = f"expected {len(expected)} of {total}"
            if case.json is not None and rejected is None and selected != expected:
                problems.append("second evaluator: " + describe_difference(expected, selected))
        elif rejected is not None:
            size = f"rejected ({rejected})"
        label = f"self-check {case.name}" + (f" ({size})" if size else "")
        report.check(not problems, label, "; ".join(problems))
    return report.close()


# --- the server ----------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: Any
    text: str
    seconds: float


def http(method: str, url: str, body: Any = None) -> Response:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/geo+json, application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return Response(0, None, f"request failed: {error}", time.monotonic() - start)
    seconds = time.monotonic() - start
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return Response(status, parsed, text, seconds)


@dataclass
class Outcome:
    """The result of one search followed through all its pages."""

    status: int = 200
    keys: list[Key] = field(default_factory=list)
    error: Response | None = None
    problem: str = ""
    max_seconds: float = 0.0


def next_link(body: Any) -> dict | None:
    for link in body.get("links", []) if isinstance(body, dict) else []:
        if link.get("rel") == "next":
            return link
    return None


def follow(method: str, url: str, body: Any, collection: str | None = None) -> Outcome:
    """Run a search and follow its "next" links to the end, collecting (collection, id) keys."""
    outcome = Outcome()
    for _ in range(MAX_PAGES):
        response = http(method, url, body)
        outcome.max_seconds = max(outcome.max_seconds, response.seconds)
        if response.status != 200:
            outcome.status, outcome.error = response.status, response
            return outcome
        features = response.body.get("features") if isinstance(response.body, dict) else None
        if not isinstance(features, list):
            outcome.problem = "the response has no features array"
            return outcome
        for feature in features:
            outcome.keys.append((feature.get("collection") or collection, feature.get("id")))
        link = next_link(response.body)
        if link is None:
            return outcome
        method = link.get("method", "GET").upper()
        url = link["href"]
        if method == "POST":
            body = {**body, **link.get("body", {})} if link.get("merge") else link.get("body")
        else:
            body = None
    outcome.problem = f"more than {MAX_PAGES} pages"
    return outcome


class Server:
    def __init__(self, root_url: str) -> None:
        self.root = root_url.rstrip("/")

    def search_url(self, params: dict) -> str:
        return f"{self.root}/search?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)

    def run(self, way: str, case: Case) -> Outcome:
        collections = list(case.collections)
        if way == "get-text":
            params = {"collections": ",".join(collections), "filter": case.text,
                      "filter-lang": "cql2-text", "limit": PAGE_LIMIT}
            return follow("GET", self.search_url(params), None)
        if way in ("post-json", "post-text"):
            body = {"collections": collections, "limit": PAGE_LIMIT,
                    "filter": case.json if way == "post-json" else case.text,
                    "filter-lang": "cql2-json" if way == "post-json" else "cql2-text"}
            return follow("POST", f"{self.root}/search", body)
        raise ValueError(f"unknown way {way}")

    def items(self, case: Case, collection: str) -> Outcome:
        params = {"filter": case.text, "filter-lang": "cql2-text", "limit": PAGE_LIMIT}
        url = f"{self.root}/collections/{collection}/items?" + urllib.parse.urlencode(
            params, quote_via=urllib.parse.quote
        )
        return follow("GET", url, None, collection)

    def count(self, collection: str) -> Any:
        response = http("GET", self.search_url({"collections": collection, "limit": 1}))
        return response.body.get("numberMatched") if response.status == 200 and isinstance(response.body, dict) else None


def error_body_problem(response: Response) -> str:
    """Return why a response is not a 400 JSON error with code and description, or ''."""
    body = response.body
    if response.status != 400:
        return f"HTTP {response.status}, expected 400: {response.text[:200]}"
    if not isinstance(body, dict):
        return f"the 400 body is not a JSON object: {response.text[:200]}"
    if not isinstance(body.get("code"), str) or not isinstance(body.get("description"), str):
        return f"the 400 body lacks a string code or description: {response.text[:200]}"
    return ""


def judge(case: Case, outcome: Outcome, expected: set[Key], error_allowed: bool = False) -> str:
    """Return why the outcome of one way fails the case, or '' when it passes.

    error_allowed accepts a 400 JSON error in place of the expected ids.
    """
    if outcome.problem:
        return outcome.problem
    slow = case.max_seconds is not None and outcome.max_seconds > case.max_seconds
    timing = f"a request took {outcome.max_seconds:.1f} s (limit {case.max_seconds:.0f} s)" if slow else ""
    may_fail = case.kind == "injection" or error_allowed
    if case.kind == "error" or (may_fail and outcome.status != 200):
        if outcome.error is None:
            return f"HTTP 200 with {len(outcome.keys)} items, expected 400"
        return error_body_problem(outcome.error) or timing
    if outcome.status != 200:
        response = outcome.error
        return f"HTTP {outcome.status}: {response.text[:300] if response else ''}"
    returned = set(outcome.keys)
    if returned != expected:
        return describe_difference(expected, returned)
    if len(outcome.keys) != len(returned):
        return f"{len(outcome.keys) - len(returned)} duplicate items across pages"
    return timing


def report_queryables(server: Server) -> None:
    """Print what /queryables lists; informational, because the table does not depend on it."""
    for path in ("/queryables", "/collections/naip/queryables"):
        response = http("GET", server.root + path)
        names = []
        if response.status == 200 and isinstance(response.body, dict):
            names = sorted((response.body.get("properties") or {}).keys())
        print(f"INFO  GET {path}: HTTP {response.status}, {len(names)} properties"
              + (f" ({', '.join(names[:12])}{', ...' if len(names) > 12 else ''})" if names else ""))


def check_items_way(server: Server, data: Data, case: Case, expected: set[Key]) -> tuple[str, str]:
    """Run a case on /collections/{id}/items for each of its collections.

    When no item of a collection has a property that the filter names, that
    property is not one of the collection's queryables, so the server may
    return 400 there instead of 200 with the expected ids. Return the
    problems found and a remark on each such 400 response.
    """
    problems, remarks = [], []
    for collection in case.collections:
        absent = sorted(referenced_properties(case.json) - data.names[collection]) if case.json else []
        error_allowed = case.kind == "match" and bool(absent)
        outcome = server.items(case, collection)
        collection_expected = {k for k in expected if k[0] == collection}
        problem = judge(case, outcome, collection_expected, error_allowed)
        if problem:
            problems.append(f"{collection}: {problem}")
        elif error_allowed and outcome.status == 400:
            remarks.append(f"{collection} returned 400 for {', '.join(absent)}, which its items lack")
    return "; ".join(problems), (f" [{'; '.join(remarks)}]" if remarks else "")


def run_table(server: Server, data: Data, cases: list[Case]) -> int:
    report = Report()
    sizes = {collection: len(data.of(collection)) for collection in COLLECTIONS}
    for collection, size in sizes.items():
        found = server.count(collection)
        report.check(found == size, f"setup/count-{collection}", "" if found == size else
                     f"numberMatched of collections={collection} is {found}, expected {size}")
    report_queryables(server)
    for case in cases:
        expected = expected_keys(case, data) if case.predicate is not None else set()
        note = f" ({len(expected)} items)" if case.kind != "error" else ""
        for way in case.ways:
            if way == "items-text":
                problem, remark = check_items_way(server, data, case, expected)
                report.check(not problem, f"{way:<10} {case.name}{note}{remark}", problem)
                continue
            problem = judge(case, server.run(way, case), expected)
            report.check(not problem, f"{way:<10} {case.name}{note}", problem)
    # The injection cases must have left the stored items as they were.
    for collection, size in sizes.items():
        found = server.count(collection)
        report.check(found == size, f"injection/count-after-{collection}", "" if found == size else
                     f"numberMatched of collections={collection} is {found}, expected {size}")
    return report.close()


def main(argv: list[str]) -> int:
    usage = "usage: cql2_table.py ROOT_URL STAC_DATA_DIR | cql2_table.py --self-check STAC_DATA_DIR"
    if len(argv) != 3:
        print(usage, file=sys.stderr)
        return 2
    data_dir = Path(argv[2])
    for collection in COLLECTIONS:
        if not (data_dir / collection / "items.ndjson").is_file():
            print(f"cql2_table.py: {data_dir / collection / 'items.ndjson'} not found", file=sys.stderr)
            return 2
    data = Data(data_dir)
    cases = build_cases(data)
    if argv[1] == "--self-check":
        return self_check(data, cases)
    return run_table(Server(argv[1]), data, cases)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
