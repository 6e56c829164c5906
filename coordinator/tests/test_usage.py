# SPDX-License-Identifier: Apache-2.0
"""The agents' measured CPU and memory: a peak per 5-minute window, a week kept, the 95th percentile served."""

from __future__ import annotations

from pathlib import Path

from conftest import Server

from central_mcp import usage
from central_mcp.store import Store

T0 = 1_800_000_000  # on a window's start
MB = 2**20


def make(tmp_path: Path) -> Store:
    store = Store(tmp_path / "db" / "c.db", tmp_path / "db" / "backups", 7).open()
    store.migrate()
    return store


def test_each_window_keeps_each_agents_peak_and_is_written_once_it_ends(tmp_path: Path) -> None:
    store = make(tmp_path)
    recorder = usage.UsageRecorder(store)
    recorder.observe({"A": {"cpu_percent": 12.0, "rss_bytes": 300 * MB}, "B": {"cpu_percent": None}}, T0 + 1)
    recorder.observe({"A": {"cpu_percent": 40.0, "rss_bytes": 250 * MB}}, T0 + 100)
    recorder.observe({"A": {"cpu_percent": None, "rss_bytes": 320 * MB}}, T0 + 200)
    assert store.query("SELECT * FROM usage") == []  # the window is still open
    recorder.observe({"A": {"cpu_percent": 5.0, "rss_bytes": 200 * MB}}, T0 + usage.WINDOW_S + 1)
    rows = [tuple(r) for r in store.query("SELECT agent, at, cpu_percent, rss_bytes FROM usage")]
    assert rows == [("A", T0, 40.0, 320 * MB)]  # B was never seen: no row
    recorder.flush()  # a stop writes the window so far
    recorder.flush()
    assert [tuple(r) for r in store.query("SELECT at, cpu_percent FROM usage ORDER BY at")] == [
        (T0, 40.0),
        (T0 + usage.WINDOW_S, 5.0),
    ]


def test_the_95th_percentile_per_agent_and_over_all_and_a_week_kept(tmp_path: Path) -> None:
    store = make(tmp_path)
    recorder = usage.UsageRecorder(store)
    for window in range(100):  # A: 1 .. 100 % over 100 windows; B: 10 % and 100 MB always
        at = T0 + window * usage.WINDOW_S
        recorder.observe({"A": {"cpu_percent": float(window + 1), "rss_bytes": (window + 1) * MB},
                          "B": {"cpu_percent": 10.0, "rss_bytes": 100 * MB}}, at)  # fmt: skip
    recorder.flush()
    now = T0 + 100 * usage.WINDOW_S
    seen = usage.summary(store, days=7, now=now)
    assert seen["agents"]["A"] == {"windows": 100, "cpu_p95_percent": 95.0, "rss_p95_bytes": 95 * MB}
    assert seen["agents"]["B"] == {"windows": 100, "cpu_p95_percent": 10.0, "rss_p95_bytes": 100 * MB}
    # Over both agents' 200 windows: the 190th smallest reading (B's 100 MB fill the top half of memory).
    assert seen["per_agent"] == {"windows": 200, "cpu_p95_percent": 90.0, "rss_p95_bytes": 100 * MB, "agents": 2}
    assert usage.summary(store, days=1, now=now + 9 * usage.DAY_S)["agents"] == {}
    assert usage.prune(store, now + 9 * usage.DAY_S) == 200
    assert usage.percentile([]) is None and usage.percentile([3.0]) == 3.0


def test_the_api_serves_it_to_people_only(server: Server) -> None:
    answer = server.json("GET", "/api/usage?days=7")
    assert answer["per_agent"]["windows"] == 0 and answer["agents"] == {} and answer["window_s"] == usage.WINDOW_S
    bad = server.api("GET", "/api/usage?days=30")
    assert bad.status_code == 400 and "days must be a number of days from 1 to 8" in bad.text
    agent = server.api("GET", "/api/usage", token=server.fleet.tokens[next(iter(server.fleet.tokens))])
    assert agent.status_code == 401
