#!/usr/bin/env bash
# ansible-test sanity on the collection's Ansible content: plugins, roles,
# playbooks, meta, docs. The rest (the coordinator package, tests,
# benchmarks, tools) is plain Python that ruff lints (make lint).
# Usage: bash tests/testbed/sanity.sh [ansible-test sanity options, e.g. --test pylint]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
ansible_test="$repo/.venv/bin/ansible-test"
python="$repo/.venv/bin/python"

# ansible-test wants the collection at .../ansible_collections/NS/NAME, not
# through a symlink: a copy of the files git knows (committed or not).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree="$work/ansible_collections/central_mcp/agents"
mkdir -p "$tree"
(cd "$repo" && { git ls-files; git ls-files --others --exclude-standard; } | sort -u \
    | grep -v '^collections/' | while read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done \
    | tar -cf - -T -) | tar -xf - -C "$tree"
git -C "$tree" init -q && git -C "$tree" add -A

# The pip bootstrap ansible-test would download: see get_pip.py.
pip_version=$("$python" - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements as m
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(m)).group(1))
PY
)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cp "$repo/tests/testbed/get_pip.py" "$cache/get_pip_${pip_version//./_}.py"

cd "$tree"
exec "$ansible_test" sanity --local --python "$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --exclude benchmarks/ --exclude coordinator/ --exclude molecule/ --exclude tests/ --exclude tools/ "$@"
