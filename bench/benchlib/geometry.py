"""Planar geometry in longitude/latitude for the expected results, and WKB for pgbench.

The tests are exact for simple polygons without holes, which is all the
generator writes: two polygons intersect when an edge of one crosses or
touches an edge of the other, or when one contains a vertex of the other.
"""

from __future__ import annotations

import math
import struct

Ring = list[tuple[float, float]]
# A geometry is a list of polygons, each given by its outer ring (closed).
Polygons = list[Ring]


def polygons_of(geometry: dict) -> Polygons:
    """Return the outer rings of a GeoJSON Polygon or MultiPolygon."""
    if geometry["type"] == "Polygon":
        return [[(x, y) for x, y, *_ in geometry["coordinates"][0]]]
    if geometry["type"] == "MultiPolygon":
        return [[(x, y) for x, y, *_ in polygon[0]] for polygon in geometry["coordinates"]]
    raise ValueError(f"unsupported geometry type {geometry['type']!r}")


def box_ring(west: float, south: float, east: float, north: float) -> Ring:
    return [(west, south), (east, south), (east, north), (west, north), (west, south)]


def bbox_polygons(bbox: list[float]) -> Polygons:
    """Return the polygons of a STAC bbox; one with west > east crosses the antimeridian and becomes two."""
    west, south, east, north = bbox
    if west > east:
        return [box_ring(west, south, 180.0, north), box_ring(-180.0, south, east, north)]
    return [box_ring(west, south, east, north)]


def envelope(ring: Ring) -> tuple[float, float, float, float]:
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    return min(xs), min(ys), max(xs), max(ys)


def _orientation(a, b, c) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a, b, p) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_intersect(a, b, c, d) -> bool:
    """Tell whether segment a-b and segment c-d share a point (touching counts)."""
    d1 = _orientation(c, d, a)
    d2 = _orientation(c, d, b)
    d3 = _orientation(a, b, c)
    d4 = _orientation(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return ((d1 == 0 and _on_segment(c, d, a)) or (d2 == 0 and _on_segment(c, d, b))
            or (d3 == 0 and _on_segment(a, b, c)) or (d4 == 0 and _on_segment(a, b, d)))


def point_in_ring(point, ring: Ring) -> bool:
    """Ray casting; points on the boundary are found by the edge test instead."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
        if (y1 > y) != (y2 > y):
            if x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
    return inside


def rings_intersect(first: Ring, second: Ring) -> bool:
    a = envelope(first)
    b = envelope(second)
    if a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]:
        return False
    for p, q in zip(first, first[1:]):
        for r, s in zip(second, second[1:]):
            if segments_intersect(p, q, r, s):
                return True
    return point_in_ring(first[0], second) or point_in_ring(second[0], first)


def intersects(first: Polygons, second: Polygons) -> bool:
    return any(rings_intersect(a, b) for a in first for b in second)


def star_polygon(lon: float, lat: float, radius_m: float, vertices: int, jitter: list[float]) -> Ring:
    """Return a closed, counter-clockwise ring of `vertices` points around lon/lat.

    Each vertex lies at radius_m times its jitter factor (0..1] on an evenly
    spaced bearing, so the ring is star-shaped around the centre and simple.
    """
    metres_per_degree_lon = 111_320.0 * math.cos(math.radians(lat))
    ring = []
    for index in range(vertices):
        angle = 2 * math.pi * index / vertices
        r = radius_m * jitter[index]
        ring.append((round(lon + r * math.cos(angle) / metres_per_degree_lon, 7),
                     round(lat + r * math.sin(angle) / 111_132.0, 7)))
    ring.append(ring[0])
    return ring


def polygon_wkb_hex(ring: Ring) -> str:
    """Return a 2D Polygon as little-endian WKB, hex-encoded with the bytea prefix '\\x'."""
    data = struct.pack("<BII", 1, 3, 1) + struct.pack("<I", len(ring))
    for x, y in ring:
        data += struct.pack("<dd", x, y)
    return "\\x" + data.hex()
