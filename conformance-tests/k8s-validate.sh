#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes/ against the Kubernetes
# OpenAPI schemas, offline.
#
# Usage: conformance-tests/k8s-validate.sh
#
# Checks, each printed as PASS or FAIL:
#
#   1. every *.yaml manifest except kustomization.yaml, with kubernetes-validate in
#      strict mode (unknown fields are errors), against each Kubernetes version in
#      KUBERNETES_VERSIONS. A resource whose kind has no schema fails, although
#      kubernetes-validate itself only warns about it.
#   2. kustomization.yaml lists every manifest of the folder, and every file it
#      lists exists.
#   3. negative checks: broken copies of deployment.yaml (a string for
#      spec.replicas, and an unknown field) must fail validation, which shows that
#      the validator rejects bad manifests and runs in strict mode.
#
# kubernetes-validate ships the JSON schemas of each Kubernetes version inside its
# package, so validation needs no network. The first run installs it from PyPI into
# a venv in ${XDG_CACHE_HOME:-$HOME/.cache}/stacd-k8s-validate/venv (and python3-venv
# with apt-get when `python3 -m venv` cannot work). Every later step runs without
# network access in a new network namespace (`unshare -n`, or `unshare -rn` for a
# user that is not root), so a validator that tried to download a schema would fail.
# Where neither works, such as in a container without CAP_SYS_ADMIN, the steps run
# with the normal network and the script prints a warning.
#
# Ends with 'N passed, N failed' and exits 0 only if every check passed.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
# The oldest version that the manifests support (the preStop `sleep` action is on
# by default from Kubernetes 1.30), and the newest that this kubernetes-validate ships.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)

usage() {
  echo "usage: $0" >&2
  exit 2
}
[ $# -eq 0 ] || usage

die() {
  echo "k8s-validate.sh: $*" >&2
  exit 2
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
MANIFEST_DIR=$REPO_ROOT/deploy/kubernetes
[ -d "$MANIFEST_DIR" ] || die "manifest folder not found: $MANIFEST_DIR"

# --- the pinned validator ------------------------------------------------------------

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
fi

if ! command -v python3 > /dev/null || ! python3 -c 'import ensurepip' > /dev/null 2>&1; then
  echo "k8s-validate.sh: installing python3 and python3-venv (apt-get)" >&2
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv
fi

venv=${XDG_CACHE_HOME:-$HOME/.cache}/stacd-k8s-validate/venv
installed=$("$venv/bin/kubernetes-validate" --version 2> /dev/null || true)
if [ "$installed" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  echo "k8s-validate.sh: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" || die "could not create a venv in $venv with python3"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
    || die "could not install kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI"
fi

# --- no network from here on ---------------------------------------------------------

offline=()
if unshare -n true 2> /dev/null; then
  offline=(unshare -n)
  echo "network: none (unshare -n), only loopback exists for the checks"
elif unshare -rn true 2> /dev/null; then
  offline=(unshare -rn)
  echo "network: none (unshare -rn), only loopback exists for the checks"
else
  echo "WARNING: network not isolated, because unshare -n and unshare -rn both failed. The checks run with the normal network."
fi
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

work=$(mktemp -d "${TMPDIR:-/tmp}/stacd-k8s-validate.XXXXXX")
trap 'rm -rf "$work"' EXIT

PASSED=0
FAILED=0

pass() {
  echo "PASS $1"
  PASSED=$((PASSED + 1))
}

fail() {
  echo "FAIL $1"
  FAILED=$((FAILED + 1))
}

# run_validator FILE OUTPUT: validates FILE against every version in KUBERNETES_VERSIONS
# and writes the validator's output to OUTPUT. Succeeds only if the validator exited 0,
# printed at least one "INFO ... passed" line, and printed no other line (kubernetes-validate
# exits 0 after "WARN ... Couldn't find schema", so the output is checked too).
run_validator() {
  local file=$1 output=$2 rc=0 version
  local version_args=()
  for version in "${KUBERNETES_VERSIONS[@]}"; do
    version_args+=(-k "$version")
  done
  "${offline[@]}" "$venv/bin/kubernetes-validate" --strict "${version_args[@]}" "$file" > "$output" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || return 1
  grep -q '^INFO .* passed for resource ' "$output" || return 1
  ! grep -qv '^INFO .* passed for resource ' "$output"
}

# --- 1. every manifest against the schemas -------------------------------------------

echo "kubernetes-validate $KUBERNETES_VALIDATE_VERSION, strict, Kubernetes ${KUBERNETES_VERSIONS[*]}"
manifests=()
for file in "$MANIFEST_DIR"/*.yaml "$MANIFEST_DIR"/*.yml; do
  [ -e "$file" ] || continue
  [ "$(basename "$file")" = kustomization.yaml ] && continue
  manifests+=("$file")
done
[ ${#manifests[@]} -gt 0 ] || die "no manifests (*.yaml) in $MANIFEST_DIR"

for file in "${manifests[@]}"; do
  name=deploy/kubernetes/$(basename "$file")
  if run_validator "$file" "$work/output"; then
    pass "$name ($(grep -c '^INFO' "$work/output") resource validations)"
  else
    fail "$name"
    sed 's/^/    /' "$work/output"
  fi
done

# --- 2. kustomization.yaml lists every manifest --------------------------------------

if "${offline[@]}" "$venv/bin/python" - "$MANIFEST_DIR" > "$work/output" 2>&1 <<'EOF'; then
import pathlib
import sys

import yaml

folder = pathlib.Path(sys.argv[1])
path = folder / "kustomization.yaml"
try:
    kustomization = yaml.safe_load(path.read_text())
except (OSError, yaml.YAMLError) as error:
    sys.exit(f"cannot read {path}: {error}")
problems = []
if kustomization.get("apiVersion") != "kustomize.config.k8s.io/v1beta1":
    problems.append(f"apiVersion is {kustomization.get('apiVersion')!r}, expected 'kustomize.config.k8s.io/v1beta1'")
if kustomization.get("kind") != "Kustomization":
    problems.append(f"kind is {kustomization.get('kind')!r}, expected 'Kustomization'")
listed = kustomization.get("resources") or []
on_disk = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.name != path.name)
for name in on_disk:
    if name not in listed:
        problems.append(f"{name} is missing from resources")
for name in listed:
    if not (folder / name).is_file():
        problems.append(f"resources lists {name}, which is not a file in {folder}")
if len(set(listed)) != len(listed):
    problems.append("resources lists a file more than once")
for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
EOF
  pass "deploy/kubernetes/kustomization.yaml lists every manifest"
else
  fail "deploy/kubernetes/kustomization.yaml lists every manifest"
  sed 's/^/    /' "$work/output"
fi

# --- 3. broken copies of the Deployment must fail ------------------------------------

# break_deployment CASE OUTPUT: writes a copy of deployment.yaml with one error to OUTPUT.
break_deployment() {
  "${offline[@]}" "$venv/bin/python" - "$MANIFEST_DIR/deployment.yaml" "$1" "$2" <<'EOF'
import sys

import yaml

source, case, output = sys.argv[1:]
with open(source) as f:
    deployment = yaml.safe_load(f)
if case == "string-replicas":
    deployment["spec"]["replicas"] = "three"
elif case == "unknown-field":
    # A misspelt field, which only strict validation rejects.
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGets"] = {"path": "/health"}
else:
    sys.exit(f"unknown case {case}")
with open(output, "w") as f:
    yaml.safe_dump(deployment, f)
EOF
}

for case in string-replicas unknown-field; do
  label="broken deployment.yaml ($case) is rejected"
  if ! break_deployment "$case" "$work/deployment-$case.yaml" > "$work/output" 2>&1; then
    fail "$label: could not write the broken copy"
    sed 's/^/    /' "$work/output"
    continue
  fi
  rc=0
  "${offline[@]}" "$venv/bin/kubernetes-validate" --strict -k "${KUBERNETES_VERSIONS[-1]}" \
    "$work/deployment-$case.yaml" > "$work/output" 2>&1 || rc=$?
  # A validation error (exit 1 with an ERROR line) is expected, but a crash is not.
  if [ "$rc" -eq 1 ] && grep -q '^ERROR .* did not validate' "$work/output"; then
    pass "$label: $(grep -m1 '^ERROR' "$work/output" | sed 's/.*against version [^:]*: //')"
  else
    fail "$label (exit status $rc)"
    sed 's/^/    /' "$work/output"
  fi
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
