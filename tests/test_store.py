"""The session store (host/retrostep/store.py): raw logs kept byte for byte, idempotent
import, sessions that grow, conflicts, the schema migration from v1, damaged or foreign
files refused and left untouched, and `retrostep db check`."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cli_invoke import invoke
from companion_data import copy_image, frame_ends, history, sim_logs

from retrostep import demo_data
from retrostep import store as st
from retrostep.session_stats import NotASessionLog, derive
from retrostep.store import SessionConflict, Store, StoreUnusable
from retrostep_core import records as r

SYNCED = datetime(2026, 3, 2, 18, 30, tzinfo=timezone.utc)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(res, code: int, *needles: str) -> str:
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# -- importing -------------------------------------------------------------------------


def test_sync_twice_one_copy_byte_exact(tmp_path):
    """The sim board's flash image imported twice: every session stored once, as read."""
    image = copy_image(tmp_path / "flash.img")
    db = tmp_path / "s.sqlite3"
    first = invoke("--db", db, "db", "import", image, "--device-id", "sim-1", "--json")
    assert first.exit_code == 0, first.stderr
    again = invoke("--db", db, "db", "import", image, "--device-id", "sim-1", "--json")
    assert again.exit_code == 0, again.stderr
    logs = sim_logs()
    assert len(logs) == 2
    assert [x["status"] for x in json.loads(first.stdout)] == ["new", "new"]
    assert [x["status"] for x in json.loads(again.stdout)] == ["unchanged", "unchanged"]
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM devices").fetchone()[0] == 1
    with Store.open(db, readonly=True) as store:
        rows = store.sessions()
        assert sorted(store.raw(s.id) for s in rows) == sorted(logs)
        for s in rows:
            raw = store.raw(s.id)
            assert s.digest == hashlib.sha256(raw).hexdigest() and s.bytes == len(raw)
            d = derive(raw)
            assert (s.backward_steps, s.forward_steps, s.sway_alerts) == (
                d.backward_steps, d.forward_steps, d.sway_alerts)  # fmt: skip
        assert store.check().ok


def test_api_import_is_idempotent_and_has_reports_bytes(tmp_path):
    raw = sim_logs()[0]
    with Store.open(tmp_path / "s.db") as store:
        assert store.has("dev", 1) == 0
        a = store.import_session("dev", raw, synced_at=SYNCED, device_name="my clip")
        b = store.import_session("dev", raw, synced_at=SYNCED)
        assert (a.status, b.status) == ("new", "unchanged") and a.id == b.id
        assert store.has("dev", 1) == len(raw) and store.count() == 1
        # the same session id from another device is another session
        c = store.import_session("other", raw, synced_at=SYNCED)
        assert c.status == "new" and c.id != a.id and store.count() == 2
        assert store.session(a.id).device_name == "my clip"


def test_unknown_device_clock_uses_the_sync_time(tmp_path):
    raw = sim_logs()[0]  # the sim board has no wall clock: HEADER wall_start 0
    assert derive(raw).wall_start == 0
    with Store.open(tmp_path / "s.db") as store:
        s = store.session(store.import_session("dev", raw, synced_at=SYNCED).id)
        assert s.start == SYNCED and s.start_estimated
        known = history()[0]
        k = store.session(store.import_session("demo", known.raw, synced_at=SYNCED).id)
        assert not k.start_estimated
        assert abs((k.start - known.start).total_seconds()) < 1


def test_a_session_synced_while_open_is_extended(tmp_path):
    full = sim_logs()[0]
    ends = frame_ends(full)
    assert ends[-1] == len(full)
    part = full[: ends[len(ends) // 2]]  # read while the session was still being written
    assert derive(part).end_reason is None
    with Store.open(tmp_path / "s.db") as store:
        a = store.import_session("dev", part, synced_at=SYNCED)
        assert store.session(a.id).end_reason is None
        b = store.import_session("dev", full, synced_at=SYNCED)
        assert (b.status, b.id, b.previous_bytes, b.stored_bytes) == (
            "extended", a.id, len(part), len(full))  # fmt: skip
        s = store.session(a.id)
        assert s.end_reason == "button" and store.raw(a.id) == full
        assert s.backward_steps == derive(full).backward_steps
        # an older, shorter read arriving later changes nothing
        c = store.import_session("dev", part, synced_at=SYNCED)
        assert c.status == "unchanged" and store.raw(a.id) == full
        assert store.count() == 1 and store.check().ok


def test_a_torn_tail_then_the_recovered_session_extends(tmp_path):
    full = sim_logs()[0]
    ends = frame_ends(full)
    torn = full[: ends[10] + 5]  # a frame cut short
    with Store.open(tmp_path / "s.db") as store:
        a = store.import_session("dev", torn, synced_at=SYNCED)
        b = store.import_session("dev", full, synced_at=SYNCED)
        assert b.status == "extended" and b.id == a.id and store.raw(a.id) == full


def test_different_bytes_under_the_same_key_are_a_conflict(tmp_path):
    raw = history()[0].raw
    other = history()[1].raw
    assert derive(raw).session_id == 1 and derive(other).session_id == 2
    # another session that the device numbered 1 too (its flash was erased)
    walked = demo_data.walk([("forward", 60), ("backward", 30)], 1, demo_data.Walker(),
                            __import__("random").Random(9))  # fmt: skip
    clash = demo_data.encode_session(1, 900_000_000, [("forward", 60), ("backward", 30)], 1,
                                     walked)  # fmt: skip
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        store.import_session("dev", raw, synced_at=SYNCED)
        with pytest.raises(SessionConflict) as e:
            store.import_session("dev", clash, synced_at=SYNCED)
        assert "session 1" in str(e.value) and "Nothing was changed" in str(e.value)
        assert store.raw(1) == raw and store.count() == 1
    log = tmp_path / "1.rsl"
    log.write_bytes(clash)
    before = _sha(db)
    res = invoke("--db", db, "db", "import", log, "--device-id", "dev")
    _one_line_error(res, 5, "different data under this number")
    assert _sha(db) == before
    # among other logs, the conflict is reported and the others are stored
    second = tmp_path / "2.rsl"
    second.write_bytes(other)
    res = invoke("--db", db, "db", "import", log, second, "--device-id", "dev")
    _one_line_error(res, 5, "1.rsl", "different data under this number")
    assert "2.rsl: session 2 -> #2 new" in res.stdout
    with Store.open(db, readonly=True) as store:
        assert store.raw(1) == raw and store.raw(2) == other


def test_not_a_session_log_is_refused(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        with pytest.raises(NotASessionLog):
            store.import_session("dev", b"\xa5\x5a" + bytes(40), synced_at=SYNCED)
        assert store.count() == 0
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world" * 100)
    res = invoke("--db", tmp_path / "s.db", "db", "import", junk, "--device-id", "d")
    _one_line_error(res, 2, "neither a session log nor a flash image")


# -- schema versions -------------------------------------------------------------------


def _v1_database(path: Path, raws: list[bytes]) -> None:
    """A store as the v1 code wrote it: v1 tables and v1 columns only."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    st.MIGRATIONS[0][1](con)
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO devices (device_id, name, first_synced, last_synced) "
                "VALUES ('dev', NULL, 1000, 1000)")  # fmt: skip
    for raw in raws:
        d = derive(raw)
        start = int(d.start_utc.timestamp()) if d.start_utc else 1000
        cur = con.execute(
            "INSERT INTO sessions (device, device_session, start_ts, start_estimated, "
            "synced_ts, bytes, digest, firmware, duration_s, forward_steps, backward_steps, "
            "sway_alerts, end_reason) VALUES (1, ?, ?, ?, 1000, ?, ?, ?, ?, ?, ?, ?, ?)",
            (d.session_id, start, 0 if d.start_utc else 1, len(raw),
             hashlib.sha256(raw).hexdigest(), d.firmware, d.duration_s, d.forward_steps,
             d.backward_steps, d.sway_alerts, d.end_reason),
        )  # fmt: skip
        con.execute("INSERT INTO logs (session, raw) VALUES (?, ?)", (cur.lastrowid, raw))
    con.execute("COMMIT")
    con.close()


def test_a_v1_store_is_migrated_and_backfilled(tmp_path):
    raws = [s.raw for s in history()[:5]]
    old = tmp_path / "v1.sqlite3"
    _v1_database(old, raws)
    with sqlite3.connect(old) as con:
        cols = {c[1] for c in con.execute("PRAGMA table_info(sessions)")}
        assert "backward_walking_s" not in cols
    with Store.open(old, readonly=True) as store:  # even a read brings it up to date
        assert store.info()["schema_version"] == st.SCHEMA_VERSION == 2
        migrated = store.sessions()
        assert store.check().ok
    fresh = tmp_path / "fresh.sqlite3"
    with Store.open(fresh) as store:
        for raw in raws:
            store.import_session("dev", raw, synced_at=SYNCED)
        want = store.sessions()
    assert [s.stats for s in migrated] == [s.stats for s in want]
    assert all(s.backward_walking_s > 0 and s.compliance_s is not None for s in migrated)
    with sqlite3.connect(old) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_newer_store_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        store.import_session("dev", sim_logs()[0], synced_at=SYNCED)
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA user_version = 7")
    before = _sha(db)
    with pytest.raises(StoreUnusable, match="newer retrostep"):
        Store.open(db)
    res = invoke("--db", db, "sessions")
    _one_line_error(res, 4, "newer retrostep", "upgrade")
    assert _sha(db) == before


# -- damaged and foreign files -------------------------------------------------------------


def _damaged_pages(path: Path) -> None:
    with Store.open(path) as store:
        for s in history()[:8]:
            store.import_session("dev", s.raw, synced_at=SYNCED)
    data = bytearray(path.read_bytes())
    page = 4096
    for p in range(1, len(data) // page):  # every b-tree page header after page 1
        data[p * page : p * page + 16] = b"\x0d\xff\xff\xff" * 4
    path.write_bytes(bytes(data))


def _other_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        con.execute("INSERT INTO notes (text) VALUES ('shopping list')")


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: p.write_bytes(os.urandom(50_000)), "not an SQLite database"),
        (lambda p: p.write_text("sessions, please\n" * 500), "not an SQLite database"),
        (_damaged_pages, "is damaged"),
        (_other_sqlite, "not a retrostep session store"),
    ],
    ids=["random-bytes", "text", "damaged-pages", "other-sqlite"],
)
def test_an_unusable_file_is_a_clear_error_and_never_overwritten(tmp_path, make, needle):
    db = tmp_path / "sessions.sqlite3"
    make(db)
    before = _sha(db)
    log = tmp_path / "1.rsl"
    log.write_bytes(sim_logs()[0])
    for args in (["sessions"], ["progress"], ["show", "1"], ["db", "check"],
                 ["db", "import", log, "--device-id", "d"], ["report", "-o", tmp_path / "r.html"],
                 ["export", "--format", "csv"]):  # fmt: skip
        res = invoke("--db", db, *args)
        _one_line_error(res, 4, needle, str(db))
        assert _sha(db) == before, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.rsl", "sessions.sqlite3"]


def test_store_location(tmp_path, monkeypatch):
    import platformdirs

    monkeypatch.delenv("RETROSTEP_DB", raising=False)
    want = Path(platformdirs.user_data_dir("retrostep", appauthor=False)) / "sessions.sqlite3"
    assert st.default_path() == want
    monkeypatch.setenv("RETROSTEP_DB", str(tmp_path / "env.db"))
    assert st.default_path() == tmp_path / "env.db"
    log = tmp_path / "1.rsl"
    log.write_bytes(sim_logs()[0])
    assert invoke("db", "import", log, "--device-id", "d").exit_code == 0
    assert (tmp_path / "env.db").is_file()
    assert invoke("--db", tmp_path / "opt.db", "db", "import", log, "--device-id", "d"
                  ).exit_code == 0  # fmt: skip
    assert (tmp_path / "opt.db").is_file()
    info = json.loads(invoke("--db", tmp_path / "opt.db", "db", "info", "--json").stdout)
    assert info["sessions"] == 1 and info["path"] == str(tmp_path / "opt.db")


def test_reading_an_absent_store_creates_nothing(tmp_path):
    db = tmp_path / "sub" / "none.sqlite3"
    res = invoke("--db", db, "sessions")
    assert res.exit_code == 0 and "no sessions in the store yet" in res.stdout
    assert json.loads(invoke("--db", db, "sessions", "--json").stdout) == []
    assert invoke("--db", db, "progress").exit_code == 0
    assert not db.parent.exists()


# -- db check --------------------------------------------------------------------------------


def test_db_check_finds_what_does_not_match_the_raw_logs(tmp_path):
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        for s in history()[:4]:
            store.import_session("dev", s.raw, synced_at=SYNCED)
    ok = invoke("--db", db, "db", "check")
    assert ok.exit_code == 0 and ok.stdout.strip().endswith("ok"), ok.stdout
    with sqlite3.connect(db) as con:
        con.execute("UPDATE sessions SET backward_steps = backward_steps + 1 WHERE id = 2")
        raw = bytearray(con.execute("SELECT raw FROM logs WHERE session = 3").fetchone()[0])
        raw[40] ^= 0xFF
        con.execute("UPDATE logs SET raw = ? WHERE session = 3", (bytes(raw),))
    bad = invoke("--db", db, "db", "check", "--json")
    assert bad.exit_code == 1
    rep = json.loads(bad.stdout)
    assert rep["integrity"] == ["ok"] and rep["sessions"] == 4 and not rep["ok"]
    text = "\n".join(rep["problems"])
    assert "session 2" in text and "backward_steps is" in text
    assert "session 3" in text and "SHA-256" in text
    assert "session 1" not in text and "session 4" not in text


def test_many_imports_in_one_transaction(tmp_path):
    sessions = history()
    with Store.open(tmp_path / "s.db") as store:
        with store.transaction():
            for s in sessions:
                store.import_session("dev", s.raw, synced_at=SYNCED)
        assert store.count() == len(sessions)
        with pytest.raises(RuntimeError), store.transaction():
            store.import_session("dev2", sessions[0].raw, synced_at=SYNCED)
            raise RuntimeError("interrupted")
        assert store.count() == len(sessions) and store.has("dev2", 1) == 0


def test_records_of_a_recovered_session(tmp_path):
    hist = demo_data.history(weeks=1, per_week=3, seed=4, recovered_every=3,
                             first_day=datetime(2026, 1, 5).date())  # fmt: skip
    raw = hist[2].raw
    assert r.decode(raw)[-1][1]["reason"] == r.END_RECOVERED
    with Store.open(tmp_path / "s.db") as store:
        s = store.session(store.import_session("dev", raw, synced_at=SYNCED).id)
        assert s.end_reason == "recovered"
