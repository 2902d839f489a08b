"""The ESP32 port keeps integers up to 2**30 unboxed; anything larger is a heap object.

The unix port is 64-bit, so its allocation test cannot see a value that outgrows 31 bits.
This test replays realistic synthetic walks (sitting, fidgeting, turns, sway, 25-200 Hz,
tilted mounting) and checks that every integer the pipeline keeps in its state stays
within the ESP32 small-int range after every sample.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from retrostep import synth
from retrostep.pipeline_io import trace_to_int_samples
from retrostep_core.pipeline import GaitPipeline

SMALL = 2**30 - 1


def _int_fields(p: GaitPipeline):
    parts = [p, p.orientation, p.detector, p.direction, p.bouts, p.sway]
    for obj in parts:
        for name, value in vars(obj).items():
            if isinstance(value, int) and not isinstance(value, bool):
                yield f"{type(obj).__name__}.{name}", value


@pytest.mark.parametrize("case", ["daily_mix_O2", "sway_bwd_A2", "interval_fast_A5"])
def test_state_stays_within_esp32_small_ints(case):
    trace, _ = synth.make_case(case)
    p = GaitPipeline(trace.fs_hz)
    worst = {}
    for k, s in enumerate(trace_to_int_samples(trace).tolist()):
        p.push(*s)
        while p.events.count:
            p.events.pop()
        if k % 3 == 0:
            for name, v in _int_fields(p):
                if abs(v) > abs(worst.get(name, 0)):
                    worst[name] = v
    too_big = {n: v for n, v in worst.items() if abs(v) > SMALL}
    assert not too_big, too_big
    # The check looked at real state: the filters and accumulators were exercised.
    assert abs(worst["StepDetector.sv"]) > 500 and abs(worst["DirectionFeature.c"]) > 0


def test_every_operation_stays_within_esp32_small_ints(tmp_path):
    """Intermediate products too, not only stored state: every arithmetic operation of
    the per-sample code is recorded (tests/tools/int_range_probe.py) while realistic walks
    with hard 4 g / 30 rad/s impacts are replayed at 25 and 200 Hz."""
    probe = Path(__file__).parent / "tools" / "int_range_probe.py"
    proc = subprocess.run(
        [sys.executable, str(probe), str(tmp_path), "interval_fast_A5", "sway_fwd_fast_A5"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split(" ", 2) for line in proc.stdout.splitlines() if line.startswith("MAX ")]
    assert len(rows) > 100, "the instrumented engine did not run"
    too_big = [(int(v), where) for _, v, where in rows if int(v) > SMALL]
    assert not too_big, too_big[:5]
