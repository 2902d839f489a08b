"""`retrostep demo`, the README's main job, as a user runs it: a fresh process that
flashes a blank virtual board, records a week of walks with the firmware, syncs them over
the simulated radio into a new store and writes the report. What arrives in the store
must be exactly what is on the device's flash, dated on the days walked, and nothing may
leave the demo's directory (keys, store, radio file)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from retrostep import sim, week_demo
from retrostep.importing import image_logs
from retrostep.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("week")
    home = tmp / "home"
    home.mkdir()
    out = tmp / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETROSTEP_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"),
               XDG_RUNTIME_DIR=str(home / "run"))  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "retrostep.cli", "demo", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    return out, home, proc


def test_demo_runs_from_flash_to_report(demo):
    out, _, proc = demo
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    text = proc.stdout
    assert "is running from slot a" in text  # installed and started healthily
    assert "6 new, 0 extended session(s)" in text and "device clock set" in text
    assert "Next week:" in text and "Report:" in text
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 2  # weekly progress, the latest session (in one figure each)
    assert "<script src" not in html and "<link " not in html  # self-contained


def test_the_store_holds_exactly_what_the_device_logged(demo):
    out, _, _ = demo
    on_flash = dict(image_logs(out / "device-flash.img"))  # session id -> bytes
    assert sorted(on_flash) == [1, 2, 3, 4, 5, 6]
    with Store.open(str(out / "sessions.sqlite3")) as store:
        rows = store.sessions()
        assert [r.device_session for r in rows] == [1, 2, 3, 4, 5, 6]
        for row in rows:
            assert store.raw(row.id) == on_flash[row.device_session]
            assert not row.start_estimated
    # dated on the days walked: the device clock was set per day on the sim board
    plan = week_demo.days()
    for row, day in zip(rows, plan, strict=True):
        assert abs(row.start - day.start) < timedelta(seconds=30), (row.start, day.start)
    # the device agrees: every session is on flash, decoded the same on the host
    summaries = sim.read_sessions(str(out / "device-flash.img"))
    for row, s in zip(rows, summaries, strict=True):
        assert (row.forward_steps, row.backward_steps) == (s["forward_steps"],
                                                            s["backward_steps"])  # fmt: skip
        assert row.sway_alerts == s["sway_alerts"]
    # the week's story: fewer leans, fewer alerts
    alerts = [s["sway_alerts"] for s in summaries]
    assert sum(alerts[:3]) > sum(alerts[3:]) and alerts[0] >= 3, alerts


def test_nothing_leaves_the_demo_directory(demo):
    out, home, _ = demo
    keys = list((out / "config" / "devices").glob("*.json"))
    assert len(keys) == 1
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600
    left = [p for p in home.rglob("*") if "retrostep" in p.name]
    assert left == [], left
    assert not (out / "radio.json").exists()  # the board's radio file is gone with it
