# SPDX-License-Identifier: Apache-2.0
"""Group commit: commits share fsyncs of the WAL, and no answer leaves before its commit is on disk."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from central_mcp import store as store_module
from central_mcp.durable_answers import DurableAnswers
from central_mcp.store import BACKSTOP_CHECKPOINT_PAGES, Store, StoreError

pytestmark = pytest.mark.anyio


class Disk:
    """os.fdatasync, watched: what each fsync covered when it began, and an optional delay or failure."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch, delay_s: float = 0.0) -> None:
        self.store = store
        self.delay_s = delay_s
        self.fail: OSError | None = None
        self.covered: list[int] = []  # the store's commit count as each fsync began
        self.done: list[int] = []  # ... and as each ended
        self.lock = threading.Lock()
        real = os.fdatasync

        def fdatasync(fd: int) -> None:
            assert os.readlink(f"/proc/self/fd/{fd}") == f"{store.path}-wal"
            with self.lock:
                self.covered.append(store._committed)
            time.sleep(self.delay_s)
            if self.fail is not None:
                raise self.fail
            real(fd)
            with self.lock:
                self.done.append(self.covered[-1])

        monkeypatch.setattr(os, "fdatasync", fdatasync)


def make(tmp_path: Path, group_commit: bool) -> Store:
    store = Store(tmp_path / "c.db", tmp_path / "backups", group_commit=group_commit).open()
    store.migrate()
    return store


def write(store: Store, title: str) -> int:
    with store.transaction() as conn:
        conn.execute("INSERT INTO tasks (title, created_at, updated_at) VALUES (?, 0, 0)", (title,))
    return store._committed


async def test_without_group_commit_each_commit_is_synced_by_sqlite(tmp_path: Path, monkeypatch) -> None:
    store = make(tmp_path, group_commit=False)
    disk = Disk(store, monkeypatch)
    assert store.query_one("PRAGMA synchronous")[0] == 2  # FULL
    assert store.query_one("PRAGMA wal_autocheckpoint")[0] == 1000  # SQLite's own checkpoints, as usual
    write(store, "a")
    assert not store.pending
    await store.durable()
    assert disk.covered == []
    store.close()


async def test_a_commit_is_pending_until_durable_syncs_the_wal(tmp_path: Path, monkeypatch) -> None:
    store = make(tmp_path, group_commit=True)
    disk = Disk(store, monkeypatch)
    assert store.query_one("PRAGMA synchronous")[0] == 1  # NORMAL: the COMMIT does not wait for the disk
    assert store.pending  # the migrations' commits
    await store.durable()
    assert not store.pending and len(disk.done) == 1
    count = write(store, "a")
    assert store.pending
    await store.durable()
    assert not store.pending and disk.done[-1] >= count
    fsyncs = len(disk.covered)
    await store.durable()  # nothing new: no second fsync
    store.query("SELECT * FROM tasks")
    await store.durable()
    assert len(disk.covered) == fsyncs
    store.close()


async def test_concurrent_writers_share_fsyncs_and_each_waits_for_its_own(tmp_path: Path, monkeypatch) -> None:
    store = make(tmp_path, group_commit=True)
    await store.durable()
    disk = Disk(store, monkeypatch, delay_s=0.02)
    returned: list[tuple[int, int]] = []  # (the writer's commit, fsyncs finished when it heard "durable")

    async def writer(i: int) -> None:
        await anyio.sleep(i * 0.002)
        mine = write(store, f"t{i}")
        await store.durable()
        returned.append((mine, max(disk.done)))

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(writer, i)
    assert len(returned) == 40
    assert all(covered >= mine for mine, covered in returned), returned
    assert len(disk.covered) <= 10, f"40 commits took {len(disk.covered)} fsyncs"
    assert not store.pending
    store.close()


async def test_a_failed_fsync_is_an_error_and_the_commit_stays_pending(tmp_path: Path, monkeypatch) -> None:
    store = make(tmp_path, group_commit=True)
    disk = Disk(store, monkeypatch)
    disk.fail = OSError(5, "Input/output error")
    write(store, "a")
    with pytest.raises(StoreError, match=r"fsync of .*c\.db-wal failed: .*Input/output error: check the disk"):
        await store.durable()
    assert store.pending
    disk.fail = None
    await store.durable()
    assert not store.pending
    store.close()


async def test_answers_wait_for_the_fsync_reads_do_not_pay_one(tmp_path: Path, monkeypatch) -> None:
    store = make(tmp_path, group_commit=True)
    await store.durable()
    disk = Disk(store, monkeypatch, delay_s=0.05)

    async def create(request: Request) -> JSONResponse:
        return JSONResponse({"committed": write(store, "from the API"), "synced_then": len(disk.done)})

    async def read(request: Request) -> JSONResponse:
        return JSONResponse({"tasks": len(store.query("SELECT id FROM tasks"))})

    app = Starlette(routes=[Route("/create", create, methods=["POST"]), Route("/read", read)])
    app.add_middleware(DurableAnswers, store=store)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test") as client:
        answer = await client.post("/create")
        assert answer.status_code == 200 and answer.json()["synced_then"] == 0
        # The answer came out only after an fsync that began once the commit was made.
        assert disk.done and disk.done[-1] >= answer.json()["committed"]
        fsyncs = len(disk.covered)
        assert (await client.get("/read")).json() == {"tasks": 1}
        assert len(disk.covered) == fsyncs
    store.close()


@pytest.mark.parametrize(("checkpoint_commits", "wal_pages"), [(50, range(0, 1000)), (10**9, range(4000, 10**6))])
async def test_the_checkpoint_thread_not_the_loop_folds_the_wal_in(
    tmp_path: Path, monkeypatch, checkpoint_commits: int, wal_pages: range
) -> None:
    """A checkpoint inside a COMMIT stopped the event loop for milliseconds: the loop's connection leaves them to
    the checkpoint thread, every ``CHECKPOINT_COMMITS``. With none due, the WAL grows: nothing else folds it in."""
    monkeypatch.setattr(store_module, "CHECKPOINT_COMMITS", checkpoint_commits)
    ran: list[str] = []
    real = Store._checkpoint_passive

    def watched(self: Store) -> None:
        ran.append(threading.current_thread().name)
        real(self)

    monkeypatch.setattr(Store, "_checkpoint_passive", watched)
    store = make(tmp_path, group_commit=True)
    assert store.query_one("PRAGMA wal_autocheckpoint")[0] == BACKSTOP_CHECKPOINT_PAGES
    for i in range(1000):  # each commit writes at least two pages to the WAL: the row's and the index's
        write(store, f"{i} " + "x" * 2000)
        await anyio.sleep(0.001)  # a busy coordinator: a call's HTTP and MCP work between two commits
        # The next write starts the WAL over only if the checkpoint ended with nothing new. How often that
        # happens among concurrent writes depends on the machine's load (1235 pages once, under a parallel
        # test run): this test lets each checkpoint finish, and so checks that the restart then follows.
        while store._checkpointing:
            await anyio.sleep(0.001)
        if i % 100 == 0:
            await store.durable()
    assert store._checkpointer is not None
    store._checkpointer.submit(lambda: None).result()  # the thread has done what it was given
    pages = os.path.getsize(f"{store.path}-wal") // 4096
    assert pages in wal_pages, pages
    assert all(name.startswith("central-mcp-checkpoint") for name in ran)
    assert len(ran) >= (1000 // checkpoint_commits) // 2
    await store.durable()
    store.close()  # the last checkpoint folds everything in
    assert not os.path.exists(f"{store.path}-wal") or os.path.getsize(f"{store.path}-wal") == 0
    reopened = make(tmp_path, group_commit=False)
    assert reopened.query_one("SELECT COUNT(*) FROM tasks")[0] == 1000
    reopened.close()
