import gc
import sys

from sigs import feed, still, walking

from retrostep_core.events import BOUT_END, BOUT_START, STEP, SWAY_ALERT, SWAY_METRICS
from retrostep_core.pipeline import GaitPipeline


def _steps(events):
    return sorted((e for e in events if e[0] == STEP), key=lambda e: e[1])


def test_counts_forward_walking_at_any_rate():
    for fs in (25, 52, 100, 200):
        p = GaitPipeline(fs)
        samples, contacts = walking(1, fs=fs, seconds=20, cadence=100)
        ev = feed(p, still(fs, 3) + samples + still(fs, 4))
        steps = _steps(ev)
        assert abs(len(steps) - len(contacts)) <= 2, (fs, len(steps), len(contacts))
        assert all(e[2] == 1 for e in steps), fs


def test_backward_walking_is_labelled_backward():
    p = GaitPipeline(52)
    samples, contacts = walking(-1, fs=52, seconds=20, cadence=80)
    steps = _steps(feed(p, still(52, 3) + samples))
    assert len(steps) >= len(contacts) - 2
    assert all(e[2] == -1 for e in steps)


def test_tilted_mounting_still_counts_and_labels():
    p = GaitPipeline(100)
    samples, contacts = walking(-1, fs=100, seconds=15, cadence=90, tilt_deg=40)
    steps = _steps(feed(p, still(100, 3, tilt_deg=40) + samples))
    assert len(steps) >= len(contacts) - 2
    assert sum(1 for e in steps if e[2] == -1) >= len(steps) - 1


def test_first_steps_are_released_with_their_own_contact_times():
    p = GaitPipeline(50)
    samples, contacts = walking(1, fs=50, seconds=10, cadence=100)
    events = feed(p, still(50, 3) + samples)
    start = [e for e in events if e[0] == BOUT_START]
    assert len(start) == 1
    first = _steps(events)[0]
    # The bout start and its first step carry an early contact time, not the
    # confirmation time.
    assert start[0][1] == first[1] < 150 + 3 * 50


def test_standing_still_gives_no_steps_and_ends_bouts():
    p = GaitPipeline(52)
    samples, _ = walking(1, fs=52, seconds=10)
    events = feed(p, samples + still(52, 6))
    assert sum(1 for e in events if e[0] == BOUT_END) == 1
    p.reset()
    assert not [e for e in feed(p, still(52, 30)) if e[0] == STEP]


def test_sway_alert_on_excessive_lean_only():
    p = GaitPipeline(50)
    calm, _ = walking(1, fs=50, seconds=12)
    lean, _ = walking(1, fs=50, seconds=2, lean_deg=15)
    events = feed(p, still(50, 2) + calm + lean + calm)
    alerts = [e for e in events if e[0] == SWAY_ALERT]
    assert len(alerts) == 1
    t_lean = (2 + 12) * 50
    assert t_lean <= alerts[0][1] <= t_lean + 25  # within 0.5 s
    assert alerts[0][3] >= 120  # reported deviation >= 12 degrees
    p.reset()
    mild, _ = walking(1, fs=50, seconds=2, lean_deg=4)
    assert not [e for e in feed(p, still(50, 2) + calm + mild + calm) if e[0] == SWAY_ALERT]


def test_sway_metrics_once_per_second():
    p = GaitPipeline(100)
    samples, _ = walking(1, fs=100, seconds=10)
    metrics = [e for e in feed(p, samples) if e[0] == SWAY_METRICS]
    assert len(metrics) in (9, 10)
    assert all(e[2] >= 0 and e[3] >= 0 for e in metrics)


def test_rejects_unsupported_rates_and_limits():
    for bad in ({"fs_hz": 10}, {"fs_hz": 400}, {"sway_limit_deg": 0}):
        try:
            GaitPipeline(**bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_mp_no_allocation_per_sample():
    # MicroPython only: the hot path must not touch the heap in steady state.
    if not hasattr(gc, "mem_alloc"):
        raise RuntimeError("skip: needs MicroPython gc.mem_alloc")
    p = GaitPipeline(52)
    samples, _ = walking(-1, fs=52, seconds=60, cadence=85, lean_deg=0)
    lean, _ = walking(-1, fs=52, seconds=2, lean_deg=15)
    feed(p, samples[:1000])
    work = samples[1000:] + lean + samples[:1000]
    q = p.events
    push = p.push
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for s in work:
        push(s[0], s[1], s[2], s[3], s[4], s[5])
        while q.count:
            q.pop()
    after = gc.mem_alloc()
    gc.enable()
    assert after - before == 0, (after - before, len(work), sys.implementation.name)
