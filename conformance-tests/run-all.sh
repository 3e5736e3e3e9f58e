#!/usr/bin/env bash
# Runs every test of stacd, on a fresh Debian 12 machine or a developer's one:
#
#   1. provisioning: PostgreSQL 15 + PostGIS 3, GDAL (ogrinfo), rustfmt, clippy,
#      and the Python venv of the STAC tools;
#   2. fresh databases stacd_test (Rust tests) and stacd_conformance (server suites);
#   3. cargo fmt --check, cargo clippy -D warnings, the Rust tests;
#   4. cargo build, then for each store (sqlite, postgres): load the STAC data, start
#      `stacd serve` on 127.0.0.1 with writes enabled, and run stac-api-validator, the
#      CQL2 operator table, the pystac-client paging checks, GDAL's OGC API Features
#      driver and schemathesis
#      against it; then the durability tests (SIGKILL during bulk writes, concurrent
#      writers with If-Match) on fresh stores;
#   5. operations: the Kubernetes manifests against their schemas (offline), the
#      database-stop and read-replica tests on private PostgreSQL clusters, OTLP
#      trace export, and a short soak under wrk;
#   6. a release build and the small benchmark (bench/run --quick), which checks
#      every response of stacd and of stac-fastapi-pgstac and prints the table.
#
# Usage: conformance-tests/run-all.sh STAC_DATA_DIR STAC_TOOLS_DIR
#
#   STAC_DATA_DIR   folder with naip/, joplin/ and validator-scratch/ (collection.json, items.ndjson)
#   STAC_TOOLS_DIR  folder with validate.sh, venv.sh and offline/ (stac-api-validator, pystac-client)
#
# Environment:
#   STACD_TEST_DATABASE_URL  PostgreSQL URL of an existing database to connect to for
#                            creating the test databases
#                            (default postgres://postgres@127.0.0.1:5432/postgres)
#   STACD_TEST_LOG_DIR       where step logs go (default target/conformance/<UTC time>)
#   STACD_SOAK_SECONDS       length of the soak step (default 60)
#
# A failing step does not stop the run. The run ends with a table of steps and the
# line 'N passed, N failed' (steps skipped because an earlier step failed count as
# failed). Exit status 0 only if every step passed.
set -euo pipefail

usage() {
  echo "usage: $0 STAC_DATA_DIR STAC_TOOLS_DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage

die() {
  echo "run-all.sh: $*" >&2
  exit 2
}

[ -d "$1" ] || die "STAC data folder not found: $1"
[ -d "$2" ] || die "STAC tools folder not found: $2"
STAC_DATA_DIR=$(cd "$1" && pwd)
STAC_TOOLS_DIR=$(cd "$2" && pwd)
for collection in naip joplin validator-scratch; do
  [ -f "$STAC_DATA_DIR/$collection/collection.json" ] \
    || die "missing $STAC_DATA_DIR/$collection/collection.json (is STAC_DATA_DIR the right folder?)"
done
[ -x "$STAC_TOOLS_DIR/validate.sh" ] || die "missing $STAC_TOOLS_DIR/validate.sh (is STAC_TOOLS_DIR the right folder?)"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
cd "$REPO_ROOT"

BASE_DATABASE_URL=${STACD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
LOG_DIR=${STACD_TEST_LOG_DIR:-$REPO_ROOT/target/conformance/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$LOG_DIR"

# Time limits per step, in seconds, so that one hanging step cannot use up the
# CI budget. Builds get the longest limits because a build from scratch is the
# slowest step.
LIMIT_FMT=600
LIMIT_CLIPPY=2700
LIMIT_TESTS=2700
LIMIT_BUILD=2700
LIMIT_LOAD=900
LIMIT_VALIDATOR=1800
LIMIT_PYSTAC=900
LIMIT_OGR=900
LIMIT_FUZZ=600
LIMIT_DURABILITY=300
LIMIT_OPERATIONS=600
LIMIT_BENCH=1800
SOAK_SECONDS=${STACD_SOAK_SECONDS:-60}
HEALTH_TIMEOUT=60

log() {
  printf '[run-all %s] %s\n' "$(date -u +%H:%M:%S)" "$*"
}

# --- step bookkeeping --------------------------------------------------------------

STEP_NAMES=()
STEP_RESULTS=()
STEP_SECONDS=()
PASSED=0
FAILED=0

record_step() {
  local name=$1 result=$2 seconds=$3
  STEP_NAMES+=("$name")
  STEP_RESULTS+=("$result")
  STEP_SECONDS+=("$seconds")
  if [ "$result" = PASS ]; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
  fi
  log "$name: $result (${seconds}s)"
}

# run_step NAME LIMIT_SECONDS COMMAND [ARGS...]
# Runs COMMAND with a time limit, shows its output and saves it to LOG_DIR/NAME.log.
# Returns 0 if the step passed, so callers can make later steps depend on it.
run_step() {
  local name=$1 limit=$2
  shift 2
  local logfile="$LOG_DIR/${name//\//-}.log" start=$SECONDS rc result tee_pid
  printf '\n'
  log "=== $name: $*"
  # The step runs in the background and the shell waits for it with `wait`, which
  # a signal interrupts, so INT or TERM stops the step and the server at once.
  # (Bash runs a trap only after a foreground command has finished.)
  exec 3> >(tee "$logfile")
  tee_pid=$!
  timeout --kill-after=30 "$limit" "$@" >&3 2>&1 &
  STEP_PID=$!
  exec 3>&-
  rc=0
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  wait "$tee_pid" 2>/dev/null || true
  case $rc in
    0) result=PASS ;;
    124 | 137) result=TIMEOUT ;;
    *) result=FAIL ;;
  esac
  record_step "$name" "$result" $((SECONDS - start))
  [ "$result" = PASS ]
}

skip_step() {
  record_step "$1" SKIPPED 0
}

print_summary() {
  local i
  printf '\n%-28s %-8s %8s\n' step result seconds
  printf '%-28s %-8s %8s\n' ---------------------------- -------- --------
  for i in "${!STEP_NAMES[@]}"; do
    printf '%-28s %-8s %8s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "${STEP_SECONDS[$i]}"
  done
  echo "logs: $LOG_DIR"
  echo "$PASSED passed, $FAILED failed"
}

# --- the server under test, stopped on every exit ----------------------------------

SERVER_PID=""
SCRATCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/stacd-run-all.XXXXXX")

stop_server() {
  local pid=$SERVER_PID
  SERVER_PID=""
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "stacd (pid $pid) still running 10 s after SIGTERM, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

STEP_PID=""

# Stops the running step: timeout passes the signal on to the step's processes.
stop_step() {
  local pid=$STEP_PID
  STEP_PID=""
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop_step
  stop_server
  rm -rf "$SCRATCH_DIR"
}
trap cleanup EXIT
trap 'log "interrupted (SIGINT), stopping"; exit 130' INT
trap 'log "terminated (SIGTERM), stopping"; exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME DATABASE_URL PORT: starts stacd in the background and waits for
# GET /health to return 200. Records the step NAME.
start_server() {
  local name=$1 database_url=$2 port=$3
  local logfile="$LOG_DIR/${name//\//-}.log" start=$SECONDS
  printf '\n'
  log "=== $name: target/debug/stacd serve --bind 127.0.0.1:$port --database-url $database_url"
  target/debug/stacd serve --bind "127.0.0.1:$port" --database-url "$database_url" \
    --tokens-file "$TOKENS_FILE" > "$logfile" 2>&1 &
  SERVER_PID=$!
  while [ $((SECONDS - start)) -lt "$HEALTH_TIMEOUT" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "stacd exited before it became ready; last lines of $logfile:"
      tail -n 30 "$logfile" >&2
      SERVER_PID=""
      record_step "$name" FAIL $((SECONDS - start))
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$port/health" 2>/dev/null; then
      record_step "$name" PASS $((SECONDS - start))
      return 0
    fi
    sleep 0.5
  done
  log "stacd did not return 200 from /health within $HEALTH_TIMEOUT s; last lines of $logfile:"
  tail -n 30 "$logfile" >&2
  stop_server
  record_step "$name" TIMEOUT $((SECONDS - start))
  return 1
}

# --- 1. provisioning ---------------------------------------------------------------

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
fi

provision_packages() {
  local packages=()
  if ! dpkg -s postgresql-15-postgis-3 > /dev/null 2>&1; then
    packages+=(postgresql-15-postgis-3)
  fi
  if ! command -v ogrinfo > /dev/null; then
    packages+=(gdal-bin)
  fi
  if ! command -v curl > /dev/null; then
    packages+=(curl)
  fi
  # venv.sh runs `python3 -m venv`, which needs ensurepip (package python3-venv on Debian).
  if ! python3 -c 'import ensurepip' > /dev/null 2>&1; then
    packages+=(python3-venv)
  fi
  if [ ${#packages[@]} -eq 0 ]; then
    log "Debian packages present: postgresql-15-postgis-3, gdal-bin, curl, python3-venv"
    return 0
  fi
  log "installing ${packages[*]} (apt-get)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
}

provision_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    return 0
  fi
  log "PostgreSQL is not answering on 127.0.0.1:5432, starting cluster 15/main"
  $SUDO pg_ctlcluster --skip-systemctl-redirect 15 main start
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 0.5
  done
  die "PostgreSQL did not accept connections on 127.0.0.1:5432 within 30 s after pg_ctlcluster start"
}

provision_rust() {
  command -v cargo > /dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs) first"
  if ! cargo fmt --version > /dev/null 2>&1; then
    log "installing rustfmt (rustup)"
    rustup component add rustfmt
  fi
  if ! cargo clippy --version > /dev/null 2>&1; then
    log "installing clippy (rustup)"
    rustup component add clippy
  fi
}

provision_packages
provision_postgres
provision_rust
VENV=$("$STAC_TOOLS_DIR/venv.sh") || die "could not create the Python venv with $STAC_TOOLS_DIR/venv.sh"
export VENV
log "tools: $(cargo --version), $(ogrinfo --version), venv $VENV"

# --- 2. databases ------------------------------------------------------------------

# database_url NAME: BASE_DATABASE_URL with its database name replaced by NAME.
database_url() {
  local without_query=${BASE_DATABASE_URL%%\?*}
  local query=${BASE_DATABASE_URL#"$without_query"}
  echo "${without_query%/*}/$1$query"
}

recreate_database() {
  local name=$1
  psql "$BASE_DATABASE_URL" -v ON_ERROR_STOP=1 -qX -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" \
    -c "CREATE DATABASE \"$name\""
  psql "$(database_url "$name")" -v ON_ERROR_STOP=1 -qX -c 'CREATE EXTENSION IF NOT EXISTS postgis'
}

[[ $BASE_DATABASE_URL =~ ^postgres(ql)?://[^/]+/[^/?]+ ]] \
  || die "STACD_TEST_DATABASE_URL must be postgres://USER@HOST:PORT/DBNAME, got: $BASE_DATABASE_URL"
if ! psql "$BASE_DATABASE_URL" -qXtA -c 'SELECT 1' > /dev/null; then
  # NOTE: a fresh Debian install only allows password logins over TCP; this script
  # does not change pg_hba.conf by itself.
  die "cannot connect to $BASE_DATABASE_URL. Allow the connection (for a throwaway local cluster,
  'host all postgres 127.0.0.1/32 trust' in /etc/postgresql/15/main/pg_hba.conf, then reload),
  or set STACD_TEST_DATABASE_URL to a URL that works."
fi
recreate_database stacd_test
recreate_database stacd_conformance
STACD_TEST_DATABASE_URL=$(database_url stacd_test)
export STACD_TEST_DATABASE_URL
CONFORMANCE_DATABASE_URL=$(database_url stacd_conformance)
log "databases: $STACD_TEST_DATABASE_URL (Rust tests), $CONFORMANCE_DATABASE_URL (server suites)"

# --- 3. format, lints, Rust tests --------------------------------------------------

run_step fmt "$LIMIT_FMT" cargo fmt --check || true
run_step clippy "$LIMIT_CLIPPY" cargo clippy --all-targets -- -D warnings || true
if cargo nextest --version > /dev/null 2>&1; then
  run_step tests "$LIMIT_TESTS" cargo nextest run --no-tests=warn || true
  # nextest does not run doctests, and only a library target has them.
  if [ -f src/lib.rs ]; then
    run_step doctests "$LIMIT_TESTS" cargo test --doc || true
  fi
else
  run_step tests "$LIMIT_TESTS" cargo test || true
fi

# --- 4. the server suites, once per store ------------------------------------------

STORES=(sqlite postgres)
SUITES=(stac-validator cql2-table pystac-client ogr fuzz kill-test concurrent-writers)

skip_store() {
  local store=$1 suite
  for suite in "${SUITES[@]}"; do
    skip_step "$store/$suite"
  done
}

run_store() {
  local store=$1 database_url port root_url
  case $store in
    sqlite) database_url="sqlite://$SCRATCH_DIR/stacd.sqlite" ;;
    postgres) database_url=$CONFORMANCE_DATABASE_URL ;;
  esac

  run_step "$store/migrate" 300 target/debug/stacd migrate --database-url "$database_url" || true
  if ! run_step "$store/load" "$LIMIT_LOAD" target/debug/stacd load --database-url "$database_url" \
    "$STAC_DATA_DIR/naip" "$STAC_DATA_DIR/joplin" "$STAC_DATA_DIR/validator-scratch"; then
    skip_step "$store/serve"
    skip_store "$store"
    return 0
  fi

  port=$(free_port)
  if ! start_server "$store/serve" "$database_url" "$port"; then
    skip_store "$store"
    return 0
  fi
  root_url="http://127.0.0.1:$port"

  run_step "$store/stac-validator" "$LIMIT_VALIDATOR" \
    env OUT="$LOG_DIR/$store-stac-validator" VALIDATOR_TOKEN="$WRITE_TOKEN" \
    CLASSES="core collections features item-search filter item-search#fields item-search#query item-search#sort transaction" \
    "$HERE/stac-validator.sh" "$root_url" "$STAC_TOOLS_DIR" || true
  run_step "$store/cql2-table" "$LIMIT_PYSTAC" \
    "$HERE/cql2-table.sh" "$root_url" "$STAC_DATA_DIR" || true
  run_step "$store/pystac-client" "$LIMIT_PYSTAC" \
    "$HERE/pystac-client.sh" "$root_url" "$STAC_DATA_DIR" "$STAC_TOOLS_DIR" || true
  run_step "$store/ogr" "$LIMIT_OGR" "$HERE/ogr.sh" "$root_url" || true
  run_step "$store/fuzz" "$LIMIT_FUZZ" \
    env STACD_FUZZ_MAX_TIME=120 STACD_FUZZ_REPORT_DIR="$LOG_DIR/$store-fuzz" "$HERE/fuzz.sh" "$root_url" || true

  stop_server

  # Durability: SIGKILL during bulk writes, and racing writers with If-Match, each
  # on a store of its own because the scripts start their own servers.
  local kill_url writers_url
  case $store in
    sqlite)
      kill_url="sqlite://$SCRATCH_DIR/kill-test.sqlite"
      writers_url="sqlite://$SCRATCH_DIR/concurrent-writers.sqlite"
      ;;
    postgres)
      recreate_database stacd_kill_test
      recreate_database stacd_concurrent_writers
      kill_url=$(database_url stacd_kill_test)
      writers_url=$(database_url stacd_concurrent_writers)
      ;;
  esac
  run_step "$store/kill-test" "$LIMIT_DURABILITY" \
    python3 "$HERE/kill-test.py" target/debug/stacd "$kill_url" || true
  run_step "$store/concurrent-writers" "$LIMIT_DURABILITY" \
    python3 "$HERE/concurrent-writers.py" target/debug/stacd "$writers_url" 30 || true
}

if run_step build "$LIMIT_BUILD" cargo build; then
  # Writes are enabled with a token made for this run, for the validator's transaction test.
  TOKENS_FILE="$SCRATCH_DIR/tokens"
  WRITE_TOKEN=$(target/debug/stacd token new --tokens-file "$TOKENS_FILE" --name conformance 2> /dev/null)
  for store in "${STORES[@]}"; do
    run_store "$store"
  done
else
  for store in "${STORES[@]}"; do
    skip_step "$store/migrate"
    skip_step "$store/load"
    skip_step "$store/serve"
    skip_store "$store"
  done
fi

# --- 5. operations ----------------------------------------------------------------

run_step k8s-validate "$LIMIT_OPERATIONS" "$HERE/k8s-validate.sh" || true
if [ -x target/debug/stacd ]; then
  run_step database-stop "$LIMIT_OPERATIONS" python3 "$HERE/database-stop.py" target/debug/stacd || true
  run_step replica-routing "$LIMIT_OPERATIONS" python3 "$HERE/replica-routing.py" target/debug/stacd || true
  run_step otlp "$LIMIT_OPERATIONS" python3 "$HERE/otlp.py" target/debug/stacd || true
  if [ -f "$SCRATCH_DIR/stacd.sqlite" ]; then
    run_step soak "$LIMIT_OPERATIONS" \
      "$HERE/soak.sh" target/debug/stacd "sqlite://$SCRATCH_DIR/stacd.sqlite" "$SOAK_SECONDS" 64 || true
  else
    skip_step soak
  fi
else
  for step in database-stop replica-routing otlp soak; do
    skip_step "$step"
  done
fi

# --- 6. benchmark, correctness only -------------------------------------------------

# The small benchmark configuration: 10,000 generated items in stacd (PostGIS and
# SQLite) and in stac-fastapi-pgstac, every response checked, the table printed. It
# asserts no time. A release build, so that the printed numbers mean something.
if run_step build-release "$LIMIT_BUILD" cargo build --release; then
  run_step bench-quick "$LIMIT_BENCH" nice -n 5 python3 bench/run --quick \
    --stac-tools "$STAC_TOOLS_DIR" --stacd target/release/stacd --database-url "$BASE_DATABASE_URL" \
    --cache "$SCRATCH_DIR/bench" --results "$LOG_DIR/bench" --drop-databases || true
else
  skip_step bench-quick
fi

print_summary
[ "$FAILED" -eq 0 ]
