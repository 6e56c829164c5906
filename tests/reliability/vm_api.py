# SPDX-License-Identifier: Apache-2.0
"""Drive the coordinator's REST API from inside the VM (it listens on loopback only).

Copied into the VM and run there with the system python3 (stdlib only), as
root: it reads the API token from the 0600 file the role writes, so the
token never appears on a command line. Prints one JSON document.

  burst SECONDS   POST tasks as fast as answers come for SECONDS, through
                  outages: {"acked": [ids answered 201], "errors": {status: n}}
  post N          POST N tasks; {"acked": [...], "answers": [[status, body], ...]}
  fill N SIZE     POST tasks with SIZE-character descriptions until one is refused
                  (at most N), then 3 more: {"acked": [...], "answers": [[status, body], ...]}
  agents          GET /api/agents: the agents as people (the dashboard) see them
"""

import http.client
import json
import sys
import time
import urllib.error
import urllib.request

URL = "http://127.0.0.1:3000"
TOKEN = open("/etc/central-mcp/api.token").read().strip()


def call(method, path, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + TOKEN)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (OSError, http.client.HTTPException) as error:  # refused, reset or cut mid-answer: down or restarting
        return 0, str(error)


def post(i, size=200):
    return call("POST", "/api/tasks", {"title": f"reliability {i}", "role": "backend", "description": "x" * size})


def main():
    verb = sys.argv[1]
    if verb == "burst":
        acked, errors, i = [], {}, 0
        deadline = time.monotonic() + float(sys.argv[2])
        while time.monotonic() < deadline:
            status, body = post(i)
            i += 1
            if status == 201:
                acked.append(json.loads(body)["id"])
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
                time.sleep(0.05)
        print(json.dumps({"acked": acked, "errors": errors}))
    elif verb == "post":
        answers = [post(i) for i in range(int(sys.argv[2]))]
        acked = [json.loads(body)["id"] for status, body in answers if status == 201]
        print(json.dumps({"acked": acked, "answers": [[s, b[:300]] for s, b in answers]}))
    elif verb == "fill":
        acked, answers = [], []
        for i in range(int(sys.argv[2])):
            status, body = post(i, int(sys.argv[3]))
            if status == 201:
                acked.append(json.loads(body)["id"])
                continue
            answers = [[status, body[:300]]] + [list(post(i, 10)) for _ in range(3)]
            acked += [json.loads(b)["id"] for s, b in answers if s == 201]
            break
        print(json.dumps({"acked": acked, "answers": [[s, b[:300]] for s, b in answers]}))
    elif verb == "agents":
        status, body = call("GET", "/api/agents")
        if status != 200:
            sys.exit(f"GET /api/agents: {status} {body[:300]}")
        print(body)


if __name__ == "__main__":
    main()
