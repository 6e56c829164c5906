#!/usr/bin/env bash
# Builds the git server of the tests: the VM image plus Debian's OpenSSH
# server and git, a "git" user whose login shell is git-shell (it may run
# git's own transfer commands and nothing else), key logins only. The tests
# give it a bare repository and an authorized key of their own each time,
# and pin its host key (tests/gitserver.py). Labelled with the hash of this
# file and of the base image's recipe: setup.sh rebuilds it when either changes.
set -euo pipefail
image=${1:?usage: git_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
base=${2:?usage: git_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
recipe=${3:?usage: git_image.sh IMAGE BASE_IMAGE RECIPE_HASH}
dir=$(mktemp -d /var/tmp/central-mcp-git.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/Containerfile" <<CONTAINERFILE
FROM $base
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server git >/dev/null \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* \\
 && useradd --create-home --shell /usr/bin/git-shell git \\
 && mkdir -p /run/sshd /home/git/.ssh && chown git:git /home/git/.ssh && chmod 0700 /home/git/.ssh \\
 && printf '%s\n' 'PasswordAuthentication no' 'KbdInteractiveAuthentication no' 'PermitRootLogin no' \\
      'AllowUsers git' 'AuthorizedKeysFile /etc/ssh/authorized/%u' > /etc/ssh/sshd_config.d/git.conf
CMD ["/usr/sbin/sshd", "-D", "-e"]
LABEL central-mcp.recipe=$recipe
CONTAINERFILE
podman build --quiet --tag "$image" "$dir" >/dev/null
echo "built $image (recipe $recipe)"
