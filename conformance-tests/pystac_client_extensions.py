"""Check the search extensions of a STAC API through pystac-client.

Usage: python pystac_client_extensions.py ROOT_URL STAC_DATA_DIR

The server at ROOT_URL must serve STAC_DATA_DIR/naip and STAC_DATA_DIR/joplin
(plus any other collections). Each check runs a search the way a pystac-client
user writes it (filter in cql2-text and cql2-json, sortby, fields, query, free
text in collection search), follows every page, and compares the result with
what the data files say.

Prints one line per check and a closing line 'N passed, N failed'. Exit status
1 if any check failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pystac_client import Client

PASSED = 0
FAILED = 0


def check(name: str, ok: bool, detail: str = "") -> None:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS {name}" + (f": {detail}" if detail else ""), flush=True)
    else:
        FAILED += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)


def load_items(data_dir: Path, collection: str) -> list[dict]:
    with (data_dir / collection / "items.ndjson").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def ids_of(search) -> list[str]:
    return [item["id"] for item in search.items_as_dicts()]


def compare(name: str, got: list[str], expected: set[str]) -> None:
    missing = sorted(expected - set(got))[:3]
    extra = sorted(set(got) - expected)[:3]
    ok = set(got) == expected and len(got) == len(set(got))
    check(name, ok and len(expected) > 0, f"{len(got)} items, expected {len(expected)}; missing {missing}, extra {extra}")


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: python pystac_client_extensions.py ROOT_URL STAC_DATA_DIR", file=sys.stderr)
        return 2
    root_url, data_dir = sys.argv[1], Path(sys.argv[2])
    naip = load_items(data_dir, "naip")
    joplin = load_items(data_dir, "joplin")
    client = Client.open(root_url)

    # Filter: cql2-text over GET and cql2-json over POST.
    expected = {i["id"] for i in naip if i["properties"].get("gsd") == 0.6 and i["properties"].get("naip:year") == "2019"}
    for method in ("GET", "POST"):
        search = client.search(
            collections=["naip"],
            filter="gsd = 0.6 AND \"naip:year\" = '2019'",
            filter_lang="cql2-text",
            method=method,
            limit=50,
        )
        compare(f"filter cql2-text {method}", ids_of(search), expected)
    cql2_json = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "gsd"}, 0.6]},
            {"op": "=", "args": [{"property": "naip:year"}, "2019"]},
        ],
    }
    search = client.search(collections=["naip"], filter=cql2_json, filter_lang="cql2-json", method="POST", limit=50)
    compare("filter cql2-json POST", ids_of(search), expected)

    # Sort: gsd descending, then id; every page in order, no item twice.
    for method in ("GET", "POST"):
        search = client.search(collections=["naip"], sortby="-gsd,+id", method=method, limit=100)
        items = list(search.items_as_dicts())
        keys = [(-item["properties"]["gsd"], item["id"]) for item in items]
        check(f"sortby {method}", keys == sorted(keys) and len(items) == len(naip), f"{len(items)} items")

    # Fields: only what was asked for comes back.
    search = client.search(collections=["joplin"], fields=["id", "properties.proj:epsg", "-links"], limit=10)
    items = list(search.items_as_dicts())
    shapes_ok = all("assets" not in item and "proj:epsg" in item.get("properties", {}) for item in items)
    check("fields include and exclude", len(items) == len(joplin) and shapes_ok, f"{len(items)} items")

    # Query extension.
    expected = {i["id"] for i in naip if i["properties"].get("gsd", 99) < 1}
    search = client.search(collections=["naip"], query={"gsd": {"lt": 1}}, limit=100)
    compare("query gsd lt 1", ids_of(search), expected)
    expected = {i["id"] for i in naip if i["properties"].get("naip:year") in ("2019", "2021")}
    search = client.search(collections=["naip"], query=["naip:year=2019"], limit=100)
    compare("query list form", ids_of(search), {i["id"] for i in naip if i["properties"].get("naip:year") == "2019"})
    search = client.search(collections=["naip"], query={"naip:year": {"in": ["2019", "2021"]}}, method="POST", limit=100)
    compare("query in", ids_of(search), expected)

    # Collection search (pystac-client 0.9.1 has no q for item searches).
    result = client.collection_search(q="joplin")
    found = [c["id"] for c in result.collections_as_dicts()]
    check("collection search q", found == ["joplin"], f"{found}")
    # Hawaii lies in one of the NAIP extent's boxes, outside Joplin's, and inside the global scratch collection.
    result = client.collection_search(bbox=[-155.5, 19.5, -155.0, 20.0], limit=1)
    found = sorted(c["id"] for c in result.collections_as_dicts())
    check("collection search bbox with paging", "naip" in found and "joplin" not in found, f"{found}")

    print(f"{PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
