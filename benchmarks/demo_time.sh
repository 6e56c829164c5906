#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Wall time of `make demo` (two VM containers, 8 agents, the emulator), each
# run from `make demo-down`: once with the VM image and the controller's
# caches (wheels, the Claude Code archive) in place (warm), and, with --cold,
# once more after removing them, so the image is bootstrapped again and the
# wheels and the archive fetched again (.venv is kept). MODEL=scripted is
# passed on. Leaves the demo running; `make demo-down` removes it.
#   bash benchmarks/demo_time.sh [--cold]
# --cold removes the image with `podman rmi -f`, which also removes every
# container made from it: run it when no other test uses the image.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=$PWD/tests/testbed/containers.conf
image=localhost/debian-systemd:bookworm

run() {
  local label=$1 start end status
  make demo-down >/dev/null 2>&1
  start=$(date +%s)
  if make demo MODEL="${MODEL:-}" >"/tmp/make-demo-$label.log" 2>&1; then status=passed; else status=FAILED; fi
  end=$(date +%s)
  printf '%-30s %5ds  (%s; 8 agents on 2 VMs; log /tmp/make-demo-%s.log)\n' \
    "make demo, $label caches" $((end - start)) "$status" "$label"
}

bash tests/testbed/setup.sh >/dev/null 2>&1
run warm
if [ "${1:-}" = "--cold" ]; then
  podman rmi -f "$image" >/dev/null
  rm -rf "$HOME/.cache/central-mcp"
  run cold
fi
