"""Helpers shared by the durability tests: check counting, and `stacd` child
processes on 127.0.0.1 (tokens, servers, health polling, stopping).

Every server listens on 127.0.0.1 at a free port, and every wait is bounded.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HOST = "127.0.0.1"
HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class SetupError(Exception):
    """A step that the checks depend on could not run."""


class Checks:
    """Counts checks and prints one PASS or FAIL line for each."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {name}" + (f": {detail}" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok


def child_environment(rust_log: str) -> dict[str, str]:
    """Return this environment without STACD_* variables, so only the flags configure stacd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACD_")}
    env["STACD_LOG_FORMAT"] = "json"
    env.setdefault("RUST_LOG", rust_log)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def new_token(binary: str, tokens_file: Path, name: str, rust_log: str) -> str:
    """Make a write token with `stacd token new` and return it."""
    result = subprocess.run(
        [binary, "token", "new", "--tokens-file", str(tokens_file), "--name", name],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_environment(rust_log),
    )
    token = result.stdout.strip()
    if result.returncode != 0 or not token:
        raise SetupError(f"'stacd token new' failed with status {result.returncode}: {result.stderr.strip()}")
    return token


class Server:
    """One `stacd serve` process on 127.0.0.1 and a free port."""

    def __init__(
        self,
        binary: str,
        store_url: str,
        log_path: Path,
        rust_log: str,
        tokens_file: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """Start `binary serve`; extra_args go after the other flags, such as `--read-database-url URL`."""
        self.port = free_port()
        command = [binary, "serve", "--bind", f"{HOST}:{self.port}", "--database-url", store_url]
        if tokens_file is not None:
            command += ["--tokens-file", str(tokens_file)]
        command += list(extra_args)
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=child_environment(rust_log)
        )
        self.pid = self.process.pid

    def wait_healthy(self) -> float:
        """Poll GET /health until it returns 200, and return the seconds it took."""
        started = time.monotonic()
        deadline = started + HEALTH_TIMEOUT_S
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError(
                    f"stacd serve (pid {self.pid}) exited with status {self.process.returncode} "
                    f"before it was healthy; see {self.log.name}"
                )
            connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
            try:
                connection.request("GET", "/health")
                status = connection.getresponse().status
                if status == 200:
                    return time.monotonic() - started
                last_error = f"status {status}"
            except (OSError, http.client.HTTPException) as e:
                last_error = str(e)
            finally:
                connection.close()
            time.sleep(0.1)
        raise SetupError(
            f"stacd serve (pid {self.pid}) was not healthy after {HEALTH_TIMEOUT_S:.0f} s "
            f"({last_error}); see {self.log.name}"
        )

    def kill(self) -> None:
        """Send SIGKILL and wait until the process is gone."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        self.log.close()

    def stop(self) -> None:
        """Stop the server with SIGTERM, or SIGKILL when it has not exited within STOP_TIMEOUT_S."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"stacd serve (pid {self.pid}) ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; sending SIGKILL")
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self.log.close()


def run_script(name: str, usage: str, run_test: Callable[[Checks, str, Path], None]) -> int:
    """Run a test script's `run_test(checks, binary, work)` on a copy of BINARY (sys.argv[1]).

    The copy lives in a fresh temporary folder, because the original may be rebuilt in
    place while the test runs. The folder is kept for its logs when a check failed.
    Prints the closing 'N passed, N failed' and returns the exit status.
    """
    if len(sys.argv) != 2:
        print(usage, file=sys.stderr)
        return 2
    if not (os.path.isfile(sys.argv[1]) and os.access(sys.argv[1], os.X_OK)):
        print(f"{name}: BINARY is not an executable file: {sys.argv[1]}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix=f"stacd-{Path(name).stem}-"))
    binary = str(work / "stacd")
    shutil.copy2(sys.argv[1], binary)
    checks = Checks()
    started = time.monotonic()
    try:
        run_test(checks, binary, work)
    except (SetupError, OSError, http.client.HTTPException, subprocess.TimeoutExpired) as e:
        print(f"ERROR {e}", flush=True)
        checks.failed += 1
    return finish(checks, work, started)


def finish(checks: Checks, work: Path, started: float) -> int:
    """Print the run time and the closing 'N passed, N failed', and return the exit status.

    `work` is kept for its logs when a check failed, and removed otherwise.
    """
    print(f"took {time.monotonic() - started:.1f} s")
    if checks.failed:
        print(f"logs are in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0
