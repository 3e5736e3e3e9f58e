#!/usr/bin/env python3
"""Check that stacd exports traces over OTLP/HTTP only when a collector is configured.

Usage: otlp.py BINARY

A small OTLP/HTTP receiver on 127.0.0.1 records every POST it gets. stacd runs
twice against a SQLite store in a temporary folder, loaded with the repository's
example catalog: first with OTEL_EXPORTER_OTLP_ENDPOINT naming the receiver,
then without it. The first run must send spans of its requests (protobuf, with
the service name `stacd` and the span name `request`), the second none.
Prints PASS or FAIL lines and 'N passed, N failed'; exit 0 only if all passed.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stacd_process import HOST, Checks, Server, SetupError, child_environment  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXPORT_WAIT_S = 15.0


class Receiver(ThreadingHTTPServer):
    """Records the path, content type and body of every POST."""

    def __init__(self) -> None:
        super().__init__((HOST, 0), ReceiverHandler)
        self.posts: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.posts.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature fixed by the base class)
        pass


def load_store(binary: str, store_url: str) -> None:
    result = subprocess.run(
        [binary, "load", "--database-url", store_url, str(REPO / "examples" / "drone-survey")],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_environment("warn"),
    )
    if result.returncode != 0:
        raise SetupError(f"stacd load failed with status {result.returncode}: {result.stderr.strip()}")


def send_requests(port: int) -> None:
    for path in ["/", "/collections", "/search?limit=3", "/collections/drone-survey/items?limit=2"]:
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
        finally:
            connection.close()


def wait_for_posts(receiver: Receiver, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with receiver.lock:
            if receiver.posts:
                return len(receiver.posts)
        time.sleep(0.2)
    return 0


def run(binary: str, workdir: Path, checks: Checks) -> None:
    store_url = f"sqlite://{workdir / 'otlp.sqlite'}"
    load_store(binary, store_url)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        # With a collector: spans arrive within the batch delay, and the last ones at shutdown.
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{HOST}:{receiver.server_address[1]}"
        os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "500"
        server = Server(binary, store_url, workdir / "with-collector.log", "info")
        try:
            server.wait_healthy()
            send_requests(server.port)
            wait_for_posts(receiver, EXPORT_WAIT_S)
        finally:
            server.stop()
        with receiver.lock:
            posts = list(receiver.posts)
        checks.check("spans are exported", len(posts) > 0, f"{len(posts)} POSTs")
        paths = {path for path, _, _ in posts}
        checks.check("to the traces path", paths == {"/v1/traces"}, f"{sorted(paths)}")
        types = {content_type for _, content_type, _ in posts}
        checks.check("as protobuf", types == {"application/x-protobuf"}, f"{sorted(types)}")
        payload = b"".join(body for _, _, body in posts)
        checks.check("with the service name", b"stacd" in payload)
        checks.check("with request spans", b"request" in payload)
        log = (workdir / "with-collector.log").read_text(errors="replace")
        checks.check("the log says traces are exported", "exporting traces over OTLP" in log)

        # Without a collector: nothing is sent.
        with receiver.lock:
            receiver.posts.clear()
        del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        server = Server(binary, store_url, workdir / "without-collector.log", "info")
        try:
            server.wait_healthy()
            send_requests(server.port)
            time.sleep(2.0)
        finally:
            server.stop()
        with receiver.lock:
            count = len(receiver.posts)
        checks.check("nothing is exported without a collector", count == 0, f"{count} POSTs")
    finally:
        receiver.shutdown()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: otlp.py BINARY", file=sys.stderr)
        return 2
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="stacd-otlp-") as folder:
        try:
            run(sys.argv[1], Path(folder), checks)
        except SetupError as e:
            checks.check("setup", False, str(e))
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
