# SPDX-License-Identifier: Apache-2.0
"""SQLite storage: one connection, explicit transactions, migrations, backups.

This layer knows tables and files, nothing of HTTP, MCP or agents' meaning.

Choices, and why:

* WAL journal: readers (the dashboard, /health) never wait for the writer,
  and a crash leaves either the old or the new state, never a torn one.
* Every commit is on disk before the caller hears "ok", and the
  coordinator's promise is that an acknowledged claim or created task is
  never lost. Two ways to keep it:

  - ``group_commit=False`` (the CLI, scripts): ``synchronous=FULL``, each
    COMMIT waits for its own fsync.
  - ``group_commit=True`` (the server): ``synchronous=NORMAL``, so a COMMIT
    only writes the WAL (a killed process loses nothing; a power cut could
    lose the last commits), and no answer leaves before :meth:`durable` has
    seen the WAL fsynced. That fsync runs on one worker thread, so the event
    loop never waits for the disk, and every commit made while one fsync
    runs shares the next: at hundreds of writes a second the disk sees a
    few fsyncs, not one per call (an fsync is 0.45 ms on the test machine's
    disk, more on a network disk, against 0.01 ms for the COMMIT itself).
    The HTTP servers await it before every answer
    (:class:`central_mcp.durable_answers.DurableAnswers`).
* With group commit, the event loop's connection does not checkpoint the
  WAL. SQLite's automatic checkpoint (every 1000 WAL pages) ran inside one
  COMMIT in a hundred there. It copied those pages into the database file
  and synced both, 1-5 ms in which the loop answered nobody: over half of
  all COMMIT time. Instead, the store's checkpoint thread runs PASSIVE
  checkpoints on its own connection every ``CHECKPOINT_COMMITS`` commits.
  PASSIVE never waits for the writer, and the writer never waits for it.
  The thread goes again until a checkpoint finds nothing new; the next
  write then starts the WAL over from its beginning. Should the thread
  fall behind, the loop's connection checkpoints once the WAL holds
  ``BACKSTOP_CHECKPOINT_PAGES``.
* ``BEGIN IMMEDIATE`` for every write: the write lock is taken at the start,
  so a read-then-write inside a transaction can never be overtaken by a
  second writer (another process, e.g. ``central-mcp db backup``).
* Calls run on the caller's thread (the event loop): a commit takes well
  under a millisecond, less than a hop to a worker thread.
  A lock serialises the rare callers on other threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central_mcp.schema import LATEST_VERSION, MIGRATIONS, SCHEMA_VERSION_TABLE

log = logging.getLogger(__name__)

BACKUP_PREFIX = "central-mcp-"
BUSY_TIMEOUT_MS = 5000
# Group commit: the checkpoint thread folds the WAL into the database file after this many commits (a few pages each).
CHECKPOINT_COMMITS = 100
# Commits made during a checkpoint are not in when it ends, and the WAL starts over from its beginning (which keeps
# the file small) only at a write that finds everything in. The thread goes again, at most this many times, until a
# checkpoint finds nothing new; one that finds nothing copies and syncs nothing.
CHECKPOINT_TRIES = 5
# Should the thread fall behind (a write every few tenths of a millisecond, for minutes), the loop's connection still
# checkpoints, as SQLite does by default, once the WAL holds this many pages (40 MB).
BACKSTOP_CHECKPOINT_PAGES = 10_000


class StoreError(RuntimeError):
    """A database operation failed; the message says what to do about it."""


def _explain(exc: sqlite3.Error, path: Path) -> StoreError:
    """Turn SQLite's terse error into one an operator can act on."""
    text = str(exc)
    low = text.lower()
    if "disk is full" in low or "disk i/o" in low:
        hint = f"free space on the volume holding {path.parent} (the write was rolled back, the file is intact)"
    elif "readonly" in low or "read-only" in low:
        hint = f"make {path} and its directory writable by the service user (the write was rolled back)"
    elif "locked" in low or "busy" in low:
        hint = f"another process held the write lock for over {BUSY_TIMEOUT_MS / 1000:g} s; retry"
    elif "unable to open" in low:
        hint = f"check that {path.parent} exists and the service user may write there"
    else:
        hint = "see the coordinator log"
    return StoreError(f"database error on {path}: {text}: {hint}")


class Store:
    """The coordinator's SQLite database. Open it with :meth:`open`, then :meth:`migrate`."""

    def __init__(self, path: Path, backup_dir: Path, backups_keep: int = 7, group_commit: bool = False) -> None:
        self.path = Path(path)
        self.backup_dir = Path(backup_dir)
        self.backups_keep = backups_keep
        self.group_commit = group_commit
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []
        # Group commit: commits made, and how many of them an fsync of the WAL has covered.
        self._committed = 0
        self._synced = 0
        self._fsyncer: ThreadPoolExecutor | None = None
        self._flight: asyncio.Task[None] | None = None  # the fsync running now, which waiters share
        # Group commit: the checkpoint thread, its connection, and the commit count when it was last started.
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_mark = 0
        self._checkpointing = False

    # -- connection ---------------------------------------------------------

    def open(self) -> Store:
        """Connect and set the pragmas; create the file (mode 0600) when it is new."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot create the database directory {self.path.parent}: {exc}") from exc
        created = not self.path.exists()
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); is it on a network filesystem?")
            conn.execute(f"PRAGMA synchronous = {'NORMAL' if self.group_commit else 'FULL'}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise _explain(exc, self.path) from exc
        if created:
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
        self._conn = conn
        if self.group_commit:
            # One thread: fsyncs queue behind each other, and the one that runs covers every commit before it.
            self._fsyncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-mcp-fsync")
            self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-mcp-checkpoint")
            conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES}")
        return self

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close (a clean stop leaves one file)."""
        if self._conn is None:
            return
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
            self._checkpointer = None
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None
            self._synced = self._committed  # the checkpoint above synced the database file
        if self._fsyncer is not None:
            self._fsyncer.shutdown(wait=True)
            self._fsyncer = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"database {self.path} is not open")
        return self._conn

    # -- statements ---------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one.

        Any exception rolls back. SQLite errors come out as :class:`StoreError`
        with advice (disk full, read-only file, lock held too long).
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _explain(exc, self.path) from exc
            self._depth = 1
            try:
                yield conn
                conn.execute("COMMIT")
                self._committed += 1
                if not self.group_commit:  # synchronous=FULL: the COMMIT was fsynced
                    self._synced = self._committed
                elif self._committed - self._checkpoint_mark >= CHECKPOINT_COMMITS:
                    self._start_checkpoint()
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _explain(exc, self.path) from exc
                raise
            finally:
                self._depth = 0
                done, self._after_commit = self._after_commit, []
        for callback in done:  # reached only after the COMMIT
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current transaction is committed (now, outside one); never after a rollback.

        What tells others about a change (an event) must not go out before the change is durable, and a
        write nested in a caller's transaction commits with it: one fsync for the whole call.
        """
        with self._lock:
            if self._depth:
                self._after_commit.append(callback)
                return
        callback()

    @property
    def pending(self) -> bool:
        """True while a commit is not yet known to be on disk (only with ``group_commit``)."""
        return self._synced < self._committed

    async def durable(self) -> None:
        """Return once every commit made before this call is on disk; at once when there is none.

        With ``group_commit`` the WAL is fsynced on the store's one fsync
        thread. Callers that arrive while an fsync runs wait for it, then
        share the next one: however many calls wait, one fsync (and one hop
        to the thread) serves each group of them.
        """
        target = self._committed
        while self._synced < target:
            loop = asyncio.get_running_loop()
            flight = self._flight
            if flight is None or flight.get_loop() is not loop:
                flight = self._flight = loop.create_task(self._fsync())
            await asyncio.shield(flight)

    async def _fsync(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._fsyncer, self._sync_upto, self._committed)
        finally:
            self._flight = None

    def _sync_upto(self, target: int) -> None:
        """On the fsync thread: fsync the WAL unless an fsync since ``target`` was committed already did."""
        if self._synced >= target:
            return
        covered = self._committed  # every COMMIT counted here has written its frames to the WAL
        wal = f"{self.path}-wal"
        try:
            fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # no WAL: everything was checkpointed into the file, which SQLite synced
            self._synced = max(self._synced, covered)
            return
        except OSError as exc:
            raise StoreError(f"cannot open {wal} to sync it: {exc}: check the disk (the commit may be lost)") from exc
        try:
            os.fdatasync(fd)
        except OSError as exc:
            raise StoreError(f"fsync of {wal} failed: {exc}: check the disk (the commit may be lost)") from exc
        finally:
            os.close(fd)
        self._synced = max(self._synced, covered)

    def _start_checkpoint(self) -> None:
        """Under the lock, after a COMMIT: have the checkpoint thread fold the WAL in, unless it is at it already."""
        if self._checkpointer is None or self._checkpointing:
            return
        self._checkpointing = True
        self._checkpoint_mark = self._committed
        self._checkpointer.submit(self._checkpoint_passive)

    def _checkpoint_passive(self) -> None:
        """On the checkpoint thread: copy what the WAL holds into the database file, as far as readers allow."""
        try:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
                )
                self._checkpoint_conn.execute("PRAGMA synchronous = NORMAL")  # sync the WAL first, the file after
            last = None
            for _ in range(CHECKPOINT_TRIES):  # until a try finds nothing new: all in, the next write starts over
                outcome = tuple(self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0])
                if outcome == last:
                    break
                last = outcome
        except sqlite3.Error as exc:  # the next one retries; past the backstop the loop's connection checkpoints
            log.warning("checkpoint of %s failed: %s", self.path, _explain(exc, self.path))
        finally:
            self._checkpointing = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read and return all rows."""
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _explain(exc, self.path) from exc

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- schema -------------------------------------------------------------

    def schema_version(self) -> int:
        """The version the file is at (0 for an empty database)."""
        with self._lock:
            try:
                self.conn.execute(SCHEMA_VERSION_TABLE)
                row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            except sqlite3.Error as exc:
                raise _explain(exc, self.path) from exc
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        """Bring the schema to the latest version; return the versions applied.

        A database that already has a schema is backed up first (online, via
        ``sqlite3.Connection.backup``), so a migration that goes wrong can be
        undone by copying the backup back.
        """
        current = self.schema_version()
        if current > LATEST_VERSION:
            raise StoreError(
                f"{self.path} is at schema version {current}, newer than this central-mcp knows "
                f"({LATEST_VERSION}): upgrade central-mcp or restore a backup from {self.backup_dir}"
            )
        pending = [m for m in MIGRATIONS if m.version > current]
        if not pending:
            return []
        if current > 0:
            path = self.backup(f"v{current}-before-v{pending[-1].version}")
            log.info("backed up %s to %s before migrating", self.path, path)
        for migration in pending:
            with self.transaction() as conn:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, time.time()),
                )
            log.info("database %s migrated to version %d (%s)", self.path, migration.version, migration.description)
        return [m.version for m in pending]

    # -- backups and checks ---------------------------------------------------

    def backup(self, reason: str = "manual") -> Path:
        """Copy the live database, consistently, into the backup directory; apply retention.

        ``Connection.backup`` copies page by page while other readers carry
        on, and restarts if a write lands midway, so the copy is always a
        committed state. The file name starts with a UTC timestamp, so name
        order is age order.
        """
        self.backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        safe_reason = "".join(c if c.isalnum() or c in "-_" else "-" for c in reason)[:40]
        target = self.backup_dir / f"{BACKUP_PREFIX}{stamp}-{safe_reason}.db"
        partial = target.with_suffix(".partial")
        try:
            dest = sqlite3.connect(partial)
            try:
                with self._lock:
                    self.conn.backup(dest)
            finally:
                dest.close()
            os.chmod(partial, 0o600)
            os.replace(partial, target)
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise StoreError(f"backup of {self.path} to {target} failed: {exc}") from exc
        self.prune_backups()
        return target

    def backups(self) -> list[Path]:
        """Backup files, oldest first."""
        if not self.backup_dir.is_dir():
            return []
        return sorted(p for p in self.backup_dir.glob(f"{BACKUP_PREFIX}*.db") if p.is_file())

    def prune_backups(self) -> list[Path]:
        """Delete all but the newest ``backups_keep`` backups; return what was deleted."""
        old = self.backups()[: -self.backups_keep] if self.backups_keep else []
        for path in old:
            with contextlib.suppress(OSError):
                path.unlink()
        return old

    def integrity_check(self, quick: bool = False) -> str:
        """``ok``, or SQLite's first complaints joined by ``; ``."""
        pragma = "quick_check" if quick else "integrity_check"
        rows = self.query(f"PRAGMA {pragma}(20)")
        return "; ".join(str(r[0]) for r in rows) or "ok"

    def checkpoint(self) -> tuple[int, int, int]:
        """Fold the WAL back into the main file so it does not grow without bound."""
        row = self.query_one("PRAGMA wal_checkpoint(TRUNCATE)")
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def ping(self) -> bool:
        """True when a trivial read works (used by /health)."""
        try:
            self.query("SELECT 1")
        except StoreError:
            return False
        return True
