#!/usr/bin/env bash
# Builds the test bed's pod: the project's agent image for pods
# (images/pod/Containerfile) on top of the VM image, as a pod on RunPod would
# run it (no systemd; tini and the image's start script as PID 1). Labelled
# with the hash of its recipe: setup.sh rebuilds it when it changes.
set -euo pipefail
image=${1:?usage: pod_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
base=${2:?usage: pod_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
recipe=${3:?usage: pod_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
here=$(cd "$(dirname "$0")" && pwd)
podman build --quiet --tag "$image" --build-arg "BASE=$base" --label "central-mcp.recipe=$recipe" \
  "$here/../../images/pod" >/dev/null
echo "built $image (recipe $recipe)"
