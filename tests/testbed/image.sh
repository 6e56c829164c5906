#!/usr/bin/env bash
# Builds the "VM" image for Molecule and the demo: Debian bookworm with
# systemd as PID 1 and what a fresh GCE Debian image has (python3, sudo).
# tmux, Node and the agent CLI are the launcher role's job, not the image's.
# The image carries a label with the hash of this file, so setup.sh rebuilds
# it only when this recipe changes.
set -euo pipefail
image=${1:?usage: image.sh IMAGE RECIPE_HASH}
recipe=${2:?usage: image.sh IMAGE RECIPE_HASH}
root=$(mktemp -d /var/tmp/central-mcp-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase \
  --include=python3,systemd,systemd-sysv,dbus,sudo,ca-certificates,iproute2,procps \
  bookworm "$root" >/dev/null
# Containers have no consoles or kernel to manage: these units only fail there.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
            systemd-udev-trigger.service systemd-modules-load.service \
            sys-kernel-config.mount sys-kernel-debug.mount; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
rm -f "$root"/etc/machine-id && touch "$root/etc/machine-id"
apt-get -o RootDir="$root" clean 2>/dev/null || rm -rf "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | podman import \
  --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL central-mcp.recipe=$recipe" - "$image" >/dev/null
echo "built $image (recipe $recipe)"
