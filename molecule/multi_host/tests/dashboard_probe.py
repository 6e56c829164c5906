# SPDX-License-Identifier: Apache-2.0
"""Run inside VM 1 with the coordinator's own Python: VM 1's dashboard as a browser sees it.

Logs in with the dashboard's token (the API token, read from its 0600 file
as root), reads /api/state, then opens the terminal websocket of the agent
named on the command line (wsproto, a pinned dependency of the coordinator)
and prints one JSON document: the state and the first two websocket
messages (hello, snapshot).

    podman exec -i VM /opt/central-mcp/current/bin/python - AGENT < this file
"""

import http.client
import json
import socket
import sys
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, Request, TextMessage

HOST, PORT = "127.0.0.1", 8000
ORIGIN = f"http://{HOST}:{PORT}"


def login(token: str) -> str:
    conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
    conn.request("POST", "/login", body=f"token={token}",
                 headers={"Origin": ORIGIN, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    response = conn.getresponse()
    cookie = response.getheader("set-cookie") or ""
    if response.status != 303 or "cmcp_session=" not in cookie:
        sys.exit(f"login refused: HTTP {response.status}")
    return cookie.split(";")[0]


def state(cookie: str) -> dict:
    conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
    conn.request("GET", "/api/state", headers={"Cookie": cookie})
    return json.loads(conn.getresponse().read())


def terminal(cookie: str, agent: str, wanted: int = 2) -> list:
    ws = WSConnection(ConnectionType.CLIENT)
    sock = socket.create_connection((HOST, PORT), timeout=15)
    headers = [(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())]
    sock.sendall(ws.send(Request(host=f"{HOST}:{PORT}", target=f"/ws/terminal/{agent}", extra_headers=headers)))
    messages, text = [], ""
    while len(messages) < wanted:
        data = sock.recv(65536)
        if not data:
            break
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, RejectConnection | CloseConnection):
                return messages + [{"type": "refused", "event": type(event).__name__}]
            if isinstance(event, AcceptConnection):
                continue
            if isinstance(event, TextMessage):
                text += event.data
                if event.message_finished:
                    messages.append(json.loads(text))
                    text = ""
    sock.close()
    return messages


def main() -> None:
    agent = sys.argv[1]
    token = Path("/etc/central-mcp/api.token").read_text().strip()
    cookie = login(token)
    print(json.dumps({"state": state(cookie), "terminal": terminal(cookie, agent)}))


main()
