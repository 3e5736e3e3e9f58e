#!/usr/bin/env python3
"""Generate a synthetic drone-survey STAC catalog for benchmarks.

The catalog has K collections of survey programmes flown over cities on every
inhabited continent, including sites next to and across the antimeridian
(Taveuni in Fiji, Anadyr in Chukotka, Adak in the Aleutians). Items are
capture footprints: rotated rectangles of 0.1 to 2 km², grouped in missions of
a few to a few dozen captures, with datetimes spread over 2020-2024. About 5 %
are merged products with `start_datetime`/`end_datetime` and a null
`datetime`. A footprint that crosses the antimeridian is split at 180° into a
MultiPolygon, as the GeoJSON specification (RFC 7946, section 3.1.9) and the
STAC best practices recommend, and its bbox has west > east.

Output, in --out:

    <collection-id>/collection.json   one per collection, with extents
    items.ndjson                      every item, one JSON object per line
    manifest.json                     the arguments and counts, written last

Items are written as they are made, so memory stays constant whatever --items
is; only per-collection extents are kept. The same --seed, --items and
--collections give the same bytes (no clock, no hash randomisation).

    python3 bench/generate.py --seed 1 --items 100000 --collections 8 --out /tmp/bench-data
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

STAC_VERSION = "1.0.0"
ITEM_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]
COLLECTION_EXTENSIONS = [
    "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
]

# Metres per degree of latitude, and of longitude at the equator (WGS 84, rounded).
METRES_PER_DEGREE_LAT = 111_132.0
METRES_PER_DEGREE_LON_EQUATOR = 111_320.0

# Captures fall in 2020-01-01T00:00:00Z .. 2024-12-31T23:59:59Z (five years).
EPOCH_START = datetime(2020, 1, 1, tzinfo=timezone.utc)
SPAN_SECONDS = int((datetime(2025, 1, 1, tzinfo=timezone.utc) - EPOCH_START).total_seconds())

# Media types of the assets.
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
COPC = "application/vnd.laszip+copc"
# Gaussian splats are PLY files, which have no registered media type.
SPLAT = "application/octet-stream"

# (name, country, continent, longitude, latitude) of the survey sites.
CITIES = [
    ("lisbon", "PT", "europe", -9.1393, 38.7223),
    ("madrid", "ES", "europe", -3.7038, 40.4168),
    ("paris", "FR", "europe", 2.3522, 48.8566),
    ("amsterdam", "NL", "europe", 4.9041, 52.3676),
    ("berlin", "DE", "europe", 13.4050, 52.5200),
    ("rome", "IT", "europe", 12.4964, 41.9028),
    ("athens", "GR", "europe", 23.7275, 37.9838),
    ("oslo", "NO", "europe", 10.7522, 59.9139),
    ("warsaw", "PL", "europe", 21.0122, 52.2297),
    ("nairobi", "KE", "africa", 36.8219, -1.2921),
    ("lagos", "NG", "africa", 3.3792, 6.5244),
    ("cape-town", "ZA", "africa", 18.4241, -33.9249),
    ("cairo", "EG", "africa", 31.2357, 30.0444),
    ("kigali", "RW", "africa", 30.0619, -1.9441),
    ("accra", "GH", "africa", -0.1870, 5.6037),
    ("tokyo", "JP", "asia", 139.6917, 35.6895),
    ("singapore", "SG", "asia", 103.8198, 1.3521),
    ("mumbai", "IN", "asia", 72.8777, 19.0760),
    ("bangkok", "TH", "asia", 100.5018, 13.7563),
    ("seoul", "KR", "asia", 126.9780, 37.5665),
    ("jakarta", "ID", "asia", 106.8456, -6.2088),
    ("ulaanbaatar", "MN", "asia", 106.9057, 47.8864),
    ("anadyr", "RU", "asia", 177.5089, 64.7337),
    ("new-york", "US", "north-america", -74.0060, 40.7128),
    ("denver", "US", "north-america", -104.9903, 39.7392),
    ("mexico-city", "MX", "north-america", -99.1332, 19.4326),
    ("vancouver", "CA", "north-america", -123.1207, 49.2827),
    ("toronto", "CA", "north-america", -79.3832, 43.6532),
    ("anchorage", "US", "north-america", -149.9003, 61.2181),
    ("adak", "US", "north-america", -176.6581, 51.8800),
    ("sao-paulo", "BR", "south-america", -46.6333, -23.5505),
    ("lima", "PE", "south-america", -77.0428, -12.0464),
    ("bogota", "CO", "south-america", -74.0721, 4.7110),
    ("santiago", "CL", "south-america", -70.6693, -33.4489),
    ("buenos-aires", "AR", "south-america", -58.3816, -34.6037),
    ("sydney", "AU", "oceania", 151.2093, -33.8688),
    ("auckland", "NZ", "oceania", 174.7633, -36.8485),
    ("suva", "FJ", "oceania", 178.4419, -18.1416),
    # The 180th meridian runs across Taveuni; its footprints are split there.
    ("taveuni", "FJ", "oceania", 179.9900, -16.8500),
]

# Radius, in metres, of the area around a city centre where missions fly.
CITY_RADIUS_M = 8_000.0

# (id, title, instruments, camera bands) of the aircraft.
PLATFORMS = [
    ("dji-matrice-350-rtk", ["zenmuse-p1", "zenmuse-l2"], "rgb"),
    ("dji-mavic-3-enterprise", ["mavic-3e-wide"], "rgb"),
    ("wingtra-one-gen-ii", ["sony-rx1r-ii"], "rgb"),
    ("sensefly-ebee-x", ["micasense-altum-pt"], "multispectral"),
]

BANDS = {
    "rgb": [
        {"name": "red", "common_name": "red", "center_wavelength": 0.65},
        {"name": "green", "common_name": "green", "center_wavelength": 0.55},
        {"name": "blue", "common_name": "blue", "center_wavelength": 0.47},
    ],
    "multispectral": [
        {"name": "blue", "common_name": "blue", "center_wavelength": 0.475, "full_width_half_max": 0.032},
        {"name": "green", "common_name": "green", "center_wavelength": 0.56, "full_width_half_max": 0.027},
        {"name": "red", "common_name": "red", "center_wavelength": 0.668, "full_width_half_max": 0.014},
        {"name": "rededge", "common_name": "rededge", "center_wavelength": 0.717, "full_width_half_max": 0.012},
        {"name": "nir", "common_name": "nir", "center_wavelength": 0.842, "full_width_half_max": 0.057},
    ],
}

# Survey programmes; collection i takes theme i modulo the list, with a number.
THEMES = [
    ("urban-mapping", "Urban mapping", "Nadir orthomosaics and surface models of city districts."),
    ("infrastructure-inspection", "Infrastructure inspection",
     "Bridges, rail corridors and power lines, flown nadir and oblique for 3D reconstruction."),
    ("construction-progress", "Construction progress",
     "Repeat flights over building sites for volume and progress tracking."),
    ("coastal-monitoring", "Coastal monitoring", "Beaches, harbours and cliffs surveyed for erosion."),
    ("heritage-documentation", "Heritage documentation",
     "Oblique orbits and Gaussian splats of historic buildings."),
    ("disaster-response", "Disaster response", "Rapid mapping after floods, storms and earthquakes."),
    ("agriculture", "Agriculture", "Multispectral flights over fields and orchards at the city edge."),
    ("solar-parks", "Solar parks", "Thermal and RGB inspection of photovoltaic installations."),
]


def utm_epsg(lon: float, lat: float) -> int:
    """Return the EPSG code of the WGS 84 / UTM zone that contains lon/lat."""
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def iso(seconds: int) -> str:
    """Format seconds after 2020-01-01T00:00:00Z as RFC 3339 UTC."""
    return (EPOCH_START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rectangle(lon: float, lat: float, width_m: float, height_m: float, rotation_deg: float) -> list[tuple[float, float]]:
    """Return the 4 corners, counter-clockwise, of a rotated rectangle centred on lon/lat.

    Longitudes are not wrapped, so a rectangle near 180° may have corners above 180.
    """
    metres_per_degree_lon = METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(lat))
    angle = math.radians(rotation_deg)
    corners = []
    for x, y in ((-width_m / 2, -height_m / 2), (width_m / 2, -height_m / 2),
                 (width_m / 2, height_m / 2), (-width_m / 2, height_m / 2)):
        east = x * math.cos(angle) - y * math.sin(angle)
        north = x * math.sin(angle) + y * math.cos(angle)
        corners.append((lon + east / metres_per_degree_lon, lat + north / METRES_PER_DEGREE_LAT))
    return corners


def clip_half_plane(polygon: list[tuple[float, float]], meridian: float, keep_west: bool) -> list[tuple[float, float]]:
    """Clip a convex polygon (open ring) to the half plane west or east of a meridian.

    Sutherland-Hodgman against one edge: the result is convex and keeps the
    orientation of the input.
    """
    def inside(point: tuple[float, float]) -> bool:
        return point[0] <= meridian if keep_west else point[0] >= meridian

    result = []
    for index, current in enumerate(polygon):
        previous = polygon[index - 1]
        if inside(current):
            if not inside(previous):
                result.append(crossing(previous, current, meridian))
            result.append(current)
        elif inside(previous):
            result.append(crossing(previous, current, meridian))
    return result


def crossing(a: tuple[float, float], b: tuple[float, float], meridian: float) -> tuple[float, float]:
    """Return the point where segment a-b meets the meridian."""
    t = (meridian - a[0]) / (b[0] - a[0])
    return (meridian, a[1] + t * (b[1] - a[1]))


def closed_ring(points: list[tuple[float, float]], shift: float = 0.0) -> list[list[float]]:
    """Round the points to 7 decimals (about 1 cm), shift their longitude, and close the ring."""
    ring = [[round(x + shift, 7), round(y, 7)] for x, y in points]
    ring.append(list(ring[0]))
    return ring


def footprint_geometry(corners: list[tuple[float, float]]) -> tuple[dict, list[float]]:
    """Return the GeoJSON geometry and bbox of a footprint, split at the antimeridian when it crosses it."""
    xs = [x for x, _ in corners]
    ys = [y for _, y in corners]
    south, north = round(min(ys), 7), round(max(ys), 7)
    if max(xs) <= 180.0:
        ring = closed_ring(corners)
        return {"type": "Polygon", "coordinates": [ring]}, [
            min(p[0] for p in ring), south, max(p[0] for p in ring), north]
    if min(xs) >= 180.0:
        ring = closed_ring(corners, shift=-360.0)
        return {"type": "Polygon", "coordinates": [ring]}, [
            min(p[0] for p in ring), south, max(p[0] for p in ring), north]
    west_part = closed_ring(clip_half_plane(corners, 180.0, keep_west=True))
    east_part = closed_ring(clip_half_plane(corners, 180.0, keep_west=False), shift=-360.0)
    geometry = {"type": "MultiPolygon", "coordinates": [[west_part], [east_part]]}
    # West of the antimeridian part starts the box, so west > east (STAC bbox across 180°).
    bbox = [min(p[0] for p in west_part), south, max(p[0] for p in east_part), north]
    return geometry, bbox


@dataclass
class Extent:
    """Spatial and temporal extent of one collection, grown item by item."""

    items: int = 0
    start: int | None = None
    end: int | None = None
    # Per-city bounding boxes in unwrapped longitudes: city -> [west, south, east, north].
    cities: dict[str, list[float]] = field(default_factory=dict)

    def add(self, city: str, corners: list[tuple[float, float]], start: int, end: int) -> None:
        self.items += 1
        self.start = start if self.start is None else min(self.start, start)
        self.end = end if self.end is None else max(self.end, end)
        xs = [x for x, _ in corners]
        ys = [y for _, y in corners]
        box = self.cities.setdefault(city, [min(xs), min(ys), max(xs), max(ys)])
        box[0], box[1] = min(box[0], min(xs)), min(box[1], min(ys))
        box[2], box[3] = max(box[2], max(xs)), max(box[3], max(ys))

    def bboxes(self) -> list[list[float]]:
        """Return the overall bbox followed by one bbox per city, wrapped to [-180, 180]."""
        per_city = []
        for city in sorted(self.cities):
            west, south, east, north = self.cities[city]
            if west > 180.0:
                west -= 360.0
            if east > 180.0:
                east -= 360.0
            per_city.append([round(west, 6), round(south, 6), round(east, 6), round(north, 6)])
        if not per_city:
            return [[-180.0, -90.0, 180.0, 90.0]]
        crosses = any(box[0] > box[2] for box in per_city)
        overall = [
            -180.0 if crosses else min(b[0] for b in per_city),
            min(b[1] for b in per_city),
            180.0 if crosses else max(b[2] for b in per_city),
            max(b[3] for b in per_city),
        ]
        return [overall, *per_city]


def collection_plan(count: int, rng: random.Random) -> list[dict]:
    """Pick the id, theme and cities of each collection. Every city is in at least one collection."""
    plans = []
    for index in range(count):
        theme_id, title, description = THEMES[index % len(THEMES)]
        number = index // len(THEMES) + 1
        cities = set(rng.sample(range(len(CITIES)), k=min(len(CITIES), rng.randint(8, 16))))
        plans.append({
            "id": f"{theme_id}-{number:02d}",
            "title": f"{title} {number}",
            "description": description,
            "cities": cities,
        })
    for city in range(len(CITIES)):
        if not any(city in plan["cities"] for plan in plans):
            plans[city % count]["cities"].add(city)
    for plan in plans:
        plan["cities"] = sorted(plan["cities"])
    return plans


def item_assets_template() -> dict:
    return {
        "ortho": {"title": "RGB orthomosaic", "type": COG, "roles": ["data", "visual"]},
        "dsm": {"title": "Digital surface model", "type": COG, "roles": ["data", "elevation"]},
        "pointcloud": {"title": "Point cloud (COPC)", "type": COPC, "roles": ["data", "pointcloud"]},
        "splat": {"title": "3D Gaussian splat (PLY)", "type": SPLAT, "roles": ["data", "3d"]},
        "thumbnail": {"title": "Thumbnail", "type": "image/jpeg", "roles": ["thumbnail"]},
        "report": {"title": "Processing report", "type": "application/pdf", "roles": ["metadata"]},
    }


def make_assets(prefix: str, oblique: bool, merged: bool, lidar: bool, rng: random.Random) -> dict:
    """Return 4 to 6 assets: orthomosaic, DSM and thumbnail always, point cloud, splat and report sometimes."""
    template = item_assets_template()
    keys = ["ortho", "dsm"]
    if lidar or oblique or rng.random() < 0.6:
        keys.append("pointcloud")
    if oblique or merged:
        keys.append("splat")
    keys.append("thumbnail")
    if merged or len(keys) < 4 or rng.random() < 0.3:
        keys.append("report")
    names = {
        "ortho": "ortho.tif", "dsm": "dsm.tif", "pointcloud": "points.copc.laz",
        "splat": "splat.ply", "thumbnail": "thumbnail.jpg", "report": "report.pdf",
    }
    assets = {}
    for key in keys:
        asset = {"href": f"{prefix}/{names[key]}", **template[key]}
        if key in ("ortho", "dsm", "pointcloud", "splat"):
            asset["file:size"] = rng.randint(40_000_000, 4_000_000_000)
        assets[key] = asset
    return assets


class Generator:
    """Streams items for a plan; keeps only per-collection extents in memory."""

    def __init__(self, seed: int, collections: int):
        self.rng = random.Random(seed)
        self.plans = collection_plan(collections, self.rng)
        self.extents = {plan["id"]: Extent() for plan in self.plans}
        self.mission = 0
        self.range_items = 0
        self.split_items = 0

    def missions(self):
        """Yield items, mission by mission, without end."""
        rng = self.rng
        while True:
            self.mission += 1
            plan = self.plans[rng.randrange(len(self.plans))]
            city_name, _country, _continent, city_lon, city_lat = CITIES[rng.choice(plan["cities"])]
            platform, instruments, band_set = PLATFORMS[rng.randrange(len(PLATFORMS))]
            oblique = rng.random() < 0.25
            # A mission starts in daylight hours (06:00-17:00 UTC, not adjusted per city) on a random day.
            day = rng.randrange(SPAN_SECONDS // 86_400)
            start = day * 86_400 + rng.randrange(6 * 3_600, 17 * 3_600)
            captures = rng.randint(3, 40)
            # The mission flies around one spot of the city, within CITY_RADIUS_M of its centre.
            distance = CITY_RADIUS_M * math.sqrt(rng.random())
            bearing = rng.uniform(0, 2 * math.pi)
            metres_per_degree_lon = METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(city_lat))
            site_lon = city_lon + distance * math.sin(bearing) / metres_per_degree_lon
            site_lat = city_lat + distance * math.cos(bearing) / METRES_PER_DEGREE_LAT
            gsd_base = rng.uniform(0.015, 0.05)
            date = iso(start)[:10].replace("-", "")
            prefix = f"{city_name}-{date}-m{self.mission:07d}"
            for capture in range(captures):
                # About 5 % of items are merged products over a time range.
                merged = rng.random() < 0.05
                when = start + capture * rng.randint(60, 240)
                yield self.make_item(
                    plan, city_name, utm_epsg(city_lon, city_lat), site_lon, site_lat, metres_per_degree_lon,
                    f"{prefix}-c{capture:03d}", when, merged, platform, instruments, band_set, oblique, gsd_base,
                )

    def make_item(self, plan, city_name, epsg, site_lon, site_lat, metres_per_degree_lon, item_id, when, merged,
                  platform, instruments, band_set, oblique, gsd_base) -> dict:
        rng = self.rng
        # Area 0.1-2 km², log-uniform, with an aspect ratio of 1 to 2.5.
        area = math.exp(rng.uniform(math.log(100_000.0), math.log(2_000_000.0)))
        aspect = rng.uniform(1.0, 2.5)
        width = math.sqrt(area * aspect)
        height = area / width
        offset = 1_500.0
        lon = site_lon + rng.uniform(-offset, offset) / metres_per_degree_lon
        lat = site_lat + rng.uniform(-offset, offset) / METRES_PER_DEGREE_LAT
        corners = rectangle(lon, lat, width, height, rng.uniform(0.0, 90.0))
        xs = [x for x, _ in corners]
        if min(xs) < 180.0 < max(xs):
            # A part narrower than 5 % of the footprint would be a sliver, so such a
            # footprint moves to the side that contains most of it instead of being split.
            sliver = 0.05 * (max(xs) - min(xs))
            if max(xs) - 180.0 < sliver:
                corners = [(x - (max(xs) - 180.0) - 1e-6, y) for x, y in corners]
            elif 180.0 - min(xs) < sliver:
                corners = [(x + (180.0 - min(xs)) + 1e-6, y) for x, y in corners]
            else:
                self.split_items += 1
        geometry, bbox = footprint_geometry(corners)

        properties: dict = {}
        if merged:
            span = rng.randint(1_800, 3 * 86_400)
            properties["datetime"] = None
            properties["start_datetime"] = iso(when)
            properties["end_datetime"] = iso(when + span)
            end = when + span
            self.range_items += 1
        else:
            properties["datetime"] = iso(when)
            end = when
        properties["created"] = iso(end + rng.randint(3_600, 10 * 86_400))
        properties["gsd"] = round(min(0.05, max(0.015, gsd_base + rng.uniform(-0.002, 0.002))), 4)
        properties["platform"] = platform
        properties["instruments"] = list(instruments)
        properties["constellation"] = "drone-survey"
        properties["mission"] = plan["id"]
        if oblique:
            properties["view:off_nadir"] = round(rng.uniform(20.0, 45.0), 1)
            properties["view:azimuth"] = round(rng.uniform(0.0, 360.0), 1)
        else:
            properties["view:off_nadir"] = 0
        properties["proj:epsg"] = epsg
        properties["eo:bands"] = BANDS[band_set]

        self.extents[plan["id"]].add(city_name, corners, when, end)
        prefix = f"s3://drone-survey-archive/{plan['id']}/{city_name}/{item_id}"
        return {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": ITEM_EXTENSIONS,
            "id": item_id,
            "collection": plan["id"],
            "geometry": geometry,
            "bbox": [round(v, 7) for v in bbox],
            "properties": properties,
            "links": [],
            "assets": make_assets(prefix, oblique, merged, "zenmuse-l2" in instruments, rng),
        }

    def collection(self, plan: dict) -> dict:
        extent = self.extents[plan["id"]]
        start = iso(extent.start) if extent.start is not None else iso(0)
        end = iso(extent.end) if extent.end is not None else iso(SPAN_SECONDS - 1)
        return {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "stac_extensions": COLLECTION_EXTENSIONS,
            "id": plan["id"],
            "title": plan["title"],
            "description": plan["description"] + " Synthetic data for benchmarks; no asset exists.",
            "keywords": ["drone", "uav", "orthomosaic", "point cloud", "gaussian splat"],
            "license": "CC-BY-4.0",
            "providers": [
                {"name": "Example Drone Surveys", "roles": ["producer", "processor", "host"]},
            ],
            "extent": {
                "spatial": {"bbox": extent.bboxes()},
                "temporal": {"interval": [[start, end]]},
            },
            "summaries": {
                "platform": [p[0] for p in PLATFORMS],
                "gsd": {"minimum": 0.015, "maximum": 0.05},
                "view:off_nadir": {"minimum": 0, "maximum": 45},
            },
            "item_assets": item_assets_template(),
            "links": [],
        }


def write_catalog(seed: int, items: int, collections: int, out: Path) -> dict:
    """Write the catalog into out and return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        manifest_path.unlink()
    generator = Generator(seed, collections)
    partial = out / "items.ndjson.partial"
    written = 0
    size = 0
    with partial.open("w", encoding="utf-8") as stream:
        for item in generator.missions():
            if written == items:
                break
            line = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
            stream.write(line)
            stream.write("\n")
            written += 1
            size += len(line) + 1
    os.replace(partial, out / "items.ndjson")

    for plan in generator.plans:
        folder = out / plan["id"]
        folder.mkdir(exist_ok=True)
        with (folder / "collection.json").open("w", encoding="utf-8") as stream:
            json.dump(generator.collection(plan), stream, indent=2)
            stream.write("\n")

    manifest = {
        "generator": "bench/generate.py",
        "seed": seed,
        "items": written,
        "collections": [plan["id"] for plan in generator.plans],
        "items_per_collection": {plan["id"]: generator.extents[plan["id"]].items for plan in generator.plans},
        "range_items": generator.range_items,
        "antimeridian_split_items": generator.split_items,
        "items_ndjson_bytes": size,
        "mean_item_bytes": round(size / written) if written else 0,
    }
    # The manifest is written last, so its presence marks a complete catalog.
    with manifest_path.open("w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2)
        stream.write("\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--items", type=int, required=True, help="number of items to write")
    parser.add_argument("--collections", type=int, default=8, help="number of collections (default 8)")
    parser.add_argument("--out", type=Path, required=True, help="output folder, created when missing")
    args = parser.parse_args(argv)
    if args.items < 1:
        parser.error(f"--items must be at least 1, got {args.items}")
    if args.collections < 1:
        parser.error(f"--collections must be at least 1, got {args.collections}")
    manifest = write_catalog(args.seed, args.items, args.collections, args.out)
    print(
        f"wrote {manifest['items']} items ({manifest['range_items']} range items, "
        f"{manifest['antimeridian_split_items']} split at the antimeridian, "
        f"{manifest['mean_item_bytes']} bytes each on average) in {len(manifest['collections'])} "
        f"collections to {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
