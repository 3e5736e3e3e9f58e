#!/usr/bin/env bash
# Runs pystac_client_paging.py (paging, bbox, datetime, ids and intersects searches
# through pystac-client) and pystac_client_extensions.py (filter, sortby, fields,
# query and collection search) against a stacd root URL, in the Python venv that
# STAC_TOOLS_DIR/venv.sh creates. STAC_TOOLS_DIR/offline goes on PYTHONPATH, so the
# Python process refuses every connection that does not go to a loopback address.
#
# Usage: conformance-tests/pystac-client.sh ROOT_URL STAC_DATA_DIR STAC_TOOLS_DIR
#
# Prints one line per check and the closing line 'N passed, N failed'; exit status
# 0 only if every check passed.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 ROOT_URL STAC_DATA_DIR STAC_TOOLS_DIR" >&2
  exit 2
fi
root_url=$1
data_dir=$2
tools_dir=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -x "$tools_dir/venv.sh" ] || { echo "pystac-client.sh: $tools_dir/venv.sh not found" >&2; exit 2; }
[ -d "$tools_dir/offline" ] || { echo "pystac-client.sh: $tools_dir/offline not found" >&2; exit 2; }

venv=$("$tools_dir/venv.sh")
guard_log=$(mktemp "${TMPDIR:-/tmp}/pystac-client-guard.XXXXXX")
trap 'rm -f "$guard_log"' EXIT

export PYTHONPATH="$tools_dir/offline${PYTHONPATH:+:$PYTHONPATH}"
export ANCHOR_GUARD_LOG="$guard_log"
rc=0
"$venv/bin/python" -W ignore "$here/pystac_client_paging.py" "$root_url" "$data_dir" || rc=$?
"$venv/bin/python" -W ignore "$here/pystac_client_extensions.py" "$root_url" "$data_dir" || rc=$?

if [ -s "$guard_log" ]; then
  echo "requests to non-loopback hosts that the offline guard refused:"
  sed 's/^/  /' "$guard_log"
fi
exit "$rc"
