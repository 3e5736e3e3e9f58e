#!/usr/bin/env bash
# Reads a stacd server through GDAL's OGC API Features driver (OAPIF), as QGIS and
# other GDAL clients do, and checks the result against the STAC test data:
# collections naip (1000 items) and joplin (30 items).
#
# Usage: conformance-tests/ogr.sh ROOT_URL
#
# Checks: ogrinfo lists naip and joplin as layers; it reports 30 features for
# joplin; reading all of joplin with PAGE_SIZE=7 and all of naip with
# PAGE_SIZE=100 returns every feature once, over as many pages as the page size
# implies. Prints one line per check and the closing line 'N passed, N failed';
# exit status 0 only if every check passed. Needs ogrinfo (Debian package gdal-bin).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 ROOT_URL" >&2
  exit 2
fi
root_url=${1%/}
if ! [[ $root_url =~ ^https?://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?(/|$) ]]; then
  echo "ogr.sh: ROOT_URL must be a loopback URL such as http://127.0.0.1:7822, got: $root_url" >&2
  exit 2
fi
command -v ogrinfo > /dev/null || { echo "ogr.sh: ogrinfo not found (install gdal-bin)" >&2; exit 2; }

JOPLIN_ITEMS=30
NAIP_ITEMS=1000

# GDAL fetches with libcurl, which honours these variables: a request to any host
# other than loopback goes to a proxy address where nothing listens, and fails.
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1,localhost,::1
export GDAL_HTTP_TIMEOUT=120

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/stacd-ogr.XXXXXX")
trap 'rm -rf "$work_dir"' EXIT

passed=0
failed=0
report() {
  local result=$1 name=$2 detail=$3
  printf '%s  %s: %s\n' "$result" "$name" "$detail"
  if [ "$result" = PASS ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

# ogrinfo_to NAME ARGS...: runs ogrinfo with stdout in $work_dir/NAME.out and the
# GDAL debug log (one 'HTTP: Fetch(URL)' line per request) in $work_dir/NAME.err.
ogrinfo_to() {
  local name=$1
  shift
  if ogrinfo --config CPL_DEBUG ON "$@" > "$work_dir/$name.out" 2> "$work_dir/$name.err"; then
    return 0
  fi
  echo "ogrinfo $* failed; its errors:" >&2
  grep -E '^(ERROR|FAILURE|Warning)' "$work_dir/$name.err" | sort -u | head -n 10 | sed 's/^/    /' >&2
  return 1
}

# --- layers ------------------------------------------------------------------------
if ogrinfo_to layers -ro "OAPIF:$root_url"; then
  layers=$(sed -n 's/^[0-9][0-9]*: \([^ ]*\).*/\1/p' "$work_dir/layers.out" | sort | paste -sd ' ')
  missing=""
  for layer in naip joplin; do
    case " $layers " in
      *" $layer "*) ;;
      *) missing="$missing $layer" ;;
    esac
  done
  if [ -z "$missing" ]; then
    report PASS "layers" "$layers"
  else
    report FAIL "layers" "missing:$missing; listed: $layers"
  fi
else
  report FAIL "layers" "ogrinfo -ro OAPIF:$root_url failed"
fi

# --- feature count -----------------------------------------------------------------
if ogrinfo_to summary -ro -al -so "OAPIF:$root_url" joplin; then
  count=$(sed -n 's/^Feature Count: \(-\{0,1\}[0-9]*\)$/\1/p' "$work_dir/summary.out")
  if [ "$count" = "$JOPLIN_ITEMS" ]; then
    report PASS "joplin feature count" "$count"
  else
    report FAIL "joplin feature count" "ogrinfo -so reports '${count:-no count}', expected $JOPLIN_ITEMS"
  fi
else
  report FAIL "joplin feature count" "ogrinfo -so failed"
fi

# --- reading every feature through paging ------------------------------------------

# check_full_read LAYER PAGE_SIZE EXPECTED: reads every feature of LAYER and checks
# that each arrives once, over at least ceil(EXPECTED / PAGE_SIZE) page requests.
check_full_read() {
  local layer=$1 page_size=$2 expected=$3
  local name="$layer all features, PAGE_SIZE=$page_size"
  local min_pages=$(((expected + page_size - 1) / page_size))
  if ! ogrinfo_to "read-$layer" -ro -geom=NO -oo "PAGE_SIZE=$page_size" "OAPIF:$root_url" "$layer"; then
    report FAIL "$name" "ogrinfo failed"
    return
  fi
  local features ids pages problems=""
  features=$(grep -c '^OGRFeature(' "$work_dir/read-$layer.out" || true)
  ids=$(sed -n 's/^  id (String) = //p' "$work_dir/read-$layer.out" | sort -u | wc -l)
  # Distinct request URLs for the layer's items: the first page is fetched twice
  # (once to build the layer schema), later pages differ in their paging token.
  pages=$(grep -o "HTTP: Fetch([^)]*/collections/$layer/items[^)]*)" "$work_dir/read-$layer.err" | sort -u | wc -l)
  [ "$features" = "$expected" ] || problems="$problems $features features, expected $expected;"
  [ "$ids" = "$expected" ] || problems="$problems $ids distinct ids, expected $expected;"
  [ "$pages" -ge "$min_pages" ] || problems="$problems $pages page requests, expected at least $min_pages;"
  if [ -z "$problems" ]; then
    report PASS "$name" "$features features, $ids distinct ids, $pages page requests"
  else
    problems=${problems# }
    report FAIL "$name" "${problems%;}"
  fi
}

check_full_read joplin 7 "$JOPLIN_ITEMS"
check_full_read naip 100 "$NAIP_ITEMS"

ogrinfo --version
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
