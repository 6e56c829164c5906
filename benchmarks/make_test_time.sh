#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Wall time of `make test` on this machine: once with the VM image already
# built (warm), and, with --cold, once more after removing the image so the
# test bed rebuilds it with debootstrap. .venv is kept in both runs.
#   bash benchmarks/make_test_time.sh [--cold]
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=$PWD/tests/testbed/containers.conf
image=localhost/debian-systemd:bookworm

run() {
  local label=$1 start end
  start=$(date +%s)
  if make test >"/tmp/make-test-$label.log" 2>&1; then status=passed; else status=FAILED; fi
  end=$(date +%s)
  printf '%-28s %5ds  (%s; log /tmp/make-test-%s.log)\n' "make test, $label image cache" $((end - start)) "$status" "$label"
}

bash tests/testbed/setup.sh >/dev/null 2>&1
run warm
if [ "${1:-}" = "--cold" ]; then
  podman rmi -f "$image" >/dev/null
  run cold
fi
