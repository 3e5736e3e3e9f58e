#!/usr/bin/env python3
"""Stop PostgreSQL with `pg_ctl stop -m immediate` under read load, and check that stacd
returns 503 while the database is down and recovers by itself when it is back.

Usage: conformance-tests/database-stop.py BINARY

BINARY is a stacd executable, and the script runs a copy of it. It creates a private
PostgreSQL 15 + PostGIS cluster (pgcluster.py) on a free loopback port, loads the
example collection examples/drone-survey into it with `stacd load`, starts
`stacd serve` on 127.0.0.1, and runs CLIENT_THREADS client threads that send
GET /search (bbox and datetime), /collections, /collections/{id}, items by id,
/health and /ready in a loop. Two more threads send only /health and only
/ready. After BEFORE_STOP_S seconds the cluster is stopped with
`pg_ctl stop -m immediate`, and DOWN_S seconds later it is started again.

Checks:
- before the stop, every response is 200;
- while the database is down, every response (including /health and /ready) is 503
  with a JSON body {"code", "description"} and a Retry-After header;
- every response arrives within ANSWER_LIMIT_S (about the pool acquire timeout of
  3 s plus a margin), and no request gets a connection error or times out;
- no response during the whole run is a 500, and every response is 200 or 503;
- stacd never exits, and its log has no 'panicked';
- after the cluster is started again, stacd returns 200 within RECOVERY_LIMIT_S
  without a restart (the seconds are printed), and every request sent after that
  returns 200.

Prints one line per check and a closing line 'N passed, N failed'. Exit status 1
on any failure, 2 on a usage error. When something failed, the stacd log stays
in a temporary folder whose path is printed.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from pgcluster import ClusterSet
from stacd_process import HOST, Checks, Server, SetupError, child_environment, run_script

# Request logs at info level show the status of every request next to the store errors.
RUST_LOG = "info,sqlx=warn"

REPO_ROOT = Path(__file__).resolve().parent.parent
CATALOG = REPO_ROOT / "examples" / "drone-survey"
COLLECTION = "drone-survey"

CLIENT_THREADS = 6
# Pause between two requests of one thread, so the load is steady and leaves CPU to
# the server and the database on a small machine.
CLIENT_PAUSE_S = 0.02
CLIENT_TIMEOUT_S = 30.0
BEFORE_STOP_S = 3.0
# Long enough for several pool acquire timeouts in a row.
DOWN_S = 15.0
AFTER_RECOVERY_S = 5.0
# The specified pool acquire timeout is 3 s, and 2 s more are a margin for a loaded machine.
ANSWER_LIMIT_S = 5.0
RECOVERY_LIMIT_S = 5.0
RECOVERY_PROBE_PATH = "/search?limit=1"
BODY_KEPT_BYTES = 2000


@dataclass
class Sample:
    """One request of a client thread: what was sent, when, and what came back."""

    path: str
    sent: float
    done: float
    status: int | None
    error: str
    retry_after: str | None
    body: bytes

    @property
    def seconds(self) -> float:
        return self.done - self.sent


class LoadClient(threading.Thread):
    """Sends GET requests over a keep-alive connection until stopped, and records every response."""

    def __init__(self, port: int, paths: list[str], offset: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.paths = paths
        self.offset = offset
        self.stop_event = stop
        self.samples: list[Sample] = []
        self.connection: http.client.HTTPConnection | None = None

    def send(self, path: str) -> Sample:
        sent = time.monotonic()
        if self.connection is None:
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=CLIENT_TIMEOUT_S)
        try:
            self.connection.request("GET", path)
            response = self.connection.getresponse()
            body = response.read()
            return Sample(
                path, sent, time.monotonic(), response.status, "", response.getheader("Retry-After"),
                body[:BODY_KEPT_BYTES],
            )  # fmt: skip
        except (OSError, http.client.HTTPException) as e:
            self.connection.close()
            self.connection = None
            return Sample(path, sent, time.monotonic(), None, f"{type(e).__name__}: {e}", None, b"")

    def run(self) -> None:
        index = self.offset
        while not self.stop_event.is_set():
            self.samples.append(self.send(self.paths[index % len(self.paths)]))
            index += 1
            time.sleep(CLIENT_PAUSE_S)
        if self.connection is not None:
            self.connection.close()


def get(port: int, path: str, timeout: float = CLIENT_TIMEOUT_S) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def request_paths(port: int) -> list[str]:
    """Build the request mix from the loaded items: their ids, bboxes and dates."""
    status, body = get(port, f"/collections/{COLLECTION}/items?limit=100")
    if status != 200:
        raise SetupError(f"GET /collections/{COLLECTION}/items returned {status}: {body[:300]!r}")
    features = json.loads(body)["features"]
    if not features:
        raise SetupError(f"the collection {COLLECTION} has no items after loading {CATALOG}")
    paths = ["/collections", f"/collections/{COLLECTION}", "/health", "/ready"]
    for feature in features[:6]:
        bbox = ",".join(f"{v:.5f}" for v in feature["bbox"])
        day = (feature["properties"].get("datetime") or feature["properties"]["start_datetime"])[:10]
        datetime = urllib.parse.quote(f"{day}T00:00:00Z/{day}T23:59:59Z")
        paths += [
            f"/collections/{COLLECTION}/items/{urllib.parse.quote(feature['id'])}",
            f"/search?bbox={bbox}&limit=5",
            f"/search?datetime={datetime}&limit=5",
        ]
    return paths


def load_catalog(binary: str, database_url: str, work: Path) -> None:
    log_path = work / "load.log"
    with log_path.open("wb") as log:
        result = subprocess.run(
            [binary, "load", "--database-url", database_url, str(CATALOG)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_environment(RUST_LOG),
            timeout=120,
        )
    if result.returncode != 0:
        raise SetupError(f"stacd load of {CATALOG} failed with status {result.returncode}; see {log_path}")


def wait_recovered(server: Server, deadline_s: float) -> float | None:
    """Poll RECOVERY_PROBE_PATH until it returns 200, and return the monotonic time of that response."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            status, _ = get(server.port, RECOVERY_PROBE_PATH, timeout=ANSWER_LIMIT_S * 2)
            if status == 200:
                return time.monotonic()
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    return None


def is_error_document(body: bytes) -> bool:
    """Tell whether body is a JSON object with string members code and description."""
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and isinstance(document.get("code"), str)
        and isinstance(document.get("description"), str)
    )


def describe(samples: list[Sample], limit: int = 5) -> str:
    shown = [f"{s.path} -> {s.status if s.status is not None else s.error} ({s.seconds:.2f} s)" for s in samples]
    return "; ".join(shown[:limit]) + (f"; and {len(shown) - limit} more" if len(shown) > limit else "")


def status_counts(samples: list[Sample]) -> str:
    counts: dict[str, int] = {}
    for s in samples:
        key = str(s.status) if s.status is not None else "error"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key}: {count}" for key, count in sorted(counts.items())) or "none"


def check_samples(checks: Checks, samples: list[Sample], times: dict[str, float]) -> None:
    before = [s for s in samples if s.done < times["stop_begin"]]
    # Sent after the stop began and answered after the cluster was gone, before it was started again.
    down = [
        s for s in samples
        if s.sent >= times["stop_begin"] and times["stop_end"] < s.done <= times["start_begin"]
    ]  # fmt: skip
    after = [s for s in samples if s.sent >= times["recovered"]]
    print(
        f"responses: {len(samples)} in all; before the stop {len(before)} ({status_counts(before)}); "
        f"while down {len(down)} ({status_counts(down)}); after recovery {len(after)} ({status_counts(after)})",
        flush=True,
    )

    not_ok = [s for s in before if s.status != 200]
    checks.check("before the stop: every response is 200", bool(before) and not not_ok, describe(not_ok))

    checks.check("while down: responses received", len(down) >= CLIENT_THREADS, f"count: {len(down)}")
    not_503 = [s for s in down if s.status != 503]
    checks.check("while down: every response is 503", not not_503, describe(not_503))
    unavailable = [s for s in down if s.status == 503]
    bad_body = [s for s in unavailable if not is_error_document(s.body)]
    checks.check(
        'while down: 503 bodies are JSON {"code", "description"}',
        bool(unavailable) and not bad_body,
        f"{len(bad_body)} of {len(unavailable)} not, such as {bad_body[0].body[:200]!r}" if bad_body else "",
    )
    if unavailable and not bad_body:
        print(f"503 body: {unavailable[0].body.decode(errors='replace')[:300]}", flush=True)
    no_retry = [s for s in unavailable if not (s.retry_after or "").strip()]
    checks.check(
        "while down: 503 responses carry Retry-After",
        bool(unavailable) and not no_retry,
        f"{len(no_retry)} of {len(unavailable)} without it" if no_retry else f"count: {len(unavailable)}",
    )
    for probe in ("/health", "/ready"):
        probes = [s for s in down if s.path == probe]
        wrong = [s for s in probes if s.status != 503]
        checks.check(
            f"while down: {probe} returns 503",
            bool(probes) and not wrong,
            f"count: {len(probes)}" if not wrong else describe(wrong),
        )

    durations = sorted(s.seconds for s in samples)
    down_durations = sorted(s.seconds for s in down) or [0.0]
    print(
        f"response time: median {statistics.median(durations) * 1000:.0f} ms, max {durations[-1]:.2f} s; "
        f"while down: median {statistics.median(down_durations):.2f} s, max {down_durations[-1]:.2f} s",
        flush=True,
    )
    slow = [s for s in samples if s.seconds > ANSWER_LIMIT_S]
    checks.check(f"every response arrives within {ANSWER_LIMIT_S:.0f} s", not slow, describe(slow))
    errors = [s for s in samples if s.status is None]
    checks.check("no connection errors or timeouts", not errors, describe(errors))
    server_errors = [s for s in samples if s.status == 500]
    checks.check("no 500 responses during the run", not server_errors, describe(server_errors))
    other = [s for s in samples if s.status not in (200, 503, None)]
    checks.check("every response is 200 or 503", not other, describe(other))

    not_ok = [s for s in after if s.status != 200]
    checks.check(
        "after recovery: every response is 200", bool(after) and not not_ok, describe(not_ok) or f"{len(after)}"
    )


def run_test(checks: Checks, binary: str, work: Path) -> None:
    with ClusterSet() as clusters:
        primary = clusters.primary()
        database_url = primary.create_database("stacd")
        print(f"cluster: {database_url}, data in {primary.data_dir}, postmaster pid {primary.postmaster_pid()}")
        load_catalog(binary, database_url, work)

        server = Server(binary, database_url, work / "serve.log", RUST_LOG)
        try:
            server.wait_healthy()
            paths = request_paths(server.port)
            print(f"stacd pid {server.pid} on port {server.port}; {len(paths)} request paths", flush=True)

            stop = threading.Event()
            clients = [LoadClient(server.port, paths, i * 3, stop) for i in range(CLIENT_THREADS)]
            # One thread per probe as well, so both probes are requested while the database
            # is down even when each response takes the whole pool acquire timeout.
            clients += [LoadClient(server.port, [probe], 0, stop) for probe in ("/health", "/ready")]
            for client in clients:
                client.start()
            time.sleep(BEFORE_STOP_S)

            times = {"stop_begin": time.monotonic()}
            primary.stop("immediate")
            times["stop_end"] = time.monotonic()
            print(f"pg_ctl stop -m immediate took {times['stop_end'] - times['stop_begin']:.2f} s", flush=True)
            exited_while_down = None
            while time.monotonic() < times["stop_end"] + DOWN_S:
                if server.process.poll() is not None:
                    exited_while_down = server.process.returncode
                    break
                time.sleep(0.2)

            times["start_begin"] = time.monotonic()
            primary.start()
            times["start_end"] = time.monotonic()
            print(f"pg_ctl start took {times['start_end'] - times['start_begin']:.2f} s", flush=True)
            recovered = wait_recovered(server, RECOVERY_LIMIT_S * 6)
            times["recovered"] = recovered if recovered is not None else float("inf")
            if recovered is not None:
                time.sleep(AFTER_RECOVERY_S)
            stop.set()
            for client in clients:
                client.join(timeout=CLIENT_TIMEOUT_S + 5)

            checks.check(
                "stacd keeps running while the database is down",
                exited_while_down is None and server.process.poll() is None,
                f"exited with status {server.process.returncode}" if server.process.poll() is not None else "",
            )
            if recovered is None:
                checks.check(
                    f"stacd returns 200 again within {RECOVERY_LIMIT_S:.0f} s of the database start",
                    False,
                    f"GET {RECOVERY_PROBE_PATH} had no 200 within {RECOVERY_LIMIT_S * 6:.0f} s",
                )
            else:
                seconds = recovered - times["start_end"]
                print(
                    f"recovery: GET {RECOVERY_PROBE_PATH} returned 200 {seconds:.2f} s after pg_ctl start returned "
                    f"({recovered - times['start_begin']:.2f} s after it was run)",
                    flush=True,
                )
                checks.check(
                    f"stacd returns 200 again within {RECOVERY_LIMIT_S:.0f} s of the database start",
                    seconds <= RECOVERY_LIMIT_S,
                    f"{seconds:.2f} s, no restart of stacd",
                )
            check_samples(checks, [s for c in clients for s in c.samples], times)
        finally:
            server.stop()

    log_text = (work / "serve.log").read_text(errors="replace")
    panics = [line for line in log_text.splitlines() if "panicked" in line]
    checks.check("stacd log has no 'panicked'", not panics, panics[0][:300] if panics else "")


def main() -> int:
    return run_script("database-stop.py", __doc__.split("\n\n")[1], run_test)


if __name__ == "__main__":
    sys.exit(main())
