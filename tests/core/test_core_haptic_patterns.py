import gc
import sys

from retrostep_core import haptic_patterns as h
from retrostep_core.records import KIND_BACKWARD, KIND_FORWARD, KIND_NONE, KIND_REST

SWAY = h.SWAY_ALERT


def _expected(pattern, e, strength):
    """Duty ``e`` ms into ``pattern``, straight from its data."""
    at = 0
    for on, off in pattern.pulses:
        if at <= e < at + on:
            return pattern.intensity * strength // 100
        at += on + off
    return 0


def _runs(levels):
    """Run-length encoding of a level trace: [(level, ms), ...]."""
    out = []
    for v in levels:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return [(v, n) for v, n in out]


def test_patterns_are_pairwise_distinct():
    ps = h.PATTERNS
    assert len(ps) == 8
    for i in range(len(ps)):
        for j in range(i + 1, len(ps)):
            assert ps[i].pulses != ps[j].pulses, (ps[i], ps[j])
            # distinct by rhythm alone (the on-times), whatever the strength setting
            assert [p[0] for p in ps[i].pulses] != [p[0] for p in ps[j].pulses], (ps[i], ps[j])
    # forward and backward differ in the number of pulses, not only in their length
    assert len(h.INTERVAL_FORWARD.pulses) == 1 and len(h.INTERVAL_BACKWARD.pulses) == 2
    assert h.interval_pattern(KIND_FORWARD) is h.INTERVAL_FORWARD
    assert h.interval_pattern(KIND_BACKWARD) is h.INTERVAL_BACKWARD
    assert h.interval_pattern(KIND_REST) is h.INTERVAL_REST
    assert h.interval_pattern(KIND_NONE) is h.INTERVAL_DONE


def test_every_pattern_fits_its_budget():
    for p in h.PATTERNS:
        if p is SWAY:
            assert p.priority == h.PRIO_SAFETY
            assert 4 * p.on_ms <= h.SAFETY_RESERVE_MS
        else:
            assert p.priority < h.PRIO_SAFETY
            assert p.on_ms <= h.BUDGET_MS - h.SAFETY_RESERVE_MS, p
    assert h.BUDGET_MS * 100 // h.WINDOW_MS == 30


def test_level_follows_each_pattern():
    for p in h.PATTERNS:
        for strength in (80, 100, 35):
            pl = h.Player(strength)
            t0 = 12345
            assert pl.level(t0 - 1) == 0
            assert pl.play(p, t0) == h.STARTED
            for e in range(p.span_ms + h.GAP_MS + 50):
                assert pl.level(t0 + e) == _expected(p, e, strength), (p, strength, e)
            assert pl.playing is None


def test_level_runs_for_the_backward_cue():
    pl = h.Player(80)
    pl.play(h.INTERVAL_BACKWARD, 0)
    got = _runs([pl.level(t) for t in range(2000)])
    assert got == [(68, 400), (0, 300), (68, 400), (0, 900)], got


def test_coarse_polling_still_follows_the_pattern():
    pl = h.Player(100)
    pl.play(h.FIND_ME, 1000)
    for t in range(1000, 1000 + h.FIND_ME.span_ms, 20):
        assert pl.level(t) == _expected(h.FIND_ME, t - 1000, 100), t


def test_strength_scales_and_zero_silences():
    pl = h.Player(0)
    pl.play(SWAY, 0)
    assert max(pl.level(t) for t in range(600)) == 0
    pl = h.Player(50)
    pl.play(h.INTERVAL_FORWARD, 0)
    assert pl.level(10) == 42
    pl.set_strength(100)
    assert pl.level(20) == 85
    for bad in (-1, 101):
        try:
            h.Player(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_sway_alert_preempts_an_interval_cue_which_is_replayed_whole():
    pl = h.Player(80)
    assert pl.play(h.INTERVAL_BACKWARD, 0) == h.STARTED
    assert [pl.level(t) for t in range(300)] == [68] * 300
    assert pl.play(SWAY, 300) == h.STARTED
    assert pl.playing is SWAY and pl.pending is h.INTERVAL_BACKWARD
    got = _runs([pl.level(t) for t in range(300, 3000)])
    # sway 120/120/120/120/120, its gap, then the whole backward cue again
    assert got == [(80, 120), (0, 120), (80, 120), (0, 120), (80, 120), (0, 400),
                   (68, 400), (0, 300), (68, 400), (0, 600)], got  # fmt: skip
    assert pl.dropped == 0


def test_lower_priority_waits_and_the_queue_keeps_the_best():
    pl = h.Player(100)
    pl.play(SWAY, 0)
    assert pl.play(SWAY, 50) == h.DROPPED  # already being felt
    assert pl.play(h.LOW_BATTERY, 100) == h.QUEUED
    assert pl.play(h.INTERVAL_FORWARD, 200) == h.QUEUED  # displaces the status cue
    assert pl.play(h.STORAGE_FULL, 250) == h.DROPPED  # lower than what is queued
    assert pl.dropped == 3
    for t in range(1000):
        pl.level(t)
        assert pl.playing is SWAY
    assert pl.level(1000) == 85 and pl.playing is h.INTERVAL_FORWARD
    # equal priority does not preempt: a newer cue waits, replacing an older waiting one
    assert pl.play(h.INTERVAL_BACKWARD, 1000) == h.QUEUED
    assert pl.play(h.INTERVAL_REST, 1100) == h.QUEUED
    assert pl.pending is h.INTERVAL_REST and pl.dropped == 4
    # a cue preempts a status pattern
    pl = h.Player(100)
    pl.play(h.LOW_BATTERY, 0)
    assert pl.play(h.INTERVAL_FORWARD, 10) == h.STARTED
    assert pl.pending is h.LOW_BATTERY


def test_a_preempted_pattern_in_its_last_gap_is_not_replayed():
    pl = h.Player(100)
    pl.play(h.INTERVAL_FORWARD, 0)
    pl.level(900)  # the pulse is over, the quiet gap runs until 1200
    assert pl.play(SWAY, 900) == h.STARTED and pl.pending is None


def test_stale_requests_are_dropped():
    pl = h.Player(100)
    assert pl.play(h.INTERVAL_DONE, 0) == h.STARTED  # 940 ms on, over at 1240 + gap
    assert pl.play(h.FIND_ME, 10) == h.QUEUED  # 1500 ms on: over the 1560 ms together
    for t in range(1640, 5011):
        assert pl.level(t) == 0 and pl.pending is h.FIND_ME, t
    assert pl.throttled == 1
    assert pl.level(5011) == 0 and pl.pending is None and pl.dropped == 1  # 5 s: stale
    # a status cue is still worth giving 10 s later: it waits for find-me's on-time
    # to leave the window
    pl = h.Player(100)
    pl.play(h.FIND_ME, 0)  # over at 2700
    assert pl.play(h.LOW_BATTERY, 10) == h.QUEUED
    assert pl.level(12699) == 0 and pl.pending is h.LOW_BATTERY
    assert pl.level(12700) == 70 and pl.playing is h.LOW_BATTERY


def test_stop_silences_now():
    pl = h.Player(100)
    pl.play(h.FIND_ME, 0)
    pl.play(h.LOW_BATTERY, 5)
    assert pl.level(10) == 100
    pl.stop()
    assert pl.level(11) == 0 and pl.playing is None and pl.pending is None


class _Trace:
    """Poll a player every ms; ``requests`` is {t: [pattern, ...]}. Keeps on-flags for
    all patterns and for non-safety ones (bytearrays indexed by ms), each request's
    result as (t, pattern, result) and each start as (t, pattern)."""

    def __init__(self, pl, requests, duration):
        self.on = bytearray(duration)
        self.low = bytearray(duration)
        self.results = []
        self.starts = []
        playing = None
        start = -1
        for t in range(duration):
            rs = requests.get(t)
            if rs:
                for p in rs:
                    self.results.append((t, p, pl.play(p, t)))
            if pl.level(t) > 0:
                self.on[t] = 1
                if pl.playing is not SWAY:
                    self.low[t] = 1
            if pl.playing is not playing or pl._start != start:
                playing = pl.playing
                start = pl._start
                if playing is not None:
                    self.starts.append((t, playing))


def _max_window(flags, window):
    total = 0
    best = 0
    for t in range(len(flags)):
        total += flags[t]
        if t >= window:
            total -= flags[t - window]
        if total > best:
            best = total
    return best


def test_duty_cycle_bound_under_a_storm_of_sway_alerts():
    pl = h.Player(100)
    requests = {}
    for k in range(100):  # 100 sway alerts in 10 s, then 100 more in the next 10 s
        requests[100 * k] = [SWAY]
        requests[10000 + 100 * k] = [SWAY]
    tr = _Trace(pl, requests, 25000)
    worst = _max_window(tr.on, h.WINDOW_MS)
    assert worst <= h.BUDGET_MS, worst
    assert worst >= h.BUDGET_MS - SWAY.on_ms, worst  # the budget is used, not wasted
    assert pl.throttled > 0  # the rule, not the pattern length, was the limit
    started = [r for r in tr.results if r[2] == h.STARTED]
    assert 12 <= len(started) <= 25, len(started)


def test_duty_cycle_bound_under_a_mixed_storm_keeps_room_for_sway_alerts():
    seed = [7]

    def rand(n):
        seed[0] = (seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return seed[0] % n

    others = [p for p in h.PATTERNS if p is not SWAY]
    requests = {}
    t = 0
    while t < 40000:
        requests[t] = [others[rand(len(others))]]
        t += 20 + rand(80)
    for t in range(1500, 40000, 3000):  # sway alerts as the pipeline raises them
        requests.setdefault(t, []).append(SWAY)
    pl = h.Player(100)
    tr = _Trace(pl, requests, 45000)
    assert _max_window(tr.on, h.WINDOW_MS) <= h.BUDGET_MS
    assert _max_window(tr.low, h.WINDOW_MS) <= h.BUDGET_MS - h.SAFETY_RESERVE_MS
    sways = [r for r in tr.results if r[1] is SWAY]
    assert len(sways) == 13 and all(r[2] == h.STARTED for r in sways), sways
    assert pl.throttled > 0 and pl.dropped > 0


def test_sway_alerts_beyond_four_in_ten_seconds_are_refused_after_other_cues():
    pl = h.Player(100)
    requests = {0: [h.FIND_ME], 3000: [h.INTERVAL_FORWARD]}
    for k in range(8):
        requests.setdefault(200 + 1100 * k, []).append(SWAY)
    tr = _Trace(pl, requests, 12000)
    assert _max_window(tr.on, h.WINDOW_MS) <= h.BUDGET_MS
    sways = [r[2] for r in tr.results if r[1] is SWAY]
    assert sways.count(h.STARTED) >= 4, sways
    assert sways.count(h.STARTED) < 8, sways  # the budget held some back ...
    asked = [r[0] for r in tr.results if r[1] is SWAY]
    for t, p in tr.starts:  # ... and none of those was felt late
        if p is SWAY:
            assert [a for a in asked if 0 <= t - a <= SWAY.stale_ms], t


def test_mp_level_and_play_allocate_nothing():
    if not hasattr(gc, "mem_alloc"):
        raise RuntimeError("skip: needs MicroPython gc.mem_alloc")
    pl = h.Player(80)
    level = pl.level
    play = pl.play
    ps = h.PATTERNS
    for t in range(2000):  # warm up
        level(t)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    k = 0
    for t in range(2000, 60000):
        if t % 97 == 0:
            play(ps[k], t)
            k = k + 1 if k + 1 < 8 else 0
        level(t)
    after = gc.mem_alloc()
    gc.enable()
    assert pl.throttled > 0 and pl.dropped > 0  # every path was taken
    assert after - before == 0, (after - before, sys.implementation.name)
