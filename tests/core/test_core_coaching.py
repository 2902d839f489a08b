import gc
import sys

from retrostep_core.coaching import GAP_MAX_MS, Coach
from retrostep_core.records import KIND_BACKWARD, KIND_FORWARD, KIND_NONE, KIND_REST

T0 = 7000  # the program starts 7 s into the session
FIVE_ONE_TWICE = [("forward", 300), ("backward", 60)]


def _coach():
    c = Coach(FIVE_ONE_TWICE, 2)
    assert c.start(T0)
    return c


def _changes(c, until, every):
    out = []
    t = T0
    while t <= until:
        while c.update(t):
            out.append((t, c.interval_start, c.kind, c.index, c.repeat, c.done))
        t += every
    return out


def test_changes_at_the_right_times():
    c = _coach()
    assert (c.kind, c.index, c.repeat, c.interval_start, c.done) == (KIND_FORWARD, 0, 0, T0,
                                                                     False)  # fmt: skip
    got = _changes(c, T0 + 900000, 1000)
    assert got == [
        (T0 + 300000, T0 + 300000, KIND_BACKWARD, 1, 0, False),
        (T0 + 360000, T0 + 360000, KIND_FORWARD, 0, 1, False),
        (T0 + 660000, T0 + 660000, KIND_BACKWARD, 1, 1, False),
        (T0 + 720000, T0 + 720000, KIND_NONE, 0, 2, True),
    ], got


def test_irregular_calls_report_the_scheduled_start():
    c = _coach()
    got = _changes(c, T0 + 900000, 1237)
    assert [g[1:] for g in got] == [
        (T0 + 300000, KIND_BACKWARD, 1, 0, False),
        (T0 + 360000, KIND_FORWARD, 0, 1, False),
        (T0 + 660000, KIND_BACKWARD, 1, 1, False),
        (T0 + 720000, KIND_NONE, 0, 2, True),
    ], got
    for called, start, _, _, _, _ in got:
        assert 0 <= called - start < 1237  # reported at the first call after the boundary


def test_a_late_call_catches_up_one_interval_at_a_time():
    c = _coach()
    seen = []
    while c.update(T0 + 700000):
        seen.append((c.interval_start - T0, c.kind, c.index, c.repeat))
    assert seen == [(300000, KIND_BACKWARD, 1, 0), (360000, KIND_FORWARD, 0, 1),
                    (660000, KIND_BACKWARD, 1, 1)]  # fmt: skip
    assert not c.done and c.interval_end == T0 + 720000


def test_program_end():
    c = Coach([("rest", 10)], 1)
    assert c.start(0) and c.kind == KIND_REST
    assert not c.update(9999) and not c.done
    assert c.update(10000) and c.done and c.kind == KIND_NONE
    assert (c.index, c.repeat) == (0, 1)
    for t in (10001, 20000, 10**8):
        assert not c.update(t)
    # steps after the end earn nothing
    c.step(20000, -1)
    c.step(20500, -1)
    assert c.backward_ms == 0 and c.forward_ms == 0


def test_empty_program_is_no_coaching():
    c = Coach([], 1)
    assert not c.enabled and c.done
    assert not c.start(0)
    assert not c.started and c.kind == KIND_NONE
    for t in range(0, 100000, 1000):
        assert not c.update(t)
        c.step(t, -1)
    assert c.backward_ms == 0 and c.forward_ms == 0
    assert Coach.from_config({"program": [], "program_repeat": 1}).enabled is False


def test_program_from_config_and_kind_codes_agree():
    a = Coach.from_config({"program": [["forward", 30], ["rest", 10]], "program_repeat": 3})
    b = Coach([(KIND_FORWARD, 30), (KIND_REST, 10)], 3)
    assert bytes(a.kinds) == bytes(b.kinds) == bytes([KIND_FORWARD, KIND_REST])
    assert list(a.durations) == list(b.durations) == [30000, 10000]
    assert a.run_ms == 40000 and a.repeats == 3


def test_rejects_bad_programs():
    for program, repeat in (([("sideways", 10)], 1), ([(9, 10)], 1), ([("rest", 0)], 1),
                            ([("rest", 10)], 0), ([("rest", 10.5)], 1)):  # fmt: skip
        try:
            Coach(program, repeat)
        except ValueError:
            continue
        raise AssertionError("accepted %r x %r" % (program, repeat))


def _lcg(seed):
    state = [seed]

    def nxt(lo, hi):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return lo + state[0] % (hi - lo + 1)

    return nxt


def _bout(rand, start, stop, direction):
    """Steps from ``start`` while before ``stop``, 500..700 ms apart: [(t, dir)]."""
    steps = []
    t = start
    while t < stop:
        steps.append((t, direction))
        t += rand(500, 700)
    return steps


# The script: (start, stop, direction) in ms after T0. Backward intervals are
# [300 s, 360 s) and [660 s, 720 s).
SCRIPT = [
    (2000, 290000, 1),  # forward through most of the first forward interval
    (305000, 330000, -1),  # backward after a 5 s hesitation
    (338000, 365000, -1),  # a stop of 8 s, then backward past the end of the interval
    (366500, 650000, 1),  # forward again
    (652000, 700000, 1),  # keeps walking forward into the backward interval
    (700000, 710000, -1),  # then some backward
    (712500, 800000, 1),  # forward to the end and beyond
]


def _clip(a, b, lo, hi):
    a = a if a > lo else lo
    b = b if b < hi else hi
    return b - a if b > a else 0


def test_compliance_is_the_backward_walking_time_within_one_step_interval():
    rand = _lcg(11)
    backward = ((T0 + 300000, T0 + 360000), (T0 + 660000, T0 + 720000))
    forward = ((T0, T0 + 300000), (T0 + 360000, T0 + 660000))
    c = _coach()
    t_clock = T0
    for start, stop, d in SCRIPT:
        before_b = c.backward_ms
        before_f = c.forward_ms
        steps = _bout(rand, T0 + start, T0 + stop, d)
        for t, direction in steps:
            while t_clock <= t:  # the app's once-a-second update, interleaved
                c.update(t_clock)
                t_clock += 1000
            c.step(t, direction)
        last = steps[-1][0]
        # true walking: the scripted span, clipped to the intervals of its kind
        spans = backward if d < 0 else forward
        truth = 0
        for lo, hi in spans:
            truth += _clip(T0 + start, T0 + stop, lo, hi)
        got = (c.backward_ms - before_b) if d < 0 else (c.forward_ms - before_f)
        other = (c.forward_ms - before_f) if d < 0 else (c.backward_ms - before_b)
        assert other == 0, (start, other)  # walking one way never counts for the other
        # measured from first to last contact: short by less than one step interval
        assert 0 <= truth - got <= 700, (start, stop, truth, got, T0 + stop - last)
    assert 55000 <= c.backward_ms <= 57000, c.backward_ms  # 25 s + 22 s + 10 s scripted


def test_late_steps_count_the_same():
    # the pipeline may release steps seconds after their contact time
    rand = _lcg(5)
    steps = []
    for start, stop, d in SCRIPT:
        steps.extend(_bout(rand, T0 + start, T0 + stop, d))
    on_time = _coach()
    i = 0
    for t in range(T0, T0 + 800000, 1000):
        on_time.update(t)
        while i < len(steps) and steps[i][0] <= t:
            on_time.step(steps[i][0], steps[i][1])
            i += 1
    late = _coach()
    while late.update(T0 + 800000):
        pass
    for t, d in steps:
        late.step(t, d)
    assert late.done and on_time.done
    assert (late.backward_ms, late.forward_ms) == (on_time.backward_ms, on_time.forward_ms)


def test_gaps_and_direction_changes_break_the_chain():
    c = Coach([("backward", 60)], 1)
    c.start(0)
    c.step(1000, -1)
    c.step(1000 + GAP_MAX_MS, -1)  # 2 s: a pause, not walking
    assert c.backward_ms == 0
    c.step(4000, -1)
    assert c.backward_ms == 1000
    c.step(4500, 1)  # a forward step: not backward walking, and no forward interval
    c.step(5000, -1)
    assert c.backward_ms == 1000 and c.forward_ms == 0
    c.step(5600, -1)
    assert c.backward_ms == 1600


def test_steps_before_the_start_only_count_from_the_start():
    c = Coach([("backward", 60)], 1)
    c.step(9500, -1)
    c.start(10000)
    c.step(10600, -1)
    assert c.backward_ms == 600


def test_mp_update_and_step_allocate_nothing():
    if not hasattr(gc, "mem_alloc"):
        raise RuntimeError("skip: needs MicroPython gc.mem_alloc")
    c = Coach([("forward", 20), ("backward", 10), ("rest", 10)], 20)
    c.start(0)
    update = c.update
    step = c.step
    for t in range(0, 5000, 500):  # warm up
        update(t)
        step(t, 1)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    d = 1
    for t in range(5000, 900000, 550):
        update(t)
        if t % 20000 < 550:
            d = -d
        step(t, d)
    after = gc.mem_alloc()
    gc.enable()
    assert c.done and c.backward_ms > 0 and c.forward_ms > 0
    assert after - before == 0, (after - before, sys.implementation.name)
