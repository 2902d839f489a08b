"""The `retrostep` command line: analyze, synth and demo, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from retrostep import synth
from retrostep.cli import main
from retrostep.demo import clock, session_specs
from retrostep.trace import STANDARD_GRAVITY, Trace, read_trace, read_truth, write_trace

RETROSTEP = Path(sys.executable).with_name("retrostep")


def _walk(direction: str, seconds: float) -> list[dict]:
    return [
        {"activity": "stand", "duration": 3.0},
        {"activity": "walk", "direction": direction, "duration": seconds},
        {"activity": "stand", "duration": 3.0},
    ]


def _invoke(*args: str | Path, env: dict[str, str] | None = None):
    """Runs the CLI in process, stdout and stderr kept apart."""
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 always keeps them apart
    return runner.invoke(main, [str(a) for a in args], env=env)


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if not line.startswith("warning:")]


def _assert_clean_failure(result, code: int = 2) -> None:
    """Exit ``code`` through sys.exit (no stray exception), no traceback anywhere."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def walk(data: Path) -> tuple[Path, Trace, int]:
    """A 30 s forward walk at 100 Hz: (path of walk.csv.gz, trace, true step count)."""
    trace, truth = synth.synthesize(
        _walk("forward", 30.0), synth.make_person(3), fs_hz=100, seed=4, mount_tilt_deg=10
    )
    path = data / "walk.csv.gz"
    write_trace(path, trace)
    return path, trace, len(truth.steps)


@pytest.fixture(scope="module")
def three(data: Path) -> list[Path]:
    """Traces at 25, 52 and 100 Hz: forward, backward, and a forward/backward mix."""
    cases = [
        (25, _walk("forward", 20.0), "older"),
        (52, _walk("backward", 20.0), "adult"),
        (100, _walk("forward", 12.0) + _walk("backward", 12.0), "rehab"),
    ]
    paths = []
    for k, (fs, segments, kind) in enumerate(cases):
        person = synth.make_person(40 + k, kind=kind)
        trace, _ = synth.synthesize(segments, person, fs_hz=fs, seed=k)
        path = data / f"rate{fs}.csv.gz"
        write_trace(path, trace)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def small_csv_lines(walk) -> list[str]:
    """The first 10 s of the walk as plain CSV lines: 4 header lines, columns on line 5."""
    _, trace, _ = walk
    n = int(10 * trace.fs_hz)
    small = Trace(t=trace.t[:n], imu=trace.imu[:n], fs_hz=trace.fs_hz)
    tmp = walk[0].with_name("small.csv")
    write_trace(tmp, small)
    lines = tmp.read_text().splitlines()
    assert lines[4] == "t,ax,ay,az,gx,gy,gz"
    return lines


# --------------------------------------------------------------------------- analyze


def test_analyze_json_for_one_trace(walk):
    path, _, n_true = walk
    result = _invoke("analyze", path, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"steps", "sway_alerts", "summary"}
    steps = doc["steps"]
    assert steps and all(isinstance(s["t"], float) for s in steps)
    assert {s["direction"] for s in steps} <= {"forward", "backward"}
    assert isinstance(doc["sway_alerts"], list)
    assert doc["summary"]["steps"] == len(steps)
    assert abs(len(steps) - n_true) <= 0.05 * n_true, (len(steps), n_true)


def test_analyze_json_for_several_traces_is_a_list_with_sources(walk, three):
    inputs = [walk[0], three[0]]
    result = _invoke("analyze", *inputs, "--json")
    assert result.exit_code == 0, result.stderr
    docs = json.loads(result.stdout)
    assert [d["source"] for d in docs] == [str(p) for p in inputs]
    assert all(d["summary"]["steps"] > 0 for d in docs)


def test_analyze_out_writes_one_json_per_input_named_by_stem(walk, tmp_path):
    second = tmp_path / "second.csv.gz"
    second.write_bytes(walk[0].read_bytes())
    out = tmp_path / "res"
    result = _invoke("analyze", walk[0], second, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["second.json", "walk.json"]
    docs = [json.loads((out / name).read_text()) for name in ("walk.json", "second.json")]
    assert docs[0] == docs[1] and docs[0]["summary"]["steps"] > 0


def test_runtimes_agree_exactly(three):
    outputs = {}
    for runtime in ("micropython", "cpython"):
        result = _invoke("analyze", *three, "--json", "--runtime", runtime)
        assert result.exit_code == 0, result.stderr
        outputs[runtime] = json.loads(result.stdout)
    docs = outputs["cpython"]
    assert len(docs) == 3 and all(d["summary"]["steps"] > 10 for d in docs)
    assert {s["direction"] for d in docs for s in d["steps"]} == {"forward", "backward"}
    assert outputs["micropython"] == docs


def _edit(lines: list[str], lineno: int, new: str) -> list[str]:
    out = list(lines)
    out[lineno - 1] = new
    return out


def _bad_cases(lines: list[str]) -> dict[str, tuple[list[str], int]]:
    """name -> (file lines, line number the error must name)."""
    row = lines[9].split(",")
    earlier = lines[19].split(",")
    earlier[0] = f"{float(lines[18].split(',')[0]) - 0.005:.6f}"
    return {
        "not_a_number": (_edit(lines, 10, ",".join([row[0], "abc", *row[2:]])), 10),
        "time_backwards": (_edit(lines, 20, ",".join(earlier)), 20),
        "unknown_version": (_edit(lines, 1, "# format=retrostep-trace-v2"), 1),
    }


@pytest.mark.parametrize("case", ["not_a_number", "time_backwards", "unknown_version"])
def test_analyze_bad_trace_is_one_located_line(case, small_csv_lines, tmp_path):
    lines, lineno = _bad_cases(small_csv_lines)[case]
    path = tmp_path / f"{case}.csv"
    path.write_text("\n".join(lines) + "\n")
    result = _invoke("analyze", path)
    _assert_clean_failure(result)
    assert _error_lines(result) == [result.stderr.strip()]
    assert f"{path}:{lineno}: " in result.stderr
    assert result.stdout == ""


def test_analyze_missing_file(tmp_path):
    missing = tmp_path / "nowhere.csv"
    result = _invoke("analyze", missing, "--json")
    _assert_clean_failure(result)
    assert result.stderr.strip() == f"Error: {missing}: no such file"
    assert result.stdout == ""


def test_good_trace_is_analyzed_next_to_a_bad_one(walk, small_csv_lines, tmp_path):
    lines, _ = _bad_cases(small_csv_lines)["not_a_number"]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    result = _invoke("analyze", bad, walk[0], "--json")
    _assert_clean_failure(result)
    (error,) = _error_lines(result)
    assert f"{bad}:10: " in error
    docs = json.loads(result.stdout)
    assert [d["source"] for d in docs] == [str(walk[0])]
    assert docs[0]["summary"]["steps"] > 0


def test_trace_in_g_is_converted_with_a_warning(walk, tmp_path):
    _, trace, n_true = walk
    path = tmp_path / "in_g.csv"
    header = "# format=retrostep-trace-v1\n# fs_hz=100\nt,ax,ay,az,gx,gy,gz"
    imu = trace.imu.copy()
    imu[:, :3] /= STANDARD_GRAVITY
    np.savetxt(path, np.column_stack([trace.t, imu]), fmt="%.6f", delimiter=",",
               header=header, comments="")  # fmt: skip
    result = _invoke("analyze", path, "--json")
    assert result.exit_code == 0, result.stderr
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: ") and str(path) in warning and "like g" in warning
    steps = json.loads(result.stdout)["steps"]
    assert abs(len(steps) - n_true) <= 0.05 * n_true


def test_installed_entry_point_end_to_end(walk, small_csv_lines, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_text("\n".join(_bad_cases(small_csv_lines)["time_backwards"][0]) + "\n")
    proc = subprocess.run(
        [str(RETROSTEP), "analyze", str(walk[0]), str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (error,) = proc.stderr.strip().splitlines()
    assert error.startswith(f"Error: {bad}:20: time goes backwards")
    assert re.match(r"walk: \d+ steps \(\d+ forward, 0 backward\)", proc.stdout)


# --------------------------------------------------------------------------- synth


def test_synth_list_names_every_case():
    result = _invoke("synth", "--list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    names = [name for name, _ in synth.benchmark_suite()]
    assert [line.split()[0] for line in lines] == names
    assert all(" Hz " in line and " s " in line for line in lines)


def test_synth_writes_one_case(tmp_path):
    result = _invoke("synth", "--out", tmp_path, "--case", "stop_start_A3")
    assert result.exit_code == 0, result.stderr
    trace_path = tmp_path / "stop_start_A3.csv.gz"
    assert result.stdout.splitlines() == [str(trace_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "stop_start_A3.csv.gz",
        "stop_start_A3.truth.json",
    ]
    assert read_trace(trace_path).fs_hz == 52.0
    truth = read_truth(tmp_path / "stop_start_A3.truth.json")
    assert {s.direction for s in truth.steps} == {"forward", "backward"}


def test_synth_unknown_case_is_a_clean_error(tmp_path):
    result = _invoke("synth", "--out", tmp_path, "--case", "no_such_case")
    _assert_clean_failure(result)
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: unknown benchmark case 'no_such_case'")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- demo


def _session_lines(stdout: str) -> list[str]:
    """The demo's per-session output (without the header naming the runtime and the paths)."""
    body = stdout.split("Files written:")[0]
    return body.splitlines()[1:]


def test_demo_on_cpython_then_micropython_prints_the_same_sessions(tmp_path):
    out = tmp_path / "demo"
    result = _invoke("demo", "engine", "--out", out, "--runtime", "cpython")
    assert result.exit_code == 0, result.stderr
    assert "\x1b[" not in result.stdout  # not a terminal: no colour codes
    names = [s.name for s in session_specs()]
    for name in names:
        assert re.search(rf"^  {name}: \d+ steps", result.stdout, re.M), name
    assert re.search(r"^  interval_program: 2\d\d steps .* 1 sway alert", result.stdout, re.M)
    assert re.search(r"^  seated_fidgeting: 0 steps", result.stdout, re.M)
    assert result.stdout.count("accuracy: steps:") == 3
    assert "SWAY ALERT" in result.stdout
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"{n}.csv.gz" for n in names] + [f"{n}.truth.json" for n in names])

    proc = subprocess.run(
        [str(RETROSTEP), "demo", "engine", "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "MicroPython unix port" in proc.stdout.splitlines()[0]
    assert _session_lines(proc.stdout) == _session_lines(result.stdout)


def test_demo_runs_in_micropython_by_default(tmp_path):
    result = _invoke("demo", "engine", "--out", tmp_path,
                     env={"RETROSTEP_MICROPYTHON": "/nonexistent/mp"})
    _assert_clean_failure(result, code=3)
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: cannot start /nonexistent/mp")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "00:00.0"), (72.44, "01:12.4"), (59.97, "01:00.0")]
)
def test_clock(seconds, text):
    assert clock(seconds) == text


def _walk_trace(path, fs):
    from retrostep import synth
    from retrostep.trace import write_trace

    person = synth.make_person(3)
    trace, truth = synth.synthesize(
        [{"activity": "stand", "duration": 3}, {"activity": "walk", "duration": 20}],
        person,
        fs_hz=fs,
        seed=1,
    )
    write_trace(path, trace)
    return truth


def test_fast_recording_is_resampled_with_a_note(tmp_path):
    truth = _walk_trace(tmp_path / "fast.csv", 400)
    res = CliRunner().invoke(main, ["analyze", str(tmp_path / "fast.csv"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert abs(len(doc["steps"]) - len(truth.steps)) <= 2
    assert "resampled from 400 Hz to 100 Hz" in res.stderr


def test_too_slow_recording_is_refused_cleanly(tmp_path):
    _walk_trace(tmp_path / "slow.csv", 20)
    res = CliRunner().invoke(main, ["analyze", str(tmp_path / "slow.csv")])
    assert res.exit_code == 2
    assert "slow.csv" in res.stderr and "below the 25 Hz" in res.stderr
    assert "Traceback" not in res.output + res.stderr


def test_demo_replays_sessions_on_the_sim_board_with_matching_logs(tmp_path):
    res = CliRunner().invoke(main, ["demo", "engine", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    pattern = re.compile(
        r"(\d+) forward / (\d+) backward steps, (\d+) sway alert\(s\), \d+ motor pulse\(s\) "
        r"\(analysis: (\d+) / (\d+), (\d+)\)"
    )
    rows = [m.groups() for m in pattern.finditer(res.stdout)]
    assert len(rows) == 3
    for logged_f, logged_b, logged_a, fwd, bwd, alerts in rows:
        assert (logged_f, logged_b, logged_a) == (fwd, bwd, alerts)
    assert sum(int(r[0]) + int(r[1]) for r in rows) > 200
    assert (tmp_path / "flash.img").is_file()
