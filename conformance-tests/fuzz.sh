#!/usr/bin/env bash
# Fuzzes a running stacd with schemathesis, driven by the OpenAPI document that the
# server serves at ROOT_URL/api, and fails on any response that breaks the document.
#
# Usage: conformance-tests/fuzz.sh ROOT_URL
#
#   ROOT_URL  loopback root URL of a running stacd, such as http://127.0.0.1:7950
#
# Environment:
#   STACD_FUZZ_SCHEMA       OpenAPI document to test against instead of ROOT_URL/api, such
#                           as schemas/openapi.json, to try document edits before a rebuild
#   STACD_FUZZ_MAX_EXAMPLES test cases per operation and phase (default 50)
#   STACD_FUZZ_MAX_TIME     time budget of the schemathesis run, in seconds (default 180).
#                           Schemathesis repeats fuzzing until the budget is spent, so a
#                           run takes this long plus about 20 s of setup.
#   STACD_FUZZ_SEED         seed, to replay a run (schemathesis prints the seed it used)
#   STACD_FUZZ_REPORT_DIR   where the JSON, NDJSON and pytest reports go (default: a new
#                           folder under TMPDIR, printed at the end)
#   PYTHON                  interpreter for the venv (default python3)
#
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/stacd-fuzz/venv with schemathesis
# pinned to SCHEMATHESIS_VERSION below; the first run installs it from PyPI.
#
# Checks: every schemathesis check except these:
#
#   positive_data_acceptance  An OpenAPI 3.0 schema cannot state all the rules the server
#       applies to valid-looking input, so schema-valid requests are rejected with 400 by
#       design: bbox latitudes within -90..90 and longitudes within -180..180 (the bbox
#       array has one item schema for all positions), south edge not north of the north
#       edge, datetime as an RFC 3339 date-time or interval whose start is not after its
#       end, GeoJSON rings whose last position equals the first, and tokens that the
#       server signed (any other string is rejected).
#
# negative_data_rejection also accepts 414, which hyper (the HTTP layer) sends for a URI
# longer than 65534 bytes before the request reaches the API; the document lists it.
#
# Schemathesis runs with one worker: with several threads, Python 3.11.7 (the
# interpreter this script was tried with) raises "SystemError: AST constructor recursion
# depth mismatch" inside Hypothesis during the coverage phase.
#
# Every request goes to ROOT_URL: the script rejects other hosts and clears proxy
# variables. It prints schemathesis' own report, then the closing line
# 'N passed, N failed' (test cases), and exits 0 only if no test case failed and
# schemathesis reported no error.
set -uo pipefail

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${STACD_FUZZ_MAX_EXAMPLES:-50}
MAX_TIME=${STACD_FUZZ_MAX_TIME:-180}
# Hard stop for the schemathesis process, above MAX_TIME for setup and the last test case.
HARD_LIMIT=$((MAX_TIME + 90))

die() {
  echo "fuzz.sh: $*" >&2
  exit 2
}

[ $# -eq 1 ] || { echo "usage: $0 ROOT_URL" >&2; exit 2; }
root_url=${1%/}
if ! [[ $root_url =~ ^http://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?(/[^?#]*)?$ ]]; then
  die "rejected root URL $1: only loopback URLs are allowed (http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT)"
fi

schema=${STACD_FUZZ_SCHEMA:-$root_url/api}
if [ -n "${STACD_FUZZ_SCHEMA:-}" ]; then
  [ -f "$schema" ] || die "STACD_FUZZ_SCHEMA is not a file: $schema"
fi

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'

curl -fsS -o /dev/null --max-time 10 "$root_url/health" \
  || die "GET $root_url/health failed: start stacd first, or check ROOT_URL"

# --- the pinned schemathesis ---------------------------------------------------------

venv=${XDG_CACHE_HOME:-$HOME/.cache}/stacd-fuzz/venv
installed=$("$venv/bin/schemathesis" --version 2>/dev/null || true)
if [ "$installed" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  echo "fuzz.sh: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv" || die "could not create a venv with ${PYTHON:-python3} (on Debian, install python3-venv)"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" \
    || die "could not install schemathesis $SCHEMATHESIS_VERSION from PyPI"
fi

# --- configuration and run -----------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/stacd-fuzz.XXXXXX")
report_dir=${STACD_FUZZ_REPORT_DIR:-$work/report}
mkdir -p "$report_dir"
cleanup() {
  # The reports stay; the scratch folder goes only when nothing else is in it.
  rm -f "$work/schemathesis.toml" "$work/openapi.json"
  rmdir "$work" 2> /dev/null || true
}
trap cleanup EXIT

if [ -n "${STACD_FUZZ_SCHEMA:-}" ]; then
  # The server replaces {{SERVER_URL}} in the document it serves; a local copy needs the same.
  sed "s#{{SERVER_URL}}#$root_url#g" "$STACD_FUZZ_SCHEMA" > "$work/openapi.json"
  schema=$work/openapi.json
fi

cat > "$work/schemathesis.toml" <<'EOF'
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx"]
EOF

seed_args=()
if [ -n "${STACD_FUZZ_SEED:-}" ]; then
  seed_args=(--seed "$STACD_FUZZ_SEED")
fi

start=$SECONDS
rc=0
(cd "$work" && timeout --kill-after=10 "$HARD_LIMIT" "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" \
  run "$schema" \
  --url "$root_url" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --max-examples "$MAX_EXAMPLES" \
  --max-time "$MAX_TIME" \
  --workers 1 \
  --request-timeout 60 \
  --generation-database none \
  --output-sanitize false \
  --no-color \
  --report json,ndjson,pytest \
  --report-dir "$report_dir" \
  --report-json-path "$report_dir/report.json" \
  "${seed_args[@]}") || rc=$?
elapsed=$((SECONDS - start))

# --- closing line --------------------------------------------------------------------

counts=$("$venv/bin/python" - "$report_dir/report.json" <<'EOF'
import json
import sys

try:
    with open(sys.argv[1]) as report_file:
        report = json.load(report_file)
except (OSError, ValueError):
    print("0 1")
    sys.exit()
cases = report["test_cases"]
errors = sum(error.get("count", 1) for error in report.get("errors", []))
failed = cases["with_failures"] + cases["errored"] + errors
print(max(cases["generated"] - cases["with_failures"] - cases["errored"], 0), failed)
EOF
)
read -r passed failed <<< "$counts"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "fuzz.sh: schemathesis did not finish within $HARD_LIMIT s" >&2
  failed=$((failed + 1))
elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "fuzz.sh: schemathesis exited with status $rc" >&2
  failed=1
fi
echo "reports: $report_dir (${elapsed}s)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
