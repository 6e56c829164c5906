# SPDX-License-Identifier: Apache-2.0
"""Central-MCP: the coordinator of an AI agent fleet.

Agents reach it over MCP (streamable HTTP, one bearer token per agent);
people, the dashboard and the CLI use its REST API. Layers, from the bottom:
``store`` (SQLite, migrations, backups) -> ``domain`` (agents, tasks, claims)
-> ``mcp_tools`` / ``api`` / ``loops`` -> ``app`` (one ASGI app) -> ``cli``.
"""

__version__ = "0.1.0"
