# SPDX-License-Identifier: Apache-2.0
"""``python -m central_mcp`` runs the CLI (``serve`` when no command is given)."""

from central_mcp.cli import main

raise SystemExit(main())
