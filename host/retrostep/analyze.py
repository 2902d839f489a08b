"""`retrostep analyze`: the firmware pipeline on recorded traces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import RetrostepError, TraceError
from .pipeline_io import AnalysisResult, PipelineConfig, run_cpython
from .trace import Trace, read_trace, trace_stem

MIN_RATE_HZ = 25.0
MAX_RATE_HZ = 200.0


def analyze_traces(
    traces: list[Trace], runtime: str = "cpython", config: PipelineConfig | None = None
) -> list[AnalysisResult]:
    """Run the pipeline on every trace; MicroPython uses one interpreter for all."""
    if runtime == "micropython":
        from .runtime.micropython_port import run_micropython

        return run_micropython(traces, config)
    if runtime != "cpython":
        raise RetrostepError(f"unknown runtime {runtime!r} (choose cpython or micropython)")
    return [run_cpython(t, config) for t in traces]


def load_traces(paths: list[str], log) -> tuple[list[Trace], list[str]]:
    """Read traces; unusable ones are reported (one line each) and skipped."""
    traces, errors = [], []
    for p in paths:
        try:
            traces.append(fit_rate(read_trace(p, log=log), log))
        except RetrostepError as e:
            errors.append(str(e))
    return traces, errors


def fit_rate(trace: Trace, log) -> Trace:
    """The engine takes 25-200 Hz. Faster recordings are decimated to 100 Hz (logged);
    slower ones are refused: steps would be undersampled, not recoverable."""
    fs = trace.fs_hz
    if fs < MIN_RATE_HZ:
        raise TraceError(
            f"{trace.path}: fs_hz={fs:g} is below the {MIN_RATE_HZ:g} Hz the gait engine needs"
        )
    if fs <= MAX_RATE_HZ:
        return trace
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(100.0 / fs).limit_denominator(1000)
    imu = resample_poly(trace.imu, ratio.numerator, ratio.denominator, axis=0)
    new_fs = fs * ratio.numerator / ratio.denominator
    t = trace.t[0] + np.arange(len(imu)) / new_fs
    log(f"{trace.path}: resampled from {fs:g} Hz to {new_fs:g} Hz for the gait engine")
    return Trace(t=t, imu=imu, fs_hz=new_fs, meta=dict(trace.meta), path=trace.path)


def human_summary(name: str, res: AnalysisResult) -> str:
    s = res.summary()
    walking_min = s["walking_s"] / 60.0
    cad = f", cadence {s['cadence_spm']:.0f}/min" if s["cadence_spm"] else ""
    return (
        f"{name}: {s['steps']} steps ({s['forward_steps']} forward, "
        f"{s['backward_steps']} backward) in {s['bouts']} bout(s), "
        f"{walking_min:.1f} min walking{cad}; {s['sway_alerts']} sway alert(s) "
        f"over {s['duration_s'] / 60.0:.1f} min"
    )


def write_outputs(results: list[AnalysisResult], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    seen: set[str] = set()
    for res in results:
        stem = trace_stem(res.source)
        if stem in seen:
            raise RetrostepError(f"two inputs share the name {stem!r}; --out would overwrite")
        seen.add(stem)
        path = out_dir / f"{stem}.json"
        path.write_text(json.dumps(res.to_json(), indent=1) + "\n")
        written.append(path)
    return written
