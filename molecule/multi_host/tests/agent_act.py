# SPDX-License-Identifier: Apache-2.0
"""Run inside a VM as root with the system Python: act as one agent of that VM, with its own token.

    podman exec -i VM python3 - NAME next          < this file   # the runtime's claim: /runtime/next
    podman exec -i VM python3 - NAME complete ID   < this file   # MCP complete_task, as its CLI calls it

Prints one JSON document: the HTTP status and the answer. The agent's env
file gives the coordinator's URL, the token and the fleet CA; the runtime's
own client (agent_worker, beside agent-run) speaks the runtime routes.
"""

import json
import ssl
import sys
import urllib.request

sys.path.insert(0, "/usr/local/libexec/central-mcp")
import agent_worker  # noqa: E402

name, action = sys.argv[1], sys.argv[2]
env = agent_worker.read_env_file(f"/etc/central-mcp/agents/{name}.env")
url, token, ca_file = env["CENTRAL_MCP_URL"], env["CENTRAL_MCP_AGENT_TOKEN"], env.get("CENTRAL_MCP_CA_FILE")
if action == "next":
    status, answer = agent_worker.Coordinator(url, token, ca_file).post("next", {"wait_s": 10}, timeout=30)
    print(json.dumps({"status": status, "answer": answer}))
    sys.exit(0)

context = ssl.create_default_context(cafile=ca_file) if url.startswith("https://") else None
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
           "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip


def rpc(method: str, params: dict, ident: int | None) -> dict:
    message = {"jsonrpc": "2.0", "method": method, "params": params}
    if ident is not None:
        message["id"] = ident
    request = urllib.request.Request(url, data=json.dumps(message).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=30, context=context) as answer:
        body = answer.read()
        return json.loads(body) if body else {}


hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "molecule", "version": "1"}}
rpc("initialize", hello, 1)
rpc("notifications/initialized", {}, None)
done = rpc("tools/call", {"name": "complete_task", "arguments": {"taskId": int(sys.argv[3]), "result": "done"}}, 2)
print(json.dumps({"status": 200, "answer": done.get("result")}))
