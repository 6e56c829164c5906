# SPDX-License-Identifier: Apache-2.0
"""The database schema as an ordered list of migrations.

A migration is never edited once released: a change is a new entry at the
end, so every database, however old, walks the same path to the current
schema. ``store.Store.migrate`` applies the missing ones, each in its own
transaction, after an online backup of a database that already holds data.

Times are REAL Unix seconds (cheap arithmetic for the liveness loop); the
API turns them into ISO 8601. States are checked in ``domain``, not with SQL
CHECK constraints, so adding a state never needs a table rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step of the schema: ``version`` is what the database is at after it."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "agents, tasks, task events, fleet notes",
        (
            """CREATE TABLE agents (
                name TEXT PRIMARY KEY,
                role TEXT NOT NULL DEFAULT '',
                model TEXT NOT NULL DEFAULT '',
                kind TEXT NOT NULL DEFAULT 'claude',
                host TEXT NOT NULL DEFAULT '',
                token_sha256 TEXT,
                state TEXT NOT NULL DEFAULT 'starting',
                registered_at REAL,
                last_seen REAL,
                session_count INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            "CREATE UNIQUE INDEX agents_token ON agents(token_sha256) WHERE token_sha256 IS NOT NULL",
            """CREATE TABLE tasks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                title TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                role TEXT NOT NULL DEFAULT '',
                priority INTEGER NOT NULL DEFAULT 3,
                state TEXT NOT NULL DEFAULT 'AVAILABLE',
                claimed_by TEXT REFERENCES agents(name) ON UPDATE CASCADE,
                progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
                notes TEXT NOT NULL DEFAULT '',
                result TEXT,
                files_created TEXT NOT NULL DEFAULT '[]',
                created_by TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                claimed_at REAL,
                completed_at REAL
            )""",
            "CREATE INDEX tasks_state ON tasks(state, role, priority, id)",
            "CREATE INDEX tasks_claimed_by ON tasks(claimed_by, state)",
            """CREATE TABLE task_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                at REAL NOT NULL,
                actor TEXT NOT NULL,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                progress INTEGER,
                text TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX task_events_task ON task_events(task_id, id)",
            """CREATE TABLE notes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at REAL NOT NULL,
                author TEXT NOT NULL,
                text TEXT NOT NULL,
                task_id INTEGER REFERENCES tasks(id) ON DELETE SET NULL
            )""",
        ),
    ),
    Migration(
        2,
        "assignment suggestions on tasks",
        (
            "ALTER TABLE tasks ADD COLUMN suggested_agent TEXT",
            "ALTER TABLE tasks ADD COLUMN suggested_at REAL",
        ),
    ),
    Migration(
        3,
        "failed attempts per task (worker runtimes hand tasks back)",
        (
            "ALTER TABLE tasks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE tasks ADD COLUMN failed_by TEXT",
            "ALTER TABLE tasks ADD COLUMN failed_at REAL",
        ),
    ),
    Migration(
        4,
        "events and notes by time (retention deletes the old ones)",
        (
            "CREATE INDEX task_events_at ON task_events(at)",
            "CREATE INDEX notes_at ON notes(at)",
        ),
    ),
    Migration(
        5,
        "who wrote a task's notes and result, and each fleet note (agents read them as data, not instructions)",
        (
            "ALTER TABLE tasks ADD COLUMN notes_by TEXT",
            "ALTER TABLE tasks ADD COLUMN result_by TEXT",
            "ALTER TABLE notes ADD COLUMN written_by TEXT",
            # What is already there: from the task's events while they are kept; notes by their author's name,
            # as an agent's when an agent has that name (a person who posted as one is labelled an agent: safe).
            """UPDATE tasks SET notes_by = (
                SELECT 'agent ' || e.actor FROM task_events e
                WHERE e.task_id = tasks.id AND e.kind = 'progress' AND e.text != '' ORDER BY e.id DESC LIMIT 1
            ) WHERE notes != ''""",
            """UPDATE tasks SET result_by = (
                SELECT CASE WHEN e.kind = 'cancelled' THEN 'person (' || e.actor || ')'
                            WHEN e.actor = 'coordinator' THEN 'coordinator (quoting agents'' screens)'
                            ELSE 'agent ' || e.actor END
                FROM task_events e
                WHERE e.task_id = tasks.id AND e.kind IN ('completed', 'failed', 'cancelled') ORDER BY e.id DESC LIMIT 1
            ) WHERE COALESCE(result, '') != ''""",
            """UPDATE notes SET written_by = CASE
                WHEN author IN (SELECT name FROM agents) THEN 'agent ' || author
                WHEN author = 'coordinator' THEN 'coordinator'
                ELSE 'person (' || author || ')' END""",
        ),
    ),
    Migration(
        6,
        "dashboard sessions outlive a restart of the coordinator (only a keyed hash of each session id is kept)",
        ("CREATE TABLE dashboard_sessions (key TEXT PRIMARY KEY, expires_at REAL NOT NULL)",),
    ),
    Migration(
        7,
        "each task's branch: what its agent's runtime pushed (record as JSON, the diff apart)",
        (
            """CREATE TABLE task_branches (
                task_id INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
                agent TEXT NOT NULL,
                record TEXT NOT NULL,
                diff TEXT NOT NULL DEFAULT '',
                at REAL NOT NULL
            )""",
        ),
    ),
    Migration(
        8,
        "open tasks read in order of urgency, and the one suggested to an agent by its name (calls read a few rows)",
        (
            "CREATE INDEX tasks_available ON tasks(priority, id) WHERE state = 'AVAILABLE'",
            "CREATE INDEX tasks_suggested ON tasks(suggested_agent) WHERE suggested_agent IS NOT NULL",
        ),
    ),
    Migration(
        9,
        "each agent's peak CPU share and memory per 5-minute window, kept 8 days (sizing by measurement)",
        (
            """CREATE TABLE usage (
                agent TEXT NOT NULL,
                at INTEGER NOT NULL,
                cpu_percent REAL,
                rss_bytes INTEGER,
                PRIMARY KEY (agent, at)
            ) WITHOUT ROWID""",
            "CREATE INDEX usage_at ON usage(at)",
        ),
    ),
    Migration(
        10,
        "how many tasks are open per role, kept by triggers (a poll reads a row per role, not every open task)",
        (
            "CREATE TABLE open_tasks (role TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
            """INSERT INTO open_tasks (role, n)
                SELECT COALESCE(role, ''), COUNT(*) FROM tasks WHERE state = 'AVAILABLE' GROUP BY COALESCE(role, '')""",
            """CREATE TRIGGER open_tasks_insert AFTER INSERT ON tasks WHEN NEW.state = 'AVAILABLE' BEGIN
                INSERT INTO open_tasks (role, n) VALUES (COALESCE(NEW.role, ''), 1)
                    ON CONFLICT (role) DO UPDATE SET n = n + 1;
            END""",
            """CREATE TRIGGER open_tasks_delete AFTER DELETE ON tasks WHEN OLD.state = 'AVAILABLE' BEGIN
                UPDATE open_tasks SET n = n - 1 WHERE role = COALESCE(OLD.role, '');
            END""",
            """CREATE TRIGGER open_tasks_update AFTER UPDATE OF state, role ON tasks
                WHEN OLD.state = 'AVAILABLE' OR NEW.state = 'AVAILABLE' BEGIN
                UPDATE open_tasks SET n = n - 1 WHERE OLD.state = 'AVAILABLE' AND role = COALESCE(OLD.role, '');
                INSERT INTO open_tasks (role, n) SELECT COALESCE(NEW.role, ''), 1 WHERE NEW.state = 'AVAILABLE'
                    ON CONFLICT (role) DO UPDATE SET n = n + 1;
            END""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

SCHEMA_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""
