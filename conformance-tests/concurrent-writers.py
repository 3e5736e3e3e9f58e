#!/usr/bin/env python3
"""Run 8 concurrent writers against stacd and check that no update is lost.

Usage: conformance-tests/concurrent-writers.py BINARY STORE_URL [SECONDS]

BINARY is a stacd executable. STORE_URL is a fresh store, sqlite://PATH or
postgres://USER@HOST:PORT/DB, that does not yet contain the collection
concurrent-writers. SECONDS is how long the writers run (default 30).

The script starts `BINARY serve` on 127.0.0.1, creates the collection with 100
items whose properties.counter is 0, and runs 8 client threads. Each thread
repeatedly picks a random item and GETs it with its ETag. Then it either PUTs
the item back with counter + 1 and If-Match (90 % of picks), or DELETEs it
with If-Match and POSTs it again with counter + 1 (10 %). A 404, 409 or 412 is
a race with another thread, and the thread tries the same item again from the
GET (up to ATTEMPTS_PER_PICK times). The clients count each successful
increment per item: a PUT answered 204, or a re-create answered 201 after a
DELETE answered 204.

At the end every item must exist and its stored counter must equal the
increments the clients counted for it. Any 5xx, connection error, timeout or
other status is a failure. So is a run without a single 412, because then the
writers never raced (a SECONDS of only a few seconds can be too short). Prints
the totals, one line per check and a closing line 'N passed, N failed'. Exit
status 1 on any failure, 2 on a usage error.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from stacd_process import HOST, Checks, Server, SetupError, new_token

# Request logs at info level would cost the server more time than the writes.
RUST_LOG = "warn"

COLLECTION = "concurrent-writers"
ITEMS = 100
THREADS = 8
DEFAULT_SECONDS = 30.0
DELETE_SHARE = 0.10
ATTEMPTS_PER_PICK = 10

REQUEST_TIMEOUT_S = 30.0
# Error examples kept per thread; every error is still counted.
MAX_ERROR_EXAMPLES = 5


# --- HTTP client ------------------------------------------------------------------------


class Client:
    """A keep-alive HTTP/1.1 connection to the server, used by one thread only."""

    def __init__(self, port: int, token: str | None) -> None:
        self.port = port
        self.token = token
        self.connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, document: dict | None = None, etag: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request and return the status, the headers (lower-case names) and the body.

        Raises OSError or http.client.HTTPException on a connection error or a
        timeout, after closing the connection so the next request opens a new one.
        """
        headers = {}
        body = None
        if document is not None:
            body = json.dumps(document).encode()
            headers["Content-Type"] = "application/json"
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if etag is not None:
            headers["If-Match"] = etag
        if self.connection is None:
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        response_headers = {k.lower(): v for k, v in response.getheaders()}
        if response.will_close:
            self.close()
        return response.status, response_headers, data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# --- documents ------------------------------------------------------------------------


def collection_document() -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "description": "Items updated by concurrent-writers.py",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }


def item_id(index: int) -> str:
    return f"item-{index:03d}"


def item_document(index: int, counter: int) -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id(index),
        "geometry": {"type": "Point", "coordinates": [-90 + index, 10 + index / 10]},
        "properties": {"datetime": "2024-05-14T10:00:00Z", "batch": 0, "counter": counter},
        "assets": {},
    }


def item_path(index: int) -> str:
    return f"/collections/{COLLECTION}/items/{item_id(index)}"


# --- writers ----------------------------------------------------------------------------


class Writer(threading.Thread):
    """One client thread that increments random items until the deadline."""

    def __init__(self, number: int, port: int, token: str, deadline: float) -> None:
        super().__init__(name=f"writer-{number}", daemon=True)
        self.client = Client(port, token)
        self.deadline = deadline
        self.random = random.Random()
        self.requests = 0
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.increments: Counter[int] = Counter()
        # Counter value to re-create per item whose DELETE succeeded but whose POST did not.
        self.left_deleted: dict[int, int] = {}
        self.errors = 0
        self.error_examples: list[str] = []

    def send(self, method: str, index: int, document: dict | None = None, etag: str | None = None):
        """Send one request and return (status, headers, body), or None after a connection error."""
        path = item_path(index) if method != "POST" else f"/collections/{COLLECTION}/items"
        self.requests += 1
        try:
            status, headers, body = self.client.request(method, path, document, etag)
        except (OSError, http.client.HTTPException) as e:
            self.record_error(f"{method} {path}: {type(e).__name__}: {e}")
            return None
        self.statuses[(method, status)] += 1
        return status, headers, body

    def record_error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_examples) < MAX_ERROR_EXAMPLES:
            self.error_examples.append(message)

    def unexpected(self, method: str, index: int, status: int, body: bytes) -> None:
        self.record_error(f"{method} {item_path(index)} returned {status}: {body[:300]!r}")

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                index = self.random.randrange(ITEMS)
                for _ in range(ATTEMPTS_PER_PICK):
                    if time.monotonic() >= self.deadline or self.increment(index):
                        break
        finally:
            self.client.close()

    def increment(self, index: int) -> bool:
        """Try once to increment the item's counter, and return False on a race, True otherwise."""
        result = self.send("GET", index)
        if result is None:
            return True
        status, headers, body = result
        if status == 404:
            return False
        if status != 200:
            self.unexpected("GET", index, status, body)
            return True
        etag = headers.get("etag")
        document = json.loads(body)
        counter = document["properties"]["counter"]
        if etag is None:
            self.record_error(f"GET {item_path(index)} returned 200 without an ETag")
            return True

        if self.random.random() >= DELETE_SHARE:
            document["properties"]["counter"] = counter + 1
            result = self.send("PUT", index, document, etag)
            if result is None:
                return True
            status, _, body = result
            if status == 204:
                self.increments[index] += 1
                return True
            if status in (404, 409, 412):
                return False
            self.unexpected("PUT", index, status, body)
            return True

        result = self.send("DELETE", index, etag=etag)
        if result is None:
            return True
        status, _, body = result
        if status in (404, 409, 412):
            return False
        if status != 204:
            self.unexpected("DELETE", index, status, body)
            return True
        # The item is gone and only this thread has its counter, so this thread must re-create it.
        result = self.send("POST", index, item_document(index, counter + 1))
        if result is None:
            self.left_deleted[index] = counter + 1
            return True
        status, _, body = result
        if status == 201:
            self.increments[index] += 1
            return True
        self.left_deleted[index] = counter + 1
        if status not in (404, 409, 412):
            self.unexpected("POST", index, status, body)
        return True


# --- the run ----------------------------------------------------------------------------


def create_collection(client: Client) -> None:
    status, _, body = client.request("GET", f"/collections/{COLLECTION}")
    if status != 404:
        raise SetupError(
            f"the store already has collection '{COLLECTION}' (GET returned {status}); use a fresh STORE_URL"
        )
    status, _, body = client.request("POST", "/collections", collection_document())
    if status != 201:
        raise SetupError(f"POST /collections returned {status}: {body[:300]!r}")
    features = [item_document(i, 0) for i in range(ITEMS)]
    status, _, body = client.request(
        "POST", f"/collections/{COLLECTION}/items", {"type": "FeatureCollection", "features": features}
    )
    if status != 201:
        raise SetupError(f"POST /collections/{COLLECTION}/items returned {status}: {body[:300]!r}")


def run(checks: Checks, binary: str, store_url: str, seconds: float, work: Path) -> None:
    tokens_file = work / "tokens"
    token = new_token(binary, tokens_file, "concurrent-writers", RUST_LOG)
    server = Server(binary, store_url, work / "serve.log", RUST_LOG, tokens_file)
    try:
        server.wait_healthy()
        admin = Client(server.port, token)
        create_collection(admin)

        print(f"{THREADS} writers on {ITEMS} items for {seconds:.0f} s", flush=True)
        started = time.monotonic()
        writers = [Writer(n, server.port, token, started + seconds) for n in range(THREADS)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=seconds + 2 * REQUEST_TIMEOUT_S + 10)
        elapsed = time.monotonic() - started
        hanging = [w.name for w in writers if w.is_alive()]
        if hanging:
            raise SetupError(f"writers {hanging} did not finish within {elapsed:.0f} s, so a request hangs")

        statuses: Counter[tuple[str, int]] = Counter()
        increments: Counter[int] = Counter()
        left_deleted: dict[int, int] = {}
        for writer in writers:
            statuses.update(writer.statuses)
            increments.update(writer.increments)
            left_deleted.update(writer.left_deleted)
        requests = sum(w.requests for w in writers)
        errors = sum(w.errors for w in writers)
        examples = [e for w in writers for e in w.error_examples]
        by_status: Counter[int] = Counter()
        for (_, status), n in statuses.items():
            by_status[status] += n
        print(
            f"{requests} requests in {elapsed:.1f} s ({requests / elapsed:.0f} requests/s), "
            f"{sum(increments.values())} increments "
            f"({statuses[('PUT', 204)]} PUT, {statuses[('POST', 201)]} DELETE and re-create), "
            f"{by_status[412]} responses 412, {by_status[404]} responses 404, {by_status[409]} responses 409",
            flush=True,
        )
        print(f"responses by method and status: {dict(sorted(statuses.items()))}", flush=True)

        server_errors = {k: n for k, n in statuses.items() if k[1] >= 500}
        checks.check("no 5xx response", not server_errors, f"{server_errors}" if server_errors else "")
        checks.check(
            "no connection error and no unexpected status",
            errors == 0,
            f"{errors} errors, such as: " + " | ".join(examples) if errors else "",
        )
        checks.check("writers raced each other", by_status[412] > 0, f"{by_status[412]} responses 412")

        verify(checks, admin, increments, left_deleted)
        admin.close()
    finally:
        server.stop()


def verify(checks: Checks, admin: Client, increments: Counter[int], left_deleted: dict[int, int]) -> None:
    """Compare every stored counter with the increments the clients counted."""
    missing = []
    for index in range(ITEMS):
        status, _, body = admin.request("GET", item_path(index))
        if status == 404:
            missing.append(index)
        elif status != 200:
            raise SetupError(f"GET {item_path(index)} returned {status}: {body[:300]!r}")
    unexplained = [item_id(i) for i in missing if i not in left_deleted]
    checks.check(
        "every item exists, or its re-create failed in the run",
        not unexplained,
        f"{len(missing)} items missing, {len(unexplained)} of them without a DELETE: {unexplained[:10]}"
        if unexplained
        else f"{len(missing)} items left deleted by a failed re-create",
    )
    for index in missing:
        if index in left_deleted:
            status, _, body = admin.request(
                "POST", f"/collections/{COLLECTION}/items", item_document(index, left_deleted[index])
            )
            if status != 201:
                raise SetupError(f"re-creating {item_id(index)} returned {status}: {body[:300]!r}")
            increments[index] += 1

    stored: dict[int, int | None] = {}
    for index in range(ITEMS):
        status, _, body = admin.request("GET", item_path(index))
        stored[index] = json.loads(body)["properties"]["counter"] if status == 200 else None
    lost = {item_id(i): (stored[i], increments[i]) for i in range(ITEMS) if stored[i] != increments[i]}
    checks.check(
        "every stored counter equals the increments counted (no lost update)",
        not lost,
        f"{len(lost)} items differ, as (stored, counted): {dict(list(lost.items())[:10])}"
        if lost
        else f"{sum(increments.values())} increments on {ITEMS} items",
    )

    status, _, body = admin.request("GET", f"/collections/{COLLECTION}/items?limit=10000")
    listed = json.loads(body) if status == 200 else {}
    ids = sorted(f["id"] for f in listed.get("features", []))
    checks.check(
        "the item list has each item once, and numberMatched agrees",
        ids == [item_id(i) for i in range(ITEMS)] and listed.get("numberMatched") == ITEMS,
        f"{len(ids)} items listed, {len(set(ids))} distinct, numberMatched {listed.get('numberMatched')}",
    )


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    binary, store_url = sys.argv[1], sys.argv[2]
    try:
        seconds = float(sys.argv[3]) if len(sys.argv) == 4 else DEFAULT_SECONDS
    except ValueError:
        seconds = -1
    if seconds <= 0:
        print(f"concurrent-writers.py: SECONDS must be a positive number, got {sys.argv[3]}", file=sys.stderr)
        return 2
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"concurrent-writers.py: BINARY is not an executable file: {binary}", file=sys.stderr)
        return 2
    if not store_url.startswith(("sqlite://", "postgres://", "postgresql://")):
        print(
            f"concurrent-writers.py: STORE_URL must start with sqlite:// or postgres://, got {store_url}",
            file=sys.stderr,
        )
        return 2

    work = Path(tempfile.mkdtemp(prefix="stacd-concurrent-writers-"))
    checks = Checks()
    try:
        run(checks, binary, store_url, seconds, work)
    except (SetupError, OSError, http.client.HTTPException) as e:
        print(f"ERROR {e}", flush=True)
        checks.failed += 1
    if checks.failed:
        print(f"the server log is in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
