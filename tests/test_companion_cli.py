"""The companion commands on a store of real session logs: sessions, show, progress (and
its suggestion), export (csv, json, FIT), report, shell completion and the output
conventions (JSON for scripts, colour only on terminals, errors without tracebacks)."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import time
from datetime import date, datetime, timezone

import pytest
from cli_invoke import invoke
from click.testing import CliRunner
from companion_data import history, sim_logs

from retrostep import demo_data
from retrostep.cli import main
from retrostep.companion_cli import color_on
from retrostep.progress import (
    COMPLIANCE_GOOD,
    LENGTHEN_BELOW,
    MAX_BACKWARD_S,
    SHORTEN_AT,
    decide,
    next_interval,
    suggested_program,
)
from retrostep.session_stats import derive, timeline
from retrostep.store import Store
from retrostep_core import config as cfg

SYNCED = datetime(2026, 3, 2, 18, 30, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")  # weeks are local: make them the same everywhere
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Six weeks of sessions from one device and the sim board's two from another."""
    path = tmp_path_factory.mktemp("store") / "s.sqlite3"
    with Store.open(path) as store, store.transaction():
        for s in history():
            store.import_session("clip-A", s.raw, synced_at=SYNCED, device_name="clip")
        for raw in sim_logs():
            store.import_session("sim-1", raw, synced_at=SYNCED)
    return path


def _json(*args):
    res = invoke(*args)
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


SESSION_KEYS = {
    "id", "device_id", "device_name", "device_session", "start", "start_estimated", "synced",
    "bytes", "sha256", "firmware", "duration_s", "forward_steps", "backward_steps",
    "sway_alerts", "end_reason", "wall_start", "fs_hz", "sway_limit_deg", "config_crc",
    "forward_walking_s", "backward_walking_s", "cadence_spm", "backward_cadence_spm",
    "backward_sway_alerts", "sway_range_mean_deg", "sway_range_p95_deg", "sway_rate_rms_deg_s",
    "backward_sway_range_mean_deg", "backward_interval_s", "compliance_s", "damaged_bytes",
    "program", "program_repeat", "walking_s", "compliance",
}  # fmt: skip


def test_sessions_json_and_table(db):
    rows = _json("--db", db, "sessions", "--json")
    assert len(rows) == len(history()) + len(sim_logs())
    assert all(set(r) == SESSION_KEYS for r in rows)
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts)
    demo = [r for r in rows if r["device_id"] == "clip-A"]
    for r, s in zip(demo, history(), strict=True):
        d = derive(s.raw)
        assert (r["backward_steps"], r["forward_steps"], r["sway_alerts"]) == (
            d.backward_steps, d.forward_steps, d.sway_alerts)  # fmt: skip
        assert r["program"] == [list(p) for p in s.program]
    text = invoke("--db", db, "sessions")
    assert text.exit_code == 0 and "\x1b[" not in text.stdout  # no colour off a terminal
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["#", "started", "duration"]
    assert len(lines) == 1 + len(rows) + 1  # header, rows, the sync-time footnote
    assert "* device clock not set" in lines[-1]
    assert len(_json("--db", db, "sessions", "--json", "--last", "3")) == 3
    assert {r["device_id"] for r in _json("--db", db, "sessions", "--json", "--device",
                                          "sim-1")} == {"sim-1"}  # fmt: skip


def test_show_a_session(db):
    rows = _json("--db", db, "sessions", "--json")
    sim = next(r for r in rows if r["device_id"] == "sim-1" and r["device_session"] == 1)
    out = _json("--db", db, "show", sim["id"], "--json")
    d = derive(sim_logs()[0])
    assert out["backward_steps"] == d.backward_steps and out["compliance_s"] == d.compliance_s
    assert out["sway_alerts"] == d.sway_alerts >= 1
    assert out["program"] == [["forward", 30], ["backward", 30]]
    text = invoke("--db", db, "show", sim["id"])
    assert text.exit_code == 0
    for label in ("Duration", "Backward", "Forward", "Cadence", "Interval compliance",
                  "Sway alerts", "Sway (roll range/s)", "(sync time)"):  # fmt: skip
        assert label in text.stdout
    assert f"{d.backward_steps} steps" in text.stdout
    latest = _json("--db", db, "show", "latest", "--json")
    assert latest["start"] == rows[-1]["start"]


def test_unknown_session_and_bad_arguments(db, tmp_path):
    res = invoke("--db", db, "show", "9999")
    assert res.exit_code == 2 and "no session 9999 in the store" in res.stderr
    assert "'retrostep sessions' lists them" in res.stderr and "Traceback" not in res.stderr
    res = invoke("--db", db, "show", "yesterday")
    assert res.exit_code == 2 and "not a session number" in res.stderr
    res = invoke("--db", db, "sessions", "--since", "last week")
    assert res.exit_code == 2 and "is not a date" in res.stderr
    res = invoke("--db", db, "export", "--format", "fit")
    assert res.exit_code == 2 and "--output DIR" in res.stderr
    empty = tmp_path / "empty.sqlite3"
    res = invoke("--db", empty, "show", "1")
    assert res.exit_code == 1 and "no sessions in the store yet" in res.stderr
    res = invoke("--db", empty, "report", "-o", tmp_path / "r.html")
    assert res.exit_code == 1 and "no sessions in the store yet" in res.stderr
    assert not (tmp_path / "r.html").exists()


def test_progress_weeks_add_up(db):
    out = _json("--db", db, "progress", "--json", "--weeks", "0")
    rows = _json("--db", db, "sessions", "--json")
    weeks = out["weeks"]
    assert sum(w["sessions"] for w in weeks) == len(rows)
    assert sum(w["backward_steps"] for w in weeks) == sum(r["backward_steps"] for r in rows)
    bwd_min = sum(r["backward_walking_s"] for r in rows) / 60
    assert abs(sum(w["backward_minutes"] for w in weeks) - bwd_min) < 0.05
    mondays = [date.fromisoformat(w["monday"]) for w in weeks]
    assert all((b - a).days == 7 for a, b in zip(mondays, mondays[1:], strict=False))
    for w in weeks:
        if w["backward_minutes"]:
            rate = w["backward_sway_alerts"] / w["backward_minutes"]
            assert w["alerts_per_backward_minute"] == pytest.approx(rate, rel=0.01, abs=0.01)
    assert isinstance(out["sway_trend_deg_per_week"], float)
    assert len(_json("--db", db, "progress", "--json", "--weeks", "2")["weeks"]) == 2
    text = invoke("--db", db, "progress")
    assert text.exit_code == 0 and "Next week:" in text.stdout and "Program:" in text.stdout


def test_suggestion_is_a_device_program(db):
    out = _json("--db", db, "progress", "--json")
    sug = out["suggestion"]
    assert sug["action"] in ("lengthen", "shorten", "keep")
    conf = {**cfg.defaults(), "program": [tuple(p) for p in sug["program"]],
            "program_repeat": sug["program_repeat"]}  # fmt: skip
    assert cfg.validate(conf) == []
    assert cfg.decode(cfg.encode(conf))[0]["program"] == conf["program"]
    with Store.open(db, readonly=True) as store:
        prog = suggested_program(store)
    assert prog == {"program": conf["program"], "program_repeat": conf["program_repeat"]}
    b = sug["backward_interval_s"]
    assert b["next"] == next_interval(b["now"], sug["action"])


def test_the_weekly_rule():
    assert decide(0, 10.0, 0.95) == "lengthen"
    assert decide(int(20 * LENGTHEN_BELOW), 20.0, 0.95) == "keep"  # at the threshold: keep
    assert decide(0, 10.0, COMPLIANCE_GOOD - 0.01) == "keep"  # rare alerts, intervals missed
    assert decide(int(10 * SHORTEN_AT), 10.0, 0.95) == "shorten"
    assert decide(0, 10.0, 0.3) == "shorten"  # the backward intervals were not walked
    assert decide(0, 10.0, None) == "lengthen"  # no program: the alerts decide
    assert decide(50, 2.0, 0.9) == "keep"  # too little backward walking to judge
    assert next_interval(60, "lengthen") == 90 and next_interval(60, "shorten") == 30
    assert next_interval(MAX_BACKWARD_S, "lengthen") == MAX_BACKWARD_S
    assert next_interval(30, "shorten") == 30 and next_interval(75, "keep") == 75


def _week_of_sessions(alert_every_s: float | None, seed: int, backward: int = 90) -> list[bytes]:
    """Four sessions of one week with backward alerts about every ``alert_every_s``."""
    rng = random.Random(seed)
    prog = [("forward", 120), ("backward", backward)]
    out = []
    for i in range(4):
        walked = demo_data.walk(prog, 3, demo_data.Walker(steady_s=1000), rng)
        bwd = [t for t, d in walked["steps"] if d < 0]
        alerts = []
        if alert_every_s:
            t = bwd[0]
            for s in bwd:
                if s - t >= alert_every_s * 1000:
                    alerts.append((s, 1, 120))
                    t = s
        walked["alerts"] = alerts
        when = datetime(2026, 2, 2 + i, 10, tzinfo=timezone.utc)
        out.append(demo_data.encode_session(i + 1, demo_data.wall_start_of(when), prog, 3,
                                            walked))  # fmt: skip
    return out


@pytest.mark.parametrize("every, action, nxt", [(None, "lengthen", 120), (20, "shorten", 60),
                                                 (120, "keep", 90)])  # fmt: skip
def test_suggestion_follows_the_alerts(tmp_path, every, action, nxt):
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        for raw in _week_of_sessions(every, seed=3):
            store.import_session("d", raw, synced_at=SYNCED)
    sug = _json("--db", db, "progress", "--json")["suggestion"]
    assert sug["action"] == action, sug
    assert sug["backward_interval_s"] == {"now": 90, "next": nxt}
    assert sug["program"] == [["forward", 120], ["backward", nxt]] and sug["program_repeat"] == 3


@pytest.mark.parametrize("every, backward, limit", [(None, MAX_BACKWARD_S, "maximum"),
                                                    (20, 30, "minimum")])  # fmt: skip
def test_suggestion_at_the_limits_keeps(tmp_path, every, backward, limit):
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        for raw in _week_of_sessions(every, seed=4, backward=backward):
            store.import_session("d", raw, synced_at=SYNCED)
    sug = _json("--db", db, "progress", "--json")["suggestion"]
    assert sug["action"] == "keep" and f"already at the {backward} s {limit}" in sug["reason"]
    assert sug["backward_interval_s"] == {"now": backward, "next": backward}


def test_no_program_yet_suggests_a_starter(tmp_path):
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        store.import_session("sim", sim_logs()[1], synced_at=SYNCED)  # no whole program
    sug = _json("--db", db, "progress", "--json")["suggestion"]
    assert sug["action"] == "start" and ["backward", 60] in sug["program"]


def test_export_csv_and_json(db, tmp_path):
    res = invoke("--db", db, "export", "--format", "csv")
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    js = _json("--db", db, "export", "--format", "json")
    assert len(rows) == len(js) == len(history()) + len(sim_logs())
    for a, b in zip(rows, js, strict=True):
        assert int(a["backward_steps"]) == b["backward_steps"] and a["sha256"] == b["sha256"]
    demo = next(r for r in js if r["device_id"] == "clip-A")
    sid = demo["id"]
    secs = list(csv.DictReader(io.StringIO(invoke(
        "--db", db, "export", "--format", "csv", "--detail", "seconds", "--session", sid).stdout)))
    with Store.open(db, readonly=True) as store:
        tl = timeline(store.raw(sid))
    assert len(secs) == len(tl.seconds) > 100
    assert sum(int(s["backward_steps"]) for s in secs) == sum(s["backward"] for s in tl.seconds)
    steps = _json("--db", db, "export", "--format", "json", "--detail", "steps", "--session",
                  sid)  # fmt: skip
    assert len(steps) == 1
    assert sum(1 for s in steps[0]["steps"] if s["direction"] == "backward") == \
        demo["backward_steps"]  # fmt: skip
    out = tmp_path / "sessions.csv"
    assert invoke("--db", db, "export", "--format", "csv", "-o", out).exit_code == 0
    assert out.read_text() == res.stdout


def test_export_fit_reads_back_with_garmins_sdk(db, tmp_path):
    from garmin_fit_sdk import Decoder, Stream

    js = _json("--db", db, "export", "--format", "json")
    pick = [next(r["id"] for r in js if r["device_id"] == device) for device in ("clip-A", "sim-1")]
    res = invoke("--db", db, "export", "--format", "fit", "-o", tmp_path / "fit",
                 "--session", pick[0], "--session", pick[1])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    paths = res.stdout.split()
    assert len(paths) == 2
    for path, sid in zip(paths, pick, strict=True):
        want = next(r for r in js if r["id"] == sid)
        data = bytearray(open(path, "rb").read())
        dec = Decoder(Stream.from_byte_array(data))
        assert dec.is_fit() and dec.check_integrity()
        msgs, errors = Decoder(Stream.from_byte_array(data)).read()
        assert errors == []
        (session,) = msgs["session_mesgs"]
        assert session["sport"] == "walking"
        steps = want["forward_steps"] + want["backward_steps"]
        assert session["total_strides"] == steps // 2
        assert abs(session["total_elapsed_time"] - want["duration_s"]) < 0.01
        dev = session["developer_fields"]
        assert (dev[3], dev[4], dev[6]) == (want["forward_steps"], want["backward_steps"],
                                            want["sway_alerts"])  # fmt: skip
        start = datetime.fromisoformat(want["start"].replace("Z", "+00:00"))
        assert session["start_time"] == start
        assert len(msgs["record_mesgs"]) > 10
        assert sum(m["developer_fields"][1] for m in msgs["record_mesgs"]) > 0  # backward
        assert len(msgs["lap_mesgs"]) == session["num_laps"] >= 2


def test_report_is_self_contained(db, tmp_path):
    out = tmp_path / "report.html"
    res = invoke("--db", db, "report", "-o", out)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == str(out)
    text = out.read_text()
    assert text.count("<svg") == 2
    # nothing to fetch: no src, no link out of the page (SVG's own href="#id" stay inside)
    assert not re.search(r"""\bsrc\s*=|href\s*=\s*["'](?!#)|url\((?!#)|@import|<script|<link""",
                         text, re.I)  # fmt: skip
    assert 'id="steps-forward"' in text and 'id="sway-range"' in text
    assert 'id="week-backward-min-0"' in text and 'id="suggestion"' in text


def test_colour_only_on_terminals(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert color_on(Tty()) and not color_on(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not color_on(Tty())


def test_shell_completion(db):
    runner = CliRunner()
    script = runner.invoke(main, [], prog_name="retrostep",
                           env={"_RETROSTEP_COMPLETE": "bash_source"})  # fmt: skip
    assert script.exit_code == 0 and "_retrostep_completion" in script.output
    res = runner.invoke(main, [], prog_name="retrostep", env={
        "_RETROSTEP_COMPLETE": "bash_complete", "COMP_WORDS": f"retrostep --db {db} show ",
        "COMP_CWORD": "4"})  # fmt: skip
    words = [line.split(",", 1)[1] for line in res.output.splitlines() if "," in line]
    assert "latest" in words and str(len(history()) + len(sim_logs())) in words
    res = runner.invoke(main, [], prog_name="retrostep", env={
        "_RETROSTEP_COMPLETE": "bash_complete", "COMP_WORDS": "retrostep pro",
        "COMP_CWORD": "1"})  # fmt: skip
    assert "plain,progress" in res.output


def test_db_check_and_info_on_a_good_store(db):
    rep = _json("--db", db, "db", "check", "--json")
    assert rep["ok"] and rep["sessions"] == len(history()) + len(sim_logs())
    res = invoke("--db", db, "db", "check")
    assert res.stderr == ""  # no progress bar off a terminal
    info = _json("--db", db, "db", "info", "--json")
    assert info["devices"] == 2 and info["bytes_per_session"] > 0
