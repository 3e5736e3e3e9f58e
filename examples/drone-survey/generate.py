#!/usr/bin/env python3
"""Generate the drone-survey example catalog: collection.json and items/<id>.json.

The survey is fictional: a DJI Matrice 350 RTK mapping the old town, the Gilão
river banks and the salt pans of Tavira, Portugal, over three days in May 2024.
Footprints are a few hundred metres across, in WGS 84 longitude/latitude. All
asset hrefs point into a made-up S3 bucket, so nothing here can be downloaded.

The output is deterministic (no clock, no randomness), so rerunning the script
reproduces the committed files byte for byte:

    python3 examples/drone-survey/generate.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLLECTION_ID = "drone-survey"
BUCKET = "s3://example-drone-surveys/tavira-2024"
STAC_VERSION = "1.0.0"
ITEM_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]
# WGS 84 / UTM zone 29N, the zone that contains Tavira (12 to 6 degrees west).
UTM_EPSG = 32629
PLATFORM = "dji-matrice-350-rtk"
CAMERA = "zenmuse-p1"
LIDAR = "zenmuse-l2"

# Metres per degree of latitude, and of longitude at the equator (WGS 84, rounded).
METRES_PER_DEGREE_LAT = 111_132.0
METRES_PER_DEGREE_LON_EQUATOR = 111_320.0

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
COPC = "application/vnd.laszip+copc"
# The Gaussian splats are PLY files. PLY has no widely used media type, so the
# splat asset uses the generic binary one.
SPLAT = "application/octet-stream"

ITEM_ASSETS = {
    "ortho": {"title": "RGB orthomosaic", "type": COG, "roles": ["data", "visual"]},
    "dsm": {"title": "Digital surface model (metres above the WGS 84 ellipsoid)", "type": COG, "roles": ["data", "elevation"]},
    "pointcloud": {"title": "Point cloud (COPC)", "type": COPC, "roles": ["data", "pointcloud"]},
    "splat": {"title": "3D Gaussian splat (PLY)", "type": SPLAT, "roles": ["data", "3d"]},
    "thumbnail": {"title": "Thumbnail", "type": "image/png", "roles": ["thumbnail"]},
}


def footprint(lon: float, lat: float, width_m: float, height_m: float, rotation_deg: float) -> list[list[float]]:
    """Return a closed ring (counterclockwise) for a rectangle centred on lon/lat.

    The rectangle is width_m by height_m metres, rotated counterclockwise by
    rotation_deg, which is how a flight block aligned with a street grid looks.
    """
    metres_per_degree_lon = METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(lat))
    angle = math.radians(rotation_deg)
    corners = [(-width_m / 2, -height_m / 2), (width_m / 2, -height_m / 2),
               (width_m / 2, height_m / 2), (-width_m / 2, height_m / 2)]
    ring = []
    for x, y in corners:
        east = x * math.cos(angle) - y * math.sin(angle)
        north = x * math.sin(angle) + y * math.cos(angle)
        ring.append([round(lon + east / metres_per_degree_lon, 7), round(lat + north / METRES_PER_DEGREE_LAT, 7)])
    ring.append(list(ring[0]))
    return ring


def bbox_of(geometry: dict) -> list[float]:
    if geometry["type"] == "Polygon":
        positions = [p for ring in geometry["coordinates"] for p in ring]
    else:
        positions = [p for polygon in geometry["coordinates"] for ring in polygon for p in ring]
    lons = [p[0] for p in positions]
    lats = [p[1] for p in positions]
    return [min(lons), min(lats), max(lons), max(lats)]


def make_assets(item_id: str, with_splat: bool) -> dict:
    prefix = f"{BUCKET}/{item_id}"
    files = {
        "ortho": "ortho.tif",
        "dsm": "dsm.tif",
        "pointcloud": "points.copc.laz",
        "splat": "splat.ply",
        "thumbnail": "thumbnail.png",
    }
    assets = {}
    for key, name in files.items():
        if key == "splat" and not with_splat:
            continue
        assets[key] = {"href": f"{prefix}/{name}", **ITEM_ASSETS[key]}
    return assets


def make_item(
    item_id: str,
    title: str,
    geometry: dict,
    when: str | tuple[str, str],
    gsd: float,
    off_nadir: float,
    azimuth: float | None = None,
) -> dict:
    """Build one Item. `when` is an instant or a (start, end) range for merged products."""
    oblique = off_nadir > 0
    properties: dict = {"title": title}
    if isinstance(when, tuple):
        properties["datetime"] = None
        properties["start_datetime"], properties["end_datetime"] = when
    else:
        properties["datetime"] = when
    properties["gsd"] = gsd
    properties["platform"] = PLATFORM
    # The point cloud of nadir blocks comes from the LiDAR, that of oblique blocks from photogrammetry.
    properties["instruments"] = [CAMERA] if oblique else [CAMERA, LIDAR]
    properties["view:off_nadir"] = off_nadir
    if azimuth is not None:
        properties["view:azimuth"] = azimuth
    properties["proj:epsg"] = UTM_EPSG

    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": ITEM_EXTENSIONS,
        "id": item_id,
        "collection": COLLECTION_ID,
        "geometry": geometry,
        "bbox": bbox_of(geometry),
        "properties": properties,
        # STAC 1.0.0 requires a "collection" link on an item that names its collection.
        "links": [
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "root", "href": "../collection.json", "type": "application/json"},
        ],
        "assets": make_assets(item_id, with_splat=oblique or isinstance(when, tuple)),
    }


def polygon(lon: float, lat: float, width_m: float, height_m: float, rotation_deg: float = 0.0) -> dict:
    return {"type": "Polygon", "coordinates": [footprint(lon, lat, width_m, height_m, rotation_deg)]}


def build_items() -> list[dict]:
    items = []

    # Day 1: four nadir mapping blocks in a 2 x 2 grid over the old town, 300 m squares.
    west, south = -7.6525, 37.1245
    step_lon = 300 / (METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(south)))
    step_lat = 300 / METRES_PER_DEGREE_LAT
    times = ["09:04:12", "09:31:40", "09:58:03", "10:26:55"]
    for index, flight_time in enumerate(times):
        row, column = divmod(index, 2)
        lon = west + (column + 0.5) * step_lon
        lat = south + (row + 0.5) * step_lat
        item_id = f"tavira-20240514-nadir-{index + 1:02d}"
        items.append(make_item(
            item_id,
            f"Old town mapping block {index + 1} (row {row + 1}, column {column + 1})",
            polygon(lon, lat, 310, 310, rotation_deg=0.0),
            f"2024-05-14T{flight_time}Z",
            gsd=0.02 if row == 0 else 0.025,
            off_nadir=0,
        ))

    # Day 1, merged: the orthomosaic of the whole morning over the central blocks.
    items.append(make_item(
        "tavira-20240514-mosaic-old-town",
        "Old town orthomosaic merged from the morning flights",
        polygon(-7.6491, 37.1272, 600, 600, rotation_deg=0.0),
        ("2024-05-14T09:04:12Z", "2024-05-14T10:41:37Z"),
        gsd=0.025,
        off_nadir=0,
    ))

    # Day 2: three oblique orbits around landmarks, camera tilted 30 degrees.
    obliques = [
        ("tavira-20240515-oblique-01", "Oblique orbit of the castle and Santa Maria church",
         -7.6512, 37.1262, 260, 240, 15.0, "08:47:30", 0.035, 45.0),
        ("tavira-20240515-oblique-02", "Oblique orbit of the Roman bridge",
         -7.6486, 37.1276, 220, 280, 30.0, "09:22:05", 0.038, 135.0),
        ("tavira-20240515-oblique-03", "Oblique orbit of the market hall and riverside",
         -7.6470, 37.1258, 300, 200, -10.0, "10:05:51", 0.04, 225.0),
    ]
    for item_id, title, lon, lat, width, height, rotation, flight_time, gsd, azimuth in obliques:
        items.append(make_item(
            item_id, title, polygon(lon, lat, width, height, rotation),
            f"2024-05-15T{flight_time}Z", gsd=gsd, off_nadir=30, azimuth=azimuth,
        ))

    # Day 2: one flight that mapped both banks of the Gilão river but not the water between them.
    east_bank = footprint(-7.6462, 37.1300, 180, 420, rotation_deg=-8.0)
    west_bank = footprint(-7.6491, 37.1302, 160, 420, rotation_deg=-8.0)
    items.append(make_item(
        "tavira-20240515-river-banks",
        "Gilão river banks, upstream of the Roman bridge",
        {"type": "MultiPolygon", "coordinates": [[west_bank], [east_bank]]},
        "2024-05-15T11:12:40Z",
        gsd=0.03,
        off_nadir=0,
    ))

    # Day 3: nadir blocks over the salt pans east of town, then their merged mosaic.
    salt_pans = [
        ("tavira-20240521-salt-pans-01", -7.6388, 37.1221, "07:58:10"),
        ("tavira-20240521-salt-pans-02", -7.6352, 37.1221, "08:26:44"),
    ]
    for number, (item_id, lon, lat, flight_time) in enumerate(salt_pans, start=1):
        items.append(make_item(
            item_id, f"Salt pans mapping block {number}",
            polygon(lon, lat, 320, 300, rotation_deg=20.0),
            f"2024-05-21T{flight_time}Z", gsd=0.03, off_nadir=0,
        ))
    items.append(make_item(
        "tavira-20240521-mosaic-salt-pans",
        "Salt pans orthomosaic merged from both blocks",
        polygon(-7.6370, 37.1221, 640, 330, rotation_deg=20.0),
        ("2024-05-21T07:58:10Z", "2024-05-21T08:53:29Z"),
        gsd=0.03,
        off_nadir=0,
    ))
    return items


def item_interval(item: dict) -> tuple[str, str]:
    properties = item["properties"]
    if properties["datetime"] is not None:
        return properties["datetime"], properties["datetime"]
    return properties["start_datetime"], properties["end_datetime"]


def build_collection(items: list[dict]) -> dict:
    boxes = [item["bbox"] for item in items]
    union = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    # ISO 8601 UTC strings of one format sort chronologically.
    intervals = [item_interval(item) for item in items]
    start = min(i[0] for i in intervals)
    end = max(i[1] for i in intervals)
    gsds = [item["properties"]["gsd"] for item in items]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": ["https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"],
        "id": COLLECTION_ID,
        "title": "Tavira drone survey, May 2024",
        "description": (
            "Fictional example survey: RTK drone flights over the old town, the Gilão river banks and the "
            "salt pans of Tavira, Portugal, on 14, 15 and 21 May 2024. Nadir blocks carry an orthomosaic, a "
            "digital surface model and a LiDAR point cloud; oblique orbits and merged mosaics add a 3D "
            "Gaussian splat. Asset hrefs point into a made-up bucket."
        ),
        "keywords": ["drone", "uav", "orthomosaic", "dsm", "point cloud", "gaussian splat", "Tavira", "Portugal"],
        "license": "CC-BY-4.0",
        "providers": [
            {"name": "Ria Formosa Aerial Mapping (fictional)", "roles": ["producer", "processor"],
             "url": "https://example.com/ria-formosa-aerial-mapping"},
            {"name": "Example Drone Surveys archive (fictional)", "roles": ["host"],
             "url": "https://example.com/drone-surveys"},
        ],
        "extent": {
            "spatial": {"bbox": [union]},
            "temporal": {"interval": [[start, end]]},
        },
        "summaries": {
            "platform": [PLATFORM],
            "instruments": [CAMERA, LIDAR],
            "gsd": {"minimum": min(gsds), "maximum": max(gsds)},
            "view:off_nadir": [0, 30],
            "proj:epsg": [UTM_EPSG],
        },
        "item_assets": ITEM_ASSETS,
        "links": [
            {"rel": "root", "href": "./collection.json", "type": "application/json"},
            {"rel": "license", "href": "https://creativecommons.org/licenses/by/4.0/", "type": "text/html",
             "title": "Creative Commons Attribution 4.0 International"},
            *({"rel": "item", "href": f"./items/{item['id']}.json", "type": "application/geo+json"} for item in items),
        ],
    }


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    items = build_items()
    items_dir = HERE / "items"
    items_dir.mkdir(exist_ok=True)
    for stale in items_dir.glob("*.json"):
        stale.unlink()
    for item in items:
        write_json(items_dir / f"{item['id']}.json", item)
    write_json(HERE / "collection.json", build_collection(items))
    print(f"wrote {HERE / 'collection.json'} and {len(items)} items in {items_dir}")


if __name__ == "__main__":
    main()
