# SPDX-License-Identifier: Apache-2.0
"""Stand-in for the get-pip.py that ansible-test downloads (unreachable here).

ansible-test bootstraps pip into each sanity venv by running get-pip.py with
pip's install arguments (e.g. ``pip==24.2``). This does the same with the
venv's own ensurepip, then lets that pip install the pinned version from the
package index as usual. get-pip's own options (--no-setuptools,
--no-wheel) are not pip's and are dropped.
"""

import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *args]))
