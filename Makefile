# The two commands that matter: `make test` and `make demo`. Both start by
# preparing the test bed (system packages, the VM image, .venv) themselves.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export CONTAINERS_CONF := $(CURDIR)/tests/testbed/containers.conf
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The demo's two "VMs" (systemd containers on one podman network): the first
# runs the coordinator (its dashboard published on 127.0.0.1:8000) and A-D, the second E-H.
DEMO_VM ?= central-mcp-vm1
DEMO_VMS ?= $(DEMO_VM) central-mcp-vm2
DEMO_NET ?= central-mcp-demo
IMAGE ?= localhost/debian-systemd:bookworm

.PHONY: help setup test unit coordinator e2e browser checks lint docs sanity molecule molecule-default molecule-kinds-multi_host reliability demo demo-down bench

help:
	@echo "make test       unit tests, lint, Molecule (prepares the test bed first)"
	@echo "make demo       two local VM containers running the agent fleet (8 agents, one coordinator)"
	@echo "                (MODEL=scripted: agents driven by a scripted model, no API key)"
	@echo "make demo-down  remove the demo VMs"
	@echo "make reliability  hostile inputs, faults, security and load on a VM container (not in make test: time)"
	@echo "make bench      print the benchmark figures"

setup:
	@bash tests/testbed/setup.sh >/dev/null

test: setup unit coordinator e2e browser checks molecule

# lint, docs and sanity only read the tree (docs and sanity work on copies): side by side.
checks:
	$(MAKE) --no-print-directory -j3 --output-sync=target lint docs sanity

# pytest exits 5 when it collects nothing: that is a failure here, said plainly.
# The unit and the coordinator's tests run on every core (pytest-xdist, at most
# 4 workers): each test has its own files, ports and servers.
XDIST := -n auto --maxprocesses=4
unit:
	pytest -q $(XDIST) tests/unit || { rc=$$?; [ $$rc -ne 5 ] || echo "no unit tests were collected" >&2; exit $$rc; }

# The coordinator package's own tests, in its own pinned venv (coordinator/.venv).
coordinator:
	cd coordinator && .venv/bin/pytest -q $(XDIST)

# The real Claude Code CLI against the real coordinator and a scripted model API.
e2e:
	coordinator/.venv/bin/pytest -q tests/e2e

# The dashboard in headless Chromium (Selenium and Debian's chromedriver).
browser:
	coordinator/.venv/bin/pytest -q tests/browser

# Every plugin's and role's documentation as the docsite would build it
# (schema, markup, references between plugins): antsibull-docs lints a copy
# of the files git knows, in an ansible_collections/ tree of its own.
docs:
	antsibull-docs lint-collection-docs --plugin-docs .

# ansible-test sanity (validate-modules, pylint, yamllint, ... 24 tests) on the
# collection's Ansible content; tests/sanity/ignore-2.19.txt says why each ignore.
sanity:
	bash tests/testbed/sanity.sh

lint:
	ruff check plugins tests tools benchmarks molecule roles/launcher/files roles/launcher/files/agent-run roles/launcher/files/agent-unit roles/launcher/files/agent-runtime roles/launcher/files/agent-leaving roles/launcher/files/central-mcp-boot images
	ruff format --check plugins tests tools benchmarks molecule roles/launcher/files roles/launcher/files/agent-run roles/launcher/files/agent-unit roles/launcher/files/agent-runtime roles/launcher/files/agent-leaving roles/launcher/files/central-mcp-boot images
	cd coordinator && ../.venv/bin/ruff check . && ../.venv/bin/ruff format --check .
	ansible-lint --profile production

# Two lanes side by side (each scenario has its own containers, network and
# ports): most of a scenario's time is waiting (systemd, agents starting,
# probes through restarts), so the lanes overlap well on two cores.
molecule:
	$(MAKE) --no-print-directory -j2 --output-sync=target molecule-default molecule-kinds-multi_host

molecule-default:
	molecule test -s default

molecule-kinds-multi_host:
	molecule test -s kinds
	molecule test -s multi_host

# Hostile inventory values, faults, a secrets scan and load against a VM container of its own.
reliability: setup
	pytest -q tests/reliability

EMULATOR_PID := .cache/gce-emulator.pid
MODEL_PID := .cache/scripted-model.pid
# make demo MODEL=scripted: the agents' model is the scripted stand-in (no API key needed).
MODEL ?=
BRIDGE = $$(podman network inspect $(DEMO_NET) --format '{{range .Subnets}}{{.Gateway}}{{end}}')
DEMO_VARS = $(if $(filter scripted,$(MODEL)),-e @playbooks/vars/scripted-model.yml -e demo_model_address=$(BRIDGE))

demo: setup
	@mkdir -p .cache
	@if ! { [ -f $(EMULATOR_PID) ] && kill -0 $$(cat $(EMULATOR_PID)) 2>/dev/null; }; then \
	    echo "starting the Compute API emulator on 127.0.0.1:8089 (the demo VMs start as e2-micro)"; \
	    nohup python -m tests.gce_emulator --port 8089 --state .cache/gce-emulator.json \
	        $(foreach vm,$(DEMO_VMS),--instance demo-project/us-central1-a/$(vm)=e2-micro) --stop-s 3 --start-s 5 \
	        >.cache/gce-emulator.log 2>&1 & echo $$! > $(EMULATOR_PID); sleep 1; fi
	@podman network exists $(DEMO_NET) || podman network create $(DEMO_NET) >/dev/null
	@for vm in $(DEMO_VMS); do podman container exists $$vm || podman run -d --name $$vm --hostname $$vm \
	    --network $(DEMO_NET) --systemd=always --cap-add NET_ADMIN $$([ $$vm = $(DEMO_VM) ] && echo -p 127.0.0.1:8000:8000) \
	    $(IMAGE) /sbin/init >/dev/null; done
	@if [ "$(MODEL)" = scripted ] && ! { [ -f $(MODEL_PID) ] && kill -0 $$(cat $(MODEL_PID)) 2>/dev/null; }; then \
	    echo "starting the scripted model on $(BRIDGE):8090 (reachable from the demo VMs only)"; \
	    nohup python -m tests.model_api --host $(BRIDGE) --port 8090 --script worker --poll-s 5 --idle-polls 720 \
	        >.cache/scripted-model.log 2>&1 & echo $$! > $(MODEL_PID); sleep 1; fi
	@for vm in $(DEMO_VMS); do for i in $$(seq 30); do podman exec $$vm systemctl is-system-running 2>/dev/null \
	    | grep -qE 'running|degraded' && break; sleep 1; done; done
	python tools/run_playbook.py site.yml -i inventories/local $(DEMO_VARS)
	@if [ "$(MODEL)" = scripted ]; then for n in 1 2 3 4 5 6 7 8; do \
	    podman exec $(DEMO_VM) /opt/central-mcp/current/bin/central-mcp --token-file /etc/central-mcp/api.token \
	        task add "Demo task $$n (scripted model)" -d "created by make demo" >/dev/null; done; \
	    echo "8 demo tasks created: watch the agents claim and finish them on the dashboard"; fi
	ansible-playbook playbooks/status.yml -i inventories/local
	@echo
	@echo "The dashboard:         https://127.0.0.1:8000  (log in with the token in \\"
	@echo "                         ~/.config/central-mcp/credentials/$(DEMO_VM)/coordinator.api.token;"
	@echo "                         its certificate is the fleet CA's: trust ~/.config/central-mcp/credentials/fleet-ca/ca.pem"
	@echo "                         in the browser, or accept the warning)"
	@echo "The coordinator:       podman exec -it $(DEMO_VM) /opt/central-mcp/current/bin/central-mcp --token-file \\"
	@echo "                         /etc/central-mcp/api.token status   (also: agents, tasks, task add TITLE --role R)"
	@echo "The dashboard lists all 8 agents, with live terminals from both VMs."
	@for vm in $(DEMO_VMS); do \
	    echo "Attach to $$vm's agents: podman exec -it $$vm runuser -u agent -- tmux attach -t central-mcp-agents"; done
	@echo "  (Ctrl-b n / p: next / previous window; Ctrl-b d: detach and leave them running)"
	@echo "Tear it down:          make demo-down"

demo-down:
	podman rm -f --time 10 $(DEMO_VMS) >/dev/null 2>&1 || true
	podman network rm -f $(DEMO_NET) >/dev/null 2>&1 || true
	@if [ -f $(EMULATOR_PID) ]; then kill $$(cat $(EMULATOR_PID)) 2>/dev/null || true; rm -f $(EMULATOR_PID); fi
	@if [ -f $(MODEL_PID) ]; then kill $$(cat $(MODEL_PID)) 2>/dev/null || true; rm -f $(MODEL_PID); fi
	rm -f .cache/gce-emulator.json

bench: setup
	python benchmarks/add_agent_restarts.py
	python benchmarks/tmux_agents_noop.py
	python benchmarks/agent_status_time.py
	python benchmarks/gce_resize.py
	python benchmarks/gce_disk_resize.py
	python benchmarks/fleet_costs.py
	coordinator/.venv/bin/python benchmarks/coordinator_load.py
	coordinator/.venv/bin/python benchmarks/coordinator_curve.py
	coordinator/.venv/bin/python benchmarks/agent_kinds.py
	coordinator/.venv/bin/python benchmarks/worker_runtime.py
	python benchmarks/repo_disk.py
	coordinator/.venv/bin/python benchmarks/task_branches.py
	coordinator/.venv/bin/python benchmarks/spot_preemption.py
