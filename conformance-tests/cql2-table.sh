#!/usr/bin/env bash
# Runs cql2_table.py, the table of CQL2 filter cases (STAC API Filter extension),
# against a stacd root URL, in a Python venv with shapely for the spatial relations.
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/stacd-cql2-venv and is created
# on first use (python3-venv is installed with apt-get when ensurepip is missing).
#
# Usage: conformance-tests/cql2-table.sh ROOT_URL STAC_DATA_DIR
#        conformance-tests/cql2-table.sh --self-check STAC_DATA_DIR
#
#   ROOT_URL       a loopback URL of a stacd loaded with STAC_DATA_DIR/naip and STAC_DATA_DIR/joplin
#   STAC_DATA_DIR  folder with naip/items.ndjson and joplin/items.ndjson
#   --self-check   checks the table itself without a server: each cql2-text case parses to
#                  its cql2-json, and a second evaluator computes the same expected ids
#
# Prints one PASS or FAIL line per case and request way and the closing line
# 'N passed, N failed'; exit status 0 only if every check passed.
set -euo pipefail

SHAPELY_VERSION=2.2.0

if [ $# -ne 2 ]; then
  echo "usage: $0 ROOT_URL STAC_DATA_DIR" >&2
  echo "       $0 --self-check STAC_DATA_DIR" >&2
  exit 2
fi
target=$1
data_dir=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

case "$target" in
  --self-check | http://127.* | http://localhost* | http://\[::1\]*) ;;
  *) echo "cql2-table.sh: rejecting a non-loopback root URL: $target" >&2; exit 2 ;;
esac
for collection in naip joplin; do
  [ -f "$data_dir/$collection/items.ndjson" ] \
    || { echo "cql2-table.sh: $data_dir/$collection/items.ndjson not found" >&2; exit 2; }
done

venv=${XDG_CACHE_HOME:-$HOME/.cache}/stacd-cql2-venv
if ! "$venv/bin/python" -c "import shapely, sys; sys.exit(shapely.__version__ != '$SHAPELY_VERSION')" 2> /dev/null; then
  if ! python3 -c 'import ensurepip' > /dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
  fi
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "shapely==$SHAPELY_VERSION"
fi

exec "$venv/bin/python" "$here/cql2_table.py" "$target" "$data_dir"
