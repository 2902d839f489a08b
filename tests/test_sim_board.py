"""The unmodified firmware (app, storage, haptics) on the sim board in the MicroPython
unix port, driven through `retrostep sim run` / `retrostep sim logs`: what the device
logs to its LittleFS image must agree with `retrostep analyze` (CPython) on the same
trace, sway alerts must buzz, and a corrupt config must not stop it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_invoke import invoke as _invoke

from retrostep import synth
from retrostep.trace import write_trace
from retrostep_core import config as cfg
from retrostep_core import haptic_patterns as hp
from retrostep_core import records as r


@pytest.fixture(scope="module")
def walk(tmp_path_factory) -> Path:
    """71 s at 52 Hz: forward walk with two excessive leans, backward with one."""
    segs = [
        synth._st(3),
        synth._w(40, sway=[synth._sw(12, 15, "left", 1.6), synth._sw(28, 20, "right", 2.2)]),
        synth._b(25, sway=[synth._sw(10, 18, "right", 2.0)]),
        synth._st(3),
    ]
    trace, _ = synth.synthesize(segs, synth.make_person(5), fs_hz=52, seed=7)
    path = tmp_path_factory.mktemp("sim") / "walk.csv"
    write_trace(path, trace)
    return path


@pytest.fixture(scope="module")
def analyzed(walk) -> dict:
    res = _invoke("analyze", walk, "--json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def _sim_run(walk, image, *extra) -> dict:
    res = _invoke("sim", "run", "--trace", walk, "--image", image, "--json", *extra)
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def default_run(walk, tmp_path_factory) -> tuple[dict, Path]:
    image = tmp_path_factory.mktemp("img") / "flash.img"
    return _sim_run(walk, image), image


def _sway_triples(pulses, strength=80):
    """Start times (ms) of every SWAY_ALERT rhythm in the motor log."""
    duty = hp.SWAY_ALERT.intensity * strength // 100
    want = hp.SWAY_ALERT.pulses
    starts = []
    for i in range(len(pulses) - 2):
        trio = pulses[i : i + 3]
        if all(p[2] == duty and p[1] == on for p, (on, _) in zip(trio, want, strict=True)):
            gaps = [trio[k + 1][0] - trio[k][0] for k in range(2)]
            if gaps == [on + off for on, off in want[:2]]:
                starts.append(trio[0][0])
    return starts


def test_session_log_matches_analyze(default_run, analyzed):
    out, _ = default_run
    summary = analyzed["summary"]
    assert summary["sway_alerts"] >= 2  # the walk must exercise the alert path
    sessions = out["sessions"]
    assert len(sessions) == 1
    s = sessions[0]
    assert s["forward_steps"] == summary["forward_steps"]
    assert s["backward_steps"] == summary["backward_steps"]
    assert s["sway_alerts"] == summary["sway_alerts"]
    assert s["ended_cleanly"] and s["damaged_bytes"] == 0
    end = [rec for rec in s["records"] if rec["type"] == "end"][0]
    assert (end["forward"], end["backward"]) == (s["forward_steps"], s["backward_steps"])
    assert end["alerts"] == s["sway_alerts"]
    assert out["live"]["errors"] == 0
    assert out["live"]["forward"] == summary["forward_steps"]


def test_motor_plays_sway_pattern_at_each_alert(default_run, analyzed):
    out, _ = default_run
    starts = _sway_triples(out["motor_pulses"])
    alerts_ms = [round(a["t"] * 1000) for a in analyzed["sway_alerts"]]
    assert len(starts) == len(alerts_ms)
    for got, want in zip(starts, alerts_ms, strict=True):
        assert abs(got - want) <= 10  # the alert's time, to the 10 ms motor poll
    # no pattern in the default config but sway alerts (no program, battery fine)
    assert len(out["motor_pulses"]) == 3 * len(alerts_ms)
    assert out["power"][0][1] == "active"


def test_sim_logs_json_shape(default_run):
    _, image = default_run
    res = _invoke("sim", "logs", image, "--json")
    assert res.exit_code == 0, res.stderr
    sessions = json.loads(res.stdout)
    assert isinstance(sessions, list) and len(sessions) == 1
    s = sessions[0]
    for key in ("id", "forward_steps", "backward_steps", "sway_alerts", "duration_s", "records"):
        assert key in s
    assert s["id"] == 1 and s["duration_s"] > 30
    assert s["records"][0]["type"] == "header" and s["records"][-1]["type"] == "end"
    text = _invoke("sim", "logs", image)
    assert text.exit_code == 0 and text.stdout.startswith("session 1:")


def test_corrupt_config_uses_defaults_and_leaves_a_note(walk, analyzed, tmp_path):
    good = cfg.encode(cfg.defaults())
    bad = tmp_path / "config.bin"
    bad.write_bytes(good[:-4] + bytes(4))  # CRC broken
    out = _sim_run(walk, tmp_path / "flash.img", "--config", bad)
    s = out["sessions"][0]
    notes = [rec for rec in s["records"] if rec["type"] == "note"]
    assert [n["code"] for n in notes] == [r.NOTE_CONFIG_DEFAULTS]
    assert out["live"]["config_problems"] >= 1 and out["live"]["errors"] == 0
    assert s["forward_steps"] == analyzed["summary"]["forward_steps"]
    assert s["sway_alerts"] == analyzed["summary"]["sway_alerts"]


def test_program_logs_intervals_and_cues(walk, tmp_path):
    c = cfg.defaults()
    c["program"] = [("forward", 20), ("backward", 20)]
    path = tmp_path / "config.bin"
    path.write_bytes(cfg.encode(c))
    out = _sim_run(walk, tmp_path / "flash.img", "--config", path)
    recs = out["sessions"][0]["records"]
    intervals = [(rec["t"], rec["kind"]) for rec in recs if rec["type"] == "interval"]
    assert intervals == [(0, r.KIND_FORWARD), (20000, r.KIND_BACKWARD), (40000, r.KIND_NONE)]
    lengths = [p[1] for p in out["motor_pulses"]]
    assert 700 in lengths and lengths.count(400) >= 2  # forward, backward, done cues
    assert not any(rec["type"] == "note" for rec in recs)


def test_a_failing_task_is_restarted_and_counting_goes_on(walk, analyzed, tmp_path):
    from retrostep import sim

    res = sim.run(str(walk), image=str(tmp_path / "flash.img"), fault_ms=20000)
    assert res.live["errors"] == 1
    assert any("restarting" in line for line in res.console)
    s = res.sessions[0]
    assert s["forward_steps"] == analyzed["summary"]["forward_steps"]
    assert s["backward_steps"] == analyzed["summary"]["backward_steps"]
    assert s["sway_alerts"] == analyzed["summary"]["sway_alerts"]
    assert s["ended_cleanly"]


def test_second_run_appends_a_session(walk, tmp_path):
    image = tmp_path / "flash.img"
    _sim_run(walk, image)
    out = _sim_run(walk, image)
    assert [s["id"] for s in out["sessions"]] == [1, 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (("sim", "run", "--trace", "{tmp}/missing.csv"), "trace not found"),
        (("sim", "logs", "{tmp}/missing.img"), "image not found"),
        (("sim", "logs", "{tmp}/garbage.img"), "not a LittleFS image"),
        (("sim", "run", "--trace", "{walk}", "--image", "{tmp}/garbage.img"),
         "not a LittleFS image"),
    ],
)  # fmt: skip
def test_clear_errors(walk, tmp_path, args, message):
    (tmp_path / "garbage.img").write_bytes(bytes(range(256)) * 256)  # 64 KB, not LittleFS
    res = _invoke(*[a.format(tmp=tmp_path, walk=walk) for a in args])
    assert res.exit_code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_no_micropython_is_a_clean_error(walk, tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTEP_MICROPYTHON", str(tmp_path / "no-such-micropython"))
    res = _invoke("sim", "run", "--trace", walk)
    assert res.exit_code == 3
    assert "cannot start" in res.stderr and "Traceback" not in res.stderr


def test_button_splits_sessions(walk, analyzed, tmp_path):
    from retrostep import sim

    res = sim.run(str(walk), image=str(tmp_path / "flash.img"), buttons=(1000, 30000))
    first, second = res.sessions
    assert first["end_reason"] == "button" and first["duration_s"] == 29.0
    assert second["end_reason"] == "power"
    s = analyzed["summary"]
    assert first["forward_steps"] + second["forward_steps"] == s["forward_steps"]
    assert first["backward_steps"] + second["backward_steps"] == s["backward_steps"]


def test_idle_timeout_closes_the_session_and_sleeps(tmp_path):
    from retrostep import sim

    segs = [synth._st(3), synth._w(15), synth._st(40), synth._w(15), synth._st(3)]
    trace, _ = synth.synthesize(segs, synth.make_person(2), fs_hz=26, seed=3)
    path = tmp_path / "pause.csv"
    write_trace(path, trace)
    c = cfg.defaults()
    c["idle_timeout_s"] = 30
    conf = tmp_path / "config.bin"
    conf.write_bytes(cfg.encode(c))
    res = sim.run(str(path), image=str(tmp_path / "flash.img"), config=str(conf))
    assert [s["end_reason"] for s in res.sessions] == ["idle", "power"]
    states = [state for _, state in res.power]
    assert "deep" in states
    deep_t = [t for t, state in res.power if state == "deep"][0]
    assert 40000 < deep_t < 55000  # 30 s after the last step of the first walk
