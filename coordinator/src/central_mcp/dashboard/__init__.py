# SPDX-License-Identifier: Apache-2.0
"""The dashboard: agents, task board, fleet health and live terminals, on its own port.

``server`` runs it next to the coordinator, ``web`` has its routes, ``auth``
its login and headers, ``terminals`` the bridge to the pane relay and
``procstat`` the process figures and ``tmux_control`` the tmux control-mode
client (both standard library only: the relay, ``central_mcp.relay``, uses
them without loading the web stack).
"""
