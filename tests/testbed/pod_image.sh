#!/usr/bin/env bash
# Builds the test bed's pod: the project's agent image for pods
# (images/pod/Containerfile) on top of the VM image, as a pod on RunPod would
# run it (no systemd; tini and the image's start script as PID 1), with the
# one agent CLI the pod's agents of the tests use (Claude Code; all of them
# would add about a gigabyte and a few minutes). Labelled with the hash of
# its recipe: setup.sh rebuilds it when it changes.
set -euo pipefail
image=${1:?usage: pod_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
base=${2:?usage: pod_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
recipe=${3:?usage: pod_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# npm in the build reaches the registry through the same TLS as this machine's
# (a re-signing proxy's CA is in the host's bundle, not in the image's).
ca=()
host_ca=/etc/ssl/certs/ca-certificates.crt
if [ -s "$host_ca" ]; then ca=(--volume "$host_ca:/run/host-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt); fi
podman build --quiet --tag "$image" --build-arg "BASE=$base" --build-arg CLI_KINDS=claude \
  --build-context "launcher=$top/roles/launcher" "${ca[@]}" --label "central-mcp.recipe=$recipe" "$top/images/pod" >/dev/null
echo "built $image (recipe $recipe)"
