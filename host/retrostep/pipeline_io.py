"""Feeding traces to the firmware pipeline and turning its events into results.

The same integer samples go to both runtimes (CPython in process, or the MicroPython
unix port), so their events can be compared exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrostep_core import events as ev

from .trace import Trace

# Input contract of retrostep_core.pipeline: integers, mm/s^2 and mrad/s.
ACCEL_SCALE = 1000.0
GYRO_SCALE = 1000.0


@dataclass
class PipelineConfig:
    sway_limit_deg: float = 10.0
    sway_min_ms: int = 200
    sway_refractory_ms: int = 3000

    def kwargs(self) -> dict:
        return {
            "sway_limit_deg": self.sway_limit_deg,
            "sway_min_ms": self.sway_min_ms,
            "sway_refractory_ms": self.sway_refractory_ms,
        }


@dataclass
class RawEvent:
    kind: int
    t: int  # input sample index
    a: int
    b: int


@dataclass
class AnalysisResult:
    """What the pipeline reported for one trace."""

    source: str
    fs_hz: float
    duration_s: float
    events: list[RawEvent] = field(default_factory=list)
    times: np.ndarray | None = None  # the trace's t column, to map indices to seconds
    dropped_events: int = 0

    def time_of(self, index: int) -> float:
        if self.times is not None and len(self.times):
            i = min(max(index, 0), len(self.times) - 1)
            return float(self.times[i])
        return index / self.fs_hz

    def steps(self) -> list[dict]:
        """Counted steps in time order (a bout's first steps arrive at confirmation)."""
        return [
            {"t": round(self.time_of(e.t), 3), "direction": "forward" if e.a > 0 else "backward"}
            for e in sorted((e for e in self.events if e.kind == ev.STEP), key=lambda e: e.t)
        ]

    def sway_alerts(self) -> list[dict]:
        return [
            {
                "t": round(self.time_of(e.t), 3),
                "side": "right" if e.a > 0 else "left",
                "roll_deg": e.b / 10.0,
            }
            for e in self.events
            if e.kind == ev.SWAY_ALERT
        ]

    def sway_metrics(self) -> list[tuple[float, float, float]]:
        """Per-second (t, roll range in degrees, RMS roll rate in deg/s)."""
        return [
            (self.time_of(e.t), e.a / 10.0, e.b / 10.0)
            for e in self.events
            if e.kind == ev.SWAY_METRICS
        ]

    def summary(self) -> dict:
        steps = self.steps()
        fwd = sum(1 for s in steps if s["direction"] == "forward")
        bouts = [e for e in self.events if e.kind == ev.BOUT_END]
        walking_s = 0.0
        intervals = 0  # step intervals inside bouts: n steps span n - 1 of them
        starts = [e for e in self.events if e.kind == ev.BOUT_START]
        for s, e in zip(starts, bouts, strict=False):
            walking_s += self.time_of(e.t) - self.time_of(s.t)
            intervals += max(e.a - 1, 0)
        metrics = self.sway_metrics()
        ranges = [m[1] for m in metrics]
        return {
            "duration_s": round(self.duration_s, 2),
            "steps": len(steps),
            "forward_steps": fwd,
            "backward_steps": len(steps) - fwd,
            "bouts": len(bouts),
            "walking_s": round(walking_s, 1),
            "cadence_spm": round(60.0 * intervals / walking_s, 1) if walking_s > 5 else None,
            "sway_alerts": len(self.sway_alerts()),
            "median_roll_range_deg": round(float(np.median(ranges)), 1) if ranges else None,
            "dropped_events": self.dropped_events,
        }

    def to_json(self) -> dict:
        return {"steps": self.steps(), "sway_alerts": self.sway_alerts(), "summary": self.summary()}


def trace_to_int_samples(trace: Trace) -> np.ndarray:
    """(n, 6) int32 array in the pipeline's units (mm/s^2, mrad/s)."""
    out = np.empty(trace.imu.shape, dtype=np.int32)
    lim = np.iinfo(np.int32).max // 2
    out[:, :3] = np.clip(np.rint(trace.imu[:, :3] * ACCEL_SCALE), -lim, lim)
    out[:, 3:] = np.clip(np.rint(trace.imu[:, 3:] * GYRO_SCALE), -lim, lim)
    return out


def run_cpython(trace: Trace, config: PipelineConfig | None = None) -> AnalysisResult:
    """Run the firmware pipeline in this interpreter."""
    from retrostep_core.pipeline import GaitPipeline

    config = config or PipelineConfig()
    p = GaitPipeline(fs_hz=trace.fs_hz, event_capacity=256, **config.kwargs())
    q = p.events
    out: list[RawEvent] = []
    samples = trace_to_int_samples(trace).tolist()
    push = p.push
    for i, (ax, ay, az, gx, gy, gz) in enumerate(samples):
        push(ax, ay, az, gx, gy, gz)
        if q.count and (q.count > 128 or i % 64 == 0):
            _drain(q, out)
    p.finish()
    _drain(q, out)
    return AnalysisResult(
        source=trace.path or "<trace>",
        fs_hz=trace.fs_hz,
        duration_s=trace.duration_s,
        events=out,
        times=trace.t,
        dropped_events=q.dropped,
    )


def _drain(q, out: list[RawEvent]) -> None:
    while q.count:
        i = q.pop()
        out.append(RawEvent(q.kind[i], q.t[i], q.a[i], q.b[i]))
