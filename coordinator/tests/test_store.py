# SPDX-License-Identifier: Apache-2.0
"""The SQLite store: pragmas, migrations with backups, retention, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central_mcp.authors import NOT_RECORDED
from central_mcp.domain import task_view
from central_mcp.schema import LATEST_VERSION, MIGRATIONS
from central_mcp.store import Store, StoreError


def make(tmp_path: Path, keep: int = 7) -> Store:
    return Store(tmp_path / "db" / "c.db", tmp_path / "db" / "backups", keep).open()


def test_fresh_database_migrates_without_backup(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.schema_version() == 0
    assert store.migrate() == [m.version for m in MIGRATIONS]
    assert store.schema_version() == LATEST_VERSION
    assert store.backups() == []
    assert store.query_one("PRAGMA journal_mode")[0] == "wal"
    assert store.query_one("PRAGMA synchronous")[0] == 2  # FULL
    assert store.query_one("PRAGMA foreign_keys")[0] == 1
    assert store.query_one("PRAGMA busy_timeout")[0] == 5000
    assert store.integrity_check() == "ok" and store.integrity_check(quick=True) == "ok"
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert store.migrate() == []
    store.close()


def test_older_database_is_backed_up_then_migrated(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.schema_version()
    with store.transaction() as conn:  # what the previous release left: version N-1 with data
        for statement in MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, 'v1', 0)")
        conn.execute("INSERT INTO tasks (title, created_at, updated_at) VALUES ('keep me', 0, 0)")
    assert store.migrate() == [m.version for m in MIGRATIONS[1:]]
    [backup] = store.backups()
    assert f"v1-before-v{MIGRATIONS[-1].version}" in backup.name
    with sqlite3.connect(backup) as old:
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
        assert old.execute("SELECT title FROM tasks").fetchall() == [("keep me",)]
    assert tuple(store.query_one("SELECT suggested_agent, attempts FROM tasks")) == (None, 0)
    store.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.migrate()
    with store.transaction() as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', 0)")
    with pytest.raises(StoreError, match="newer than this central-mcp knows"):
        store.migrate()


def test_backup_retention(tmp_path: Path) -> None:
    store = make(tmp_path, keep=3)
    store.migrate()
    made = [store.backup(f"n{i}") for i in range(5)]
    assert store.backups() == made[-3:]
    assert not any(p.suffix == ".partial" for p in store.backup_dir.iterdir())


def test_failed_write_rolls_back_with_clear_error(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.migrate()
    store.conn.execute("PRAGMA query_only = ON")  # stands in for a read-only file or full disk
    with pytest.raises(StoreError, match="readonly.*writable"):
        with store.transaction() as conn:
            conn.execute("INSERT INTO notes (at, author, text) VALUES (0, 'x', 'y')")
    store.conn.execute("PRAGMA query_only = OFF")
    assert store.query_one("SELECT COUNT(*) FROM notes")[0] == 0
    assert store.integrity_check() == "ok"


def test_exception_in_transaction_rolls_back(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.migrate()
    with pytest.raises(ZeroDivisionError):
        with store.transaction() as conn:
            conn.execute("INSERT INTO notes (at, author, text) VALUES (0, 'x', 'y')")
            1 / 0  # noqa: B018
    assert store.query_one("SELECT COUNT(*) FROM notes")[0] == 0


def test_unwritable_directory_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the database directory"):
        Store(blocker / "c.db", tmp_path / "b").open()


def test_full_disk_fails_the_write_not_the_file(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.migrate()
    pages = store.query_one("PRAGMA page_count")[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite answers SQLITE_FULL, as on a full disk
    with pytest.raises(StoreError, match="disk is full.*free space"):
        with store.transaction() as conn:
            conn.execute("INSERT INTO notes (at, author, text) VALUES (0, 'x', ?)", ("x" * 200_000,))
    assert store.query_one("SELECT COUNT(*) FROM notes")[0] == 0
    assert store.integrity_check() == "ok"


def test_writers_of_older_texts_are_filled_in_from_the_events(tmp_path: Path) -> None:
    """Migration 5 labels what is already there: from the tasks' events, and notes by their author."""
    store = make(tmp_path)
    store.schema_version()
    with store.transaction() as conn:  # a database at version 4 with agent texts and a person's
        for migration in MIGRATIONS[:4]:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, 'old', 0)", (migration.version,))
        conn.execute("INSERT INTO agents (name, created_at, updated_at) VALUES ('A', 0, 0), ('B', 0, 0)")
        rows = [(1, "COMPLETE", "n", "r"), (2, "CANCELLED", "", "why"), (3, "FAILED", "", "all tries"),
                (4, "AVAILABLE", "old", "")]  # fmt: skip
        for task_id, state, notes, result in rows:
            conn.execute(
                "INSERT INTO tasks (id, title, state, notes, result, created_at, updated_at) VALUES (?, 't', ?, ?, ?,"
                " 0, 0)",
                (task_id, state, notes, result),
            )
        events = [(1, "B", "progress", "n"), (1, "A", "progress", "n"), (1, "A", "completed", "r"),
                  (2, "ops", "cancelled", "why"), (3, "coordinator", "failed", "attempt 3")]  # fmt: skip
        for task_id, actor, kind, text in events:
            conn.execute(
                "INSERT INTO task_events (task_id, at, actor, kind, state, text) VALUES (?, 0, ?, ?, 'X', ?)",
                (task_id, actor, kind, text),
            )
        for author in ("A", "ops", "coordinator"):
            conn.execute("INSERT INTO notes (at, author, text) VALUES (0, ?, 'hi')", (author,))
    assert store.migrate() == [5] + [m.version for m in MIGRATIONS[5:]]
    labels = [tuple(r) for r in store.query("SELECT notes_by, result_by FROM tasks ORDER BY id")]
    assert labels == [
        ("agent A", "agent A"),
        (None, "person (ops)"),
        (None, "coordinator (quoting agents' screens)"),
        (None, None),  # its events are gone (retention): the view says "not recorded"
    ]
    assert task_view(store.query_one("SELECT * FROM tasks WHERE id = 4"))["written_by"] == {"notes": NOT_RECORDED}
    assert [r[0] for r in store.query("SELECT written_by FROM notes ORDER BY id")] == [
        "agent A",
        "person (ops)",
        "coordinator",
    ]
    store.close()


def _open_counts(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    kept = {r["role"]: r["n"] for r in store.query("SELECT role, n FROM open_tasks WHERE n != 0")}
    truth = {
        r["role"]: r["n"]
        for r in store.query("SELECT role, COUNT(*) AS n FROM tasks WHERE state = 'AVAILABLE' GROUP BY role")
    }
    return kept, truth


def test_open_task_counts_follow_every_change_of_the_tasks(tmp_path: Path) -> None:
    import random  # noqa: PLC0415

    store = make(tmp_path)
    store.migrate()
    rng = random.Random(7)
    roles, states = ["", "backend", "ui"], ["AVAILABLE", "CLAIMED", "IN_PROGRESS", "COMPLETE", "FAILED", "CANCELLED"]
    for step in range(400):
        ids = [r["id"] for r in store.query("SELECT id FROM tasks")]
        op = rng.choice(["insert", "insert", "state", "role", "both", "delete"] if ids else ["insert"])
        with store.transaction() as conn:
            if op == "insert":
                conn.execute(
                    "INSERT INTO tasks (title, role, state, created_at, updated_at) VALUES (?, ?, ?, 0, 0)",
                    (f"t{step}", rng.choice(roles), rng.choice(states[:2])),
                )
            elif op == "delete":
                conn.execute("DELETE FROM tasks WHERE id = ?", (rng.choice(ids),))
            else:
                state = rng.choice(states) if op in ("state", "both") else None
                role = rng.choice(roles) if op in ("role", "both") else None
                conn.execute(
                    "UPDATE tasks SET state = COALESCE(?, state), role = COALESCE(?, role) WHERE id = ?",
                    (state, role, rng.choice(ids)),
                )
        kept, truth = _open_counts(store)
        assert kept == truth, f"after step {step} ({op})"
    store.close()


def test_open_task_counts_start_from_the_tasks_already_there(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.schema_version()
    with store.transaction() as conn:
        for migration in MIGRATIONS[:-1]:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, 'before', 0)", (migration.version,))
        for role, state in [("", "AVAILABLE"), ("ui", "AVAILABLE"), ("ui", "AVAILABLE"), ("ui", "COMPLETE")]:
            conn.execute(
                "INSERT INTO tasks (title, role, state, created_at, updated_at) VALUES ('t', ?, ?, 0, 0)", (role, state)
            )
    assert store.migrate() == [MIGRATIONS[-1].version]
    kept, truth = _open_counts(store)
    assert kept == truth == {"": 1, "ui": 2}
    store.close()
