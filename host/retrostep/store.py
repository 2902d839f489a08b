"""The session store: every session log synced from a device, in one SQLite file.

The raw log bytes are the source of truth: they are kept exactly as the device wrote
them (table ``logs``) and can always be decoded again with the shared codec
(``retrostep_core.records``). Next to them, table ``sessions`` holds derived values
(``session_stats.derive``) for fast listing, weekly sums and plots, and ``devices`` the
devices seen. ``docs/companion.md`` describes the schema and its versions.

Identity: a session is ``(device id, the device's session id)`` plus the SHA-256 of
its bytes. Importing the same bytes again changes nothing; bytes that extend the stored
ones (a session synced while it was still open, or before its END "recovered" was
written) replace them; other bytes under the same key are a conflict that is reported
and never stored over the existing copy.

Location: ``--db PATH`` on the command line, else ``$RETROSTEP_DB``, else
``platformdirs.user_data_dir("retrostep")/sessions.sqlite3``.

Versions: ``PRAGMA user_version`` is the schema version, ``PRAGMA application_id``
marks the file as a retrostep store. :data:`MIGRATIONS` are ordered steps; opening an
older store runs the missing ones in one transaction. A file that is not SQLite, not a
retrostep store, damaged, or of a newer schema is refused with a clear message and left
untouched: the store never creates a new database over an existing file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from retrostep_core import records as r

from .errors import RetrostepError
from .session_stats import SessionStats, derive

APPLICATION_ID = 0x52535450  # "RSTP"
SQLITE_MAGIC = b"SQLite format 3\x00"
FILE_NAME = "sessions.sqlite3"
ENV_VAR = "RETROSTEP_DB"


class StoreError(RetrostepError):
    """Something about the session store the user can act on."""

    exit_code = 1


class StoreUnusable(StoreError):
    """The store file cannot be used: not SQLite, not a store, damaged, newer, locked."""

    exit_code = 4


class UnknownSession(StoreError):
    """No session with the number asked for."""

    exit_code = 2


class EmptyStore(StoreError):
    """A command needs sessions and the store has none."""

    exit_code = 1


class SessionConflict(StoreError):
    """Different bytes arrived under a stored session's key; nothing was changed."""

    exit_code = 5


def default_path() -> Path:
    """``$RETROSTEP_DB``, else the user's data directory (platformdirs)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("retrostep", appauthor=False)) / FILE_NAME


# -- schema --------------------------------------------------------------------------------


def _to_v1(db: sqlite3.Connection) -> None:
    """v1: devices, sessions with their totals, and the raw logs."""
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(
        """CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL UNIQUE,
            name TEXT,
            first_synced INTEGER NOT NULL,
            last_synced INTEGER NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            device INTEGER NOT NULL REFERENCES devices(id),
            device_session INTEGER NOT NULL,
            start_ts INTEGER NOT NULL,
            start_estimated INTEGER NOT NULL,
            synced_ts INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            digest TEXT NOT NULL,
            firmware TEXT NOT NULL,
            duration_s REAL NOT NULL,
            forward_steps INTEGER NOT NULL,
            backward_steps INTEGER NOT NULL,
            sway_alerts INTEGER NOT NULL,
            end_reason TEXT,
            UNIQUE (device, device_session))"""
    )
    db.execute("CREATE INDEX sessions_by_start ON sessions (start_ts)")
    db.execute(
        """CREATE TABLE logs (
            session INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            raw BLOB NOT NULL)"""
    )


V2_COLUMNS = (
    ("wall_start", "INTEGER NOT NULL DEFAULT 0"),
    ("fs_hz", "REAL NOT NULL DEFAULT 0"),
    ("sway_limit_deg", "REAL NOT NULL DEFAULT 0"),
    ("config_crc", "INTEGER NOT NULL DEFAULT 0"),
    ("forward_walking_s", "REAL NOT NULL DEFAULT 0"),
    ("backward_walking_s", "REAL NOT NULL DEFAULT 0"),
    ("cadence_spm", "REAL"),
    ("backward_cadence_spm", "REAL"),
    ("backward_sway_alerts", "INTEGER NOT NULL DEFAULT 0"),
    ("sway_range_mean_deg", "REAL"),
    ("sway_range_p95_deg", "REAL"),
    ("sway_rate_rms_deg_s", "REAL"),
    ("backward_sway_range_mean_deg", "REAL"),
    ("backward_interval_s", "REAL NOT NULL DEFAULT 0"),
    ("compliance_s", "INTEGER"),
    ("damaged_bytes", "INTEGER NOT NULL DEFAULT 0"),
    ("program", "TEXT"),  # JSON [[kind, seconds], ...] or NULL
    ("program_repeat", "INTEGER"),
)


def _to_v2(db: sqlite3.Connection) -> None:
    """v2: walking time by direction, cadence, sway metrics, compliance and program,
    backfilled from the raw logs (the reason the raw bytes are kept)."""
    for name, decl in V2_COLUMNS:
        db.execute(f"ALTER TABLE sessions ADD COLUMN {name} {decl}")
    rows = db.execute("SELECT session, raw FROM logs").fetchall()
    for sid, raw in rows:
        stats = derive(bytes(raw))
        cols = _derived_values(stats)
        sets = ", ".join(f"{k} = ?" for k in cols)
        db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*cols.values(), sid))


# Ordered steps: MIGRATIONS[i] takes a store from version i to i + 1.
MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("devices, sessions with totals, raw logs", _to_v1),
    ("walking time by direction, cadence, sway metrics, compliance, program", _to_v2),
]
SCHEMA_VERSION = len(MIGRATIONS)

# Values recomputed from the raw bytes at import and compared by `db check`.
DERIVED = (
    "firmware", "duration_s", "forward_steps", "backward_steps", "sway_alerts", "end_reason",
    "wall_start", "fs_hz", "sway_limit_deg", "config_crc", "forward_walking_s",
    "backward_walking_s", "cadence_spm", "backward_cadence_spm", "backward_sway_alerts",
    "sway_range_mean_deg", "sway_range_p95_deg", "sway_rate_rms_deg_s",
    "backward_sway_range_mean_deg", "backward_interval_s", "compliance_s", "damaged_bytes",
    "program", "program_repeat",
)  # fmt: skip


def _derived_values(stats: SessionStats) -> dict:
    out = {}
    for name in DERIVED:
        v = getattr(stats, name)
        if name == "program":
            v = json.dumps([list(p) for p in v]) if v is not None else None
        out[name] = v
    return out


# -- rows ----------------------------------------------------------------------------------


def _ts(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a naive time is the machine's local time
    return int(dt.timestamp())


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


@dataclass(frozen=True)
class SessionRow:
    """One stored session: its key, where it came from, and its derived values."""

    id: int  # the store's session number (what `retrostep show` takes)
    device_id: str
    device_name: str | None
    device_session: int
    start: datetime  # UTC
    start_estimated: bool  # the device clock was unknown: ``start`` is the sync time
    synced: datetime
    bytes: int
    digest: str
    stats: dict  # the DERIVED values, program as a list of [kind, seconds]

    def __getattr__(self, name: str):  # stats as attributes: row.backward_steps
        stats = self.__dict__.get("stats")
        if stats is not None and name in stats:
            return stats[name]
        raise AttributeError(name)

    @property
    def walking_s(self) -> float:
        return self.stats["forward_walking_s"] + self.stats["backward_walking_s"]

    @property
    def compliance(self) -> float | None:
        """Share of the scheduled backward-interval time walked backward (0..1)."""
        c, planned = self.stats["compliance_s"], self.stats["backward_interval_s"]
        if c is None or not planned:
            return None
        return min(1.0, c / planned)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "device_session": self.device_session,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "start_estimated": self.start_estimated,
            "synced": self.synced.isoformat().replace("+00:00", "Z"),
            "bytes": self.bytes,
            "sha256": self.digest,
            **self.stats,
            "walking_s": round(self.walking_s, 3),
            "compliance": None if self.compliance is None else round(self.compliance, 3),
        }


_SELECT = (
    "SELECT s.id, d.device_id, d.name, s.device_session, s.start_ts, s.start_estimated, "
    "s.synced_ts, s.bytes, s.digest, " + ", ".join("s." + c for c in DERIVED) +
    " FROM sessions s JOIN devices d ON d.id = s.device"
)  # fmt: skip


def _row(t: tuple) -> SessionRow:
    stats = dict(zip(DERIVED, t[9:], strict=True))
    if stats["program"] is not None:
        stats["program"] = json.loads(stats["program"])
    return SessionRow(
        id=t[0], device_id=t[1], device_name=t[2], device_session=t[3], start=_utc(t[4]),
        start_estimated=bool(t[5]), synced=_utc(t[6]), bytes=t[7], digest=t[8], stats=stats,
    )  # fmt: skip


@dataclass(frozen=True)
class ImportResult:
    """What one import did: ``status`` is "new", "unchanged" or "extended"."""

    status: str
    id: int  # the store's session number
    device_id: str
    session_id: int  # the device's
    bytes: int  # of this import
    stored_bytes: int  # what the store holds now
    previous_bytes: int = 0  # for "extended": what it held before


@dataclass
class CheckReport:
    """``retrostep db check``: SQLite's own check and the raw logs re-decoded."""

    path: str
    schema_version: int
    integrity: list[str] = field(default_factory=list)  # ["ok"] when SQLite finds nothing
    sessions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == ["ok"] and not self.problems

    def to_json(self) -> dict:
        return {"path": self.path, "schema_version": self.schema_version,
                "integrity": self.integrity, "sessions": self.sessions,
                "problems": self.problems, "ok": self.ok}  # fmt: skip


# -- the store -----------------------------------------------------------------------------


def _sniff(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not an SQLite database."""
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise StoreUnusable(f"cannot read the session store {path}: {e.strerror}") from e
    if head and head != SQLITE_MAGIC:
        raise StoreUnusable(
            f"{path} is not a retrostep session store (not an SQLite database); it was "
            f"left as it is. Move it away or choose another file with --db"
        )


class Store:
    """A session store file. Open with :meth:`open`; use as a context manager."""

    def __init__(self, db: sqlite3.Connection, path: Path, *, exists: bool, readonly: bool):
        self._db = db
        self.path = path
        self.exists = exists  # False: no file yet, an empty store is shown
        self.readonly = readonly
        self._depth = 0  # nesting of transaction()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, readonly: bool = False) -> Store:
        """Open (or, unless ``readonly``, create) the store at ``path`` (default:
        :func:`default_path`). Read-only opening never writes, except to bring an older
        schema up to date; a missing file then reads as an empty store."""
        p = Path(path).expanduser() if path is not None else default_path()
        if p.is_dir():
            raise StoreUnusable(f"{p} is a directory, not a session store file")
        if p.exists():
            _sniff(p)
        elif readonly:
            return cls._empty(p)
        else:
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreUnusable(f"cannot create {p.parent}: {e.strerror}") from e
        if readonly and p.stat().st_size == 0:
            return cls._empty(p)
        store = cls._connect(p, readonly)
        try:
            version = store._check_identity()
            if version < SCHEMA_VERSION:
                if readonly:
                    store.close()
                    cls._connect(p, False)._upgrade_and_close()
                    store = cls._connect(p, True)
                else:
                    store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _connect(cls, p: Path, readonly: bool) -> Store:
        try:
            if readonly:
                db = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0,
                                     isolation_level=None)  # fmt: skip
            else:
                db = sqlite3.connect(str(p), timeout=5.0, isolation_level=None)
        except sqlite3.Error as e:
            raise StoreUnusable(f"cannot open the session store {p}: {e}") from e
        store = cls(db, p, exists=True, readonly=readonly)
        with store._sql():
            db.execute("PRAGMA foreign_keys = ON")
        return store

    @classmethod
    def _empty(cls, p: Path) -> Store:
        db = sqlite3.connect(":memory:", isolation_level=None)
        store = cls(db, p, exists=False, readonly=True)
        store._migrate()
        return store

    def _upgrade_and_close(self) -> None:
        try:
            self._migrate()
        finally:
            self.close()

    def _check_identity(self) -> int:
        with self._sql():
            app = self._db.execute("PRAGMA application_id").fetchone()[0]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app != APPLICATION_ID and (tables or version):
            raise StoreUnusable(
                f"{self.path} is an SQLite database but not a retrostep session store; it "
                f"was left as it is. Choose another file with --db"
            )
        if version > SCHEMA_VERSION:
            raise StoreUnusable(
                f"{self.path} was written by a newer retrostep (store schema v{version}; "
                f"this version reads up to v{SCHEMA_VERSION}): upgrade retrostep"
            )
        return version

    def _migrate(self) -> None:
        with self._sql(), self.transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for i in range(version, SCHEMA_VERSION):
                MIGRATIONS[i][1](self._db)
                self._db.execute(f"PRAGMA user_version = {i + 1}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _sql(self) -> Iterator[None]:
        """SQLite failures as StoreUnusable, with the file named and left alone."""
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreUnusable(
                    f"the session store {self.path} is in use by another program (locked); "
                    f"try again when it has finished"
                ) from e
            raise self._damaged(e) from e
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from e

    def _damaged(self, e: Exception) -> StoreUnusable:
        return StoreUnusable(
            f"the session store {self.path} is damaged ({e}); it was left as it is. "
            f"Restore a backup, or move it away and sync again"
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around everything inside. A nested one is a savepoint: if it
        fails, only its own changes are undone and the outer transaction goes on."""
        depth = self._depth
        with self._sql():
            self._db.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth = depth
            if depth == 0:
                self._db.execute("ROLLBACK")
            else:
                self._db.execute(f"ROLLBACK TO sp{depth}")
                self._db.execute(f"RELEASE sp{depth}")
            raise
        self._depth = depth
        with self._sql():
            self._db.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")

    # -- importing -------------------------------------------------------------------------

    def has(self, device_id: str, session_id: int) -> int:
        """Bytes stored for this device's session (0: none), so a sync can skip or resume."""
        with self._sql():
            row = self._db.execute(
                "SELECT s.bytes FROM sessions s JOIN devices d ON d.id = s.device "
                "WHERE d.device_id = ? AND s.device_session = ?",
                (device_id, session_id),
            ).fetchone()
        return row[0] if row else 0

    def device_raw(self, device_id: str, session_id: int) -> bytes | None:
        """The stored bytes of this device's session, None if it has none (sync)."""
        with self._sql():
            row = self._db.execute(
                "SELECT l.raw FROM logs l JOIN sessions s ON s.id = l.session JOIN devices d "
                "ON d.id = s.device WHERE d.device_id = ? AND s.device_session = ?",
                (device_id, session_id),
            ).fetchone()
        return bytes(row[0]) if row else None

    def import_session(
        self, device_id: str, raw: bytes, *, synced_at: datetime | None = None,
        device_name: str | None = None,
    ) -> ImportResult:  # fmt: skip
        """Store one session log as read from the device (see the module docstring).

        ``synced_at`` (default: now) is the session's start when the device clock was
        unknown (HEADER wall_start 0). Raises NotASessionLog for bytes without a HEADER
        and SessionConflict for different bytes under a stored session's key."""
        if self.readonly:
            raise StoreError("the store was opened read-only")
        if not device_id:
            raise StoreError("a device id is needed to store a session")
        raw = bytes(raw)
        stats = derive(raw)
        sync_ts = _ts(synced_at or datetime.now(timezone.utc))
        digest = hashlib.sha256(raw).hexdigest()
        with self._sql(), self.transaction():  # writes only for "new" and "extended"
            old = self._db.execute(
                "SELECT s.id, s.digest, s.bytes, s.start_ts, s.start_estimated, l.raw "
                "FROM sessions s JOIN logs l ON l.session = s.id JOIN devices d "
                "ON d.id = s.device WHERE d.device_id = ? AND s.device_session = ?",
                (device_id, stats.session_id),
            ).fetchone()
            if old is None:
                dev = self._device(device_id, device_name, sync_ts)
                sid = self._insert(dev, stats, raw, digest, sync_ts)
                return ImportResult("new", sid, device_id, stats.session_id, len(raw), len(raw))
            sid, old_digest, old_bytes, start_ts, estimated, old_raw = old
            if old_digest == digest:
                return ImportResult("unchanged", sid, device_id, stats.session_id, len(raw),
                                    old_bytes)  # fmt: skip
            old_raw = bytes(old_raw)
            if old_raw.startswith(raw):  # an earlier, shorter read of what is stored
                return ImportResult("unchanged", sid, device_id, stats.session_id, len(raw),
                                    old_bytes)  # fmt: skip
            good = old_bytes - r.decode_report(old_raw)["torn_bytes"]
            if len(raw) > old_bytes and raw.startswith(old_raw[:good]):
                self._device(device_id, device_name, sync_ts)
                self._replace(sid, stats, raw, digest, sync_ts, start_ts, estimated)
                return ImportResult("extended", sid, device_id, stats.session_id, len(raw),
                                    len(raw), old_bytes)  # fmt: skip
            raise SessionConflict(
                f"device {device_id} session {stats.session_id}: the store already holds "
                f"different data under this number (stored: {old_bytes} bytes, started "
                f"{_utc(start_ts):%Y-%m-%d %H:%M} UTC; received: {len(raw)} bytes). Nothing "
                f"was changed. The device may have been erased and started numbering its "
                f"sessions again"
            )

    def _device(self, device_id: str, name: str | None, ts: int) -> int:
        row = self._db.execute("SELECT id FROM devices WHERE device_id = ?",
                               (device_id,)).fetchone()  # fmt: skip
        if row is None:
            cur = self._db.execute(
                "INSERT INTO devices (device_id, name, first_synced, last_synced) "
                "VALUES (?, ?, ?, ?)", (device_id, name, ts, ts))  # fmt: skip
            return cur.lastrowid
        self._db.execute(
            "UPDATE devices SET name = coalesce(?, name), last_synced = max(last_synced, ?) "
            "WHERE id = ?", (name, ts, row[0]))  # fmt: skip
        return row[0]

    def _start(self, stats: SessionStats, sync_ts: int) -> tuple[int, int]:
        if stats.start_utc is not None:
            return int(stats.start_utc.timestamp()), 0
        return sync_ts, 1

    def _insert(self, dev: int, stats: SessionStats, raw: bytes, digest: str, ts: int) -> int:
        start, estimated = self._start(stats, ts)
        cols = {
            "device": dev, "device_session": stats.session_id, "start_ts": start,
            "start_estimated": estimated, "synced_ts": ts, "bytes": len(raw), "digest": digest,
            **_derived_values(stats),
        }  # fmt: skip
        names = ", ".join(cols)
        marks = ", ".join("?" * len(cols))
        cur = self._db.execute(f"INSERT INTO sessions ({names}) VALUES ({marks})",
                               tuple(cols.values()))  # fmt: skip
        self._db.execute("INSERT INTO logs (session, raw) VALUES (?, ?)", (cur.lastrowid, raw))
        return cur.lastrowid

    def _replace(self, sid: int, stats: SessionStats, raw: bytes, digest: str, ts: int,
                 start_ts: int, estimated: int) -> None:  # fmt: skip
        if stats.start_utc is not None:
            start_ts, estimated = int(stats.start_utc.timestamp()), 0
        cols = {"start_ts": start_ts, "start_estimated": estimated, "synced_ts": ts,
                "bytes": len(raw), "digest": digest, **_derived_values(stats)}  # fmt: skip
        sets = ", ".join(f"{k} = ?" for k in cols)
        self._db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*cols.values(), sid))
        self._db.execute("UPDATE logs SET raw = ? WHERE session = ?", (raw, sid))

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        with self._sql():
            return self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def sessions(self, *, device_id: str | None = None, since: datetime | None = None,
                 until: datetime | None = None) -> list[SessionRow]:  # fmt: skip
        """Stored sessions, oldest first (by start, then number)."""
        where, args = [], []
        if device_id is not None:
            where.append("d.device_id = ?")
            args.append(device_id)
        if since is not None:
            where.append("s.start_ts >= ?")
            args.append(_ts(since))
        if until is not None:
            where.append("s.start_ts < ?")
            args.append(_ts(until))
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        with self._sql():
            rows = self._db.execute(sql + " ORDER BY s.start_ts, s.id", args).fetchall()
        return [_row(t) for t in rows]

    def session(self, number: int) -> SessionRow:
        """The session with this store number (UnknownSession / EmptyStore if none)."""
        with self._sql():
            t = self._db.execute(_SELECT + " WHERE s.id = ?", (number,)).fetchone()
        if t is None:
            self._unknown(number)
        return _row(t)

    def latest(self) -> SessionRow:
        """The session that started last (EmptyStore if there is none)."""
        with self._sql():
            t = self._db.execute(_SELECT + " ORDER BY s.start_ts DESC, s.id DESC LIMIT 1"
                                 ).fetchone()  # fmt: skip
        if t is None:
            raise self.empty_error()
        return _row(t)

    def raw(self, number: int) -> bytes:
        """The session log exactly as it was read from the device."""
        with self._sql():
            t = self._db.execute("SELECT raw FROM logs WHERE session = ?", (number,)).fetchone()
        if t is None:
            self._unknown(number)
        return bytes(t[0])

    def empty_error(self) -> EmptyStore:
        where = f"{self.path}{'' if self.exists else ', not created yet'}"
        return EmptyStore(
            f"no sessions in the store yet ({where}): sync a device first (retrostep sync)"
        )

    def _unknown(self, number: int) -> None:
        with self._sql():
            lo, hi, n = self._db.execute("SELECT min(id), max(id), count(*) FROM sessions"
                                         ).fetchone()  # fmt: skip
        if not n:
            raise self.empty_error()
        raise UnknownSession(
            f"no session {number} in the store (it holds {n} session(s), numbered {lo} to "
            f"{hi}; 'retrostep sessions' lists them)"
        )

    def info(self) -> dict:
        """Path, schema version, counts and sizes (bytes per session)."""
        with self._sql():
            n, raw = self._db.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM sessions"
                                      ).fetchone()  # fmt: skip
            devices = self._db.execute("SELECT count(*) FROM devices").fetchone()[0]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        size = self.path.stat().st_size if self.exists else 0
        return {
            "path": str(self.path), "exists": self.exists, "schema_version": version,
            "sessions": n, "devices": devices, "raw_log_bytes": raw, "file_bytes": size,
            "bytes_per_session": round(size / n) if n else None,
        }  # fmt: skip

    # -- checking --------------------------------------------------------------------------

    def check(self, progress: Callable[[int, int], None] | None = None) -> CheckReport:
        """SQLite's integrity check, then every raw log re-decoded and compared with its
        digest and its stored derived values. ``progress(done, total)`` is called."""
        rep = CheckReport(str(self.path), 0)
        try:
            with self._sql():
                rep.schema_version = self._db.execute("PRAGMA user_version").fetchone()[0]
                rep.integrity = [t[0] for t in self._db.execute("PRAGMA integrity_check")]
                fk = self._db.execute("PRAGMA foreign_key_check").fetchall()
                if fk:
                    rep.problems.append(f"{len(fk)} row(s) refer to a missing device or session")
                ids = [t[0] for t in self._db.execute("SELECT id FROM sessions ORDER BY id")]
                missing = self._db.execute(
                    "SELECT count(*) FROM sessions WHERE id NOT IN (SELECT session FROM logs)"
                ).fetchone()[0]
                if missing:
                    rep.problems.append(f"{missing} session(s) have no raw log")
        except StoreUnusable as e:
            rep.integrity = rep.integrity or [str(e)]
            return rep
        rep.sessions = len(ids)
        for done, number in enumerate(ids, 1):
            try:
                self._check_one(number, rep)
            except StoreUnusable as e:
                rep.problems.append(f"session {number}: cannot be read ({e})")
            if progress is not None:
                progress(done, len(ids))
        return rep

    def _check_one(self, number: int, rep: CheckReport) -> None:
        with self._sql():
            t = self._db.execute(_SELECT + " WHERE s.id = ?", (number,)).fetchone()
            raw_row = self._db.execute("SELECT raw FROM logs WHERE session = ?",
                                       (number,)).fetchone()  # fmt: skip
        if raw_row is None:
            return  # counted above
        row = _row(t)
        raw = bytes(raw_row[0])
        where = f"session {number} (device {row.device_id} #{row.device_session})"
        if hashlib.sha256(raw).hexdigest() != row.digest:
            rep.problems.append(f"{where}: raw log does not match its SHA-256")
        if len(raw) != row.bytes:
            rep.problems.append(f"{where}: {len(raw)} raw bytes, {row.bytes} recorded")
        try:
            stats = derive(raw)
        except RetrostepError as e:
            rep.problems.append(f"{where}: raw log cannot be decoded ({e})")
            return
        if stats.session_id != row.device_session:
            rep.problems.append(f"{where}: the log says session {stats.session_id}")
        if stats.start_utc is not None and (
            row.start_estimated or int(stats.start_utc.timestamp()) != int(row.start.timestamp())
        ):
            rep.problems.append(f"{where}: start differs from the log's clock")
        want = _derived_values(stats)
        if want["program"] is not None:
            want["program"] = json.loads(want["program"])
        for name in DERIVED:
            got, exp = row.stats[name], want[name]
            same = (got == exp) if not isinstance(exp, float) or got is None else (
                abs(got - exp) <= 1e-6 * max(1.0, abs(exp)))  # fmt: skip
            if not same:
                rep.problems.append(f"{where}: {name} is {got!r}, the log says {exp!r}")
