#!/usr/bin/env python3
"""Check that stacd sends reads to a PostgreSQL streaming replica, writes and the
reads that writes make to the primary, and falls back to the primary while the
replica is down.

Usage: conformance-tests/replica-routing.py BINARY

BINARY is a stacd executable, and the script runs a copy of it. The script creates
a private PostgreSQL 15 + PostGIS primary and a streaming replica of it
(pg_basebackup -R), both on free loopback ports (pgcluster.py). It loads
examples/drone-survey into the primary with `stacd load`, makes a write token with
`stacd token new`, and starts
`stacd serve --database-url PRIMARY --read-database-url REPLICA --tokens-file F`
on 127.0.0.1. WAL replay on the replica is paused with pg_wal_replay_pause(), so
an item written through the API exists on the primary but not yet on the replica.

Checks:
1. /health is 200 with "replica": "ok".
2. Replay paused: POST of a new item is 201. GET of the item is 404, and GET and
   POST /search by its id find nothing, because reads go to the replica. PUT and
   PATCH with If-Match on the item succeed, because a write reads from the primary.
3. Replay resumed: GET of the item turns 200 within REPLAY_LIMIT_S and shows the
   PUT and PATCH changes.
4. Replica stopped with `pg_ctl stop -m immediate`: reads still answer 200 within
   ANSWER_LIMIT_S (from the primary), the stacd log has a WARN whose message
   contains 'replica', and /health is 200 with "replica": "unavailable".
5. Replica started again: /health returns to "replica": "ok", and with replay
   paused again, GET of a new item turns 404 within REPLICA_RETURN_LIMIT_S: reads
   went back to the replica.

The script stops with a FAIL line when BINARY has no --read-database-url option.
Prints one line per check and a closing line 'N passed, N failed'. Exit status 1
on any failure, 2 on a usage error. When something failed, the logs stay in a
temporary folder whose path is printed.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from pgcluster import Cluster, ClusterSet
from stacd_process import HOST, Checks, Server, SetupError, child_environment, new_token, run_script

RUST_LOG = "info,sqlx=warn"

REPO_ROOT = Path(__file__).resolve().parent.parent
CATALOG = REPO_ROOT / "examples" / "drone-survey"
COLLECTION = "drone-survey"
CATALOG_ITEMS = 12

REQUEST_TIMEOUT_S = 30.0
# Reads while the replica is down first wait for the replica pool, for about the
# specified pool acquire timeout of 3 s. The rest is a margin.
ANSWER_LIMIT_S = 5.0
REPLAY_LIMIT_S = 5.0
# stacd retries an unreachable replica every 5 s, so this leaves room for two attempts.
REPLICA_RETURN_LIMIT_S = 15.0
LOG_WAIT_S = 5.0


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, seconds: float) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.seconds = seconds

    def json(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError:
            return {}

    def summary(self) -> str:
        return f"status {self.status} in {self.seconds:.2f} s: {self.body[:200].decode(errors='replace')}"


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def request(
        self, method: str, path: str, document: dict | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send one request on a new connection. Requests other than GET and HEAD carry the bearer token."""
        all_headers = dict(headers or {})
        body = None
        if document is not None:
            body = json.dumps(document).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if method not in ("GET", "HEAD"):
            all_headers["Authorization"] = f"Bearer {self.token}"
        started = time.monotonic()
        connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
            received = {name.lower(): value for name, value in response.getheaders()}
            return Response(response.status, received, data, time.monotonic() - started)
        finally:
            connection.close()


def item_path(item_id: str) -> str:
    return f"/collections/{COLLECTION}/items/{urllib.parse.quote(item_id)}"


def new_item(item_id: str) -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": COLLECTION,
        "geometry": {"type": "Point", "coordinates": [-7.6501, 37.1265]},
        "properties": {"datetime": "2024-05-16T10:00:00Z", "title": "written by replica-routing.py"},
        "assets": {},
    }


def stored_items(cluster: Cluster, item_id: str) -> int:
    """Count the rows of the item in the stacd schema of CLUSTER, read with psql."""
    quoted = item_id.replace("'", "''")
    return int(
        cluster.psql(f"SELECT count(*) FROM stacd.items WHERE collection = '{COLLECTION}' AND id = '{quoted}'", "stacd")
    )


def search_count(client: Client, item_id: str, method: str) -> tuple[int | None, Response]:
    """Search by id with GET or POST /search and return the number of features found."""
    if method == "GET":
        response = client.request("GET", f"/search?ids={urllib.parse.quote(item_id)}&collections={COLLECTION}")
    else:
        response = client.request("POST", "/search", {"ids": [item_id], "collections": [COLLECTION]})
    features = response.json().get("features")
    return (len(features) if response.status == 200 and isinstance(features, list) else None), response


def wait_for(condition, limit_s: float, interval_s: float = 0.1) -> float | None:
    """Call condition until it returns True, and return the seconds it took, or None after limit_s."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if condition():
            return time.monotonic() - started
        time.sleep(interval_s)
    return None


def replica_warnings(log_path: Path) -> list[str]:
    """Return the messages of WARN records in the JSON log that contain 'replica'."""
    messages = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or str(record.get("level", "")).upper() != "WARN":
            continue
        fields = record.get("fields") if isinstance(record.get("fields"), dict) else {}
        message = str(fields.get("message", record.get("message", "")))
        if "replica" in message.lower():
            messages.append(message)
    return messages


def write_while_paused(client: Client, primary: Cluster, replica: Cluster, item_id: str, label: str) -> Response:
    """Pause replay on the replica, POST ITEM_ID, check that the primary has it and the replica not, and GET it."""
    replica.pause_replay()
    created = client.request("POST", f"/collections/{COLLECTION}/items", new_item(item_id))
    if created.status != 201:
        raise SetupError(f"{label}: POST of item {item_id} returned {created.summary()}")
    on_primary, on_replica = stored_items(primary, item_id), stored_items(replica, item_id)
    print(f"{label}: item {item_id} created; rows on the primary {on_primary}, on the paused replica {on_replica}")
    if (on_primary, on_replica) != (1, 0):
        raise SetupError(f"{label}: expected the item on the primary only, found {on_primary} and {on_replica} rows")
    return created


def check_routing(checks: Checks, client: Client, log_path: Path, primary: Cluster, replica: Cluster) -> None:
    health = client.request("GET", "/health")
    checks.check(
        'health: 200 with "replica": "ok"',
        health.status == 200 and health.json().get("replica") == "ok",
        health.summary(),
    )

    # --- replay paused: reads from the replica, writes and their reads from the primary
    first = "replica-routing-1"
    created = write_while_paused(client, primary, replica, first, "replay paused")
    response = client.request("GET", item_path(first))
    checks.check("replay paused: GET of the new item is 404 (read from the replica)", response.status == 404,
                 response.summary())  # fmt: skip
    for method in ("GET", "POST"):
        count, response = search_count(client, first, method)
        checks.check(f"replay paused: {method} /search by id finds nothing", count == 0, response.summary())

    etag = created.headers.get("etag")
    if not etag:
        raise SetupError(f"POST of item {first} returned no ETag header")
    document = new_item(first)
    document["properties"]["title"] = "replaced with If-Match"
    put = client.request("PUT", item_path(first), document, {"If-Match": etag})
    checks.check("replay paused: PUT with If-Match succeeds (reads from the primary)", put.status in (200, 204),
                 put.summary())  # fmt: skip
    patch_etag = put.headers.get("etag", "")
    patch = client.request(
        "PATCH", item_path(first), {"properties": {"gsd": 0.05}},
        {"If-Match": patch_etag, "Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    checks.check("replay paused: PATCH with If-Match succeeds (reads from the primary)", patch.status in (200, 204),
                 patch.summary())  # fmt: skip
    response = client.request("GET", item_path(first))
    checks.check("replay paused: GET after the writes is still 404", response.status == 404, response.summary())

    # --- replay resumed
    replica.resume_replay()
    seconds = wait_for(lambda: client.request("GET", item_path(first)).status == 200, REPLAY_LIMIT_S)
    checks.check(
        f"replay resumed: GET of the item is 200 within {REPLAY_LIMIT_S:.0f} s",
        seconds is not None,
        f"after {seconds:.2f} s" if seconds is not None else "still not 200",
    )
    properties = client.request("GET", item_path(first)).json().get("properties", {})
    checks.check(
        "replay resumed: the item shows the PUT and PATCH changes",
        properties.get("title") == "replaced with If-Match" and properties.get("gsd") == 0.05,
        f"title {properties.get('title')!r}, gsd {properties.get('gsd')!r}",
    )

    # --- replica down: reads fall back to the primary
    replica.stop("immediate")
    print("replica stopped with pg_ctl stop -m immediate", flush=True)
    for path in (item_path(first), f"/search?ids={first}&collections={COLLECTION}", "/collections", "/"):
        response = client.request("GET", path)
        checks.check(
            f"replica down: GET {path} is 200 within {ANSWER_LIMIT_S:.0f} s",
            response.status == 200 and response.seconds <= ANSWER_LIMIT_S,
            f"status {response.status} in {response.seconds:.2f} s",
        )
    warnings: list[str] = []
    wait_for(lambda: bool(warnings.extend(replica_warnings(log_path)) or warnings), LOG_WAIT_S, 0.5)
    checks.check(
        "replica down: the log has a WARN that mentions the replica",
        bool(warnings),
        warnings[0][:200] if warnings else f"no such record in {log_path}",
    )
    health = client.request("GET", "/health")
    checks.check(
        'replica down: /health is 200 with "replica": "unavailable"',
        health.status == 200 and health.json().get("replica") == "unavailable",
        health.summary(),
    )

    # --- replica back: reads return to it
    replica.start()
    replica_started = time.monotonic()
    replica.wait_replayed(primary.current_wal_lsn())
    seconds = wait_for(lambda: client.request("GET", "/health").json().get("replica") == "ok", REPLICA_RETURN_LIMIT_S)
    checks.check(
        f'replica back: /health returns to "replica": "ok" within {REPLICA_RETURN_LIMIT_S:.0f} s',
        seconds is not None,
        f"after {seconds:.2f} s" if seconds is not None else client.request("GET", "/health").summary(),
    )

    # stacd goes back to the replica only when it retries it, up to 5 s after it gave
    # up on it, so the item is read until the GET turns 404.
    second = "replica-routing-2"
    write_while_paused(client, primary, replica, second, "replica back, replay paused")
    last: list[Response] = []
    found = wait_for(lambda: last.append(client.request("GET", item_path(second))) or last[-1].status == 404,
                     REPLICA_RETURN_LIMIT_S, 0.25)  # fmt: skip
    reads_from_primary = sum(1 for response in last if response.status == 200)
    checks.check(
        f"replica back: GET of a new item turns 404 within {REPLICA_RETURN_LIMIT_S:.0f} s (read from the replica)",
        found is not None,
        f"{time.monotonic() - replica_started:.2f} s after the replica started, "
        f"after {reads_from_primary} reads from the primary" if found is not None else last[-1].summary(),
    )
    count, response = search_count(client, second, "GET")
    checks.check("replica back: GET /search by id finds nothing", count == 0, response.summary())
    replica.resume_replay()


def supports_read_database_url(binary: str) -> bool:
    result = subprocess.run(
        [binary, "serve", "--help"], capture_output=True, text=True, timeout=30, env=child_environment("warn")
    )
    return "--read-database-url" in result.stdout


def run_test(checks: Checks, binary: str, work: Path) -> None:
    with ClusterSet() as clusters:
        primary = clusters.primary()
        primary_url = primary.create_database("stacd")
        replica = clusters.replica(primary)
        replica_url = replica.url("stacd")
        print(f"primary {primary_url} (pid {primary.postmaster_pid()}), replica {replica_url} "
              f"(pid {replica.postmaster_pid()})", flush=True)  # fmt: skip
        checks.check(
            "setup: the replica streams from the primary",
            replica.psql("SELECT status FROM pg_stat_wal_receiver") == "streaming",
            f"WAL receiver status on the replica: {replica.psql('SELECT status FROM pg_stat_wal_receiver')!r}",
        )

        load_log = work / "load.log"
        with load_log.open("wb") as log:
            loaded = subprocess.run(
                [binary, "load", "--database-url", primary_url, str(CATALOG)],
                stdout=log, stderr=subprocess.STDOUT, env=child_environment(RUST_LOG), timeout=120,
            )  # fmt: skip
        if loaded.returncode != 0:
            raise SetupError(f"stacd load of {CATALOG} into the primary failed with status {loaded.returncode}; "
                             f"see {load_log}")  # fmt: skip
        replica.wait_replayed(primary.current_wal_lsn())
        count = replica.psql("SELECT count(*) FROM stacd.items", "stacd")
        checks.check("setup: the replica has the loaded items", count == str(CATALOG_ITEMS), f"{count} items")

        tokens_file = work / "tokens"
        token = new_token(binary, tokens_file, "replica-routing", RUST_LOG)

        if not supports_read_database_url(binary):
            checks.check(
                "stacd serve accepts --read-database-url",
                False,
                f"'{binary} serve --help' does not list --read-database-url, so stacd cannot read from a "
                "replica; the routing checks did not run",
            )
            return

        log_path = work / "serve.log"
        server = Server(binary, primary_url, log_path, RUST_LOG, tokens_file, ["--read-database-url", replica_url])
        try:
            server.wait_healthy()
            print(f"stacd pid {server.pid} on port {server.port}", flush=True)
            check_routing(checks, Client(server.port, token), log_path, primary, replica)
            exited = server.process.poll() is not None
            detail = f"exit status {server.process.returncode}" if exited else ""
            checks.check("stacd keeps running", not exited, detail)
        finally:
            server.stop()
        panics = [line for line in log_path.read_text(errors="replace").splitlines() if "panicked" in line]
        checks.check("stacd log has no 'panicked'", not panics, panics[0][:300] if panics else "")


def main() -> int:
    return run_script("replica-routing.py", __doc__.split("\n\n")[1], run_test)


if __name__ == "__main__":
    sys.exit(main())
