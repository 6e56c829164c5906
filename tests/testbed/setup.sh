#!/usr/bin/env bash
# One command for the whole test bed, safe to run again (each step is skipped
# when already done):
#   - system packages: podman, runc, debootstrap, tmux, acl, npm, and the disk
#     tools the guest-grow tests use (growpart, sfdisk, mkfs.xfs), and
#     Chromium with its driver for the dashboard's browser tests
#   - the image localhost/debian-systemd:bookworm, built with debootstrap and
#     rebuilt only when tests/testbed/image.sh changes; on top of it the git
#     server of the repository tests, localhost/central-mcp-git:bookworm, and
#     the pod of the pod-host tests, localhost/central-mcp-pod:bookworm
#   - .venv with the pinned Python tools of tests/testbed/requirements.txt, and
#     coordinator/.venv from the coordinator's hashed lock (requirements-test.lock)
# Prints the environment to use (CONTAINERS_CONF) for the Makefile to export.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
image=${CENTRAL_MCP_IMAGE:-localhost/debian-systemd:bookworm}
export CONTAINERS_CONF="$here/containers.conf"

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
log() { printf '[testbed] %s\n' "$*" >&2; }

# 1. System packages, installed only when a command is missing.
need=()
for pair in podman:podman runc:runc debootstrap:debootstrap tmux:tmux \
            setfacl:acl npm:npm python3:python3 growpart:cloud-guest-utils \
            sfdisk:fdisk mkfs.xfs:xfsprogs mkfs.ext4:e2fsprogs chromium:chromium \
            chromedriver:chromium-driver ; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "installing system packages: ${need[*]}"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. The images, each keyed by the hash of its recipe (the files it is made
#    from) and built again only when that changes: the VM image, then on top
#    of it the git server of the repository tests and the pod of the pod-host
#    tests (the project's agent image for pods).
recipe_of() { cat "$@" | sha256sum | cut -c1-16; }
ensure_image() {  # ensure_image IMAGE RECIPE WHAT BUILD-COMMAND...: the command labels IMAGE with RECIPE
  local name=$1 recipe=$2 what=$3 have
  shift 3
  have=$(sudo_ env CONTAINERS_CONF="$CONTAINERS_CONF" podman image inspect "$name" \
          --format '{{ index .Labels "central-mcp.recipe" }}' 2>/dev/null || true)
  if [ "$have" != "$recipe" ]; then
    log "building $name ($what)"
    sudo_ env CONTAINERS_CONF="$CONTAINERS_CONF" "$@"
  else
    log "image $name is current (recipe $recipe)"
  fi
}
recipe=$(recipe_of "$here/image.sh")
ensure_image "$image" "$recipe" "with debootstrap, about a minute" "$here/image.sh" "$image" "$recipe"
git_image=localhost/central-mcp-git:bookworm
git_recipe=$(recipe_of "$here/image.sh" "$here/git_image.sh")
ensure_image "$git_image" "$git_recipe" "OpenSSH and git-shell from Debian, under a minute" \
  "$here/git_image.sh" "$git_image" "$image" "$git_recipe"
pod_image=localhost/central-mcp-pod:bookworm
pod_recipe=$(recipe_of "$here/image.sh" "$here/pod_image.sh" "$top"/images/pod/* \
  "$top"/roles/launcher/vars/kinds/*.yml "$top"/roles/launcher/files/npm/*/package-lock.json)
ensure_image "$pod_image" "$pod_recipe" "images/pod: sshd, tini, tmux, Node from Debian, Claude Code, a few minutes" \
  "$here/pod_image.sh" "$pod_image" "$image" "$pod_recipe"

# 3. Pinned virtualenvs, each rebuilt when its pins change: .venv for the
#    Ansible tools, coordinator/.venv for the coordinator and its tests (kept
#    apart so neither's pins constrain the other's).
venv() {  # venv DIR LABEL PIN_FILE... -- PIP_ARGS... [-- PIP_ARGS...]: one pip install per group
  local dir=$1 label=$2 files=() want args
  shift 2
  while [ "$1" != "--" ]; do files+=("$1"); shift; done
  want=$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    log "$label is current"
    return
  fi
  log "creating $label (pinned, a few minutes the first time)"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check --upgrade pip
  while [ $# -gt 0 ]; do
    shift  # the "--"
    args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
    "$dir/bin/pip" install -q --disable-pip-version-check "${args[@]}"
  done
  echo "$want" > "$dir/.requirements.sha256"
}
venv "$top/.venv" .venv "$here/requirements.txt" -- -r "$here/requirements.txt"
# The coordinator's set is locked with hashes (tools/lock-coordinator.sh): pip
# verifies every download against them, then adds the package itself, editable,
# with nothing further resolved.
if [ -f "$top/coordinator/requirements-test.lock" ]; then
  venv "$top/coordinator/.venv" coordinator/.venv \
    "$top/coordinator/requirements.lock" "$top/coordinator/requirements-test.lock" "$top/coordinator/pyproject.toml" \
    -- --require-hashes -r "$top/coordinator/requirements-test.lock" \
    -- --no-deps -e "$top/coordinator"
fi
echo "CONTAINERS_CONF=$CONTAINERS_CONF"
