# SPDX-License-Identifier: Apache-2.0
"""The MCP SDK alone, for comparison: one no-op tool, served as the coordinator serves its tools.

``python benchmarks/bare_mcp_server.py PORT`` serves ``noop`` at
``http://127.0.0.1:PORT/mcp`` under uvicorn, stateless with JSON answers like
the coordinator (``--stateful`` for the SDK's default sessions). No store, no
tokens, no middleware: what is left of a call is the SDK's own cost, the
floor the coordinator's calls are measured against.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--stateful", action="store_true", help="the SDK's sessions instead of stateless calls")
    args = parser.parse_args()
    # Its log at WARNING, as the coordinator keeps the SDK's: at INFO the SDK logs a line per request.
    server = MCPServer("bare", log_level="WARNING")

    @server.tool()
    async def noop() -> dict[str, bool]:
        """Does nothing."""
        return {"ok": True}

    app = server.streamable_http_app(stateless_http=not args.stateful, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
