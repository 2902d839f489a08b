"""What one session log says, in the numbers a person reads: derived from the raw bytes.

The session store keeps every log exactly as the device wrote it and, next to it, the
values below for fast queries. :func:`derive` is the only place they are computed: at
import, in a schema migration that adds a value, and again in ``retrostep db check``,
which compares what is stored with what the bytes say. :func:`timeline` gives the
per-second series, steps, alerts and intervals for plots and detailed exports.

Definitions (the device's own, so the numbers agree with what it cued):

* Walking time by direction: the time between two consecutive steps of the same
  direction less than ``coaching.GAP_MAX_MS`` (2 s) apart counts as walked in that
  direction; a pause or a change of direction breaks the chain. This is the rule the
  coach uses for interval compliance, applied to the whole session.
* Cadence: steps per minute of walking time (all steps; and backward steps over
  backward walking time).
* Sway metrics: over the seconds with at least one step (the per-second summaries),
  the mean and 95th percentile of the roll range (degrees) and the mean RMS roll rate
  (degrees/s); the backward mean over seconds with more backward than forward steps.
* Backward sway alerts: alerts whose nearest step (within 2 s) went backward.
* Interval compliance: the END record's seconds walked backward inside backward
  intervals, against the scheduled backward-interval time (INTERVAL records, up to the
  end of the session).
* Program: the coaching program as the INTERVAL records show it (kinds and lengths of
  one run, and the number of runs), when the session shows all of it.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from retrostep_core import records as r
from retrostep_core.coaching import GAP_MAX_MS

from .errors import RetrostepError

DEVICE_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)  # HEADER wall_start counts from it
KIND_NAME = {r.KIND_FORWARD: "forward", r.KIND_BACKWARD: "backward", r.KIND_REST: "rest"}


class NotASessionLog(RetrostepError):
    """Bytes that hold no session this reader can use (no HEADER, another log version)."""

    exit_code = 2


@dataclass(frozen=True)
class SessionStats:
    """Derived values of one session log (units in the names; None: nothing to measure)."""

    session_id: int
    wall_start: int  # seconds since 2000-01-01 UTC as the device had it; 0 = unknown
    firmware: str
    fs_hz: float
    sway_limit_deg: float
    config_crc: int
    duration_s: float
    forward_steps: int
    backward_steps: int
    forward_walking_s: float
    backward_walking_s: float
    cadence_spm: float | None
    backward_cadence_spm: float | None
    sway_alerts: int
    backward_sway_alerts: int
    sway_range_mean_deg: float | None
    sway_range_p95_deg: float | None
    sway_rate_rms_deg_s: float | None
    backward_sway_range_mean_deg: float | None
    backward_interval_s: float
    compliance_s: int | None  # END only; None for a session synced while still open
    end_reason: str | None  # None: no END (still open when it was read)
    damaged_bytes: int
    program: list[tuple[str, int]] | None = None
    program_repeat: int | None = None
    notes: list[dict] = field(default_factory=list)

    @property
    def start_utc(self) -> datetime | None:
        if not self.wall_start:
            return None
        return DEVICE_EPOCH + timedelta(seconds=self.wall_start)

    def to_json(self) -> dict:
        d = asdict(self)
        if self.program is not None:
            d["program"] = [list(p) for p in self.program]
        return d


@dataclass
class Timeline:
    """The series of one session for plots and detailed exports (times in s)."""

    seconds: list[dict]  # t, forward, backward, cadence_spm, roll_range_deg, roll_rate_deg_s
    steps: list[tuple[float, int]]  # (t, +1 forward / -1 backward)
    alerts: list[dict]  # t, side ("left"/"right"), deviation_deg
    intervals: list[dict]  # t, kind ("forward", "backward", "rest", "none"), index, repeat
    duration_s: float
    sway_limit_deg: float


def _header(recs: list) -> dict:
    for kind, f in recs:
        if kind == r.HEADER:
            if f.get("version") != r.LOG_VERSION or "session_id" not in f:
                raise NotASessionLog(
                    f"session log of version {f.get('version')}: this retrostep reads "
                    f"version {r.LOG_VERSION} (upgrade retrostep)"
                )
            return f
    raise NotASessionLog("not a session log: no HEADER record")


def _walking(steps: list[tuple[int, int]]) -> tuple[float, float]:
    """(forward, backward) walking seconds by the coach's rule."""
    fwd = bwd = 0
    for (t0, d0), (t1, d1) in zip(steps, steps[1:], strict=False):
        if d0 == d1 and 0 < t1 - t0 < GAP_MAX_MS:
            if d1 > 0:
                fwd += t1 - t0
            else:
                bwd += t1 - t0
    return fwd / 1000.0, bwd / 1000.0


def _p95(values: list[int]) -> int:
    s = sorted(values)
    return s[max(0, -(-95 * len(s) // 100) - 1)]  # nearest rank


def _nearest_direction(times: list[int], steps: list[tuple[int, int]], t: int) -> int:
    """Direction of the step nearest to ``t`` within GAP_MAX_MS, 0 if none."""
    i = bisect.bisect_left(times, t)
    best, best_dt = 0, GAP_MAX_MS + 1
    for j in (i - 1, i):
        if 0 <= j < len(times) and abs(times[j] - t) < best_dt:
            best, best_dt = steps[j][1], abs(times[j] - t)
    return best


def _program(intervals: list[dict]) -> tuple[list[tuple[str, int]] | None, int | None]:
    """The program of the INTERVAL records, or (None, None) when the log shows only part."""
    if not intervals:
        return None, None
    lengths: dict[int, tuple[int, int]] = {}
    finished = None
    for a, b in zip(intervals, intervals[1:], strict=False):
        if a["kind"] != r.KIND_NONE:
            lengths.setdefault(a["index"], (a["kind"], b["t"] - a["t"]))
    last = intervals[-1]
    if last["kind"] == r.KIND_NONE:
        finished = last["repeat"]
    n = 1 + max(iv["index"] for iv in intervals)
    repeats_seen = max(iv["repeat"] for iv in intervals if iv["kind"] != r.KIND_NONE)
    if finished is None and repeats_seen < 1:
        return None, None  # the first run did not finish: its length is unknown
    if any(i not in lengths for i in range(n)):
        return None, None
    program = []
    for i in range(n):
        kind, ms = lengths[i]
        program.append((KIND_NAME.get(kind, "rest"), int(round(ms / 1000.0))))
    return program, finished if finished is not None else repeats_seen + 1


def derive(raw: bytes) -> SessionStats:
    """Every stored value of one session log (raises NotASessionLog without a HEADER)."""
    rep = r.decode_report(raw)
    recs = rep["records"]
    head = _header(recs)
    end = next((f for k, f in reversed(recs) if k == r.END), None)
    steps = r.steps_of(recs)
    seconds = r.seconds_of(recs)
    alerts = sorted((f for k, f in recs if k == r.SWAY_ALERT), key=lambda f: f["t"])
    intervals = sorted((f for k, f in recs if k == r.INTERVAL), key=lambda f: f["t"])
    last_t = 0
    for _, f in recs:
        last_t = max(last_t, f.get("t", 0))
    if steps:
        last_t = max(last_t, steps[-1][0])
    if seconds:
        last_t = max(last_t, seconds[-1]["t"] + 1000)
    end_t = end["t"] if end else last_t

    fwd_s, bwd_s = _walking(steps)
    n_fwd = sum(1 for _, d in steps if d > 0)
    n_bwd = len(steps) - n_fwd
    walk_s = fwd_s + bwd_s
    cadence = round(len(steps) * 60.0 / walk_s, 1) if walk_s > 0 else None
    bwd_cadence = round(n_bwd * 60.0 / bwd_s, 1) if bwd_s > 0 else None

    times = [t for t, _ in steps]
    bwd_alerts = sum(1 for a in alerts if _nearest_direction(times, steps, a["t"]) < 0)

    walking = [s for s in seconds if s["forward"] + s["backward"] > 0]
    ranges = [s["roll_range"] for s in walking]
    back_ranges = [s["roll_range"] for s in walking if s["backward"] > s["forward"]]

    def mean_deg(values: list[int], scale: float) -> float | None:
        return round(sum(values) / len(values) * scale, 2) if values else None

    scheduled = 0
    for a, b in zip(intervals, [*intervals[1:], None][: len(intervals)], strict=True):
        if a["kind"] == r.KIND_BACKWARD:
            stop = min(b["t"], end_t) if b is not None else end_t
            scheduled += max(0, stop - a["t"])
    program, repeat = _program(intervals)

    return SessionStats(
        session_id=head["session_id"],
        wall_start=head["wall_start"],
        firmware=head["firmware"],
        fs_hz=head["fs_mhz"] / 1000.0,
        sway_limit_deg=head["sway_limit_cdeg"] / 100.0,
        config_crc=head["config_crc"],
        duration_s=round(end_t / 1000.0, 3),
        forward_steps=n_fwd,
        backward_steps=n_bwd,
        forward_walking_s=round(fwd_s, 3),
        backward_walking_s=round(bwd_s, 3),
        cadence_spm=cadence,
        backward_cadence_spm=bwd_cadence,
        sway_alerts=len(alerts),
        backward_sway_alerts=bwd_alerts,
        sway_range_mean_deg=mean_deg(ranges, 0.1),
        sway_range_p95_deg=round(_p95(ranges) / 10.0, 2) if ranges else None,
        sway_rate_rms_deg_s=mean_deg([s["roll_rate_rms"] for s in walking], 0.1),
        backward_sway_range_mean_deg=mean_deg(back_ranges, 0.1),
        backward_interval_s=round(scheduled / 1000.0, 3),
        compliance_s=end["compliance_s"] if end else None,
        end_reason=r.END_NAMES.get(end["reason"], "unknown") if end else None,
        damaged_bytes=rep["skipped_bytes"] + rep["torn_bytes"],
        program=program,
        program_repeat=repeat,
        notes=[{"t": f["t"] / 1000.0, "code": f["code"], "value": f["value"]}
               for k, f in recs if k == r.NOTE],  # fmt: skip
    )


def timeline(raw: bytes) -> Timeline:
    """Per-second series, steps, alerts and intervals of one session log (times in s)."""
    recs = r.decode(raw)
    head = _header(recs)
    end = next((f for k, f in reversed(recs) if k == r.END), None)
    seconds = [
        {
            "t": s["t"] / 1000.0, "forward": s["forward"], "backward": s["backward"],
            "cadence_spm": s["cadence"] / 10.0, "roll_range_deg": s["roll_range"] / 10.0,
            "roll_rate_deg_s": s["roll_rate_rms"] / 10.0,
        }
        for s in r.seconds_of(recs)
    ]  # fmt: skip
    steps = [(t / 1000.0, d) for t, d in r.steps_of(recs)]
    alerts = [
        {"t": f["t"] / 1000.0, "side": "right" if f["side"] > 0 else "left",
         "deviation_deg": f["roll"] / 10.0}
        for k, f in recs if k == r.SWAY_ALERT
    ]  # fmt: skip
    alerts.sort(key=lambda a: a["t"])
    intervals = [
        {"t": f["t"] / 1000.0, "kind": r.KIND_NAMES.get(f["kind"], "none"),
         "index": f["index"], "repeat": f["repeat"]}
        for k, f in recs if k == r.INTERVAL
    ]  # fmt: skip
    intervals.sort(key=lambda i: i["t"])
    duration = derive(raw).duration_s if end is None else end["t"] / 1000.0
    return Timeline(seconds, steps, alerts, intervals, duration, head["sway_limit_cdeg"] / 100.0)

