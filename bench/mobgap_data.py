"""Mobilise-D lab example recordings (from the mobgap 1.2.0 sdist) as retrostep traces.

The source distribution of ``mobgap`` 1.2.0 on PyPI (Apache-2.0) carries lower-back IMU
recordings of the Mobilise-D technical validation study in ``example_data/data/lab/``:
3 participants (HA/001, HA/002, MS/001) x 3 trials (Test5 Trial1/2 = "Straight Walk
Comfortable", Test11 Trial1 = "Simulated Daily Activities"), McRoberts MM+ sensor at 100 Hz
(acceleration in g, angular rate in deg/s), reference from the INDIP system. The data is never
copied into this repository: it is downloaded at benchmark time into a cache directory.

Usage::

    python -m bench.mobgap_data --out DIR [--cache DIR]

Failure handling: :func:`fetch_mobgap_sdist` raises :class:`DataUnavailable` whose message
says why (e.g. ``registry not reachable: ...``); a benchmark catches it and reports the
reason instead of failing.

Reference conventions (evidence: mobgap 1.2.0 ``src/mobgap/data/_mobilised_matlab_loader.py``,
``parse_reference_parameters``, and the files themselves):

* ``Standards.INDIP.ContinuousWalkingPeriod`` is the list of walking bouts (mobgap's "wb"
  level; ``MicroWB`` is identical in these files). ``Start``/``End`` and the
  ``InitialContact_Event`` list are in **seconds** since the start of the recording
  (mobgap: ``as_samples(wb["Start"], fs)`` and ``ic * fs``), while ``Stride_InitialContacts``
  is in INDIP **samples** (e.g. 505 for the IC at 5.05 s), which cross-checks the 100 Hz
  reference rate (``INDIP.Fs`` = 100 = the sensor rate in every trial).
* Those seconds were produced in MATLAB, where ``round(s * fs)`` is used as a 1-based
  sample index; mobgap therefore subtracts one sample from every event and start
  (``ics["ic"] -= 1``, ``walking_bouts["start"] -= 1``; mobgap issue #77). On our clock
  (t = 0 at the first sample, t = i / fs) an event at ``s`` seconds is at
  ``(round(s * fs) - 1) / fs``, i.e. 10 ms earlier; see :func:`reference_time`.
* ICs are absolute (not relative to the bout). Some are NaN (INDIP knows a step happened
  but could not time it), some are duplicated or nearly so (a right and a left IC 10 ms
  apart), and some Test11 bouts miss steps (two same-foot ICs in a row, gaps of 1-2 s in
  turns). mobgap drops NaNs, duplicates and ICs after the bout end; we do the same, also
  merge ICs closer than the scorer's matching tolerance, and leave the stretches where a
  reference step is evidently missing unscored (see :func:`reference_holes`), so a correct
  detection there is not counted as a false positive.
* INDIP gives no walking direction. Test5 is a straight walk at comfortable speed; Test11
  is mobgap's "Simulated Daily Activities" (several walking bouts with turns of 50-200
  degrees, separated by non-walking periods). Every reference IC is labelled "forward";
  an isolated step (e.g. one step back to a chair) does not form a Mobilise-D walking
  bout, so it lies outside the scored intervals unless it is within the margin of a bout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from retrostep.metrics import MATCH_TOLERANCE_S
from retrostep.trace import (
    STANDARD_GRAVITY,
    Trace,
    Truth,
    TruthStep,
    read_truth,
    truth_path_for,
    write_trace,
    write_truth,
)

MOBGAP_VERSION = "1.2.0"
SDIST_NAME = f"mobgap-{MOBGAP_VERSION}.tar.gz"
# sha256 of mobgap-1.2.0.tar.gz as served by PyPI (checked after every download and on reuse).
SDIST_SHA256 = "26f3ec1173f74ad873d13dabe0fd75dde8554720595ebc39159ee18dbea31351"
LAB_SUBDIR = "example_data/data/lab"
PIP_TIMEOUT_S = 300.0
SOURCE = f"mobgap-{MOBGAP_VERSION} example_data"
LICENSE = "Apache-2.0"

# Scored intervals: reference walking bouts widened by this much on each side, so a
# detection matched to the first/last reference IC (within MATCH_TOLERANCE_S) is scored.
SCORE_MARGIN_S = 0.5
# A reference step is taken as missing between two consecutive ICs when a NaN IC lies
# between them, when both are of the same foot, or when their gap exceeds this fraction
# of the bout's median stride time (IC to the next-but-one IC; a stride rather than a step
# so that asymmetric, long-short gaits are not flagged). The gap minus HOLE_EDGE_S at both
# ends is left unscored; HOLE_EDGE_S exceeds the matching tolerance, so the two bounding
# ICs stay scored.
HOLE_STRIDE_FACTOR = 0.85
# Reference ICs closer than this to an earlier one of the same bout are dropped (INDIP
# lists e.g. a right and a left IC 10 ms apart at a gait start): the scorer matches one
# detection per step within MATCH_TOLERANCE_S, so such a pair could never both be found.
MIN_IC_GAP_S = MATCH_TOLERANCE_S
HOLE_EDGE_S = MATCH_TOLERANCE_S + 0.05

# Mobilise-D TVS laboratory test names (mobgap TVSLabDataset.TEST_NAMES_PRETTY).
TEST_NAMES = {
    "Test4": "TUG",
    "Test5": "Straight Walk Comfortable",
    "Test6": "Straight Walk Slow",
    "Test7": "Straight Walk Fast",
    "Test8": "L-Test",
    "Test9": "Surface Test",
    "Test10": "Hallway Test",
    "Test11": "Simulated Daily Activities",
}

# McRoberts MM+ sensor frame -> our FLU body frame: flu = SENSOR_TO_FLU @ sensor, for both
# the accelerometer and the gyroscope (a proper rotation, det = +1).
#
# Evidence:
# * mobgap docs/guides/coordinate_system.md: the sensor frame (MM+ as worn) has x pointing
#   up, y to the right and z forward, is right-handed, and positive angular rates follow
#   the right-hand rule; to_body_frame renames x -> IS, y -> ML, z -> PA. Hence
#   forward = +z, left = -y, up = +x. mobgap's INITIAL_MOBILISED_ORIENTATION is this very
#   matrix.
# * Gravity: mean over the first second of all 9 trials, mapped, is |a| = 9.60-9.66 m/s^2
#   with az = +9.23..+9.60 m/s^2 (upright: +z reads about +1 g); ax = -2.7..+1.4 m/s^2
#   is the belt's pitch, ay = -0.2..+1.3 m/s^2 its roll.
# * Forward: integrating the gravity-compensated (gyro-tracked) forward acceleration from
#   quiet standing, the velocity 2 s after the first IC of a bout is positive in all 12
#   bouts where the gravity tracking stays valid (|v_up| < 0.5 m/s), e.g. +0.94 m/s 1 s
#   into HA/001 Test5 Trial1 (INDIP speed 1.06 m/s) and +0.98 m/s for MS/001 Test5 Trial1
#   (INDIP 1.00 m/s).
# * Handedness: for a world-fixed vector v seen in the body frame, dv/dt = v x w. With the
#   low-passed (0.8 Hz) acceleration as v, corr(dv/dt, v x w) is +0.33..+0.68 in the six
#   Test5 trials and +0.75, +0.89, +0.90 in the three Test11 trials, with a least-squares
#   gain of 0.5..1.2 (so deg/s -> rad/s is right too); a mirrored mapping (y not negated)
#   gives exactly the negated values, and flipping any single accelerometer or gyro axis
#   drops it to -0.6..+0.7 (see gravity_gyro_consistency).
# * Laterality: mobgap's McCamley rule (left IC where the 0.5-2 Hz band-passed yaw rate
#   about up, gz here, is <= 0) agrees with the INDIP left/right labels for 204 of 238 ICs.
SENSOR_TO_FLU = np.array(
    [
        [0.0, 0.0, 1.0],  # forward = sensor z
        [0.0, -1.0, 0.0],  # left = -(sensor y, which points right)
        [1.0, 0.0, 0.0],  # up = sensor x
    ]
)

Log = Callable[[str], None]


class DataUnavailable(Exception):
    """The example recordings could not be obtained; the message says why."""

    @property
    def reason(self) -> str:
        return str(self)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------- frame mapping


def sensor_to_flu(vectors: np.ndarray) -> np.ndarray:
    """Vectors (shape (3,) or (n, 3)) in the McRoberts sensor frame, expressed in FLU."""
    return np.asarray(vectors, dtype=np.float64) @ SENSOR_TO_FLU.T


def imu_to_si_flu(acc_g: np.ndarray, gyr_dps: np.ndarray) -> np.ndarray:
    """Sensor-frame acceleration [g] and angular rate [deg/s] as an (n, 6) FLU SI array."""
    acc = sensor_to_flu(acc_g) * STANDARD_GRAVITY
    gyr = np.deg2rad(sensor_to_flu(gyr_dps))
    return np.column_stack([acc, gyr])


def gravity_gyro_consistency(imu: np.ndarray, fs_hz: float, cutoff_hz: float = 0.8) -> float:
    """Correlation of d(g)/dt with g x w for an (n, 6) SI IMU array; about +1 if right-handed.

    ``g`` is the low-passed acceleration (the gravity direction seen by the body). A world-
    fixed vector seen from a body turning at ``w`` obeys dg/dt = g x w, so a consistent,
    right-handed mapping of accelerometer and gyro gives a clearly positive value, a
    mirrored one the same value negated.
    """
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, cutoff_hz, fs=fs_hz, output="sos")
    g = sosfiltfilt(sos, imu[:, :3], axis=0)
    dg = np.gradient(g, 1.0 / fs_hz, axis=0)
    pred = sosfiltfilt(sos, np.cross(g, imu[:, 3:6]), axis=0)
    denom = float(np.sqrt(np.sum(dg * dg) * np.sum(pred * pred)))
    return float(np.sum(dg * pred)) / denom if denom > 0 else 0.0


# --------------------------------------------------------------------------- fetching


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pip_failure_reason(output: str) -> str:
    """A one-line reason from pip's output, saying "registry not reachable" when it is."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
    tail = " | ".join(errors)[-400:] or "no output"
    lowered = output.lower()
    network = (
        "connection",
        "network",
        "timed out",
        "max retries",
        "temporary failure",
        "name or service",
        "proxy",
        "ssl",
        "(from versions: none)",
    )
    if any(marker in lowered for marker in network):
        return f"registry not reachable: {tail}"
    return f"pip download failed: {tail}"


def _pip_download(cache_dir: Path) -> Path:
    """Downloads the sdist into ``cache_dir`` with pip; raises DataUnavailable on failure."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-binary",
        ":all:",
        "--no-deps",
        f"mobgap=={MOBGAP_VERSION}",
        "-d",
        str(cache_dir),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise DataUnavailable(
            f"registry not reachable: pip download timed out after {PIP_TIMEOUT_S:.0f} s"
        ) from None
    except OSError as exc:
        raise DataUnavailable(f"cannot run pip: {exc}") from None
    sdist = cache_dir / SDIST_NAME
    if proc.returncode != 0 or not sdist.is_file():
        raise DataUnavailable(_pip_failure_reason(proc.stdout + "\n" + proc.stderr))
    return sdist


def _lab_member(name: str) -> PurePosixPath | None:
    """The path below ``LAB_SUBDIR`` of an archive member, None if outside it.

    Raises DataUnavailable for unsafe names (absolute or with ``..``), wherever they are.
    """
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise DataUnavailable(f"unsafe path in {SDIST_NAME}: {name!r}")
    parts = path.parts[1:]  # drop the top-level "mobgap-1.2.0/" directory
    prefix = tuple(PurePosixPath(LAB_SUBDIR).parts)
    if parts[: len(prefix)] != prefix:
        return None
    return PurePosixPath(*parts[len(prefix) :]) if len(parts) > len(prefix) else PurePosixPath()


def _extract_lab(sdist: Path, dest: Path) -> None:
    """Extracts only ``example_data/data/lab/**`` (regular files and dirs) into ``dest``."""
    root = dest.resolve()
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar:
            rel = _lab_member(member.name)
            if rel is None:
                continue
            target = (root / rel).resolve()
            if target != root and root not in target.parents:
                raise DataUnavailable(f"unsafe path in {SDIST_NAME}: {member.name!r}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is None:
                    raise DataUnavailable(f"cannot read {member.name!r} from {SDIST_NAME}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
            else:
                raise DataUnavailable(f"unexpected link or device in {SDIST_NAME}: {member.name!r}")


def fetch_mobgap_sdist(cache_dir: Path) -> Path:
    """The directory of the Mobilise-D lab example recordings, downloaded if needed.

    Runs ``pip download --no-binary :all: --no-deps mobgap==1.2.0`` into ``cache_dir``
    unless the (hash-checked) sdist is already there, extracts only
    ``example_data/data/lab/**`` to ``cache_dir/mobgap-1.2.0-lab`` and returns that
    directory (``<cohort>/<participant>/data.mat`` below it).

    Raises :class:`DataUnavailable` with a one-line reason (``registry not reachable: ...``,
    ``pip download failed: ...``, hash mismatch, unsafe archive) instead of other errors.
    """
    cache_dir = Path(cache_dir)
    lab = cache_dir / f"mobgap-{MOBGAP_VERSION}-lab"
    marker = lab / ".complete"
    if marker.is_file():
        return lab
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataUnavailable(f"cannot create cache directory {cache_dir}: {exc}") from None
    sdist = cache_dir / SDIST_NAME
    if sdist.is_file() and _sha256(sdist) != SDIST_SHA256:
        sdist.unlink()
    if not sdist.is_file():
        sdist = _pip_download(cache_dir)
    digest = _sha256(sdist)
    if digest != SDIST_SHA256:
        sdist.unlink()
        raise DataUnavailable(f"{SDIST_NAME} has sha256 {digest}, expected {SDIST_SHA256}")
    tmp = cache_dir / f".{lab.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _extract_lab(sdist, tmp)
        if not any(tmp.glob("*/*/data.mat")):
            raise DataUnavailable(f"{SDIST_NAME} has no {LAB_SUBDIR}/<cohort>/<id>/data.mat")
        (tmp / ".complete").write_text(f"{SDIST_NAME} sha256={SDIST_SHA256}\n")
        shutil.rmtree(lab, ignore_errors=True)
        os.replace(tmp, lab)
    except (OSError, tarfile.TarError) as exc:
        raise DataUnavailable(f"cannot extract {SDIST_NAME}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lab


# --------------------------------------------------------------------------- reference


def reference_time(seconds: Any, fs_hz: float) -> Any:
    """Mobilise-D reference seconds on the trace clock (t = 0 at the first sample).

    MATLAB used ``round(s * fs)`` as a 1-based sample index, so the 0-based sample is one
    less (as in mobgap's ``parse_reference_parameters``). NaN stays NaN.
    """
    return (np.round(np.asarray(seconds, dtype=np.float64) * fs_hz) - 1.0) / fs_hz


def _as_list(value: Any) -> list:
    """A MATLAB field loaded with squeeze_me (scalar, array or empty) as a Python list."""
    return list(np.atleast_1d(np.asarray(value, dtype=object)).ravel())


def _side(label: Any) -> str:
    text = str(label).strip().lower()
    return text if text in ("left", "right") else "unknown"


@dataclass
class RefBout:
    """One reference walking bout on the trace clock."""

    start: float
    end: float
    ics: list[float]  # valid, de-duplicated, sorted
    sides: list[str]  # "left" | "right" | "unknown", aligned with ics
    holes: list[tuple[float, float]] = field(default_factory=list)
    n_nan: int = 0
    n_duplicates: int = 0
    n_after_end: int = 0
    n_merged_close: int = 0
    speed_mps: float | None = None
    turns_deg: list[float] = field(default_factory=list)


def reference_holes(
    times: list[float], sides: list[str], *, factor: float = HOLE_STRIDE_FACTOR
) -> list[tuple[float, float]]:
    """Stretches of a bout where a reference IC is evidently missing.

    ``times``/``sides`` are the bout's ICs in file order (trace clock, NaN kept, duplicates
    removed). Between two consecutive valid ICs a step is missing if a NaN IC lies between
    them, if both are of the same foot, or if the gap exceeds ``factor`` times the median
    stride time. Returns ``(prev + HOLE_EDGE_S, next - HOLE_EDGE_S)`` for each such gap.
    """
    valid = [
        (t, s, k) for k, (t, s) in enumerate(zip(times, sides, strict=True)) if not np.isnan(t)
    ]
    strides = [c[0] - a[0] for a, c in zip(valid, valid[2:], strict=False)]
    max_gap = factor * float(np.median(strides)) if strides else float("inf")
    holes = []
    for (t0, s0, k0), (t1, s1, k1) in pairwise(valid):
        nan_between = k1 - k0 > 1
        same_foot = s0 == s1 and s0 != "unknown"
        if (nan_between or same_foot or t1 - t0 > max_gap) and t1 - t0 > 2 * HOLE_EDGE_S:
            holes.append((t0 + HOLE_EDGE_S, t1 - HOLE_EDGE_S))
    return holes


def _collapse(
    times: list[float], sides: list[str], min_gap_s: float
) -> tuple[list[float], list[str], int]:
    """Drops ICs within ``min_gap_s`` of an earlier kept one (file order, NaNs kept).

    The kept IC's side becomes "unknown" when the dropped one was of the other foot.
    Returns the remaining times, sides and the number dropped.
    """
    out_t: list[float] = []
    out_s: list[str] = []
    for t, s in zip(times, sides, strict=True):
        near = [k for k, u in enumerate(out_t) if not np.isnan(t) and abs(t - u) <= min_gap_s]
        if near:
            if out_s[near[0]] != s:
                out_s[near[0]] = "unknown"
            continue
        out_t.append(t)
        out_s.append(s)
    return out_t, out_s, len(times) - len(out_t)


def _parse_bout(wb: Any, fs_hz: float) -> RefBout:
    """A ContinuousWalkingPeriod struct as a RefBout on the trace clock."""
    start = float(reference_time(float(wb.Start), fs_hz))
    end = float(reference_time(float(wb.End), fs_hz))
    raw = [float(x) for x in _as_list(wb.InitialContact_Event)]
    times = [float(x) for x in reference_time(raw, fs_hz)] if raw else []
    sides = [_side(x) for x in _as_list(getattr(wb, "InitialContact_LeftRight", []))]
    if len(sides) != len(times):
        sides = ["unknown"] * len(times)
    times, sides, n_dup = _collapse(times, sides, 1e-9)
    n_nan = int(sum(np.isnan(t) for t in times))
    after = [k for k, t in enumerate(times) if not np.isnan(t) and t > end + 1e-9]
    times = [t for k, t in enumerate(times) if k not in after]
    sides = [s for k, s in enumerate(sides) if k not in after]
    times, sides, n_close = _collapse(times, sides, MIN_IC_GAP_S)
    holes = reference_holes(times, sides)
    valid = sorted((t, s) for t, s in zip(times, sides, strict=True) if not np.isnan(t))
    speed = float(np.asarray(getattr(wb, "WalkingSpeed", np.nan), dtype=float).ravel()[0])
    return RefBout(
        start=start,
        end=end,
        ics=[t for t, _ in valid],
        sides=[s for _, s in valid],
        holes=holes,
        n_nan=n_nan,
        n_duplicates=n_dup,
        n_after_end=len(after),
        n_merged_close=n_close,
        speed_mps=None if np.isnan(speed) else speed,
        turns_deg=[float(a) for a in _as_list(getattr(wb, "Turn_Angle", []))],
    )


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _subtract(
    intervals: list[tuple[float, float]], holes: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    out = list(intervals)
    for h0, h1 in holes:
        nxt = []
        for s, e in out:
            if h1 <= s or h0 >= e:
                nxt.append((s, e))
                continue
            if s < h0:
                nxt.append((s, h0))
            if h1 < e:
                nxt.append((h1, e))
        out = nxt
    return out


def scored_intervals(
    bouts: list[RefBout], duration_s: float, margin_s: float = SCORE_MARGIN_S
) -> list[tuple[float, float]]:
    """Bouts widened by ``margin_s`` (clipped to the trace), merged, minus their holes."""
    widened = [(max(0.0, b.start - margin_s), min(duration_s, b.end + margin_s)) for b in bouts]
    holes = [h for b in bouts for h in b.holes]
    return [(round(s, 6), round(e, 6)) for s, e in _subtract(_merge(widened), holes)]


# --------------------------------------------------------------------------- conversion


def _load_mat(path: Path) -> Any:
    from scipy.io import loadmat

    return loadmat(str(path), squeeze_me=True, struct_as_record=False, mat_dtype=True)


def _iter_tests(node: Any, key: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(key, struct) of every test in a data.mat, e.g. (TimeMeasure1, Test5, Trial1)."""
    names = getattr(node, "_fieldnames", None)
    if names is None:
        return
    if "SU" in names or "Standards" in names:
        yield key, node
        return
    for name in names:
        yield from _iter_tests(getattr(node, name), (*key, name))


def _indip_bouts(test: Any) -> list[Any] | None:
    """The INDIP ContinuousWalkingPeriod structs (None if there is no INDIP reference)."""
    indip = getattr(getattr(test, "Standards", None), "INDIP", None)
    if indip is None or not hasattr(indip, "ContinuousWalkingPeriod"):
        return None
    return [wb for wb in _as_list(indip.ContinuousWalkingPeriod) if hasattr(wb, "Start")]


def _lower_back(test: Any) -> Any | None:
    return getattr(getattr(test, "SU", None), "LowerBack", None)


def _sensor_rate(sensor: Any) -> float | None:
    """The common rate of Acc and Gyr, None if they differ."""
    rates = {float(sensor.Fs.Acc), float(sensor.Fs.Gyr)}
    return rates.pop() if len(rates) == 1 else None


def _max_timestamp_step(sensor: Any) -> float | None:
    stamps = getattr(sensor, "Timestamp", None)
    if stamps is None or np.size(stamps) < 2:
        return None
    return float(np.max(np.diff(np.asarray(stamps, dtype=np.float64))))


def _info_for_algo(participant_dir: Path, time_measure: str) -> dict[str, Any]:
    path = participant_dir / "infoForAlgo.mat"
    if not path.is_file():
        return {}
    info = getattr(_load_mat(path)["infoForAlgo"], time_measure, None)
    names = getattr(info, "_fieldnames", [])
    return {n: getattr(info, n) for n in names if isinstance(getattr(info, n), (str, float))}


@dataclass
class _Recording:
    name: str
    cohort: str
    participant: str
    key: tuple[str, ...]
    test: Any
    info: dict[str, Any]


def _recordings(lab_dir: Path) -> Iterator[_Recording]:
    for mat in sorted(Path(lab_dir).glob("*/*/data.mat")):
        participant_dir = mat.parent
        cohort, participant = participant_dir.parent.name, participant_dir.name
        for key, test in _iter_tests(_load_mat(mat)["data"]):
            info = _info_for_algo(participant_dir, key[0]) if key else {}
            name = "_".join([cohort, participant, *key[-2:]])
            yield _Recording(name, cohort, participant, key, test, info)


def _skip_reason(rec: _Recording) -> str | None:
    sensor = _lower_back(rec.test)
    if sensor is None:
        return "no SU LowerBack sensor"
    if not (hasattr(sensor, "Acc") and hasattr(sensor, "Gyr") and hasattr(sensor, "Fs")):
        return "no Acc/Gyr data"
    if _sensor_rate(sensor) is None:
        return "accelerometer and gyroscope rates differ"
    if np.isnan(sensor.Acc).any() or np.isnan(sensor.Gyr).any():
        return "NaN samples in Acc/Gyr"
    bouts = _indip_bouts(rec.test)
    if bouts is None:
        return "no INDIP reference"
    if not bouts:
        return "INDIP reference has no walking bouts (nothing could be scored)"
    return None


def _trace_meta(rec: _Recording) -> dict[str, str]:
    test, trial = (rec.key[-2], rec.key[-1]) if len(rec.key) >= 2 else ("", "")
    meta = {
        "source": SOURCE,
        "license": LICENSE,
        "cohort": rec.cohort,
        "participant": rec.participant,
        "time_measure": rec.key[0] if rec.key else "",
        "test": test,
        "test_name": TEST_NAMES.get(test, "unknown"),
        "trial": trial,
        "sensor": "McRoberts lower back",
        "sensor_type": str(rec.info.get("SensorType_SU", "unknown")),
        "frame_mapping": "forward=+z left=-y up=+x of the McRoberts sensor frame",
        "reference": "INDIP",
        "start_datetime": str(getattr(rec.test, "StartDateTime", "unknown")),
    }
    return {k: v.replace("\n", " ") for k, v in meta.items()}


def _build_truth(
    rec: _Recording, bouts: list[RefBout], duration_s: float, ref_fs: float, check: float
) -> Truth:
    steps: dict[float, str] = {}
    for bout in bouts:
        for t, side in zip(bout.ics, bout.sides, strict=True):
            steps.setdefault(round(t, 6), side)  # an IC shared by two bouts counts once
    times = sorted(steps)
    segments = [
        {
            "start": round(b.start, 6),
            "end": round(b.end, 6),
            "activity": "walk_forward",
            "source": "INDIP ContinuousWalkingPeriod",
            "n_ics": len(b.ics),
            "speed_mps": b.speed_mps,
            "turn_angles_deg": b.turns_deg,
        }
        for b in bouts
    ]
    meta = {
        **{k: v for k, v in _trace_meta(rec).items() if k != "frame_mapping"},
        "reference": "INDIP ContinuousWalkingPeriod: InitialContact_Event and Start/End",
        "reference_fs_hz": ref_fs,
        "time_convention": "t = (round(s * fs) - 1) / fs, as mobgap parse_reference_parameters",
        "direction_note": "INDIP gives no direction; forward-walking lab test, all forward",
        "ic_sides": [steps[t] for t in times],
        "n_ic_nan": sum(b.n_nan for b in bouts),
        "n_ic_duplicates": sum(b.n_duplicates for b in bouts),
        "n_ic_after_bout_end": sum(b.n_after_end for b in bouts),
        "n_ic_merged_close": sum(b.n_merged_close for b in bouts),
        "unscored_holes": [[round(s, 6), round(e, 6)] for b in bouts for s, e in b.holes],
        "score_margin_s": SCORE_MARGIN_S,
        "duration_s": duration_s,
        "gravity_gyro_consistency": round(check, 3),
    }
    return Truth(
        steps=[TruthStep(t=t, direction="forward") for t in times],
        scored_intervals=scored_intervals(bouts, duration_s),
        segments=segments,
        meta=meta,
    )


def _convert_recording(rec: _Recording, out_dir: Path, log: Log) -> Path | None:
    """Writes one trace and its truth sidecar; None (with a logged reason) if skipped."""
    reason = _skip_reason(rec)
    if reason is not None:
        log(f"skip {rec.name}: {reason}")
        return None
    sensor = _lower_back(rec.test)
    fs = float(_sensor_rate(sensor))
    imu = imu_to_si_flu(sensor.Acc, sensor.Gyr)
    t = np.arange(len(imu)) / fs
    duration = len(imu) / fs
    step = _max_timestamp_step(sensor)
    if step is not None and step > 1.5 / fs:
        log(f"note {rec.name}: sensor timestamps have a gap of {step:.3f} s")
    indip = rec.test.Standards.INDIP
    ref_fs = float(np.asarray(getattr(indip, "Fs", fs), dtype=float).ravel()[0])
    if ref_fs != fs:
        log(f"note {rec.name}: INDIP rate {ref_fs:g} Hz differs from sensor {fs:g} Hz")
    bouts = sorted((_parse_bout(wb, fs) for wb in _indip_bouts(rec.test)), key=lambda b: b.start)
    check = gravity_gyro_consistency(imu, fs)
    trace_path = out_dir / f"{rec.name}.csv.gz"
    write_trace(trace_path, Trace(t=t, imu=imu, fs_hz=fs, meta=_trace_meta(rec)))
    write_truth(truth_path_for(trace_path), _build_truth(rec, bouts, duration, ref_fs, check))
    return trace_path


def convert_lab_recordings(lab_dir: Path, out_dir: Path, *, log: Log | None = None) -> list[Path]:
    """Converts every trial with an SU LowerBack sensor and INDIP walking bouts.

    Writes ``<cohort>_<participant>_<test>_<trial>.csv.gz`` (FLU, SI units) and its
    ``.truth.json`` to ``out_dir`` and returns the trace paths; skipped trials are reported
    through ``log`` (stderr by default).
    """
    log = log or _stderr
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rec in _recordings(Path(lab_dir)):
        path = _convert_recording(rec, out_dir, log)
        if path is not None:
            written.append(path)
    return written


# --------------------------------------------------------------------------- command line


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "retrostep" / "mobgap"


def summary_line(trace_path: Path) -> str:
    """One line per converted trial: duration, reference ICs, scored seconds."""
    truth = read_truth(truth_path_for(trace_path))
    scored = sum(e - s for s, e in truth.scored_intervals or [])
    meta = truth.meta
    return (
        f"{trace_path.name:32s} {meta.get('duration_s', 0.0):7.2f} s  "
        f"{len(truth.steps):3d} ICs  {len(truth.segments)} bouts  scored {scored:6.2f} s  "
        f"NaN ICs {meta.get('n_ic_nan', 0)}  holes {len(meta.get('unscored_holes', []))}  "
        f"gyro/gravity corr {meta.get('gravity_gyro_consistency', float('nan')):+.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mobgap_data",
        description="Fetch the Mobilise-D example recordings (mobgap sdist) and convert them.",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for the traces")
    parser.add_argument(
        "--cache", type=Path, default=None, help="download cache (default ~/.cache/retrostep)"
    )
    args = parser.parse_args(argv)
    try:
        lab = fetch_mobgap_sdist(args.cache or _default_cache())
    except DataUnavailable as exc:
        print(f"mobgap example data unavailable: {exc}", file=sys.stderr)
        return 2
    paths = convert_lab_recordings(lab, args.out)
    for path in paths:
        print(summary_line(path))
    print(f"{len(paths)} trials written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
