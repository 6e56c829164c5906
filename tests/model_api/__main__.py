# SPDX-License-Identifier: Apache-2.0
"""Run the scripted model as a process: ``python -m tests.model_api --port 8090 --script worker``.

Point Claude Code at it with ``ANTHROPIC_BASE_URL=http://127.0.0.1:8090`` and
any ``ANTHROPIC_API_KEY``; Codex with a provider ``base_url`` of
``http://127.0.0.1:8090/v1``; Gemini with ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8090``.
Stop it with SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace

from .script import SCRIPTS, Policy
from .server import ModelApi, ModelApiServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.model_api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port (0: any free port, printed at start)")
    parser.add_argument("--script", default="worker", choices=sorted(SCRIPTS), help="what the model does")
    parser.add_argument("--log", help="append every request as one JSON line to this file")
    parser.add_argument("--idle-polls", type=int, default=0, help="empty task lists in a row before an agent stops")
    parser.add_argument("--poll-s", type=float, default=0.5, help="pause before polling again while idle")
    parser.add_argument("--max-tasks", type=int, default=0, help="tasks an agent completes before it stops (0: all)")
    parser.add_argument(
        "--stall-after-claim", action="append", default=[], metavar="AGENT", help="this agent stalls after a claim"
    )
    parser.add_argument("--probe-tool", default="", help="every agent calls this coordinator tool once after whoami")
    parser.add_argument(
        "--quiet",
        action="append",
        default=[],
        metavar="AGENT=SECONDS",
        help="on a task prompt, this agent works this long in silence before it reports (a long build)",
    )
    parser.add_argument(
        "--shell",
        action="append",
        default=[],
        metavar="AGENT=COMMAND",
        help="on a task prompt, this agent runs COMMAND with its shell tool before it completes (repeat for more; "
        "{task_id} and {agent} are filled in)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    default = Policy(
        idle_polls=args.idle_polls, poll_s=args.poll_s, max_tasks=args.max_tasks, probe_tool=args.probe_tool
    )
    policies = {
        name: Policy(idle_polls=args.idle_polls, poll_s=args.poll_s, stall_after_claim=True)
        for name in args.stall_after_claim
    }
    for pair in args.quiet:
        name, _, seconds = pair.partition("=")
        policies[name] = Policy(idle_polls=args.idle_polls, poll_s=args.poll_s, quiet_s=float(seconds))
    for pair in args.shell:
        name, _, command = pair.partition("=")
        policy = policies.get(name) or Policy(idle_polls=args.idle_polls, poll_s=args.poll_s)
        policies[name] = replace(policy, shell=(*policy.shell, command))
    api = ModelApi(args.script, args.log, default, policies)
    server = ModelApiServer(api, args.host, args.port, verbose=args.verbose)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"scripted model ({args.script}): ANTHROPIC_BASE_URL={server.url}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        api.closing.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
