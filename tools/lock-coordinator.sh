#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the coordinator's locks from coordinator/pyproject.toml, each
# pin with the sha256 of every wheel and sdist of that version, so that every
# install verifies what it gets (pip --require-hashes):
#   coordinator/requirements.lock       the runtime set: the role's wheels for the VM
#   coordinator/requirements-test.lock  the runtime set (same versions) plus the
#                                       test extra: the test bed's coordinator/.venv
# pip-compile keeps the versions already in a lock unless pyproject.toml asks
# for others; pass --upgrade or --upgrade-package NAME to move them. Needs a
# package index; pip-tools runs from a throwaway venv (it pins pip itself).
#   tools/lock-coordinator.sh [PIP-COMPILE ARGS...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check pip==26.3 pip-tools==7.6.2

export CUSTOM_COMPILE_COMMAND="tools/lock-coordinator.sh"
compile() {  # compile OUT [ARGS...]: no index URL or local path is written into a lock
  local out=$1
  shift
  "$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
    --output-file "$out" "$@" pyproject.toml
  { echo "# SPDX-License-Identifier: Apache-2.0"; grep -v '^# SPDX-License-Identifier' "$out"; } >"$out.tmp"
  mv "$out.tmp" "$out"
}
cd "$top/coordinator"
compile requirements.lock "$@"
# The test lock is constrained by the runtime lock: a package in both has one version.
compile requirements-test.lock --extra test --constraint requirements.lock "$@"
