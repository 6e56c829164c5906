# SPDX-License-Identifier: Apache-2.0
"""Run the emulator as a process: ``python -m tests.gce_emulator --port 8089 --state FILE``.

``--instance PROJECT/ZONE/NAME=TYPE[:DISK_GB[:DISK_TYPE]]`` adds an instance
and its boot disk (default 10 GB pd-balanced) unless the state file already
has it, so a demo can be started again and keep what it had resized.
``--spot`` makes the instances it adds Spot VMs. ``--on-state CMD`` runs
CMD (a shell command with ``{project} {zone} {name} {status} {reason}``
filled in) each time an instance begins to stop (STOPPING, the guest's
shutdown signal), is TERMINATED or is RUNNING, one after the other, so the
containers that play the VMs stop and start as Compute Engine stops and
starts VMs (e.g. ``--on-state 'tools/vm-container {name} {status}'``).
Stop it with SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import queue
import shlex
import signal
import subprocess
import sys
import threading

from .server import Emulator, EmulatorServer


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.gce_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="port (0: any free port, printed at start)")
    parser.add_argument("--state", help="JSON file the state is read from and saved to after each change")
    parser.add_argument(
        "--instance", action="append", default=[], metavar="PROJECT/ZONE/NAME=TYPE[:DISK_GB[:DISK_TYPE]]"
    )
    parser.add_argument("--spot", action="store_true", help="the instances --instance adds are Spot VMs")
    parser.add_argument("--on-state", metavar="CMD", help="command run when an instance stops, is stopped or runs")
    parser.add_argument("--stop-s", type=float, help="seconds a stop takes")
    parser.add_argument("--start-s", type=float, help="seconds a start takes")
    parser.add_argument("--set-machine-type-s", type=float, help="seconds a setMachineType takes")
    parser.add_argument("--resize-s", type=float, help="seconds a disk resize takes")
    parser.add_argument("--wait-max-s", type=float, help="longest a zoneOperations.wait blocks")
    parser.add_argument("--token", help="the only bearer token accepted (default: any non-empty one)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def state_hook(template: str):
    """World.on_instance_state that runs the command in a thread of its own, in order, never under the lock."""
    todo: queue.Queue = queue.Queue()

    def run() -> None:
        while True:
            fields = todo.get()
            command = template.format(**{key: shlex.quote(value) for key, value in fields.items()})
            done = subprocess.run(command, shell=True, check=False)  # noqa: S602 - the test bed's own command
            if done.returncode:
                print(f"gce emulator: --on-state {command!r} exited {done.returncode}", file=sys.stderr, flush=True)

    threading.Thread(target=run, name="on-state", daemon=True).start()
    return lambda project, zone, name, status, reason: todo.put(
        {"project": project, "zone": zone, "name": name, "status": status, "reason": reason}
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    emulator = Emulator(args.state)
    durations = {"stop": args.stop_s, "start": args.start_s, "setMachineType": args.set_machine_type_s}
    durations["resize"] = args.resize_s
    config = {"durations": {k: v for k, v in durations.items() if v is not None}}
    if args.wait_max_s is not None:
        config["wait_max_s"] = args.wait_max_s
    if args.token:
        config["token"] = args.token
    emulator.world.configure(config)
    for spec in args.instance:
        where, _, what = spec.partition("=")
        project, zone, name = where.split("/")
        machine_type, _, disk = what.partition(":")
        disk_gb, _, disk_type = disk.partition(":")
        if f"{project}/{zone}/{name}" not in emulator.world.data["instances"]:
            emulator.world.add_instance(
                project,
                zone,
                name,
                machine_type or "e2-micro",
                disk_size_gb=int(disk_gb or 10),
                disk_type=disk_type or "pd-balanced",
                provisioning_model="SPOT" if args.spot else "STANDARD",
            )
    if args.on_state:
        emulator.world.on_instance_state = state_hook(args.on_state)
    server = EmulatorServer((args.host, args.port), emulator, verbose=args.verbose)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"gce emulator: {server.url}/compute/v1 (admin: {server.url}/_emulator/state)", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
