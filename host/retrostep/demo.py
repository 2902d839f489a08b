"""`retrostep demo`: three synthesized sessions through the firmware gait engine, scored.

The sessions are synthesized deterministically (:mod:`retrostep.synth`), written as trace
v1 files with their ground truth, read back, and run through the pipeline in one call of
:func:`retrostep.analyze.analyze_traces` (by default inside the MicroPython unix port, as
the device code runs). :func:`run_demo` returns the data; :func:`render` turns it into
text lines (styled with ``click.style``; ``click.echo`` drops the colours off a terminal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from retrostep_core import events as ev

from . import synth
from .analyze import analyze_traces, human_summary
from .metrics import StepScore, SwayScore, score_steps, score_sway
from .pipeline_io import AnalysisResult, PipelineConfig
from .trace import Trace, Truth, read_trace, truth_path_for, write_trace, write_truth

DEFAULT_OUT = Path("out") / "demo"
DEMO_FS_HZ = 52.0  # one device, one sensor rate for every session
TIMELINE_LINES = 8

# Sort order of events that share a sample index: a bout starts before its first step.
_ORDER = {ev.BOUT_START: 0, ev.STEP: 1, ev.SWAY_ALERT: 2, ev.BOUT_END: 3}


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SessionSpec:
    """One demo session: who does what, and how the sensor is worn."""

    name: str
    title: str
    person_kind: str
    person_seed: int
    seed: int
    segments: tuple[dict, ...]
    mount_tilt_deg: float = 0.0


def _stand(d: float) -> dict:
    return {"activity": "stand", "duration": d}


def _walk(d: float, direction: str = "forward", speed: str = "normal", **extra) -> dict:
    return {"activity": "walk", "direction": direction, "speed": speed, "duration": d, **extra}


def session_specs() -> list[SessionSpec]:
    """The three demo sessions (fixed, so the demo output is reproducible)."""
    sway = [{"at": 12.0, "peak_deg": 15.0, "side": "left", "duration": 1.8}]
    interval = (
        _stand(3),
        _walk(40),
        _walk(30, "backward", sway=sway),
        _walk(40),
        _walk(30, "backward"),
        _stand(3),
    )
    daily = (
        _stand(5),
        _walk(20),
        {"activity": "turn", "angle_deg": 180},
        _walk(5),
        {"activity": "sit", "duration": 25},
        _stand(3),
        _walk(15, "backward", "slow"),
        _stand(5),
    )
    seated = (_stand(3), {"activity": "sit", "duration": 50, "fidget": True}, _stand(3))
    return [
        SessionSpec(
            name="interval_program",
            title="interval training: forward 40 s / backward 30 s, twice; one 15 deg sway "
            "while walking backward (adult)",
            person_kind="adult",
            person_seed=11,
            seed=101,
            segments=interval,
            mount_tilt_deg=10.0,
        ),
        SessionSpec(
            name="daily_life_older",
            title="daily life: stand, walk, turn, sit down and up, walk backward slowly "
            "(older adult)",
            person_kind="older",
            person_seed=21,
            seed=102,
            segments=daily,
            mount_tilt_deg=20.0,
        ),
        SessionSpec(
            name="seated_fidgeting",
            title="sitting with fidgeting: no steps at all (adult)",
            person_kind="adult",
            person_seed=13,
            seed=103,
            segments=seated,
            mount_tilt_deg=15.0,
        ),
    ]


def synthesize_session(spec: SessionSpec) -> tuple[Trace, Truth]:
    """The session's trace (SI units) and ground truth, deterministic for ``spec``."""
    person = synth.make_person(spec.person_seed, kind=spec.person_kind)
    return synth.synthesize(
        [dict(s) for s in spec.segments],
        person,
        fs_hz=DEMO_FS_HZ,
        seed=spec.seed,
        mount_tilt_deg=spec.mount_tilt_deg,
        scenario=spec.name,
    )


# --------------------------------------------------------------------------- running


@dataclass
class SessionOutcome:
    """What the demo found for one session."""

    spec: SessionSpec
    trace_path: Path
    truth_path: Path
    truth: Truth
    result: AnalysisResult
    steps: StepScore
    sway: SwayScore


def write_session(spec: SessionSpec, out_dir: Path) -> tuple[Path, Truth]:
    """Synthesizes ``spec`` into ``<out_dir>/<name>.csv.gz`` + ``.truth.json``."""
    trace, truth = synthesize_session(spec)
    path = out_dir / f"{spec.name}.csv.gz"
    write_trace(path, trace)
    write_truth(truth_path_for(path), truth)
    return path, truth


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    runtime: str = "micropython",
    config: PipelineConfig | None = None,
) -> list[SessionOutcome]:
    """Writes the sessions, analyzes the files as written (one pipeline run), scores them."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = session_specs()
    written = [write_session(spec, out) for spec in specs]
    traces = [read_trace(path) for path, _ in written]
    results = analyze_traces(traces, runtime, config)
    outcomes = []
    for spec, (path, truth), trace, res in zip(specs, written, traces, results, strict=True):
        outcomes.append(
            SessionOutcome(
                spec=spec,
                trace_path=path,
                truth_path=truth_path_for(path),
                truth=truth,
                result=res,
                steps=score_steps(truth, res.steps()),
                sway=score_sway(truth, res.sway_alerts(), trace.duration_s),
            )
        )
    return outcomes


def on_sim_board(outcomes: list[SessionOutcome], out_dir: str | Path) -> list[str]:
    """Replays every session on the sim board (the firmware app in the unix port, logging
    to one LittleFS flash image) and compares its session logs with the analysis."""
    from . import sim

    image = Path(out_dir) / "flash.img"
    image.unlink(missing_ok=True)
    lines = [
        click.style("== the same sessions on the simulated device", bold=True)
        + f" (firmware app, flash image {image})"
    ]
    seen: set[int] = set()
    for o in outcomes:
        res = sim.run(str(o.trace_path), image=str(image))
        new = [x for x in res.sessions if x["id"] not in seen]
        seen.update(x["id"] for x in res.sessions)
        s = o.result.summary()
        lines.append(
            f"  {o.spec.name}: {len(new)} session(s) logged, "
            f"{sum(x['forward_steps'] for x in new)} forward / "
            f"{sum(x['backward_steps'] for x in new)} backward steps, "
            f"{sum(x['sway_alerts'] for x in new)} sway alert(s), "
            f"{len(sim.motor_pulses(res))} motor pulse(s) "
            f"(analysis: {s['forward_steps']} / {s['backward_steps']}, "
            f"{s['sway_alerts']})"
        )
    lines.append(f"  read them back any time with: retrostep sim logs {image}")
    return lines


# --------------------------------------------------------------------------- rendering


def clock(t: float) -> str:
    """Seconds as ``mm:ss.s`` (``72.44`` -> ``01:12.4``)."""
    tenths = int(round(max(t, 0.0) * 10))
    minutes, rest = divmod(tenths, 600)
    return f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"


def _describe(res: AnalysisResult, e) -> str:
    if e.kind == ev.STEP:
        return "step forward" if e.a > 0 else "step backward"
    if e.kind == ev.SWAY_ALERT:
        side = "right" if e.a > 0 else "left"
        return f"SWAY ALERT: leaning {side} {e.b / 10.0:.1f} deg"
    if e.kind == ev.BOUT_START:
        return "walking starts"
    return f"walking stops ({e.a} steps)"


def timeline(res: AnalysisResult) -> list[tuple[float, str]]:
    """(time in s, description) of steps, bouts and sway alerts, in time order."""
    shown = [e for e in res.events if e.kind in _ORDER]
    shown.sort(key=lambda e: (e.t, _ORDER[e.kind]))
    return [(res.time_of(e.t), _describe(res, e)) for e in shown]


def accuracy_line(steps: StepScore, sway: SwayScore) -> str:
    """Steps and sway alerts against the ground truth, in one line."""
    if steps.n_true == 0:
        step_part = f"steps: none in the truth, {steps.n_detected} detected"
    else:
        step_part = (
            f"steps: {steps.n_true} true / {steps.n_detected} detected, F1 {steps.f1:.2f}, "
            f"direction {100.0 * steps.direction_accuracy:.0f}%"
        )
    if sway.episodes_over:
        sway_part = (
            f"sway: {sway.alerted_over} of {sway.episodes_over} episode(s) over the limit "
            "alerted"
        )
        if sway.latencies:
            sway_part += f" (after {max(sway.latencies):.2f} s)"
    else:
        sway_part = "sway: no episode over the limit"
    return f"{step_part}; {sway_part}, {sway.false_alerts} false alert(s)"


def _good(steps: StepScore, sway: SwayScore) -> bool:
    return (
        steps.f1 >= 0.95
        and steps.direction_accuracy >= 0.95
        and sway.alerted_over == sway.episodes_over
        and sway.false_alerts == 0
    )


def timeline_lines(res: AnalysisResult, max_events: int = TIMELINE_LINES) -> list[str]:
    """The first ``max_events`` events plus every later sway alert; ``...`` marks gaps."""
    events = timeline(res)
    if not events:
        return [click.style("    (no events)", dim=True)]
    keep = [i for i, (_, what) in enumerate(events) if i < max_events or what.startswith("SWAY")]
    lines, last = [], -1
    for i in keep:
        if i > last + 1:
            lines.append(_gap(i - last - 1))
        t, what = events[i]
        text = f"    {clock(t)}  {what}"
        lines.append(click.style(text, fg="red", bold=True) if what.startswith("SWAY") else text)
        last = i
    if last < len(events) - 1:
        lines.append(_gap(len(events) - 1 - last))
    return lines


def _gap(n: int) -> str:
    return click.style(f"    ... {n} more event(s)", dim=True)


def render_session(o: SessionOutcome, max_events: int = TIMELINE_LINES) -> list[str]:
    """The block printed for one session: title, summary, timeline, accuracy."""
    colour = "green" if _good(o.steps, o.sway) else "yellow"
    label = click.style("accuracy", fg=colour, bold=True)
    return [
        click.style(f"== {o.spec.title}", bold=True, fg="cyan"),
        "  " + human_summary(o.spec.name, o.result),
        *timeline_lines(o.result, max_events),
        f"  {label}: {accuracy_line(o.steps, o.sway)}",
    ]


def render(outcomes: list[SessionOutcome], runtime: str) -> list[str]:
    """Every session's block, then the files written."""
    where = "the MicroPython unix port" if runtime == "micropython" else "CPython"
    lines = [
        click.style("retrostep demo", bold=True)
        + f": {len(outcomes)} synthesized sessions at {DEMO_FS_HZ:g} Hz through the "
        f"firmware gait engine in {where}",
        "",
    ]
    for o in outcomes:
        lines += render_session(o)
        lines.append("")
    lines.append("Files written:")
    for o in outcomes:
        lines += [f"  {o.trace_path}", f"  {o.truth_path}"]
    return lines
