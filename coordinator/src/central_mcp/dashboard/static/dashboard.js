// SPDX-License-Identifier: Apache-2.0
// The dashboard page: state from /api/state, refreshed when the event stream
// says something changed; one xterm.js terminal per agent over /ws/terminal/NAME.
// No inline script (the CSP forbids it) and no innerHTML with data: text only.
'use strict';

const COLUMNS = [
  ['AVAILABLE', 'Open', ['AVAILABLE']],
  ['CLAIMED', 'Claimed', ['CLAIMED']],
  ['IN_PROGRESS', 'In progress', ['IN_PROGRESS', 'BLOCKED', 'NEEDS_REVIEW']],
  ['COMPLETE', 'Done', ['COMPLETE']],
  ['FAILED', 'Failed', ['FAILED', 'CANCELLED']],
];
const EVENTS = ['ready', 'metrics', 'task.created', 'task.claimed', 'task.updated', 'task.completed',
  'task.failed', 'task.suggested', 'agent.registered', 'agent.state', 'note.posted'];
const DASH = '—';

const terminals = new Map();
// A read-only handle for tests and benchmarks: render times (ms since navigation) and the terminals.
window.cmcpDashboard = { terminals, state: null, renders: 0, firstRender: null, terminalsReady: null };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function bytes(n) {
  if (n === null || n === undefined) return DASH;
  if (n >= 2 ** 30) return (n / 2 ** 30).toFixed(1) + ' GiB';
  if (n >= 2 ** 20) return Math.round(n / 2 ** 20) + ' MB';
  return Math.round(n / 2 ** 10) + ' KB';
}

function ago(iso) {
  if (!iso) return DASH;
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : '';
}

// -- state -----------------------------------------------------------------------------

let pending = null;
async function refresh() {
  const response = await fetch('/api/state', { credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401) { window.location.assign('/login'); return; }
  if (!response.ok) return;
  const state = await response.json();
  window.cmcpDashboard.state = state;
  render(state);
}
function soon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh().catch(() => {}); }, 100);
}

function render(state) {
  renderFleet(state.fleet);
  renderAgents(state.agents);
  renderBoard(state.tasks);
  renderTerminals(state.agents, state.relay);
  const dash = window.cmcpDashboard;
  dash.renders += 1;
  if (dash.firstRender === null) {
    dash.firstRender = performance.now();
    document.body.dataset.rendered = 'true';
  }
}

function renderFleet(fleet) {
  const status = document.getElementById('status');
  status.textContent = fleet.status;
  status.className = 'badge ' + fleet.status;
  const facts = document.getElementById('fleet-facts');
  const cpu = fleet.cpus === null ? DASH : `${fleet.needs_cpus} of ${fleet.cpus} vCPU`;
  const mem = fleet.memory_bytes === null ? DASH : `${bytes(fleet.needs_memory_bytes)} of ${bytes(fleet.memory_bytes)}`;
  // This VM's agents against this VM: every other VM is held against its own (the VMs table).
  const fits = fleet.fits === null || fleet.fits === undefined ? DASH : `${fleet.own_agents} of ${fleet.fits} agents`;
  const cost = fleet.monthly_cost === null ? DASH
    : `$${fleet.monthly_cost.toFixed(2)} / month for ${fleet.vms.length} VM${fleet.vms.length === 1 ? '' : 's'}`
      + (fleet.cost_per_agent === null ? '' : ` ($${fleet.cost_per_agent.toFixed(2)} per agent)`);
  const disk = fleet.disk || {};
  const diskText = disk.used_percent === null || disk.used_percent === undefined ? DASH
    : `${disk.used_percent} % used, ${bytes(disk.free_bytes)} free of ${bytes(disk.total_bytes)}`;
  const db = fleet.database || {};
  const dbText = bytes(db.total_bytes) + (db.retention_days ? `, events and notes kept ${db.retention_days} days` : ', kept forever');
  const rows = [
    ['Machine type', fleet.machine_type || DASH],
    ['Capacity used (this VM)', fits],
    ['CPU by the rule', cpu + ` (${fleet.rule.cpu_per_agent} vCPU per agent)`],
    ['RAM by the rule', mem + ` (${fleet.rule.mb_per_agent} MB per agent)`],
    ['VM CPU busy', fleet.cpu_percent === null || fleet.cpu_percent === undefined ? DASH : fleet.cpu_percent + ' %'],
    ['Disk', diskText, disk.warning ? 'warn' : ''],
    ['Database', dbText],
    ['Fleet cost', cost],
    ['Coordinator', fleet.version],
  ];
  facts.replaceChildren(...rows.flatMap(([k, v, cls]) => [el('dt', { text: k }), el('dd', { text: v, class: cls || '', 'data-fact': k })]));
  renderVms(fleet);
  // The disk warning goes first: it is the one that needs an inventory change before the disk fills up.
  const problems = [...fleet.problems].sort((a, b) => (b === disk.warning) - (a === disk.warning));
  document.getElementById('problems').replaceChildren(...problems.map((p) => el('li', { text: p, class: p === disk.warning ? 'disk-warning' : '' })));
}

function money(n) {
  return n === null || n === undefined ? DASH : '$' + n.toFixed(2);
}

// A Spot VM's story as the Spot watcher tells it: preempted (since when), starting, or back after how long.
function provisioning(vm) {
  // A pod: billed by the hour it runs (its month is the hours it ran in the last week, as a month).
  if (vm.hourly_cost !== null && vm.hourly_cost !== undefined) {
    return `$${vm.hourly_cost.toFixed(2)} / hour, ran ${vm.hours_7d} h in 7 days`;
  }
  if (vm.provisioning_model !== 'spot') return vm.provisioning_model || DASH;
  const story = vm.spot || {};
  const since = story.preempted_at ? new Date(story.preempted_at * 1000).toLocaleTimeString() : '';
  if (story.state === 'preempted' || story.state === 'starting') {
    return `Spot: preempted ${since}, ${story.state === 'starting' ? 'starting again' : 'to be started again'}`;
  }
  if (story.down_s !== null && story.down_s !== undefined) return `Spot: back after ${Math.round(story.down_s)} s (preempted ${since})`;
  return story.state === 'stopped' ? 'Spot: stopped (not by a preemption)' : 'Spot';
}

// One row per VM (its own agents against its own vCPUs and memory, its own price), then the fleet's total.
function renderVms(fleet) {
  const plans = ['on_demand', 'spot', 'commit_1y', 'commit_3y'];
  const rows = fleet.vms.map((vm) => el('tr', { 'data-vm': vm.name || 'this VM', class: vm.over ? 'warn' : '' },
    el('td', { text: (vm.name || 'this VM') + (vm.coordinator ? ' (coordinator)' : '') }),
    el('td', { text: vm.machine_type || (vm.hourly_cost !== null && vm.hourly_cost !== undefined ? 'pod' : DASH) }),
    el('td', { text: provisioning(vm) }),
    el('td', { class: 'num', text: vm.fits === null ? `${vm.agents}` : `${vm.agents} of ${vm.fits}` }),
    el('td', { class: 'num', text: vm.cpus === null ? DASH : `${vm.cpus}` }),
    el('td', { class: 'num', text: vm.memory_bytes === null ? DASH : bytes(vm.memory_bytes) }),
    el('td', { class: 'num', text: money(vm.monthly_cost) }),
    ...plans.map((plan) => el('td', { class: 'num', text: money(vm.plans ? vm.plans[plan] : null) }))));
  const total = el('tr', { 'data-vm': 'fleet', class: 'total' },
    el('th', { text: 'Fleet' }), el('td'), el('td'),
    el('td', { class: 'num', text: `${fleet.agents}` }), el('td'), el('td'),
    el('td', { class: 'num', text: money(fleet.monthly_cost) }),
    ...plans.map((plan) => el('td', { class: 'num', text: money(fleet.plans ? fleet.plans[plan] : null) })));
  document.querySelector('#vms tbody').replaceChildren(...rows, total);
  document.getElementById('price-date').textContent = fleet.price_date ? `prices of ${fleet.price_date}` : 'no price table';
}

// States in which an agent needs a person's eyes: its screen's last lines are shown under its row.
const ATTENTION = ['waiting', 'quiet', 'offline'];

function attention(a) {
  const runtime = a.runtime;
  if (!ATTENTION.includes(a.state) || !runtime) return [];
  const why = a.state === 'waiting' ? `asks: ${runtime.prompt || '?'}`
    : a.state === 'quiet' ? `no call and no new output for ${Math.round(runtime.output_s)} s`
      : `no heartbeat for ${Math.round(runtime.heartbeat_s)} s`;
  return [el('tr', { class: 'attention ' + a.state, 'data-attention': a.name },
    el('td', { colspan: '10' }, el('strong', { text: `${a.name} ${a.state}: ${why}` }),
      el('pre', { class: 'screen', text: (runtime.screen || []).filter((l) => l.trim()).slice(-8).join('\n') })))];
}

function renderAgents(agents) {
  const body = document.querySelector('#agents tbody');
  document.getElementById('agent-count').textContent =
    `${agents.filter((a) => ['idle', 'working', 'quiet', 'waiting'].includes(a.state)).length} active of ${agents.length}`;
  body.replaceChildren(...agents.flatMap((a) => [el('tr', { 'data-agent': a.name, class: 'agent' },
    el('td', { text: a.name, class: 'name' }),
    el('td', { text: a.kind || DASH, class: 'kind' }),
    el('td', { text: a.role || DASH }),
    el('td', { text: a.model || DASH }),
    el('td', { text: a.host || DASH }),
    el('td', {}, el('span', { class: 'state ' + a.state, text: a.state })),
    el('td', { text: a.current_task ? `#${a.current_task.id} ${a.current_task.title}` : DASH }),
    el('td', { class: 'num', text: a.cpu_percent === null ? DASH : a.cpu_percent.toFixed(1) + ' %' }),
    el('td', { class: 'num', text: bytes(a.rss_bytes) }),
    el('td', { text: ago(a.last_seen) }),
  ), ...attention(a)]));
}

// A task's branch: name, commits, diffstat, pushed or why not, the pull request; its diff on demand.
function branchLine(t) {
  const b = t.branch;
  const commits = b.commit_count === 1 ? '1 commit' : `${b.commit_count} commits`;
  const files = b.files_changed === 1 ? '1 file' : `${b.files_changed} files`;
  const stat = b.commit_count === 0 ? 'no changes' : `${commits}, ${files} +${b.insertions} −${b.deletions}`;
  const line = el('div', { class: 'branch', 'data-branch': b.branch },
    el('code', { text: b.branch }), ` ← ${b.base} · ${stat}`,
    b.committed_leftovers ? ' · uncommitted work committed by the runtime' : '');
  if (b.pushed) line.append(el('span', { class: 'ok', text: ' · pushed' }));
  else if (b.commit_count > 0) line.append(el('span', { class: 'push-error', text: ` · not pushed: ${b.push_error}` }));
  if (b.pr_url && b.pr_url.startsWith('https://')) {
    line.append(' · ', el('a', { href: b.pr_url, target: '_blank', rel: 'noopener noreferrer', text: 'pull request' }));
  } else if (b.pr_state === 'opening') line.append(' · opening a pull request…');
  else if (b.pr_state === 'failed') line.append(el('span', { class: 'push-error', text: ` · no pull request: ${b.pr_error}` }));
  if (b.diff_chars > 0) {
    const button = el('button', { type: 'button', class: 'show-diff', text: 'diff' });
    button.addEventListener('click', () => showDiff(t.id));
    line.append(' ', button);
  }
  return line;
}

async function showDiff(taskId) {
  const dialog = document.getElementById('diff-view');
  const body = document.getElementById('diff-text');
  document.getElementById('diff-title').textContent = `Task #${taskId}: loading…`;
  body.textContent = '';
  dialog.showModal();
  const response = await fetch(`/api/tasks/${taskId}/diff`, { credentials: 'same-origin', cache: 'no-store' });
  if (!response.ok) { body.textContent = `could not load the diff (HTTP ${response.status})`; return; }
  const { branch, diff } = await response.json();
  document.getElementById('diff-title').textContent =
    `Task #${taskId}: ${branch.branch} against ${branch.base}` + (branch.diff_truncated ? ' (cut at 1 MB)' : '');
  body.textContent = diff;  // text, never markup: the diff is what a model wrote
}

function renderBoard(tasks) {
  const board = document.getElementById('board');
  board.replaceChildren(...COLUMNS.map(([key, title, states]) => {
    const mine = tasks.filter((t) => states.includes(t.state));
    return el('div', { class: 'column', 'data-column': key },
      el('h3', { text: `${title} (${mine.length})` }),
      ...mine.map((t) => el('article', { class: 'task', 'data-task': String(t.id), 'data-state': t.state },
        el('div', { class: 'title', text: `#${t.id} ${t.title}` }),
        el('div', { class: 'meta', text: [
          t.state !== key ? t.state.toLowerCase() : '',
          t.role ? `role ${t.role}` : '', `P${t.priority}`,
          t.claimed_by ? `by ${t.claimed_by}` : '',
          t.progress ? `${t.progress} %` : '',
          time(t.completed_at || t.claimed_at || t.created_at),
        ].filter(Boolean).join(' · ') }),
        ...(t.branch ? [branchLine(t)] : []))));
  }));
}

// -- terminals -------------------------------------------------------------------------

class TerminalView {
  constructor(agent, parent) {
    this.agent = agent;
    this.head = el('span', { class: 'muted', text: 'connecting…' });
    this.box = el('div', { class: 'xterm-box' });
    this.card = el('figure', { class: 'terminal', 'data-agent': agent },
      el('figcaption', {}, el('strong', { text: agent }), ' ', this.head), this.box);
    parent.append(this.card);
    this.term = new window.Terminal({
      convertEol: false, disableStdin: true, scrollback: 2000, fontSize: 12, cursorBlink: false,
      theme: { background: '#111418' },
    });
    this.fit = new window.FitAddon.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.box);
    this.size = null;
    this.delay = 500;
    this.received = 0;
    this.connect();
  }

  connect() {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${window.location.host}/ws/terminal/${encodeURIComponent(this.agent)}`);
    this.ws = ws;
    ws.onmessage = (event) => this.message(JSON.parse(event.data));
    ws.onclose = () => {
      if (this.closed) return;
      this.head.textContent = 'disconnected, retrying…';
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }

  message(m) {
    if (m.type === 'hello') {
      this.term.options.disableStdin = !m.input;
      if (m.input && !this.typing) this.typing = this.term.onData((data) => this.send(data));
    } else if (m.type === 'snapshot') {
      this.delay = 500;
      this.size = [m.width, m.height];
      this.term.reset();
      this.term.resize(m.width, m.height);
      this.scale();
      this.term.write(m.data + `\x1b[${m.cursor[1] + 1};${m.cursor[0] + 1}H`);
      this.head.textContent = `${m.width}×${m.height}, live` + (this.term.options.disableStdin ? ', read-only' : '');
      this.received += 1;
      const dash = window.cmcpDashboard;
      if (dash.terminalsReady === null && [...terminals.values()].every((v) => v.received > 0)) {
        this.term.write('', () => { dash.terminalsReady = performance.now(); });
      }
    } else if (m.type === 'output') {
      this.term.write(m.data);
      this.received += 1;
    } else if (m.type === 'closed' || m.type === 'error') {
      this.head.textContent = m.reason || m.message;
    }
  }

  send(data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'input', data }));
  }

  // The pane's size is the truth (agents run at the tmux window's size): the
  // browser does not resize the pane, it picks a font size that shows all of it.
  scale() {
    if (!this.size) return;
    for (let i = 0; i < 3; i++) {
      const proposed = this.fit.proposeDimensions();
      if (!proposed || !proposed.cols) return;
      const font = this.term.options.fontSize;
      const next = Math.max(6, Math.min(14, Math.floor(font * proposed.cols / this.size[0])));
      if (next === font) return;
      this.term.options.fontSize = next;
    }
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
    this.term.dispose();
    this.card.remove();
  }
}

function renderTerminals(agents, relay) {
  document.getElementById('relay-error').textContent = relay.error || '';
  if (!window.Terminal || !window.FitAddon) return;
  const parent = document.getElementById('terminals');
  const names = new Set(agents.map((a) => a.name));
  for (const [name, view] of terminals) {
    if (!names.has(name)) { view.close(); terminals.delete(name); }
  }
  for (const a of agents) {
    if (!terminals.has(a.name)) terminals.set(a.name, new TerminalView(a.name, parent));
  }
}

window.addEventListener('resize', () => { for (const view of terminals.values()) view.scale(); });

// -- task form and event stream ------------------------------------------------------

document.getElementById('new-task').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target.elements;
  const error = document.getElementById('task-error');
  const body = {
    title: form.title.value, role: form.role.value, description: form.description.value,
    priority: Number(form.priority.value),
  };
  const response = await fetch('/api/tasks', {
    method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.ok) {
    error.textContent = '';
    form.title.value = ''; form.description.value = '';
    soon();
  } else if (response.status === 401) {
    window.location.assign('/login');
  } else {
    error.textContent = (await response.json()).message;
  }
});

const live = document.getElementById('live');
const stream = new EventSource('/api/events');
for (const name of EVENTS) stream.addEventListener(name, soon);
stream.addEventListener('open', () => { live.textContent = '● live'; live.className = 'ok'; });
stream.addEventListener('error', () => { live.textContent = '○ reconnecting'; live.className = 'muted'; soon(); });
refresh().catch(() => {});
