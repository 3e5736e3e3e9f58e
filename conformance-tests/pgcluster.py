"""Throwaway PostgreSQL 15 + PostGIS clusters for the fault tests: a primary and,
when asked, a streaming replica, in one temporary folder, each listening only on
127.0.0.1 at a free port with trust authentication for loopback connections.

    with ClusterSet() as clusters:
        primary = clusters.primary()
        url = primary.create_database("stacd")  # PostGIS enabled
        replica = clusters.replica(primary)      # pg_basebackup -R, streaming
        primary.stop("immediate")
        primary.start()

Leaving the `with` block stops every cluster the set started (`pg_ctl stop`, and
SIGKILL of the postmaster pid from the cluster's own postmaster.pid when pg_ctl
fails) and deletes the folder, also after an exception. Nothing else is touched:
no system cluster, no pg_ctlcluster, no other PostgreSQL process.

As root, the PostgreSQL programs run as the `postgres` OS user through `runuser`,
because initdb rejects root, and the folder is handed to that user. As another
user, they run as that user. The Debian packages postgresql-15 and
postgresql-15-postgis-3 are installed with apt-get when missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from stacd_process import HOST, SetupError, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
DEBIAN_PACKAGES = ["postgresql-15", "postgresql-15-postgis-3"]
OS_USER = "postgres"

# pg_ctl waits this long for a start or stop. Crash recovery after an immediate stop
# of these small clusters took under a second in the tests of this folder.
PG_CTL_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 120
REPLICA_TIMEOUT_S = 60.0


def ensure_installed() -> None:
    """Install PostgreSQL 15 and PostGIS 3 with apt-get when initdb or postgis.control is missing."""
    if (PG_BIN / "initdb").exists() and POSTGIS_CONTROL.exists():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing {' '.join(DEBIAN_PACKAGES)} (apt-get)", flush=True)
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *DEBIAN_PACKAGES]):
        result = subprocess.run(sudo + command, env=env, stdin=subprocess.DEVNULL, timeout=1800)
        if result.returncode != 0:
            raise SetupError(f"'{' '.join(sudo + command)}' failed with status {result.returncode}")
    if not (PG_BIN / "initdb").exists():
        raise SetupError(f"{PG_BIN / 'initdb'} is still missing after installing {DEBIAN_PACKAGES}")


def as_cluster_owner() -> list[str]:
    """Return the command prefix that runs a PostgreSQL program as the owner of the clusters."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise SetupError(f"the OS user '{OS_USER}' does not exist; the postgresql-15 package creates it") from None
    return ["runuser", "-u", OS_USER, "--"]


def run(
    command: list[str], description: str, cwd: Path, as_owner: bool = True, timeout: float = COMMAND_TIMEOUT_S
) -> str:
    """Run a PostgreSQL program, return its standard output, and raise SetupError when it fails."""
    full_command = (as_cluster_owner() if as_owner else []) + command
    try:
        result = subprocess.run(
            full_command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SetupError(f"{description} timed out after {timeout:.0f} s: {' '.join(full_command)}") from None
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-1500:]
        raise SetupError(f"{description} failed with status {result.returncode}: {output}")
    return result.stdout


class Cluster:
    """One PostgreSQL cluster: its data folder, port and log file."""

    def __init__(self, name: str, root: Path, port: int) -> None:
        self.name = name
        self.root = root
        self.port = port
        self.data_dir = root / name
        self.log_path = root / f"{name}.log"
        self.socket_dir = root / "sockets"
        self.started = False

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def configure(self) -> None:
        """Append the listening address, port, socket folder and replication settings to postgresql.conf.

        Later lines win in postgresql.conf, so a replica copied from the primary
        gets its own port by appending again.
        """
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "max_replication_slots": "4",
            "hot_standby": "on",
            "shared_buffers": "32MB",
            "max_connections": "100",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# {self.name}, a throwaway cluster of pgcluster.py\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def start(self) -> float:
        """Start the cluster with pg_ctl, wait until it accepts connections, and return the seconds it took."""
        started = time.monotonic()
        run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
             "-w", "-t", str(PG_CTL_TIMEOUT_S), "start"],
            f"pg_ctl start of the {self.name} cluster (log: {self.log_path})",
            self.root,
        )  # fmt: skip
        self.started = True
        return time.monotonic() - started

    def stop(self, mode: str = "fast") -> float:
        """Stop the cluster with `pg_ctl stop -m MODE` (smart, fast or immediate) and return the seconds it took."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"invalid pg_ctl stop mode: {mode}")
        started = time.monotonic()
        run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", mode,
             "-w", "-t", str(PG_CTL_TIMEOUT_S), "stop"],
            f"pg_ctl stop -m {mode} of the {self.name} cluster",
            self.root,
        )  # fmt: skip
        return time.monotonic() - started

    def postmaster_pid(self) -> int | None:
        """Return the pid in the cluster's postmaster.pid, or None when the file is missing or empty."""
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first_line) if first_line.strip().isdigit() else None

    def is_running(self) -> bool:
        """Tell whether `pg_ctl status` finds the postmaster of this cluster running."""
        result = subprocess.run(
            as_cluster_owner() + [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "status"],
            cwd=self.root,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL over TCP as the database user postgres and return the unaligned output, stripped."""
        command = [
            str(PG_BIN / "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql,
        ]  # fmt: skip
        return run(command, f"psql on the {self.name} cluster ({sql[:80]})", self.root, as_owner=False).strip()

    def create_database(self, name: str, postgis: bool = True) -> str:
        """Create database NAME, enable PostGIS in it unless postgis is False, and return its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        if postgis:
            self.psql("CREATE EXTENSION postgis", database=name)
        return self.url(name)

    def current_wal_lsn(self) -> str:
        return self.psql("SELECT pg_current_wal_lsn()")

    def wait_replayed(self, lsn: str, timeout: float = REPLICA_TIMEOUT_S) -> float:
        """On a replica, wait until WAL up to LSN is replayed, and return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.psql(f"SELECT coalesce(pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn, false)") == "t":
                return time.monotonic() - started
            time.sleep(0.1)
        raise SetupError(f"the {self.name} cluster did not replay WAL up to {lsn} within {timeout:.0f} s")

    def pause_replay(self) -> None:
        """On a replica, pause WAL replay and wait until PostgreSQL reports it paused."""
        self.psql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + REPLICA_TIMEOUT_S
        while self.psql("SELECT pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise SetupError(
                    f"WAL replay of the {self.name} cluster did not pause within {REPLICA_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.05)

    def resume_replay(self) -> None:
        self.psql("SELECT pg_wal_replay_resume()")

    def kill(self) -> None:
        """Stop this cluster when pg_ctl could not: SIGKILL the postmaster pid from its own postmaster.pid."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ClusterSet:
    """A temporary folder that contains the clusters of one test, and stops and deletes them at the end."""

    def __init__(self, base_dir: str | None = None) -> None:
        ensure_installed()
        self.root = Path(tempfile.mkdtemp(prefix="stacd-pgcluster-", dir=base_dir))
        self.clusters: list[Cluster] = []
        if as_cluster_owner():
            shutil.chown(self.root, OS_USER, OS_USER)
        run(["mkdir", "-m", "0700", str(self.root / "sockets")], "creating the socket folder", self.root)

    def __enter__(self) -> ClusterSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def primary(self, name: str = "primary") -> Cluster:
        """Create a cluster with initdb, configure it for loopback trust and streaming, and start it."""
        cluster = Cluster(name, self.root, free_port())
        run(
            [str(PG_BIN / "initdb"), "-D", str(cluster.data_dir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
            f"initdb of the {name} cluster",
            self.root,
        )  # fmt: skip
        (cluster.data_dir / "pg_hba.conf").write_text(
            "# Trust for the local socket and loopback only: a throwaway cluster of pgcluster.py.\n"
            "local all all trust\n"
            f"host all all {HOST}/32 trust\n"
            "local replication all trust\n"
            f"host replication all {HOST}/32 trust\n"
        )
        cluster.configure()
        self.clusters.append(cluster)
        cluster.start()
        return cluster

    def replica(self, primary: Cluster, name: str = "replica") -> Cluster:
        """Copy PRIMARY with `pg_basebackup -R`, start the copy as a streaming replica, and wait until it streams."""
        cluster = Cluster(name, self.root, free_port())
        run(
            [str(PG_BIN / "pg_basebackup"), "-h", HOST, "-p", str(primary.port), "-U", "postgres",
             "-D", str(cluster.data_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync"],
            f"pg_basebackup of the {primary.name} cluster",
            self.root,
        )  # fmt: skip
        cluster.configure()
        self.clusters.append(cluster)
        cluster.start()
        if cluster.psql("SELECT pg_is_in_recovery()") != "t":
            raise SetupError(
                f"the {name} cluster is not in recovery after pg_basebackup -R, so it is no replica; "
                f"see {cluster.log_path}"
            )
        self.wait_streaming(primary)
        cluster.wait_replayed(primary.current_wal_lsn())
        return cluster

    def wait_streaming(self, primary: Cluster) -> None:
        """Wait until the primary has a WAL sender in state 'streaming'."""
        deadline = time.monotonic() + REPLICA_TIMEOUT_S
        while primary.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "0":
            if time.monotonic() > deadline:
                raise SetupError(f"no replica of the {primary.name} cluster streams after {REPLICA_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop the clusters, replicas first, and delete the folder."""
        for cluster in reversed(self.clusters):
            if not cluster.started or not cluster.is_running():
                continue
            try:
                cluster.stop("fast")
            except SetupError as e:
                print(f"pg_ctl stop failed ({e}); sending SIGKILL to the postmaster of {cluster.name}", flush=True)
                cluster.kill()
        shutil.rmtree(self.root, ignore_errors=True)
