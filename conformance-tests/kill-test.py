#!/usr/bin/env python3
"""Kill stacd with SIGKILL in the middle of bulk writes and check the store afterwards.

Usage: conformance-tests/kill-test.py BINARY STORE_URL

BINARY is a stacd executable. STORE_URL is a fresh store, sqlite://PATH or
postgres://USER@HOST:PORT/DB, that does not yet contain the collections
kill-api and kill-load. The script writes to it and leaves its data there.

1. API: `BINARY serve` gets 20 bulk POSTs of 500 items each (10 000 items) from
   one client thread. It is killed with SIGKILL after a random number (5 to 10)
   of responses plus a random delay shorter than about two requests, so the kill
   often lands while a request is in flight. After a restart on the same store,
   every batch answered with 201 must be present in full, every other batch must
   be fully present (committed, but the response was lost) or fully absent, and
   no id may appear twice.
2. Loader: `BINARY load --batch-size 500` reads an NDJSON file of 10 000 items
   and is killed with SIGKILL once a separate `stacd serve` on the same store
   counts a random number (2 000 to 7 000) of committed items or more.
   Afterwards the item count must be a multiple of 500, every batch complete or
   absent, no item seen before the kill lost, and `BINARY load --upsert` must
   complete the collection to exactly 10 000 items.

NOTE: SIGKILL ends only the process, and the operating system still writes out
what the process handed to it, so these checks do not cover power loss.

Servers listen on 127.0.0.1 at free ports and every request goes there. Prints
one line per check and a closing line 'N passed, N failed'. A step that cannot
run, such as a server that is not healthy within 60 s after the kill, ends the
run with an ERROR line and counts as a failure. Exit status 1 on any failure, 2
on a usage error. Logs of the servers and loaders stay in a temporary folder,
whose path is printed when something failed.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from stacd_process import HOST, STOP_TIMEOUT_S, Checks, Server, SetupError, child_environment, finish, new_token

# Request logs at info level show where each batch ended.
RUST_LOG = "info,sqlx=warn"

BATCHES = 20
BATCH_SIZE = 500
TOTAL_ITEMS = BATCHES * BATCH_SIZE
API_COLLECTION = "kill-api"
LOAD_COLLECTION = "kill-load"

REQUEST_TIMEOUT_S = 60.0
# The loader must finish its --upsert run within this time.
LOAD_TIMEOUT_S = 120.0
# The count of committed items at which the loader is killed is drawn from this range.
LOAD_KILL_RANGE = (2000, 7000)
LOAD_POLL_INTERVAL_S = 0.01
MAX_PAGES = 100


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    token: str | None = None,
    timeout: float = REQUEST_TIMEOUT_S,
) -> tuple[int, bytes]:
    """Send one request on a new connection and return the status and the body."""
    headers = {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def same_origin_path(port: int, href: str) -> str:
    """Return the path and query of a link, after checking that it points at the local server."""
    parsed = urllib.parse.urlsplit(href)
    if parsed.hostname != HOST or parsed.port != port:
        raise SetupError(f"a next link points away from {HOST}:{port}: {href}")
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def read_all(port: int, first_path: str) -> tuple[list[dict], int | None]:
    """Follow `next` links from first_path, and return every feature and the first page's numberMatched."""
    features: list[dict] = []
    number_matched = None
    path: str | None = first_path
    for page in range(MAX_PAGES):
        status, body = request(port, "GET", path)
        if status != 200:
            raise SetupError(f"GET {path} returned {status}: {body[:300]!r}")
        document = json.loads(body)
        if page == 0:
            number_matched = document.get("numberMatched")
        features.extend(document.get("features", []))
        next_links = [link for link in document.get("links", []) if link.get("rel") == "next"]
        if not next_links:
            return features, number_matched
        path = same_origin_path(port, next_links[0]["href"])
    raise SetupError(f"{first_path} had more than {MAX_PAGES} pages")


def collection_count(port: int, collection: str) -> int | None:
    """Return numberMatched of the collection, or None while the collection does not exist."""
    status, body = request(port, "GET", f"/collections/{collection}/items?limit=1", timeout=10)
    if status == 404:
        return None
    if status != 200:
        raise SetupError(f"GET /collections/{collection}/items returned {status}: {body[:300]!r}")
    return json.loads(body)["numberMatched"]


# --- documents ------------------------------------------------------------------------


def collection_document(collection_id: str) -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection_id,
        "description": "Items written by kill-test.py while stacd is killed",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }


def item_id(batch: int, index: int) -> str:
    return f"b{batch:02d}-i{index:03d}"


def item_document(batch: int, index: int, collection: str | None = None) -> dict:
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id(batch, index),
        "geometry": {"type": "Point", "coordinates": [-170 + 17 * batch + index / 50, -60 + index / 5]},
        "properties": {"datetime": "2024-05-14T10:00:00Z", "batch": batch, "counter": 0},
        "assets": {},
    }
    if collection is not None:
        item["collection"] = collection
    return item


def expected_ids() -> set[str]:
    return {item_id(b, i) for b in range(BATCHES) for i in range(BATCH_SIZE)}


def batch_of(feature: dict) -> int | None:
    """Return the batch number from the item's properties, or None when it is missing."""
    batch = feature.get("properties", {}).get("batch")
    return batch if isinstance(batch, int) else None


def check_batches(checks: Checks, label: str, features: list[dict], number_matched: int | None) -> dict[int, int]:
    """Check the ids, duplicates and the all-or-nothing rule per batch, and return the count per batch."""
    ids = [f.get("id") for f in features]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    checks.check(
        f"{label}: no duplicate ids",
        not duplicates,
        f"{len(ids)} items read" if not duplicates else f"{len(duplicates)} duplicate ids, such as {duplicates[:5]}",
    )
    unexpected = sorted(set(ids) - expected_ids())
    checks.check(
        f"{label}: only ids that were written",
        not unexpected,
        f"{len(unexpected)} unexpected ids, such as {unexpected[:5]}" if unexpected else "",
    )
    mismatched = [
        f.get("id")
        for f in features
        if batch_of(f) is None or not str(f.get("id")).startswith(f"b{batch_of(f):02d}-")
    ]
    checks.check(
        f"{label}: each item carries its own batch number",
        not mismatched,
        f"properties.batch does not match the id of {mismatched[:5]}" if mismatched else "",
    )
    checks.check(
        f"{label}: numberMatched equals the items read",
        number_matched == len(set(ids)),
        f"numberMatched {number_matched}, {len(set(ids))} distinct items read",
    )

    per_batch = Counter(batch_of(f) for f in {f.get("id"): f for f in features}.values())
    partial = {b: n for b, n in sorted(per_batch.items()) if n not in (0, BATCH_SIZE)}
    present = sorted(b for b, n in per_batch.items() if n == BATCH_SIZE)
    checks.check(
        f"{label}: no batch partly present",
        not partial,
        f"complete batches {present}" if not partial else f"items per partial batch: {partial}",
    )
    return {b: per_batch.get(b, 0) for b in range(BATCHES)}


# --- API writes -------------------------------------------------------------------------


class BulkClient(threading.Thread):
    """Sends the 20 bulk POSTs in order on one thread and records each outcome.

    outcomes[b] is the HTTP status of batch b, or the text of the connection
    error, or None when the batch was never sent.
    """

    def __init__(self, port: int, token: str, bodies: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.token = token
        self.bodies = bodies
        self.outcomes: list[int | str | None] = [None] * len(bodies)
        self.durations: list[float] = []
        self.responses = 0
        self.changed = threading.Condition()

    def run(self) -> None:
        for batch, body in enumerate(self.bodies):
            started = time.monotonic()
            try:
                status, _ = request(
                    self.port, "POST", f"/collections/{API_COLLECTION}/items", body=body, token=self.token
                )
                outcome: int | str = status
            except (OSError, http.client.HTTPException) as e:
                outcome = f"{type(e).__name__}: {e}"
            with self.changed:
                self.outcomes[batch] = outcome
                if isinstance(outcome, int):
                    self.responses += 1
                    self.durations.append(time.monotonic() - started)
                self.changed.notify_all()
            if not isinstance(outcome, int):
                return


def run_api_test(checks: Checks, binary: str, store_url: str, work: Path) -> None:
    print(f"--- API: {BATCHES} bulk POSTs of {BATCH_SIZE} items, SIGKILL mid-way", flush=True)
    tokens_file = work / "tokens"
    token = new_token(binary, tokens_file, "kill-test", RUST_LOG)
    server = Server(binary, store_url, work / "serve-api-1.log", RUST_LOG, tokens_file)
    try:
        server.wait_healthy()
        for collection in (API_COLLECTION, LOAD_COLLECTION):
            status, _ = request(server.port, "GET", f"/collections/{collection}")
            if status != 404:
                raise SetupError(
                    f"the store already has collection '{collection}' (GET returned {status}); "
                    "use a fresh STORE_URL"
                )
        status, body = request(
            server.port, "POST", "/collections", json.dumps(collection_document(API_COLLECTION)).encode(), token
        )
        if status != 201:
            raise SetupError(f"POST /collections returned {status}: {body[:300]!r}")

        bodies = [
            json.dumps(
                {"type": "FeatureCollection", "features": [item_document(b, i) for i in range(BATCH_SIZE)]}
            ).encode()
            for b in range(BATCHES)
        ]
        client = BulkClient(server.port, token, bodies)
        kill_after = random.randint(5, 10)
        client.start()
        with client.changed:
            client.changed.wait_for(
                lambda: client.responses >= kill_after or not client.is_alive(), timeout=REQUEST_TIMEOUT_S * 2
            )
            mean = sum(client.durations) / max(len(client.durations), 1)
        # Up to about two requests' time, so the kill hits the next request or the one after,
        # sometimes while the transaction commits and sometimes between requests.
        delay = random.uniform(0, min(1.0, 2 * mean))
        time.sleep(delay)
        server.kill()
        client.join(timeout=REQUEST_TIMEOUT_S)
        if client.is_alive():
            raise SetupError(
                f"the client thread still waits for a response {REQUEST_TIMEOUT_S:.0f} s after the server was killed"
            )
    finally:
        server.kill()

    outcomes = client.outcomes
    acknowledged = [b for b, o in enumerate(outcomes) if o == 201]
    lost = [b for b, o in enumerate(outcomes) if isinstance(o, str)]
    unsent = [b for b, o in enumerate(outcomes) if o is None]
    print(
        f"killed pid {server.pid} after {kill_after} responses + {delay * 1000:.0f} ms "
        f"(mean request {mean * 1000:.0f} ms); 201 for batches {acknowledged}, "
        f"no response for {lost}, never sent {unsent}",
        flush=True,
    )
    other = {b: o for b, o in enumerate(outcomes) if isinstance(o, int) and o != 201}
    checks.check(
        "API: every response before the kill is 201",
        not other,
        f"other statuses per batch: {other}" if other else "",
    )
    checks.check(
        "API: the kill landed in the middle of the run",
        len(acknowledged) >= 5 and len(acknowledged) < BATCHES,
        f"{len(acknowledged)} of {BATCHES} batches acknowledged",
    )

    restarted = Server(binary, store_url, work / "serve-api-2.log", RUST_LOG, tokens_file)
    try:
        seconds = restarted.wait_healthy()
        checks.check("API: server restarts on the same store", True, f"healthy after {seconds:.1f} s")
        features, number_matched = read_all(restarted.port, f"/collections/{API_COLLECTION}/items?limit=10000")
        per_batch = check_batches(checks, "API items", features, number_matched)
        missing = {b: per_batch[b] for b in acknowledged if per_batch[b] != BATCH_SIZE}
        checks.check(
            "API: every batch answered with 201 is present in full",
            not missing,
            f"{len(acknowledged)} batches" if not missing else f"items found per acknowledged batch: {missing}",
        )
        committed_unacknowledged = [b for b in lost if per_batch[b] == BATCH_SIZE]
        print(f"batches without a response that were committed anyway: {committed_unacknowledged}", flush=True)
        present_unsent = [b for b in unsent if per_batch[b] != 0]
        checks.check(
            "API: batches never sent are absent",
            not present_unsent,
            f"present: {present_unsent}" if present_unsent else "",
        )

        searched, search_matched = read_all(
            restarted.port, f"/search?collections={API_COLLECTION}&limit=10000"
        )
        search_ids = sorted(f.get("id") for f in searched)
        item_ids = sorted(f.get("id") for f in features)
        checks.check(
            "API: /search returns the same items as /collections/kill-api/items",
            search_ids == item_ids and search_matched == len(item_ids),
            f"search {len(search_ids)} items (numberMatched {search_matched}), items {len(item_ids)}",
        )
    finally:
        restarted.stop()


# --- loader -----------------------------------------------------------------------------


def write_load_files(work: Path) -> tuple[Path, Path]:
    collection_path = work / "collection.json"
    collection_path.write_text(json.dumps(collection_document(LOAD_COLLECTION)))
    items_path = work / "items.ndjson"
    with items_path.open("w") as out:
        for b in range(BATCHES):
            for i in range(BATCH_SIZE):
                out.write(json.dumps(item_document(b, i, LOAD_COLLECTION)) + "\n")
    return collection_path, items_path


def run_load_test(checks: Checks, binary: str, store_url: str, work: Path) -> None:
    print(f"--- loader: stacd load --batch-size {BATCH_SIZE} of {TOTAL_ITEMS} items, SIGKILL mid-way", flush=True)
    collection_path, items_path = write_load_files(work)
    load_command = [
        binary, "load", "--database-url", store_url, "--batch-size", str(BATCH_SIZE),
        str(collection_path), str(items_path),
    ]  # fmt: skip

    watcher = Server(binary, store_url, work / "serve-watch.log", RUST_LOG)
    loader = None
    threshold = random.randint(*LOAD_KILL_RANGE)
    seen = 0
    try:
        watcher.wait_healthy()
        with (work / "load-1.log").open("wb") as log:
            loader = subprocess.Popen(load_command, stdout=log, stderr=subprocess.STDOUT, env=child_environment(RUST_LOG))
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            while time.monotonic() < deadline and loader.poll() is None:
                count = collection_count(watcher.port, LOAD_COLLECTION)
                if count is not None:
                    seen = count
                if seen >= threshold:
                    os.kill(loader.pid, signal.SIGKILL)
                    break
                time.sleep(LOAD_POLL_INTERVAL_S)
            else:
                if loader.poll() is None:
                    raise SetupError(f"the loader did not reach {threshold} items within {LOAD_TIMEOUT_S:.0f} s")
            loader.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if loader is not None and loader.poll() is None:
            os.kill(loader.pid, signal.SIGKILL)
            loader.wait(timeout=STOP_TIMEOUT_S)
        watcher.stop()

    print(f"loader pid {loader.pid}: {seen} items counted when the kill was sent (threshold {threshold})", flush=True)
    checks.check(
        "loader: killed by SIGKILL while running",
        loader.returncode == -signal.SIGKILL,
        f"exit status {loader.returncode}"
        + ("" if loader.returncode == -signal.SIGKILL else f"; see {work / 'load-1.log'}"),
    )

    inspector = Server(binary, store_url, work / "serve-load.log", RUST_LOG)
    try:
        seconds = inspector.wait_healthy()
        checks.check("loader: server starts on the store after the kill", True, f"healthy after {seconds:.1f} s")
        features, number_matched = read_all(inspector.port, f"/collections/{LOAD_COLLECTION}/items?limit=10000")
        count = len({f.get("id") for f in features})
        check_batches(checks, "loaded items", features, number_matched)
        checks.check(
            "loader: item count is a multiple of the batch size",
            count % BATCH_SIZE == 0,
            f"{count} items",
        )
        checks.check("loader: no item counted before the kill is lost", count >= seen, f"{seen} counted, {count} now")
        checks.check("loader: the kill landed before the last batch", count < TOTAL_ITEMS, f"{count} items")

        upsert = subprocess.run(
            load_command[:2] + ["--upsert"] + load_command[2:],
            capture_output=True,
            text=True,
            timeout=LOAD_TIMEOUT_S,
            env=child_environment(RUST_LOG),
        )
        (work / "load-2.log").write_text(upsert.stdout + upsert.stderr)
        checks.check(
            "loader: load --upsert after the kill succeeds",
            upsert.returncode == 0,
            upsert.stdout.strip()[-300:]
            if upsert.returncode == 0
            else f"exit status {upsert.returncode}: {upsert.stdout.strip()[-300:]} {upsert.stderr.strip()[-500:]}",
        )
        features, number_matched = read_all(inspector.port, f"/collections/{LOAD_COLLECTION}/items?limit=10000")
        ids = [f.get("id") for f in features]
        checks.check(
            "loader: load --upsert completes to exactly 10 000 items",
            len(ids) == TOTAL_ITEMS and set(ids) == expected_ids() and number_matched == TOTAL_ITEMS,
            f"{len(ids)} items read, {len(set(ids))} distinct, numberMatched {number_matched}",
        )
    finally:
        inspector.stop()


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    binary, store_url = sys.argv[1], sys.argv[2]
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"kill-test.py: BINARY is not an executable file: {binary}", file=sys.stderr)
        return 2
    if not store_url.startswith(("sqlite://", "postgres://", "postgresql://")):
        print(
            f"kill-test.py: STORE_URL must start with sqlite:// or postgres://, got {store_url}",
            file=sys.stderr,
        )
        return 2

    work = Path(tempfile.mkdtemp(prefix="stacd-kill-test-"))
    checks = Checks()
    started = time.monotonic()
    try:
        run_api_test(checks, binary, store_url, work)
        run_load_test(checks, binary, store_url, work)
    except (SetupError, OSError, http.client.HTTPException) as e:
        print(f"ERROR {e}", flush=True)
        checks.failed += 1
    return finish(checks, work, started)


if __name__ == "__main__":
    sys.exit(main())
