"""Trace format v1 reader/writer and the ground-truth sidecar (retrostep.trace)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from retrostep.errors import TraceError
from retrostep.trace import (
    STANDARD_GRAVITY,
    SwayEpisode,
    Trace,
    Truth,
    TruthStep,
    load_trace_with_truth,
    read_trace,
    read_truth,
    trace_stem,
    truth_path_for,
    write_trace,
    write_truth,
)

FS = 50.0
N = 500  # 10 s
FIRST_ROW_LINE = 4  # format, fs_hz, column header, then the rows


def _signals(n: int = N, fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    """A plausible walk: gravity on z plus small oscillations; t in s, imu in SI."""
    t = np.arange(n) / fs
    phase = 2 * np.pi * 1.8 * t
    imu = np.column_stack(
        [
            0.8 * np.sin(phase),
            0.3 * np.cos(phase),
            STANDARD_GRAVITY + 1.2 * np.sin(2 * phase),
            0.2 * np.sin(phase),
            0.1 * np.cos(phase),
            0.05 * np.sin(0.5 * phase),
        ]
    )
    return t, imu


def _lines(*, accel_scale: float = 1.0, gyro_scale: float = 1.0, extra=()) -> list[str]:
    """The text lines of a small valid trace (index i is file line i + 1)."""
    t, imu = _signals()
    imu = imu * np.repeat([accel_scale, gyro_scale], 3)
    table = np.column_stack([t, imu]).tolist()
    rows = [f"{row[0]:.4f}," + ",".join(f"{v:.6g}" for v in row[1:]) for row in table]
    header = ["# format=retrostep-trace-v1", f"# fs_hz={FS:g}", *extra, "t,ax,ay,az,gx,gy,gz"]
    return header + rows


def _write(tmp_path: Path, lines: list[str], name: str = "walk.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _message(path: Path, **kwargs) -> str:
    with pytest.raises(TraceError) as info:
        read_trace(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}"), message
    return message


def _set_cell(line: str, column: int, value: str) -> str:
    cells = line.split(",")
    cells[column] = value
    return ",".join(cells)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["walk.csv", "walk.csv.gz"])
def test_write_read_round_trip(tmp_path, name):
    t, imu = _signals()
    original = Trace(t, imu, FS, meta={"subject": "s01", "note": "a = b"})
    path = tmp_path / name
    write_trace(path, original)

    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_trace(path, log=pytest.fail)
    np.testing.assert_allclose(back.t, t, rtol=0, atol=1e-6)
    np.testing.assert_allclose(back.imu, imu, rtol=1e-5, atol=1e-9)
    assert back.imu.dtype == np.float64 and back.imu.shape == (N, 6)
    assert back.fs_hz == FS
    assert back.path == str(path)
    assert back.meta["subject"] == "s01" and back.meta["note"] == "a = b"
    assert list(back.meta)[:2] == ["format", "fs_hz"]


def test_writer_puts_format_first_and_does_not_copy_unit_keys(tmp_path):
    t, imu = _signals()
    # The arrays are SI whatever the source file said: a stale unit key must not survive.
    meta = {"format": "old", "fs_hz": "1", "accel_unit": "g", "gyro_unit": "deg/s", "k": "v"}
    path = tmp_path / "w.csv"
    write_trace(path, Trace(t, imu, FS, meta=meta))

    head = path.read_text().splitlines()[:6]
    assert head[0] == "# format=retrostep-trace-v1"
    assert head[1] == "# fs_hz=50"
    assert "# accel_unit=g" not in head and "# gyro_unit=deg/s" not in head
    assert "# k=v" in head
    np.testing.assert_allclose(read_trace(path).imu, imu, rtol=1e-5)


def test_gzip_is_detected_by_content_not_suffix(tmp_path):
    path = tmp_path / "walk.csv"
    path.write_bytes(gzip.compress(("\n".join(_lines()) + "\n").encode()))
    assert len(read_trace(path).t) == N


def test_reader_tolerates_whitespace_crlf_and_blank_lines(tmp_path):
    lines = _lines()
    lines[2] = "  t , ax,ay , az,gx,gy,gz  "
    lines.insert(FIRST_ROW_LINE + 9, "")  # a blank line between two rows
    path = tmp_path / "walk.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    trace = read_trace(path)
    assert len(trace.t) == N
    assert trace.imu[0, 2] == pytest.approx(STANDARD_GRAVITY + 1.2 * math.sin(0), abs=1e-4)


# --------------------------------------------------------------------------- bad traces


def _delete(index):
    return lambda lines: lines.__delitem__(index)


def _replace(index, text):
    return lambda lines: lines.__setitem__(index, text)


def _cell(index, column, value):
    return lambda lines: lines.__setitem__(index, _set_cell(lines[index], column, value))


def _swap(i, j):
    def mutate(lines):
        lines[i], lines[j] = lines[j], lines[i]

    return mutate


def _cut(start, stop):
    return lambda lines: lines.__delitem__(slice(start, stop))


BAD_TRACES = [
    # (mutation of _lines(), expected line number, key phrase)
    (_delete(0), 1, "missing '# format=retrostep-trace-v1'"),
    (
        _replace(0, "# format=retrostep-trace-v2"),
        1,
        "unsupported format 'retrostep-trace-v2' (this tool reads retrostep-trace-v1)",
    ),
    (_delete(1), 2, "missing '# fs_hz"),
    (_replace(1, "# fs_hz=fast"), 2, "fs_hz 'fast' is not a number"),
    (_replace(1, "# fs_hz=5000"), 2, "out of range"),
    (_replace(1, "# fs_hz=0.5"), 2, "out of range"),
    (lambda lines: lines.insert(1, "# recorded on a tuesday"), 2, "malformed header line"),
    (lambda lines: lines.insert(2, "# fs_hz=100"), 3, "duplicate key 'fs_hz'"),
    (lambda lines: lines.insert(2, "# accel_unit=mg"), 3, "unknown accel_unit 'mg'"),
    (_replace(2, "t,ax,ay,az,gx,gy"), 3, "missing gz"),
    (_replace(2, "t,ax,ay,az,gx,gy,gz,temp"), 3, "unexpected 'temp'"),
    (_replace(2, "time,ax,ay,az,gx,gy,gz"), 3, "missing t; unexpected 'time'"),
    (_replace(2, "t,ay,ax,az,gx,gy,gz"), 3, "wrong order"),
    (_delete(2), 3, "found a data row"),
    (lambda lines: lines.__delitem__(slice(3, None)), 3, "no samples"),
    (lambda lines: lines.__setitem__(12, lines[12].rsplit(",", 1)[0]), 13, "found 6"),
    (lambda lines: lines.__setitem__(13, lines[13] + ",0.0"), 14, "found 8"),
    (lambda lines: lines.insert(9, "# note=late"), 10, "only allowed before the column"),
    (_cell(20, 3, "abc"), 21, "column 'az': 'abc' is not a number"),
    (_cell(21, 1, ""), 22, "empty value in column 'ax'"),
    (_cell(30, 4, "nan"), 31, "column 'gx' is nan"),
    (_cell(31, 6, "-inf"), 32, "column 'gz' is -inf"),
    (_swap(40, 41), 42, "time goes backwards: 0.74 s after 0.76 s"),
    (_cell(50, 0, "0.9200"), 51, "time does not advance: 0.92 s repeated"),
    (_cut(100, 120), 101, "gap of 0.42 s"),
    (_replace(1, "# fs_hz=60"), 2, "fs_hz=60 does not match the samples"),
    (_replace(1, "# fs_hz=53"), 2, "does not match"),  # 6% off: just over the 5% tolerance
]


@pytest.mark.parametrize(("mutate", "line", "phrase"), BAD_TRACES)
def test_bad_trace_names_file_line_and_problem(tmp_path, mutate, line, phrase):
    lines = _lines()
    mutate(lines)
    path = _write(tmp_path, lines)
    message = _message(path)
    assert message.startswith(f"{path}:{line}: "), message
    assert phrase in message


def test_line_numbers_stay_right_after_a_blank_line(tmp_path):
    lines = _lines()
    lines.insert(10, "")
    lines[60] = _set_cell(lines[60], 5, "nan")  # parsed by numpy, which skips blank lines
    message = _message(_write(tmp_path, lines))
    assert ":61: column 'gy' is nan" in message


def test_sample_rate_within_tolerance_is_accepted(tmp_path):
    lines = _lines()
    lines[1] = "# fs_hz=51"  # 2% off the real 50 Hz
    assert read_trace(_write(tmp_path, lines)).fs_hz == 51.0


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    assert _message(path) == f"{path}: no such file"


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "walk.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(_lines()) + "\n").encode())[:200])
    assert "not a valid gzip file" in _message(path)


def test_binary_garbage_is_not_utf8(tmp_path):
    path = tmp_path / "walk.csv"
    path.write_bytes(b"# format=retrostep-trace-v1\n\xff\xfe\x00\n")
    assert _message(path).startswith(f"{path}:2: not UTF-8")


def test_implausible_acceleration(tmp_path):
    path = _write(tmp_path, _lines(accel_scale=3.0))  # ~29 m/s^2 at rest: neither SI nor g
    assert "acceleration magnitude is implausible" in _message(path)


# --------------------------------------------------------------------------- units


def test_undeclared_g_is_converted_with_one_warning(tmp_path):
    _, imu = _signals()
    path = _write(tmp_path, _lines(accel_scale=1 / STANDARD_GRAVITY))
    logged: list[str] = []
    trace = read_trace(path, log=logged.append)

    assert len(logged) == 1
    assert logged[0].startswith(f"{path}: acceleration looks like g (median |a| = 1.0")
    assert "# accel_unit=g" in logged[0]
    np.testing.assert_allclose(trace.imu[:, :3], imu[:, :3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(trace.imu[:, 3:], imu[:, 3:], rtol=1e-5)


def test_declared_g_is_converted_silently(tmp_path):
    _, imu = _signals()
    lines = _lines(accel_scale=1 / STANDARD_GRAVITY, extra=["# accel_unit=g"])
    trace = read_trace(_write(tmp_path, lines), log=pytest.fail)
    np.testing.assert_allclose(trace.imu[:, :3], imu[:, :3], rtol=1e-5, atol=1e-5)
    assert trace.meta["accel_unit"] == "g"


def test_declared_si_is_not_reinterpreted(tmp_path):
    # 1 m/s^2 declared as such is not silently taken for g: it is rejected as implausible.
    lines = _lines(accel_scale=1 / STANDARD_GRAVITY, extra=["# accel_unit=m/s^2"])
    assert "implausible" in _message(_write(tmp_path, lines), log=pytest.fail)


def test_undeclared_deg_per_s_is_converted_with_one_warning(tmp_path):
    _, imu = _signals()
    # A brisker turn (peaks 2 rad/s = 115 deg/s) written in deg/s without saying so.
    lines = _lines(gyro_scale=10 * 180 / math.pi)
    logged: list[str] = []
    trace = read_trace(_write(tmp_path, lines), log=logged.append)

    assert len(logged) == 1 and "angular rate looks like deg/s" in logged[0]
    np.testing.assert_allclose(trace.imu[:, 3:], imu[:, 3:] * 10, rtol=1e-5)


def test_declared_deg_per_s_is_converted_silently(tmp_path):
    _, imu = _signals()
    lines = _lines(gyro_scale=180 / math.pi, extra=["# gyro_unit=deg/s"])
    trace = read_trace(_write(tmp_path, lines), log=pytest.fail)
    np.testing.assert_allclose(trace.imu[:, 3:], imu[:, 3:], rtol=1e-5)


def test_default_log_is_stderr(tmp_path, capsys):
    read_trace(_write(tmp_path, _lines(accel_scale=1 / STANDARD_GRAVITY)))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("looks like g") == 1


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "stem"),
    [("walk.csv.gz", "walk"), ("walk.csv", "walk"), ("walk.gz", "walk"), ("a.b.CSV", "a.b")],
)
def test_trace_stem(name, stem):
    assert trace_stem(Path("/data") / name) == stem


def test_truth_path_for():
    assert truth_path_for("/data/s01/walk.csv.gz") == Path("/data/s01/walk.truth.json")


# --------------------------------------------------------------------------- ground truth


def _truth() -> Truth:
    return Truth(
        steps=[TruthStep(1.25, "backward"), TruthStep(1.9, "forward")],
        sway_episodes=[
            SwayEpisode(3.0, 4.5, 12.5, "left", t_over_limit=3.4, limit_deg=10.0),
            SwayEpisode(6.0, 6.8, 7.0, "right"),
        ],
        scored_intervals=[(0.5, 9.5)],
        segments=[{"start": 0, "end": 10, "activity": "walk_backward"}],
        meta={"source": "synth", "seed": 3},
    )


def test_truth_round_trip(tmp_path):
    path = tmp_path / "walk.truth.json"
    write_truth(path, _truth())
    assert json.loads(path.read_text())["format"] == "retrostep-truth-v1"
    assert read_truth(path) == _truth()


def test_truth_without_scored_intervals_round_trips_as_none(tmp_path):
    path = tmp_path / "walk.truth.json"
    write_truth(path, Truth(steps=[TruthStep(0.5, "forward")]))
    assert json.loads(path.read_text())["scored_intervals"] is None
    assert read_truth(path).scored_intervals is None


def test_truth_invalid_json_names_line(tmp_path):
    path = tmp_path / "walk.truth.json"
    path.write_text('{\n  "format": "retrostep-truth-v1",\n  "steps": [,]\n}\n')
    with pytest.raises(TraceError, match=r"walk\.truth\.json:3: invalid JSON"):
        read_truth(path)


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"format": "retrostep-truth-v9"}, 'format "retrostep-truth-v9"'),
        ({"steps": [{"t": 1.0, "direction": "sideways"}]}, "steps[0].direction must be"),
        ({"steps": [{"t": "1.0", "direction": "forward"}]}, "steps[0].t must be a finite"),
        ({"steps": {"t": 1.0}}, "'steps' must be a list"),
        ({"sway_episodes": [{"start": 2, "end": 1, "peak_deg": 9, "side": "left"}]}, "ends"),
        ({"sway_episodes": [{"start": 1, "end": 2, "peak_deg": 9, "side": "up"}]}, ".side"),
        ({"scored_intervals": [[0, 1, 2]]}, "scored_intervals[0] must be [start, end]"),
    ],
)
def test_bad_truth(tmp_path, change, phrase):
    path = tmp_path / "walk.truth.json"
    write_truth(path, _truth())
    doc = json.loads(path.read_text())
    doc.update(change)
    path.write_text(json.dumps(doc))
    with pytest.raises(TraceError) as info:
        read_truth(path)
    assert str(info.value).startswith(f"{path}: ")
    assert phrase in str(info.value)


def test_load_trace_with_truth(tmp_path):
    path = _write(tmp_path, _lines(), name="walk.csv.gz")  # plain text despite the suffix
    trace, truth = load_trace_with_truth(path)
    assert len(trace.t) == N and truth is None

    write_truth(tmp_path / "walk.truth.json", _truth())
    trace, truth = load_trace_with_truth(path)
    assert truth == _truth()


def test_short_gap_is_interpolated_with_one_warning(tmp_path):
    lines = _lines()
    del lines[60:63]  # three dropped samples (0.06 s at 50 Hz)
    logged: list[str] = []
    trace = read_trace(_write(tmp_path, lines), log=logged.append)
    assert len(logged) == 1 and "1 short gap(s)" in logged[0] and "3 interpolated" in logged[0]
    assert len(trace.t) == len(_lines()) - 3  # header lines excluded, samples restored
    np.testing.assert_allclose(np.diff(trace.t), 1 / FS, rtol=1e-3)


def test_gentle_deg_per_s_is_recognised(tmp_path):
    # Slow walking whose angular rate never exceeds 12 deg/s, written in deg/s.
    lines = _lines(gyro_scale=180 / math.pi)
    logged: list[str] = []
    read_trace(_write(tmp_path, lines), log=logged.append)
    assert len(logged) == 1 and "deg/s" in logged[0]
