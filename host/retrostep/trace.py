"""Trace format v1 ("retrostep trace v1") and its ground-truth sidecar.

A trace is CSV text, optionally gzip-compressed (``.csv.gz``)::

    # format=retrostep-trace-v1
    # fs_hz=100
    # ...any other key=value lines...
    t,ax,ay,az,gx,gy,gz
    0.000,0.12,-0.03,9.79,0.001,0.002,-0.010
    ...

Frame FLU as worn (x forward, y left, z up), acceleration in m/s^2 including gravity,
angular rate in rad/s, ``t`` in seconds. The ground-truth sidecar is JSON next to the
trace, named ``<stem>.truth.json``.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TraceError

FORMAT_NAME = "retrostep-trace-v1"
TRUTH_FORMAT_NAME = "retrostep-truth-v1"
COLUMNS = ("t", "ax", "ay", "az", "gx", "gy", "gz")
STANDARD_GRAVITY = 9.80665


@dataclass
class Trace:
    """IMU samples in SI units, FLU frame."""

    t: np.ndarray  # shape (n,), seconds, strictly increasing
    imu: np.ndarray  # shape (n, 6), float64: ax, ay, az [m/s^2], gx, gy, gz [rad/s]
    fs_hz: float
    meta: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    @property
    def duration_s(self) -> float:
        return float(len(self.t)) / self.fs_hz if len(self.t) else 0.0


@dataclass
class TruthStep:
    t: float  # initial contact, seconds (same clock as the trace's t column)
    direction: str  # "forward" | "backward"


@dataclass
class SwayEpisode:
    start: float  # seconds: the excursion leaves the baseline
    end: float  # seconds: back at the baseline
    peak_deg: float  # largest roll deviation from the walking baseline, degrees
    side: str  # "left" | "right"
    # First moment the deviation exceeds ``limit_deg`` (None if it never does).
    t_over_limit: float | None = None
    limit_deg: float = 10.0


@dataclass
class Truth:
    steps: list[TruthStep] = field(default_factory=list)
    sway_episodes: list[SwayEpisode] = field(default_factory=list)
    # Intervals [start, end] in seconds where the step list is complete; detections
    # outside them are not scored. None means the whole trace.
    scored_intervals: list[tuple[float, float]] | None = None
    # Labelled activity segments, e.g. {"start": 0, "end": 30, "activity": "walk_backward"}.
    segments: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading traces

ACCEL_UNITS = {"m/s^2": 1.0, "g": STANDARD_GRAVITY}  # factor to m/s^2
GYRO_UNITS = {"rad/s": 1.0, "deg/s": math.pi / 180.0}  # factor to rad/s
FS_RANGE_HZ = (1.0, 2000.0)
GAP_FACTOR = 1.5  # a time step above this many sample periods is a gap
RATE_TOLERANCE = 0.05  # allowed relative mismatch of the median time step and 1/fs_hz
G_RANGE = (0.5, 2.0)  # median |a| in this range: the data is evidently in g
ACCEL_PLAUSIBLE = (4.0, 20.0)  # plausible median |a| in m/s^2 (gravity plus motion)
GYRO_MAX_RAD_S = 50.0  # a human trunk never turns this fast; larger values mean deg/s
# Also deg/s: the 99th percentile of |rate| above this (a walking trunk stays well under
# 8 rad/s nearly all the time; in deg/s even gentle walking exceeds 8).
GYRO_P99_RAD_S = 8.0
MAX_FILL_S = 0.25  # shorter gaps (a few dropped samples) are interpolated, with a warning

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_GZIP_MAGIC = b"\x1f\x8b"


def _error(path: str | os.PathLike, line: int | None, what: str) -> TraceError:
    where = f"{path}:{line}" if line is not None else f"{path}"
    return TraceError(f"{where}: {what}")


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr)


def _read_text(path: str | os.PathLike) -> str:
    """The whole file as text: gunzipped when it starts with the gzip magic bytes."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise _error(path, None, "no such file") from None
    except IsADirectoryError:
        raise _error(path, None, "is a directory, not a trace file") from None
    except OSError as exc:
        raise _error(path, None, f"cannot read: {exc.strerror or exc}") from None
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise _error(path, None, f"not a valid gzip file ({exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _error(path, line, "not UTF-8 text (is this really a trace CSV?)") from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


@dataclass
class _Header:
    meta: dict[str, str]
    key_lines: dict[str, int]  # key -> 1-based line where it was given
    columns_line: int  # 1-based line of the column header
    body_start: int  # offset in the text where the sample rows begin


def _parse_header(path: str | os.PathLike, text: str) -> _Header:
    """Reads the ``# key=value`` lines and the column header; checks format and columns."""
    meta: dict[str, str] = {}
    key_lines: dict[str, int] = {}
    pos, lineno = 0, 0
    while True:
        if pos >= len(text):
            if "format" not in meta:
                hint = " (the file is empty)" if not text.strip() else ""
                raise _error(path, 1, f"missing '# format={FORMAT_NAME}' line{hint}")
            raise _error(path, max(lineno, 1), f"no column header '{','.join(COLUMNS)}'")
        end = text.find("\n", pos)
        if end < 0:
            end = len(text)
        line = text[pos:end].strip()
        lineno += 1
        pos = end + 1
        if not line:
            continue
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY_RE.fullmatch(key):
            raise _error(path, lineno, f"malformed header line {line!r} (expected '# key=value')")
        if key in meta:
            raise _error(
                path, lineno, f"duplicate key '{key}' (first given at line {key_lines[key]})"
            )
        meta[key] = value
        key_lines[key] = lineno
    header = _Header(meta, key_lines, lineno, pos)
    _check_meta(path, header)
    _check_columns(path, line, lineno)
    return header


def _check_meta(path: str | os.PathLike, header: _Header) -> None:
    meta, lines = header.meta, header.key_lines
    if "format" not in meta:
        raise _error(path, 1, f"missing '# format={FORMAT_NAME}' line")
    if meta["format"] != FORMAT_NAME:
        raise _error(
            path,
            lines["format"],
            f"unsupported format {meta['format']!r} (this tool reads {FORMAT_NAME})",
        )
    if "fs_hz" not in meta:
        raise _error(
            path, header.columns_line, "missing '# fs_hz=<sample rate>' before the columns"
        )
    try:
        fs_hz = float(meta["fs_hz"])
    except ValueError:
        raise _error(path, lines["fs_hz"], f"fs_hz {meta['fs_hz']!r} is not a number") from None
    lo, hi = FS_RANGE_HZ
    if not lo <= fs_hz <= hi:  # also rejects nan
        raise _error(
            path, lines["fs_hz"], f"fs_hz {meta['fs_hz']} is out of range ({lo:g}..{hi:g} Hz)"
        )
    for key, units in (("accel_unit", ACCEL_UNITS), ("gyro_unit", GYRO_UNITS)):
        if key in meta and meta[key] not in units:
            accepted = " or ".join(repr(u) for u in units)
            raise _error(path, lines[key], f"unknown {key} {meta[key]!r} (use {accepted})")


def _check_columns(path: str | os.PathLike, line: str, lineno: int) -> None:
    cells = [c.strip() for c in line.split(",")]
    if cells == list(COLUMNS):
        return
    expected = ",".join(COLUMNS)
    if all(_is_number(c) for c in cells):
        raise _error(path, lineno, f"expected the column header '{expected}', found a data row")
    missing = [c for c in COLUMNS if c not in cells]
    unexpected = [c for c in cells if c not in COLUMNS]
    repeated = sorted({c for c in cells if c in COLUMNS and cells.count(c) > 1})
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected " + ", ".join(repr(c) for c in unexpected))
    if repeated:
        problems.append("repeated " + ", ".join(repeated))
    if not problems:
        problems.append("columns in the wrong order")
    raise _error(path, lineno, f"bad column header ({'; '.join(problems)}); expected '{expected}'")


def _is_number(cell: str) -> bool:
    if not cell or "_" in cell:  # float() accepts "1_000"; numpy does not
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _scan_rows(path: str | os.PathLike, body: str, first_line: int) -> tuple[np.ndarray, list[int]]:
    """Slow, exact parse of the sample rows; raises at the first offending line.

    Returns the (n, 7) values and the 1-based file line of each row. Blank lines are skipped.
    """
    rows: list[list[float]] = []
    lines: list[int] = []
    for lineno, raw in enumerate(body.split("\n"), start=first_line):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            raise _error(path, lineno, "'#' lines are only allowed before the column header")
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(COLUMNS):
            raise _error(
                path,
                lineno,
                f"expected {len(COLUMNS)} values ({','.join(COLUMNS)}), found {len(cells)}",
            )
        values = []
        for name, cell in zip(COLUMNS, cells, strict=True):
            if not cell:
                raise _error(path, lineno, f"empty value in column '{name}'")
            if not _is_number(cell):
                raise _error(path, lineno, f"column '{name}': {cell!r} is not a number")
            value = float(cell)
            if not math.isfinite(value):
                raise _error(path, lineno, f"column '{name}' is {cell} (values must be finite)")
            values.append(value)
        rows.append(values)
        lines.append(lineno)
    return np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS)), lines


def _parse_rows(path: str | os.PathLike, text: str, header: _Header) -> tuple[np.ndarray, Callable]:
    """Parses the sample rows (fast path: numpy). Returns values and row index -> file line."""
    body = text[header.body_start :]
    first_line = header.columns_line + 1
    if not body.strip():
        raise _error(path, header.columns_line, "no samples after the column header")
    try:
        values = np.loadtxt(
            io.StringIO(body), delimiter=",", comments=None, ndmin=2, dtype=np.float64
        )
    except ValueError:
        values = None
    if values is None or values.shape[1] != len(COLUMNS):
        values, lines = _scan_rows(path, body, first_line)  # raises at the bad line
        return values, lines.__getitem__
    n_lines = body.count("\n") + (0 if body.endswith("\n") else 1)
    if len(values) == n_lines:
        return values, lambda i: first_line + i
    # numpy skipped blank lines: map rows to lines only if an error needs it.
    return values, lambda i: _scan_rows(path, body, first_line)[1][i]


def _check_rows(
    path: str | os.PathLike, values: np.ndarray, line_of: Callable, header: _Header
) -> None:
    """Finite values, strictly increasing time, rate matching fs_hz, no gaps."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise _error(
            path,
            line_of(int(row)),
            f"column '{COLUMNS[col]}' is {values[row, col]} (values must be finite)",
        )
    t = values[:, 0]
    if len(t) < 2:
        return
    dt = np.diff(t)
    nonpos = np.flatnonzero(dt <= 0)
    if nonpos.size:
        i = int(nonpos[0])
        prev, cur = _format_pair(t[i], t[i + 1])
        what = (
            f"time goes backwards: {cur} s after {prev} s"
            if dt[i] < 0
            else f"time does not advance: {cur} s repeated"
        )
        raise _error(path, line_of(i + 1), what)
    fs_hz = float(header.meta["fs_hz"])
    period = 1.0 / fs_hz
    median = float(np.median(dt))
    if abs(median - period) > RATE_TOLERANCE * period:
        raise _error(
            path,
            header.key_lines["fs_hz"],
            f"fs_hz={header.meta['fs_hz']} does not match the samples: median time step "
            f"{median:.4g} s ({1.0 / median:.4g} Hz), expected {period:.4g} s",
        )
    gaps = np.flatnonzero(dt > max(GAP_FACTOR * period, MAX_FILL_S + 0.5 * period))
    if gaps.size:
        i = int(gaps[0])
        raise _error(
            path,
            line_of(i + 1),
            f"gap of {dt[i]:.2f} s after t = {t[i]:.2f} s (expected a sample every {period:.4g} s)",
        )


def _fill_short_gaps(
    path: str | os.PathLike, values: np.ndarray, fs_hz: float, log: Callable[[str], None]
) -> np.ndarray:
    """Interpolate the samples missing in gaps of at most ``MAX_FILL_S`` (longer gaps were
    rejected before), so that the sample index keeps meaning time."""
    t = values[:, 0]
    period = 1.0 / fs_hz
    dt = np.diff(t)
    gaps = np.flatnonzero(dt > GAP_FACTOR * period)
    if not gaps.size:
        return values
    extra_t = [t[i] + period * np.arange(1, int(round(dt[i] / period))) for i in gaps]
    new_t = np.sort(np.concatenate([t, *extra_t]))
    out = np.empty((len(new_t), values.shape[1]))
    out[:, 0] = new_t
    for c in range(1, values.shape[1]):
        out[:, c] = np.interp(new_t, t, values[:, c])
    log(
        f"{path}: {len(gaps)} short gap(s) (longest {dt[gaps].max():.3f} s) filled with "
        f"{len(new_t) - len(t)} interpolated sample(s)"
    )
    return out


def _format_pair(a: float, b: float) -> tuple[str, str]:
    """Formats two different times with just enough decimals to tell them apart."""
    for digits in range(2, 10):
        sa, sb = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if sa != sb:
            return sa, sb
    return repr(float(a)), repr(float(b))


def _to_si(
    path: str | os.PathLike,
    values: np.ndarray,
    header: _Header,
    log: Callable[[str], None],
) -> np.ndarray:
    """The (n, 6) IMU block in m/s^2 and rad/s, honouring or inferring the units."""
    imu = np.array(values[:, 1:], dtype=np.float64, order="C")
    accel, gyro = imu[:, :3], imu[:, 3:]
    meta = header.meta
    median_a = float(np.median(np.linalg.norm(accel, axis=1)))
    if "accel_unit" in meta:
        accel *= ACCEL_UNITS[meta["accel_unit"]]
        median_a *= ACCEL_UNITS[meta["accel_unit"]]
    elif G_RANGE[0] <= median_a <= G_RANGE[1]:
        accel *= STANDARD_GRAVITY
        log(
            f"{path}: acceleration looks like g (median |a| = {median_a:.2f}); "
            "converted to m/s^2 (declare '# accel_unit=g' to silence)"
        )
        median_a *= STANDARD_GRAVITY
    lo, hi = ACCEL_PLAUSIBLE
    if not lo <= median_a <= hi:
        raise _error(
            path,
            header.key_lines.get("accel_unit"),
            f"acceleration magnitude is implausible: median |a| = {median_a:.3g} m/s^2 "
            f"(expected {lo:g}..{hi:g} m/s^2 with gravity included, or 0.5..2 in g)",
        )
    if "gyro_unit" in meta:
        gyro *= GYRO_UNITS[meta["gyro_unit"]]
    else:
        max_g = float(np.max(np.abs(gyro)))
        p99 = float(np.percentile(np.abs(gyro), 99))
        if max_g > GYRO_MAX_RAD_S or p99 > GYRO_P99_RAD_S:
            gyro *= GYRO_UNITS["deg/s"]
            log(
                f"{path}: angular rate looks like deg/s (max |g| = {max_g:.1f}); "
                "converted to rad/s (declare '# gyro_unit=deg/s' to silence)"
            )
    return imu


def read_trace(path: str | os.PathLike, *, log: Callable[[str], None] | None = None) -> Trace:
    """Reads a trace v1 file (``.csv`` or gzip-compressed, detected by its magic bytes).

    Returns ``t`` in seconds and ``imu`` (n, 6) in m/s^2 and rad/s; units declared with
    ``# accel_unit=g`` / ``# gyro_unit=deg/s`` are converted, undeclared g or deg/s data is
    detected, converted and reported through ``log`` (default: one line on stderr).
    Every problem raises :class:`TraceError` with a one-line ``"<path>:<line>: ..."`` message.
    """
    log = log or _stderr_log
    text = _read_text(path)
    header = _parse_header(path, text)
    values, line_of = _parse_rows(path, text, header)
    _check_rows(path, values, line_of, header)
    values = _fill_short_gaps(path, values, float(header.meta["fs_hz"]), log)
    imu = _to_si(path, values, header, log)
    return Trace(
        t=np.ascontiguousarray(values[:, 0]),
        imu=imu,
        fs_hz=float(header.meta["fs_hz"]),
        meta=dict(header.meta),
        path=str(path),
    )


# --------------------------------------------------------------------------- writing traces

_ROW_FORMAT = "%.6f" + ",%.6g" * 6  # t to 1 us; IMU values to 6 significant digits


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _error(path, None, f"cannot write: {exc.strerror or exc}") from None


def write_trace(path: str | os.PathLike, trace: Trace) -> None:
    """Writes ``trace`` (SI units) as trace v1; gzip-compressed when ``path`` ends in ``.gz``.

    Header: format, fs_hz, explicit ``accel_unit=m/s^2`` / ``gyro_unit=rad/s``, then the other
    ``trace.meta`` keys in order. Values round-trip to 5e-6 relative (t to 1 microsecond).
    """
    path = Path(path)
    t = np.asarray(trace.t, dtype=np.float64).reshape(-1)
    imu = np.asarray(trace.imu, dtype=np.float64)
    if imu.shape != (len(t), 6):
        raise ValueError(f"imu must have shape ({len(t)}, 6), not {imu.shape}")
    lines = [f"# format={FORMAT_NAME}", f"# fs_hz={float(trace.fs_hz):.10g}"]
    lines += ["# accel_unit=m/s^2", "# gyro_unit=rad/s"]
    for key, value in trace.meta.items():
        if key in ("format", "fs_hz", "accel_unit", "gyro_unit"):
            continue
        value = str(value)
        if not _KEY_RE.fullmatch(key) or "\n" in value or "\r" in value:
            raise _error(path, None, f"cannot write meta {key!r}={value!r} as '# key=value'")
        lines.append(f"# {key}={value}")
    lines.append(",".join(COLUMNS))
    table = np.column_stack([t, imu]).tolist()
    lines += [_ROW_FORMAT % tuple(row) for row in table]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=1, mtime=0)
    _write_atomic(path, data)


def trace_stem(path: str | os.PathLike) -> str:
    """File name without ``.csv.gz``, ``.csv`` or ``.gz`` (``walk.csv.gz`` -> ``walk``)."""
    name = Path(path).name
    for suffix in (".csv.gz", ".csv", ".gz"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def truth_path_for(trace_path: str | os.PathLike) -> Path:
    """The ground-truth sidecar of a trace: ``<dir>/<stem>.truth.json``."""
    trace_path = Path(trace_path)
    return trace_path.with_name(f"{trace_stem(trace_path)}.truth.json")


# --------------------------------------------------------------------------- ground truth


def write_truth(path: str | os.PathLike, truth: Truth) -> None:
    """Writes the ground-truth sidecar as JSON (times in seconds, angles in degrees)."""
    doc = {
        "format": TRUTH_FORMAT_NAME,
        "steps": [{"t": float(s.t), "direction": s.direction} for s in truth.steps],
        "sway_episodes": [
            {
                "start": float(e.start),
                "end": float(e.end),
                "peak_deg": float(e.peak_deg),
                "side": e.side,
                "t_over_limit": None if e.t_over_limit is None else float(e.t_over_limit),
                "limit_deg": float(e.limit_deg),
            }
            for e in truth.sway_episodes
        ],
        "scored_intervals": (
            None
            if truth.scored_intervals is None
            else [[float(s), float(e)] for s, e in truth.scored_intervals]
        ),
        "segments": list(truth.segments),
        "meta": dict(truth.meta),
    }
    _write_atomic(Path(path), (json.dumps(doc, indent=1) + "\n").encode("utf-8"))


def _number(path, where: str, value, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error(path, None, f"{where} must be a finite number, not {json.dumps(value)}")
    return float(value)


def _choice(path, where: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        names = " or ".join(repr(a) for a in allowed)
        raise _error(path, None, f"{where} must be {names}, not {json.dumps(value)}")
    return value


def _items(path, doc: dict, key: str, kind: type, default):
    value = doc.get(key, default)
    if value is default:
        return value
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise _error(path, None, f"'{key}' must be a list of {kind.__name__}s")
    return value


def read_truth(path: str | os.PathLike) -> Truth:
    """Reads and validates a ground-truth sidecar; problems raise :class:`TraceError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(path, None, f"cannot read: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(doc, dict):
        raise _error(path, None, "expected a JSON object")
    if doc.get("format") != TRUTH_FORMAT_NAME:
        found = "no 'format'" if "format" not in doc else f"format {json.dumps(doc['format'])}"
        raise _error(path, None, f"unsupported truth file: {found} (expected {TRUTH_FORMAT_NAME})")

    steps = [
        TruthStep(
            t=_number(path, f"steps[{i}].t", s.get("t")),
            direction=_choice(
                path, f"steps[{i}].direction", s.get("direction"), ("forward", "backward")
            ),
        )
        for i, s in enumerate(_items(path, doc, "steps", dict, []))
    ]
    episodes = []
    for i, e in enumerate(_items(path, doc, "sway_episodes", dict, [])):
        where = f"sway_episodes[{i}]"
        episode = SwayEpisode(
            start=_number(path, f"{where}.start", e.get("start")),
            end=_number(path, f"{where}.end", e.get("end")),
            peak_deg=_number(path, f"{where}.peak_deg", e.get("peak_deg")),
            side=_choice(path, f"{where}.side", e.get("side"), ("left", "right")),
            t_over_limit=_number(
                path, f"{where}.t_over_limit", e.get("t_over_limit"), optional=True
            ),
            limit_deg=_number(path, f"{where}.limit_deg", e.get("limit_deg", 10.0)),
        )
        if episode.end < episode.start:
            raise _error(path, None, f"{where} ends before it starts")
        episodes.append(episode)
    intervals = None
    raw_intervals = _items(path, doc, "scored_intervals", list, None)
    if raw_intervals is not None:
        intervals = []
        for i, pair in enumerate(raw_intervals):
            if len(pair) != 2:
                raise _error(path, None, f"scored_intervals[{i}] must be [start, end]")
            start = _number(path, f"scored_intervals[{i}][0]", pair[0])
            end = _number(path, f"scored_intervals[{i}][1]", pair[1])
            if end < start:
                raise _error(path, None, f"scored_intervals[{i}] ends before it starts")
            intervals.append((start, end))
    segments = _items(path, doc, "segments", dict, [])
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise _error(path, None, "'meta' must be a JSON object")
    return Truth(steps, episodes, intervals, segments, meta)


def load_trace_with_truth(
    path: str | os.PathLike, *, log: Callable[[str], None] | None = None
) -> tuple[Trace, Truth | None]:
    """The trace and its ``<stem>.truth.json`` sidecar (None when there is none)."""
    trace = read_trace(path, log=log)
    sidecar = truth_path_for(path)
    return trace, (read_truth(sidecar) if sidecar.exists() else None)
