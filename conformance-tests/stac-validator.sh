#!/usr/bin/env bash
# Runs stac-api-validator against a stacd root URL through STAC_TOOLS_DIR/validate.sh,
# for the conformance classes core, collections, features and item-search, with
# pagination checks, on collection naip.
#
# Usage: conformance-tests/stac-validator.sh ROOT_URL STAC_TOOLS_DIR
#
# VENV (the Python venv) and OUT (the folder for the validator logs), when set,
# are passed on to validate.sh. Prints a table per class and the closing line
# 'N passed, N failed'; exit status 0 only if every class passed.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 ROOT_URL STAC_TOOLS_DIR" >&2
  exit 2
fi
root_url=$1
tools_dir=$2
[ -x "$tools_dir/validate.sh" ] || { echo "stac-validator.sh: $tools_dir/validate.sh not found" >&2; exit 2; }

exec env CLASSES="core collections features item-search" COLLECTION=naip PAGINATION=1 \
  "$tools_dir/validate.sh" "$root_url"
