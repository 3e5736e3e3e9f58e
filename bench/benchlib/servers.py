"""The servers under test: stacd on PostGIS and on SQLite, and the peer
(stac-fastapi-pgstac, started and stopped by the stac-tools scripts), with
process sampling from /proc."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(command: list[str], env: dict | None = None, check: bool = True, capture: bool = False,
        log_file: Path | None = None) -> subprocess.CompletedProcess:
    """Run a command; its output goes to log_file when given. Raise with the log tail when it fails."""
    full_env = dict(os.environ, **(env or {}))
    if log_file is not None:
        with log_file.open("ab") as stream:
            result = subprocess.run(command, env=full_env, stdout=stream, stderr=subprocess.STDOUT)
    else:
        result = subprocess.run(command, env=full_env, capture_output=capture, text=True)
    if check and result.returncode != 0:
        detail = ""
        if log_file is not None:
            detail = "\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
        elif capture:
            detail = "\n" + (result.stderr or result.stdout or "")[-2000:]
        raise RuntimeError(f"command failed with status {result.returncode}: {' '.join(command)}{detail}")
    return result


# --- /proc sampling -------------------------------------------------------------------

def cpu_ticks(pid: int) -> int:
    """Return user + system CPU ticks of a process, or 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    # Fields after the command name start at field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def descendants(pid: int) -> list[int]:
    """Return pid and all its descendants, read from /proc/PID/task/*/children."""
    result = [pid]
    index = 0
    while index < len(result):
        current = result[index]
        index += 1
        task_dir = Path(f"/proc/{current}/task")
        try:
            for task in task_dir.iterdir():
                try:
                    result.extend(int(c) for c in (task / "children").read_text().split())
                except (FileNotFoundError, ProcessLookupError):
                    pass
        except (FileNotFoundError, ProcessLookupError):
            pass
    return sorted(set(result))


def process_start_seconds(pid: int) -> float:
    """Return when a process started, in seconds since the epoch (from /proc/PID/stat and btime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    start_ticks = int(fields[19])
    boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))
    return boot + start_ticks / CLOCK_TICKS


class Sampler:
    """Samples the RSS of a server's processes during a measurement, and the CPU
    of the server and of its database backends from start to stop."""

    def __init__(self, server_pids, database_pids, interval: float = 0.2):
        self.server_pids = server_pids
        self.database_pids = database_pids
        self.interval = interval
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _ticks(self) -> tuple[dict[int, int], dict[int, int]]:
        server = {pid: cpu_ticks(pid) for pid in self.server_pids()}
        database = {pid: cpu_ticks(pid) for pid in self.database_pids()}
        return server, database

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, sum(rss_bytes(pid) for pid in self.server_pids()))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._start_time = time.monotonic()
        self._start_ticks = self._ticks()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self._start_time
        end_server, end_database = self._ticks()
        start_server, start_database = self._start_ticks
        # A process first seen at the end is counted from zero, so it adds all its CPU time:
        # database backends opened during the run are new, and their whole life is in it.
        server = sum(t - start_server.get(pid, 0) for pid, t in end_server.items())
        database = sum(t - start_database.get(pid, 0) for pid, t in end_database.items())
        self.cpu_percent = 100.0 * server / CLOCK_TICKS / elapsed
        self.database_cpu_percent = 100.0 * database / CLOCK_TICKS / elapsed
        return False


# --- HTTP ---------------------------------------------------------------------------

class Client:
    """A keep-alive HTTP/1.1 client for one server on 127.0.0.1."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.port = port
        self.timeout = timeout
        self.connection = None

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, bytes, float]:
        """Send a request; return status, headers (lower-case names), body and seconds taken."""
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            start = time.perf_counter()
            try:
                self.connection.request(method, path, body=payload, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - start
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data, elapsed
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def local_path(href: str) -> str:
    """Return the path and query of a link, dropping scheme and host."""
    parts = urllib.parse.urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def wait_until_answering(port: int, path: str, deadline: float, alive) -> float | None:
    """Poll path every 5 ms until it returns 200; return the time of that response, or None."""
    while time.monotonic() < deadline:
        if not alive():
            return None
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                return time.time()
        except OSError:
            pass
        time.sleep(0.005)
    return None


# --- PostgreSQL helpers ----------------------------------------------------------------

def psql(url: str, sql: str, env: dict | None = None) -> str:
    result = run(["psql", url, "-XqtA", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env, capture=True)
    return result.stdout.strip()


def backend_pids(url: str, database: str, env: dict | None = None) -> list[int]:
    out = psql(url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' "
                    "AND pid <> pg_backend_pid()", env=env)
    return [int(line) for line in out.split() if line.strip()]


def database_url(base_url: str, name: str) -> str:
    """Return base_url with its database name replaced."""
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


# --- stacd ----------------------------------------------------------------------------

class Stacd:
    """One `stacd serve` process on a loaded store."""

    def __init__(self, name: str, binary: Path, url: str, port: int, log_path: Path, request_log: bool,
                 admin_url: str | None = None, database: str | None = None, extra_env: dict | None = None):
        self.name = name
        self.binary = binary
        self.url = url
        self.port = port
        self.log_path = log_path
        self.request_log = request_log
        self.admin_url = admin_url
        self.database = database
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Start the server; return seconds from spawn to the first 200 from /collections."""
        env = dict(os.environ, STACD_LOG_FORMAT="json")
        # The peer runs without an access log, so by default stacd runs without its per-request records.
        env["RUST_LOG"] = "info,sqlx=warn" if self.request_log else "warn"
        env.update(self.extra_env)
        log_stream = self.log_path.open("ab")
        spawned = time.time()
        self.process = subprocess.Popen(
            [str(self.binary), "serve", "--database-url", self.url, "--bind", f"127.0.0.1:{self.port}"],
            stdout=log_stream, stderr=subprocess.STDOUT, env=env)
        log_stream.close()
        answered = wait_until_answering(self.port, "/collections", time.monotonic() + timeout,
                                        lambda: self.process.poll() is None)
        if answered is None:
            self.stop()
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{self.name} did not return 200 from GET /collections within {timeout} s; log:\n{tail}")
        return answered - spawned

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process and self.process.poll() is None else []

    def database_pids(self) -> list[int]:
        if not self.admin_url:
            return []
        return backend_pids(self.admin_url, self.database)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.process.pid}) still running 20 s after SIGTERM, sending SIGKILL")
                self.process.kill()
                self.process.wait()
        self.process = None


# --- the peer ---------------------------------------------------------------------------

class Peer:
    """stac-fastapi-pgstac, run by up.sh/down.sh from the stac-tools folder on its own cluster."""

    name = "peer"

    def __init__(self, tools: Path, database: str, run_dir: Path, empty_data_dir: Path, workers: int,
                 port: int, pg_port: int, pg_password: str, log_path: Path):
        self.tools = tools
        self.database = database
        self.run_dir = run_dir
        self.port = port
        self.pg_port = pg_port
        self.log_path = log_path
        self.env = {
            "PG_DB": database,
            "PG_PORT": str(pg_port),
            "PG_PASSWORD": pg_password,
            "API_PORT": str(port),
            "RUN": str(run_dir),
            "WORKERS": str(workers),
            # An empty data folder: up.sh loads nothing, and the benchmark loads its own items.
            "DATA_DIR": str(empty_data_dir),
            "RELOAD": "1",
        }
        self.pg_env = {
            "PGHOST": "127.0.0.1", "PGPORT": str(pg_port), "PGUSER": "postgres", "PGPASSWORD": pg_password,
        }
        self.cluster_was_running = self.cluster_running()
        run_dir.mkdir(parents=True, exist_ok=True)
        empty_data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/postgres"

    def cluster_running(self) -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.pg_port)]).returncode == 0

    def venv(self) -> Path:
        out = run([str(self.tools / "venv.sh")], capture=True).stdout.strip()
        return Path(out)

    def pid(self) -> int | None:
        try:
            pid = int((self.run_dir / "uvicorn.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def up(self) -> None:
        """Run up.sh: packages, venv, cluster, database, PgSTAC schema and the API."""
        run([str(self.tools / "up.sh")], env=self.env, log_file=self.log_path)
        if self.pid() is None:
            raise RuntimeError(f"up.sh finished but {self.run_dir / 'uvicorn.pid'} names no running process")

    def restart_timed(self, timeout: float = 120.0) -> float:
        """Restart the API with up.sh and time it from the uvicorn process start to the first 200."""
        self.down_api()
        holder: dict = {}

        def bring_up():
            try:
                run([str(self.tools / "up.sh")], env=dict(self.env, RELOAD="0"), log_file=self.log_path)
            except Exception as error:  # reported below, after the poll
                holder["error"] = error

        thread = threading.Thread(target=bring_up)
        thread.start()
        answered = wait_until_answering(self.port, "/collections", time.monotonic() + timeout, lambda: True)
        thread.join()
        if "error" in holder:
            raise holder["error"]
        pid = self.pid()
        if answered is None or pid is None:
            raise RuntimeError("the peer did not return 200 from GET /collections after up.sh")
        return answered - process_start_seconds(pid)

    def down_api(self) -> None:
        run([str(self.tools / "down.sh"), "--api"], env=self.env, log_file=self.log_path)

    def down(self) -> None:
        """Stop the API, and the cluster too when this run started it."""
        if self.cluster_was_running:
            self.down_api()
        else:
            run([str(self.tools / "down.sh")], env=self.env, log_file=self.log_path)

    def pids(self) -> list[int]:
        pid = self.pid()
        return descendants(pid) if pid else []

    def database_pids(self) -> list[int]:
        return backend_pids(self.admin_url, self.database, env=self.pg_env)
