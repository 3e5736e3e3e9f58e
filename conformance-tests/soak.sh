#!/usr/bin/env bash
# Soak test: drives a realistic read mix through wrk against `stacd serve` for a
# fixed time and checks for errors and memory growth.
#
# Usage: conformance-tests/soak.sh BINARY DATABASE_URL DURATION_SECONDS CONCURRENCY
#
#   BINARY            a stacd executable (the script runs a copy of it)
#   DATABASE_URL      an already loaded store, sqlite://PATH or postgres://USER@HOST:PORT/DB
#   DURATION_SECONDS  how long wrk runs (at least 30)
#   CONCURRENCY       open connections that wrk keeps busy (at least 1)
#
# The script installs wrk with apt-get when it is missing, starts stacd on
# 127.0.0.1 at a free port, reads /collections and a page of /search to build the
# request list from the stored data, and writes a wrk Lua script that picks at
# random from this mix: 45 % GET /search with bbox, datetime and limit (some
# with only one of them), 30 % items by id, 10 % /collections and
# /collections/{id}, 10 % /collections/{id}/items pages, 5 % next-page links, all
# with Accept-Encoding: gzip. Every 5 s it samples stacd's resident memory (VmRSS in
# /proc/PID/status) into rss.csv.
#
# Checks:
# - wrk reports no non-2xx/3xx responses and no socket errors (connect, read,
#   write, or timeouts after WRK_TIMEOUT);
# - the server log has no 5xx response, no ERROR record and no 'panicked';
# - stacd runs until the end;
# - its RSS at the end is at most RSS_GROWTH_LIMIT_PERCENT above the reference
#   sample, taken after the first minute, or after the first third of runs shorter
#   than 3 minutes. A drop in RSS is printed but is no failure.
#
# Other STACD_* variables in the environment configure the server as usual (such
# as STACD_POOL_MAX_CONNECTIONS); the flags --bind and --database-url, and
# STACD_LOG_FORMAT=json and RUST_LOG=info,sqlx=warn, which the log checks need,
# are set by the script.
#
# Prints requests/s, latency percentiles, an RSS summary, one PASS or FAIL line per
# check and 'N passed, N failed'. Exit status 0 only if every check passed, 2 on a
# usage error. The results folder (rss.csv, wrk output, the Lua script, and the
# server log without its 2xx/3xx response records) is kept and its path printed.
set -euo pipefail

usage() {
  echo "usage: $0 BINARY DATABASE_URL DURATION_SECONDS CONCURRENCY" >&2
  exit 2
}
[ $# -eq 4 ] || usage

die() {
  echo "soak.sh: $*" >&2
  exit 2
}

BINARY=$1
DATABASE_URL=$2
DURATION=$3
CONCURRENCY=$4
[ -f "$BINARY" ] && [ -x "$BINARY" ] || die "BINARY is not an executable file: $BINARY"
[[ $DATABASE_URL =~ ^(sqlite|postgres|postgresql):// ]] \
  || die "DATABASE_URL must start with sqlite:// or postgres://, got: $DATABASE_URL"
[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 30 ] \
  || die "DURATION_SECONDS must be a whole number of at least 30, got: $DURATION"
[[ $CONCURRENCY =~ ^[0-9]+$ ]] && [ "$CONCURRENCY" -ge 1 ] \
  || die "CONCURRENCY must be a whole number of at least 1, got: $CONCURRENCY"

HOST=127.0.0.1
SAMPLE_INTERVAL_S=5
HEALTH_TIMEOUT_S=60
# wrk counts a request without a response after this long as a timeout (a socket error).
WRK_TIMEOUT=10s
RSS_GROWTH_LIMIT_PERCENT=10

log() {
  printf '[soak %s] %s\n' "$(date -u +%H:%M:%S)" "$*"
}

# --- tools -------------------------------------------------------------------------

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
fi
missing=()
command -v wrk > /dev/null || missing+=(wrk)
command -v curl > /dev/null || missing+=(curl)
command -v python3 > /dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt-get)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# --- the server, stopped on every exit ----------------------------------------------

OUT=$(mktemp -d "${TMPDIR:-/tmp}/stacd-soak.XXXXXX")
SERVER_PID=""
FILTER_PID=""
SAMPLER_PID=""
WRK_PID=""

stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_server() {
  local pid=$SERVER_PID
  SERVER_PID=""
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "stacd (pid $pid) still running 15 s after SIGTERM, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop_pid "$WRK_PID"
  stop_pid "$SAMPLER_PID"
  stop_server
  # The log filter ends when stacd closes its end of the FIFO.
  [ -z "$FILTER_PID" ] || wait "$FILTER_PID" 2>/dev/null || true
  rm -f "$OUT/stacd" "$OUT/log.fifo"
}
trap cleanup EXIT
trap 'log "interrupted (SIGINT), stopping"; exit 130' INT
trap 'log "terminated (SIGTERM), stopping"; exit 143' TERM

# A copy, because the original may be rebuilt in place during a long run.
cp "$BINARY" "$OUT/stacd"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ROOT_URL="http://$HOST:$PORT"

# Responses are logged at info level, one record each. The filter drops the 2xx and
# 3xx ones, so a long soak keeps a small log, and counts them in ok-responses.
mkfifo "$OUT/log.fifo"
awk -v counts="$OUT/ok-responses" '
  /"message":"response","status":[23][0-9][0-9][,}]/ { ok++; next }
  { print; fflush() }
  END { print ok + 0 > counts }
' < "$OUT/log.fifo" > "$OUT/server.log" &
FILTER_PID=$!

log "starting stacd serve --bind $HOST:$PORT --database-url $DATABASE_URL"
env STACD_LOG_FORMAT=json RUST_LOG="info,sqlx=warn" \
  "$OUT/stacd" serve --bind "$HOST:$PORT" --database-url "$DATABASE_URL" > "$OUT/log.fifo" 2>&1 &
SERVER_PID=$!

start=$SECONDS
until curl -fsS -o /dev/null --max-time 5 "$ROOT_URL/health" 2>/dev/null; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -n 30 "$OUT/server.log" >&2
    die "stacd exited before it became healthy; log: $OUT/server.log"
  fi
  [ $((SECONDS - start)) -lt "$HEALTH_TIMEOUT_S" ] \
    || die "stacd did not return 200 from /health within $HEALTH_TIMEOUT_S s; log: $OUT/server.log"
  sleep 0.5
done
log "stacd pid $SERVER_PID is healthy on $ROOT_URL"

# --- the request mix, built from the stored data ------------------------------------

python3 - "$ROOT_URL" "$OUT/requests.lua" << 'PYTHON'
"""Write a wrk Lua script whose request paths come from the server's own data."""
import json
import math
import sys
import urllib.parse
import urllib.request

root_url, lua_path = sys.argv[1], sys.argv[2]


def get(path):
    with urllib.request.urlopen(root_url + path, timeout=60) as response:
        return json.load(response)


def local_path(href):
    """Return the path and query of a link, after checking that it points at the server under test."""
    parsed = urllib.parse.urlsplit(href)
    if f"{parsed.scheme}://{parsed.netloc}" != root_url:
        sys.exit(f"soak.sh: a link points away from {root_url}: {href}")
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def next_link(document):
    links = [link["href"] for link in document.get("links", []) if link.get("rel") == "next"]
    return local_path(links[0]) if links else None


collections = [c["id"] for c in get("/collections")["collections"]]
page = get("/search?limit=500")
items = [f for f in page["features"] if f.get("bbox") and f.get("collection")]
if not collections or not items:
    sys.exit(f"soak.sh: the store has {len(collections)} collections and {len(items)} items with a bbox; "
             "load data into DATABASE_URL first")


def quote(value):
    return urllib.parse.quote(str(value), safe="")


def day_range(item):
    properties = item["properties"]
    start = properties.get("datetime") or properties.get("start_datetime")
    end = properties.get("datetime") or properties.get("end_datetime") or start
    return quote(f"{start[:10]}T00:00:00Z/{end[:10]}T23:59:59Z")


def bbox_around(item, margin):
    b = item["bbox"]
    west, south, east, north = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b
    return ",".join(f"{v:.6f}" for v in (west - margin, south - margin, east + margin, north + margin))


searches, by_id, listings, pages = [], [], [], []
for n, item in enumerate(items):
    limit = (10, 50, 100)[n % 3]
    bbox = bbox_around(item, 0.001 * (n % 5))
    searches.append(f"/search?bbox={bbox}&datetime={day_range(item)}&limit={limit}")
    searches.append(f"/search?bbox={bbox}&limit={limit}")
    searches.append(f"/search?datetime={day_range(item)}&collections={quote(item['collection'])}&limit={limit}")
    by_id.append(f"/collections/{quote(item['collection'])}/items/{quote(item['id'])}")
for collection in collections:
    listings.append(f"/collections/{quote(collection)}/items?limit=10")
    document = get(f"/collections/{quote(collection)}/items?limit=10")
    if next_link(document):
        pages.append(next_link(document))
first_page = get("/search?limit=10")
if next_link(first_page):
    pages.append(next_link(first_page))
metadata = ["/collections"] + [f"/collections/{quote(c)}" for c in collections]

# (share of requests in percent, paths); the share of an empty group goes to the searches.
groups = [(30, by_id), (10, metadata), (10, listings), (5, pages)]
groups = [(share, list(dict.fromkeys(paths))) for share, paths in groups if paths]
searches = list(dict.fromkeys(searches))
groups.append((100 - sum(share for share, _ in groups), searches))

# wrk picks uniformly from this table, so each group fills its share of the entries,
# cycling through its paths. The table is large enough for every path to appear.
size = max([2000] + [math.ceil(len(paths) * 100 / share) for share, paths in groups])
table = []
for share, paths in groups:
    count = round(size * share / 100)
    table += [paths[i % len(paths)] for i in range(count)]
with open(lua_path, "w") as lua:
    lua.write("-- Request mix for wrk, written by soak.sh from the stored data.\n")
    lua.write("local paths = {\n" + "".join(f"  {json.dumps(p)},\n" for p in table) + "}\n")
    lua.write("""
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
end

-- Browsers and HTTP libraries such as Python requests ask for gzip too.
wrk.headers["Accept-Encoding"] = "gzip"

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d duration_us=%d bytes=%d status_errors=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("SOAK latency_ms p50=%.2f p90=%.2f p99=%.2f p99.9=%.2f max=%.2f mean=%.2f\\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, latency.mean / 1000))
end
""")
print(f"request mix: {len(searches)} searches, {len(by_id)} items by id, {len(metadata)} metadata paths, "
      f"{len(listings)} item pages, {len(pages)} next-page links, in a table of {len(table)} entries: "
      + ", ".join(f"{share:.0f} %" for share, _ in groups))
PYTHON

# --- load and RSS samples -----------------------------------------------------------

echo "seconds,rss_kib" > "$OUT/rss.csv"
sample_rss() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || true
}
(
  begin=$SECONDS
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "$((SECONDS - begin)),$(sample_rss)" >> "$OUT/rss.csv"
    sleep "$SAMPLE_INTERVAL_S"
  done
) &
SAMPLER_PID=$!

threads=$(nproc)
[ "$threads" -le "$CONCURRENCY" ] || threads=$CONCURRENCY
log "wrk -t $threads -c $CONCURRENCY -d ${DURATION}s --timeout $WRK_TIMEOUT --latency $ROOT_URL"
wrk -t "$threads" -c "$CONCURRENCY" -d "${DURATION}s" --timeout "$WRK_TIMEOUT" --latency \
  -s "$OUT/requests.lua" "$ROOT_URL" > "$OUT/wrk.txt" 2>&1 &
WRK_PID=$!
wrk_status=0
wait "$WRK_PID" || wrk_status=$?
WRK_PID=""
end_rss=$(sample_rss)
stop_pid "$SAMPLER_PID"
SAMPLER_PID=""
cat "$OUT/wrk.txt"

server_pid=$SERVER_PID
server_alive=no
! kill -0 "$SERVER_PID" 2>/dev/null || server_alive=yes
stop_server
wait "$FILTER_PID" 2>/dev/null || true
FILTER_PID=""

# --- results ------------------------------------------------------------------------

PASSED=0
FAILED=0
check() {
  local name=$1 ok=$2 detail=$3
  if [ "$ok" = yes ]; then
    PASSED=$((PASSED + 1))
    echo "PASS $name: $detail"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $name: $detail"
  fi
}

# field NAME: the value of NAME=VALUE on the SOAK lines that the Lua done() wrote.
field() {
  { grep '^SOAK ' "$OUT/wrk.txt" || true; } | tr ' ' '\n' | awk -F= -v name="$1" '$1 == name { print $2; exit }'
}

requests=$(field requests)
if [ "$wrk_status" -ne 0 ] || [ -z "$requests" ]; then
  check "wrk ran to the end" no "exit status $wrk_status, output in $OUT/wrk.txt"
else
  duration_us=$(field duration_us)
  status_errors=$(field status_errors)
  socket_errors=$(($(field connect) + $(field read) + $(field write) + $(field timeout)))
  echo
  echo "requests: $requests in $((duration_us / 1000000)) s," \
    "$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.1f", r / (d / 1e6) }') requests/s" \
    "at concurrency $CONCURRENCY"
  echo "latency (ms): p50 $(field p50), p90 $(field p90), p99 $(field p99), p99.9 $(field p99.9)," \
    "max $(field max), mean $(field mean)"
  check "wrk ran to the end" yes "$requests requests"
  check "no non-2xx/3xx responses" "$([ "$status_errors" -eq 0 ] && echo yes || echo no)" \
    "wrk counted $status_errors"
  check "no socket errors" "$([ "$socket_errors" -eq 0 ] && echo yes || echo no)" \
    "connect $(field connect), read $(field read), write $(field write), timeout $(field timeout)"
fi

server_5xx=$(grep -c -E '"message":"response","status":5[0-9][0-9][,}]' "$OUT/server.log" || true)
server_errors=$(grep -c '"level":"ERROR"' "$OUT/server.log" || true)
echo "server log: $(cat "$OUT/ok-responses" 2>/dev/null || echo '?') responses with 2xx/3xx," \
  "$(grep -c '"message":"response"' "$OUT/server.log" || true) other responses, $server_errors ERROR records"
check "no 5xx in the server log" "$([ "$server_5xx" -eq 0 ] && echo yes || echo no)" "$server_5xx 5xx responses"
check "no ERROR records in the server log" "$([ "$server_errors" -eq 0 ] && echo yes || echo no)" \
  "$server_errors records"
panics=$(grep -c 'panicked' "$OUT/server.log" || true)
# Rust prints the panic message on the line after the one with 'panicked'.
panic_example=$({ grep -m1 -A1 'panicked' "$OUT/server.log" || true; } | tr '\n' ' ' | cut -c1-300)
check "no 'panicked' in the server log" "$([ "$panics" -eq 0 ] && echo yes || echo no)" \
  "$panics lines${panic_example:+, the first: $panic_example}"
check "stacd ran until the end" "$server_alive" "pid $server_pid alive when wrk finished: $server_alive"

# The reference sample: after the first minute, or after the first third of a short run.
if [ "$DURATION" -ge 180 ]; then
  reference_s=60
else
  reference_s=$((DURATION / 3))
fi
echo "$DURATION,$end_rss" >> "$OUT/rss.csv"
read -r samples min_rss max_rss first_rss reference_rss reference_at < <(awk -F, -v at="$reference_s" '
  NR > 1 && $2 != "" {
    n++
    if (n == 1 || $2 < min) min = $2
    if ($2 > max) max = $2
    if (n == 1) first = $2
    if (ref == "" && $1 >= at) { ref = $2; ref_at = $1 }
  }
  END { print n + 0, min + 0, max + 0, first + 0, ref + 0, ref_at + 0 }
' "$OUT/rss.csv")
echo "RSS (KiB): $samples samples every $SAMPLE_INTERVAL_S s; first $first_rss, min $min_rss, max $max_rss," \
  "reference $reference_rss at ${reference_at} s, end ${end_rss:-?}"
if [ -n "$end_rss" ] && [ "$reference_rss" -gt 0 ]; then
  growth=$(awk -v e="$end_rss" -v r="$reference_rss" 'BEGIN { printf "%.1f", (e - r) * 100 / r }')
  check "RSS at the end at most ${RSS_GROWTH_LIMIT_PERCENT} % above the reference" \
    "$(awk -v g="$growth" -v l="$RSS_GROWTH_LIMIT_PERCENT" 'BEGIN { print (g <= l) ? "yes" : "no" }')" \
    "$growth % ($reference_rss KiB at ${reference_at} s, $end_rss KiB at the end)"
else
  check "RSS at the end at most ${RSS_GROWTH_LIMIT_PERCENT} % above the reference" no \
    "no RSS sample (reference '$reference_rss', end '${end_rss:-}'); see $OUT/rss.csv"
fi

echo "results: $OUT"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
