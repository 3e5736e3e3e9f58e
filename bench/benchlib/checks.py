"""Correctness checks of the fixed queries against the results computed from the data.

Every server must return 200 and exactly the expected items. stacd must also
return them in its documented order (datetime descending, then collection and
id); for the peer, whose tie-breaking order is its own, the check is that
datetimes never increase. A server that rejects CQL2 with a 400 that says it
is not supported passes the CQL2 check as "not supported".
"""

from __future__ import annotations

import json

from .servers import Client, local_path


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures: list[str] = []
        self.notes: dict[tuple[str, str], str] = {}

    def record(self, server: str, name: str, ok: bool, detail: str = "") -> bool:
        line = f"{'PASS' if ok else 'FAIL'} {server}: {name}" + (f" ({detail})" if detail else "")
        print(line, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(line)
        return ok


def fetch_json(client: Client, method: str, path: str, body: dict | None = None):
    status, headers, data, _ = client.request(method, path, body)
    try:
        document = json.loads(data) if data else None
    except json.JSONDecodeError:
        document = None
    return status, headers, document, data


def next_link(document: dict):
    for link in document.get("links", []):
        if link.get("rel") == "next":
            return link
    return None


def follow(client: Client, method: str, path: str, body: dict | None, max_pages: int):
    """Read pages by their next links; return (features, first status, error text or None, pages)."""
    features = []
    pages = 0
    first_status = None
    while pages < max_pages:
        status, _, document, data = fetch_json(client, method, path, body)
        if first_status is None:
            first_status = status
        if status != 200 or not isinstance(document, dict):
            return features, first_status, f"status {status} on page {pages + 1}: {data[:300]!r}", pages
        pages += 1
        features.extend(document.get("features", []))
        link = next_link(document)
        if link is None:
            return features, first_status, None, pages
        path = local_path(link["href"])
        if link.get("method", "GET").upper() == "POST":
            method = "POST"
            next_body = link.get("body", {})
            body = dict(body or {}, **next_body) if link.get("merge") else next_body
        else:
            method, body = "GET", None
    return features, first_status, None, pages


def sort_key_of(feature: dict) -> str:
    properties = feature.get("properties", {})
    return properties.get("datetime") or properties.get("start_datetime") or ""


def normalise_time(value: str) -> str:
    """Return an RFC 3339 UTC timestamp in the generator's form (seconds, Z)."""
    value = value.replace("+00:00", "Z")
    if "." in value:
        value = value.split(".")[0] + "Z"
    return value


def first_difference(got: list, want: list) -> int | None:
    for index, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return index
    return None if len(got) == len(want) else min(len(got), len(want))


def check_order(results: Results, server: str, name: str, features: list[dict], expected_first, exact: bool) -> bool:
    if exact:
        got = [f["id"] for f in features]
        want = [row[2] for row in expected_first[: len(features)]]
        difference = first_difference(got, want)
        return results.record(server, f"{name}: order", difference is None,
                              "" if difference is None else f"first difference at position {difference + 1}")
    times = [normalise_time(sort_key_of(f)) for f in features]
    ok = all(a >= b for a, b in zip(times, times[1:]))
    return results.record(server, f"{name}: datetimes do not increase", ok)


def run_checks(server: str, port: int, scenarios: dict, exact_order: bool, results: Results,
               antimeridian_counts: bool = True) -> None:
    """Run every check against one server. With antimeridian_counts false, the antimeridian
    bbox check is printed as a NOTE and not counted (for a server known to lack that feature)."""
    client = Client(port)
    expected = scenarios["expected"]
    checks = scenarios["checks"]

    # Items by id.
    for request in checks["item"]:
        status, _, document, _ = fetch_json(client, "GET", request["path"])
        ok = status == 200 and isinstance(document, dict) and document.get("id") == request["id"] \
            and document.get("collection") == request["collection"]
        results.record(server, f"item {request['id']}", ok, f"status {status}")

    # Spatial searches, read to the last page.
    for scenario in ("bbox_small", "bbox_month", "intersects", "antimeridian"):
        for index, request in enumerate(checks[scenario]):
            want = expected["c:" + scenario][index]
            features, status, error, pages = follow(client, request["method"], request["path"],
                                                    request.get("body"), max_pages=500)
            name = f"{scenario} #{index + 1} ({want['count']} items)"
            if error:
                results.record(server, name, False, error)
                continue
            ids = [f["id"] for f in features]
            ok = sorted(ids) == want["ids"]
            detail = f"{len(ids)} returned in {pages} pages, {len(set(ids) - set(want['ids']))} unexpected, " \
                     f"{len(set(want['ids']) - set(ids))} missing, {len(ids) - len(set(ids))} repeated"
            if scenario == "antimeridian" and not antimeridian_counts:
                print(f"NOTE {server}: {name}: {'as expected' if ok else 'wrong'}, not counted ({detail})", flush=True)
                results.notes[(server, "antimeridian")] = detail
                continue
            results.record(server, name, ok, detail)
            check_order(results, server, name, features, want["first"], exact_order)
            if scenario == "bbox_small":
                # The benchmark form of the same query: the first page of 10.
                status, _, document, _ = fetch_json(client, "GET", request["path"])
                page = [f["id"] for f in (document or {}).get("features", [])]
                results.record(server, f"{name}: first page", status == 200 and len(page) == min(10, want["count"]),
                               f"{len(page)} items")

    # Paging 100 pages deep.
    for index, request in enumerate(checks["walk"]):
        want = expected["walk"][index]
        features, status, error, pages = follow(client, "GET", request["path"], None, max_pages=100)
        name = f"paging {request['path']} (100 pages)"
        if error:
            results.record(server, name, False, error)
            continue
        ids = [f["id"] for f in features]
        wanted = min(1000, want["count"])
        ok = len(ids) == wanted and len(set(ids)) == len(ids)
        if exact_order:
            ok = ok and ids == [row[2] for row in want["first"][:wanted]]
        elif request["collection"]:
            ok = ok and all(f.get("collection") == request["collection"] for f in features)
        results.record(server, name, ok, f"{len(ids)} items, {len(ids) - len(set(ids))} repeated")
        check_order(results, server, name, features, want["first"], exact_order)

    # One page of 1000.
    for index, request in enumerate(checks["limit_1000"]):
        want = expected["limit_1000"][index]
        status, _, document, _ = fetch_json(client, "GET", request["path"])
        features = (document or {}).get("features", []) if status == 200 else []
        name = f"{request['path']}"
        wanted = min(1000, want["count"])
        results.record(server, name, status == 200 and len(features) == wanted,
                       f"status {status}, {len(features)} items, {wanted} expected")
        if features:
            check_order(results, server, name, features, want["first"], exact_order)

    # Collections.
    status, _, document, _ = fetch_json(client, "GET", "/collections")
    got = sorted(c.get("id") for c in (document or {}).get("collections", []))
    results.record(server, "GET /collections", status == 200 and got == expected["collections"],
                   f"status {status}, {len(got)} collections")

    # CQL2 filter.
    for index, request in enumerate(checks["cql2"]):
        want = expected["c:cql2"][index]
        name = f"CQL2 {request['path']}"
        features, status, error, pages = follow(client, "GET", request["path"], None, max_pages=500)
        if status == 400 and error and "not" in error.lower() and "support" in error.lower():
            results.record(server, name + ": not supported (400)", True)
            results.notes[(server, "cql2")] = error
            continue
        if error:
            results.record(server, name, False, error)
            continue
        ids = sorted(f["id"] for f in features)
        results.record(server, name, ids == want["ids"], f"{len(ids)} returned, {want['count']} expected")
    client.close()
