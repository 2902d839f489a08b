"""`make bench`: accuracy, cost and memory of the gait engine, written to docs/benchmarks.md.

    python -m bench.run --out docs/benchmarks.md

1. A fixed synthetic suite (retrostep.synth.benchmark_suite) scored against its ground
   truth; the same traces also run in the MicroPython unix port, whose events must be
   identical to CPython's.
2. Public lower-back recordings (Mobilise-D examples from the mobgap 1.2.0 sdist),
   fetched at run time; if the registry cannot be reached the report says so.
3. Cost per sample in the unix port and in CPython, bytes allocated per sample, state size.
4. The device on the sim board (bench/device.py): log bytes per hour of walking, CPU and
   heap of the firmware in the unix port, battery estimates quoted from hardware/power.md.
5. Flashing the virtual board (retrostep.flash.bench): full and incremental flash, bytes
   sent and wall time, compiled size versus source.
6. BLE sync (bench/sync_model.py): ATT packets and bytes on air per synced hour of
   walking at MTU 23 / 185 / 247, and a documented sync-time model.
7. The companion (bench/store_bench.py): `sessions`, `progress` and `report` on a store of
   1,000 sessions, and the store's size per session.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.evaluate import Totals, score_case
from retrostep.pipeline_io import run_cpython, trace_to_int_samples
from retrostep.runtime.micropython_port import (
    micropython_env,
    micropython_executable,
    run_micropython,
)
from retrostep.trace import Trace, Truth

ROOT = Path(__file__).resolve().parent.parent
COST_RATES = (25, 52, 100, 200)

TARGETS = [
    # (label, key, comparison, target)
    ("Step-count error, pooled", "count_err", "<=", 0.01),
    ("Event F1 (±0.25 s)", "f1", ">=", 0.98),
    ("Direction accuracy per step", "dir", ">=", 0.99),
    ("Sway episodes above the limit alerted", "recall", ">=", 1.0),
    ("Median alert latency (s)", "lat50", "<=", 0.3),
    ("Alerts on mild sway (<= 4 deg)", "mild", "<=", 0),
    ("False alerts per minute of walking", "fa", "<=", 0.1),
]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mp = subprocess.run(
        [micropython_executable(), "-c", "import sys; print(sys.version)"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return (
        f"{cpu}, {platform.system()} {platform.release()}; CPython {platform.python_version()}; "
        f"MicroPython unix port {mp}"
    )


def _commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return (out.stdout.strip() or "unknown") + (" + local changes" if dirty else "")


def evaluate(cases: list[tuple[str, Trace, Truth]]) -> tuple[Totals, dict]:
    totals = Totals()
    t0 = time.perf_counter()
    results = [run_cpython(tr) for _, tr, _ in cases]
    cpu_s = time.perf_counter() - t0
    for (name, tr, truth), res in zip(cases, results, strict=True):
        totals.add(score_case(name, tr, truth, res))
    t0 = time.perf_counter()
    mp_results = run_micropython([tr for _, tr, _ in cases])
    mp_s = time.perf_counter() - t0
    same = sum(
        1
        for a, b in zip(results, mp_results, strict=True)
        if [(e.kind, e.t, e.a, e.b) for e in a.events]
        == [(e.kind, e.t, e.a, e.b) for e in b.events]
    )
    n_samples = sum(len(tr.t) for _, tr, _ in cases)
    return totals, {
        "identical": same,
        "n": len(cases),
        "cpython_s": cpu_s,
        "micropython_s": mp_s,
        "samples": n_samples,
        "hours": sum(tr.duration_s for _, tr, _ in cases) / 3600,
    }


def _values(t: Totals) -> dict:
    return {
        "count_err": t.pooled_count_error,
        "f1": t.steps.f1,
        "dir": t.steps.direction_accuracy,
        "recall": t.sway_recall,
        "lat50": t.latency(50),
        "mild": t.mild_alerts,
        "fa": t.false_alerts_per_min,
    }


def _fmt(key: str, v) -> str:
    if v is None:
        return "n/a"
    if key in ("count_err",):
        return f"{100 * v:.2f} %"
    if key in ("f1",):
        return f"{v:.3f}"
    if key in ("dir", "recall"):
        return f"{100 * v:.1f} %"
    if key in ("lat50",):
        return f"{v:.2f}"
    if key in ("fa",):
        return f"{v:.3f}"
    return str(v)


def _met(cmp: str, v, target) -> str:
    if v is None:
        return "n/a"
    ok = v <= target if cmp == "<=" else v >= target
    return "yes" if ok else "**no**"


def accuracy_section(title: str, totals: Totals, run: dict | None, note: str = "") -> list[str]:
    s = totals.steps
    vals = _values(totals)
    lines = [f"## {title}", ""]
    if note:
        lines += [note, ""]
    if run:
        lines += [
            f"{run['n']} traces, {run['hours']:.2f} h, {run['samples']:,} samples. "
            f"CPython {run['cpython_s']:.1f} s; MicroPython unix port {run['micropython_s']:.1f} s "
            f"for the same traces in one interpreter; events identical in "
            f"**{run['identical']} / {run['n']}** traces.",
            "",
        ]
    lines += ["| metric | target | measured | met |", "|---|---|---|---|"]
    for label, key, cmp, target in TARGETS:
        tv = _fmt(key, target) if key not in ("mild",) else str(target)
        lines.append(
            f"| {label} | {cmp} {tv} | {_fmt(key, vals[key])} | {_met(cmp, vals[key], target)} |"
        )
    lat95 = totals.latency(95)
    timing = np.array(s.timing_errors)
    lines += [
        "",
        f"- Steps: {s.n_true} true ({s.true_forward} forward, {s.true_backward} backward), "
        f"{s.n_detected} detected, {s.matched} matched; precision {s.precision:.3f}, "
        f"recall {s.recall:.3f}; per-trace mean absolute count error "
        f"{100 * totals.mean_abs_pct_error:.2f} %.",
        f"- Contact-time error of matched steps: mean {timing.mean() * 1000:+.0f} ms, "
        f"SD {timing.std() * 1000:.0f} ms."
        if len(timing)
        else "- No matched steps.",
        f"- Sway: {totals.sway.alerted_over}/{totals.sway.episodes_over} episodes above the "
        f"limit alerted; latency median {_fmt('lat50', totals.latency(50))} s, 95th percentile "
        f"{_fmt('lat50', lat95)} s; {totals.sway.alerted_mild}/{totals.sway.episodes_mild} mild "
        f"episodes alerted; {totals.sway.false_alerts} false alerts in "
        f"{totals.sway.walking_minutes:.1f} min of walking.",
        f"- Steps reported in traces with no walking at all: {totals.false_steps_without_walking}.",
        "",
        "| trace | s | true steps | detected | F1 | direction | alerted / episodes over "
        "limit | false alerts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in totals.cases:
        lines.append(
            f"| {c.name} | {c.duration_s:.0f} | {c.steps.n_true} | {c.steps.n_detected} | "
            f"{c.steps.f1:.3f} | {100 * c.steps.direction_accuracy:.1f} % | "
            f"{c.sway.alerted_over}/{c.sway.episodes_over} | {c.sway.false_alerts} |"
        )
    lines.append("")
    return lines


def decision_delays(cases: list[tuple[str, Trace, Truth]]) -> tuple[list[float], list[float]]:
    """Seconds from a step's contact time to the sample at which it was reported:
    (steps inside a confirmed bout, first steps released at bout confirmation)."""
    from retrostep_core import events as ev
    from retrostep_core.pipeline import GaitPipeline

    steady, first = [], []
    for _, tr, _ in cases:
        p = GaitPipeline(tr.fs_hz, event_capacity=256)
        q = p.events
        starting = False
        for i, s in enumerate(trace_to_int_samples(tr).tolist()):
            p.push(*s)
            while q.count:
                k = q.pop()
                if q.kind[k] == ev.BOUT_START:
                    starting = True
                elif q.kind[k] == ev.STEP:
                    (first if starting else steady).append((i - q.t[k]) / tr.fs_hz)
            starting = False
    return steady, first


def delay_section(cases) -> list[str]:
    steady, first = decision_delays(cases)
    pct = lambda v, q: float(np.percentile(v, q))  # noqa: E731
    return [
        "## Decision delay",
        "",
        "Time from a step's contact to the sample at which the engine reports it "
        "(synthetic suite, every step).",
        "",
        "| steps | n | median (s) | 95th percentile (s) | max (s) |",
        "|---|---|---|---|---|",
        f"| inside a confirmed bout | {len(steady)} | {pct(steady, 50):.2f} | "
        f"{pct(steady, 95):.2f} | {max(steady):.2f} |",
        f"| first steps, released when the bout is confirmed | {len(first)} | "
        f"{pct(first, 50):.2f} | {pct(first, 95):.2f} | {max(first):.2f} |",
        "",
    ]


def cost_section(trace_for_rate) -> list[str]:
    lines = [
        "## Cost and memory",
        "",
        "Per input sample, steady state, measured with `bench/mp_cost.py` inside the "
        "MicroPython unix port (`time.ticks_us`, `gc.mem_alloc` with the collector "
        "disabled) and with `time.perf_counter` in CPython. The feeding loop's own cost "
        "(a call to an empty function with the same arguments) is shown separately.",
        "",
        "| rate (Hz) | unix port µs/sample | feeding loop µs | CPython µs/sample | "
        "bytes allocated/sample (unix port) | pipeline state (bytes) |",
        "|---|---|---|---|---|---|",
    ]
    exe = micropython_executable()
    for fs in COST_RATES:
        tr = trace_for_rate(fs)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.i32"
            trace_to_int_samples(tr).astype("<i4").tofile(path)
            out = subprocess.run(
                [exe, "-X", "heapsize=16m", str(ROOT / "bench" / "mp_cost.py"), str(path), str(fs)],
                capture_output=True, text=True, env=micropython_env(), check=True,
            ).stdout  # fmt: skip
        vals = dict(line.split(None, 1) for line in out.strip().splitlines())
        best = float("inf")
        for _ in range(3):  # best of three: the machine is shared
            t0 = time.perf_counter()
            run_cpython(tr)
            best = min(best, time.perf_counter() - t0)
        cp = best / len(tr.t) * 1e6
        lines.append(
            f"| {fs} | {float(vals['us_per_sample']):.2f} "
            f"| {float(vals['loop_us_per_sample']):.2f} | {cp:.2f} "
            f"| {float(vals['alloc_per_sample']):.3f} | {vals['state_bytes']} |"
        )
    lines += [
        "",
        "CPython figures include converting the events to Python objects; the unix-port "
        "figures are the pipeline alone. Target: ≤ 25 µs per sample in the unix port, "
        "0 bytes allocated per sample.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench")
    args = ap.parse_args(argv)

    from retrostep import synth

    started = time.perf_counter()
    print("synthesizing the benchmark suite ...", file=sys.stderr)
    suite = [(name, *synth.make_case(name, **kw)) for name, kw in synth.benchmark_suite()]
    print("scoring the synthetic suite ...", file=sys.stderr)
    syn_totals, syn_run = evaluate(suite)

    print("scoring fresh synthetic people ...", file=sys.stderr)
    fresh_totals, fresh_run = evaluate(fresh_cases(FRESH_SEED))

    print("fetching the Mobilise-D example recordings ...", file=sys.stderr)
    real_lines = real_section(args.cache)

    print("measuring cost ...", file=sys.stderr)

    def trace_for_rate(fs):
        tr, _ = synth.make_case("cost", **_cost_case(fs))
        return tr

    cost_lines = cost_section(trace_for_rate)

    print("running the firmware on the sim board (1 h of walking) ...", file=sys.stderr)
    from bench.device import device_section

    device_lines = device_section()

    print("flashing the virtual board ...", file=sys.stderr)
    from retrostep.flash.bench import flash_section

    flash_lines = flash_section()

    print("modelling a BLE sync of an hour of walking ...", file=sys.stderr)
    from bench.sync_model import sync_section

    sync_lines = sync_section()

    print("timing the companion on a store of 1,000 sessions ...", file=sys.stderr)
    from bench.store_bench import store_section

    store_lines = store_section()

    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.run --out docs/benchmarks.md`); do not "
        "edit by hand.",
        "",
        f"- Date: {_dt.date.today().isoformat()}; commit {_commit()}",
        f"- Machine: {_machine()}",
        "- Run time: {RUNTIME}",
        "",
        "Scoring: a detected step matches a true step within ±0.25 s (one-to-one, closest "
        "first); direction accuracy is over matched steps. A sway episode counts as alerted "
        "if an alert comes between 0.2 s before it crosses the limit and 0.5 s after it "
        "ends; latency is measured from the moment the lean first exceeds the limit. "
        "Alerts outside every episode are false alerts. See docs/gait-engine.md for the "
        "algorithms and docs/synthesizer.md for what the synthetic data does and does not "
        "model.",
        "",
    ]
    lines += accuracy_section("Synthetic suite", syn_totals, syn_run)
    lines += accuracy_section(
        "Synthetic, fresh people (never used for tuning)",
        fresh_totals,
        fresh_run,
        f"16 random sessions (seed {FRESH_SEED}) of people, rates (25-200 Hz), mountings "
        "(tilt ±45°, clip rotation ±30°, roll ±20°) and walking directions drawn afresh: two "
        "walks separated by a stop, one 12-20° sway episode, then sitting with fidgeting. "
        "The engine's parameters were never adjusted on these, so the gap to the suite "
        "above shows how much it is fitted to the suite.",
    )
    lines += delay_section(suite)
    lines += real_lines
    lines += cost_lines
    lines += device_lines
    lines += [""] + flash_lines + [""] + sync_lines + [""] + store_lines
    text = "\n".join(lines).replace("{RUNTIME}", f"{time.perf_counter() - started:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


FRESH_SEED = 2027


def fresh_cases(seed: int, n: int = 16) -> list[tuple[str, Trace, Truth]]:
    from retrostep import synth

    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n):
        kind = str(rng.choice(["adult", "older", "rehab"]))
        person = synth.make_person(seed * 100 + k, kind=kind)
        d1, d2 = (str(d) for d in rng.choice(["forward", "backward"], 2))
        sway = {
            "at": 10.0,
            "peak_deg": float(rng.uniform(12, 20)),
            "side": str(rng.choice(["left", "right"])),
            "duration": 1.5,
        }
        segments = [
            {"activity": "stand", "duration": 4},
            {"activity": "walk", "direction": d1, "duration": float(rng.uniform(20, 50)),
             "sway": [sway]},
            {"activity": "stand", "duration": 3},
            {"activity": "walk", "direction": d2, "duration": float(rng.uniform(20, 50))},
            {"activity": "sit", "duration": 10, "fidget": True},
        ]  # fmt: skip
        fs = float(rng.choice([25, 52, 100, 200]))
        tr, truth = synth.synthesize(
            segments,
            person,
            fs_hz=fs,
            seed=seed + k,
            mount_tilt_deg=float(rng.uniform(-45, 45)),
            mount_yaw_deg=float(rng.uniform(-30, 30)),
            mount_roll_deg=float(rng.uniform(-20, 20)),
        )
        cases.append((f"fresh{k}_{kind}_{d1[0]}{d2[0]}_{fs:g}Hz", tr, truth))
    return cases


def _cost_case(fs: int) -> dict:
    from retrostep import synth

    return synth.cost_case_kwargs(fs)


def real_section(cache: Path) -> list[str]:
    from bench import mobgap_data
    from retrostep.trace import load_trace_with_truth

    title = "Real recordings: Mobilise-D lower-back examples (mobgap 1.2.0 sdist)"
    try:
        lab = mobgap_data.fetch_mobgap_sdist(cache)
    except mobgap_data.DataUnavailable as e:
        return [f"## {title}", "", f"Not measured on this run: {e.reason}.", ""]
    out_dir = cache / "mobgap-traces"
    paths = mobgap_data.convert_lab_recordings(lab, out_dir, log=lambda m: None)
    cases = []
    for p in paths:
        tr, truth = load_trace_with_truth(p, log=lambda m: None)
        if truth is not None:
            cases.append((Path(p).name.split(".")[0], tr, truth))
    totals, run = evaluate(cases)
    groups = []
    for label, key in (
        ("straight walks (Test5)", "_Test5_"),
        ("daily activities (Test11)", "_Test11_"),
    ):
        sub = Totals()
        for c in totals.cases:
            if key in c.name:
                sub.add(c)
        s = sub.steps
        groups.append(
            f"- {label}: {s.n_true} true steps, {s.n_detected} detected, F1 {s.f1:.3f}, "
            f"count error {100 * sub.pooled_count_error:.1f} %, direction "
            f"{100 * s.direction_accuracy:.1f} %, {sub.sway.false_alerts} sway alerts."
        )
    note = (
        "Healthy adults (HA) and a person with multiple sclerosis (MS); McRoberts sensor on "
        "the lower back, 100 Hz; reference initial contacts from the INDIP system. Test5 is "
        "a straight walk, Test11 simulated daily activities (turns, stops, sitting). All "
        "walking is forward and there is no instructed sway, so every sway alert counts as "
        "false. Only the reference walking bouts are scored (bench/mobgap_data.py). These "
        "recordings were used during development to check the physical assumptions (see "
        "docs/gait-engine.md), so they are not a held-out test set."
    )
    return accuracy_section(title, totals, run, note + "\n\n" + "\n".join(groups))


if __name__ == "__main__":
    sys.exit(main())
