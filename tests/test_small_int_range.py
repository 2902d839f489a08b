"""The ESP32 port keeps integers up to 2**30 unboxed; anything larger is a heap object.

The unix port is 64-bit, so its allocation test cannot see a value that outgrows 31 bits.
This test replays realistic synthetic walks (sitting, fidgeting, turns, sway, 25-200 Hz,
tilted mounting) and checks that every integer the pipeline keeps in its state stays
within the ESP32 small-int range after every sample.
"""

from __future__ import annotations

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
