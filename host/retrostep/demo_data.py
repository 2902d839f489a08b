"""Weeks of walking sessions as the device would log them, for demos, tests and benchmarks.

A simulated person walks an interval program (forward / backward) a few times a week.
Each session is encoded record by record with the shared codec in the order the
firmware writes it (``retrostep_device.app``): HEADER, the first INTERVAL, a WINDOW
record every 2 s (steps, and per-second summaries that became final 5 s after their
second), SWAY_ALERT and INTERVAL records as they happen, then END with the totals and
the interval compliance worked out by the firmware's own coach
(``retrostep_core.coaching.Coach``). The bytes are therefore real session logs; only
the walking is made up (for logs produced by the firmware itself from IMU traces, run
the sim board: ``retrostep sim run``).

The person: backward walking is slower and sways more than forward walking; sway and
sway alerts rise once a backward bout lasts longer than what the person can hold
steadily (``steady_s``), which grows with training. The program follows the companion's
own weekly suggestion (:func:`retrostep.progress.decide`): backward intervals grow while
alerts stay rare, so a history shows the progression a user would see.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from retrostep_core import records as r
from retrostep_core.coaching import Coach

from .progress import decide, next_interval
from .session_stats import DEVICE_EPOCH, derive

DEMO_DEVICE_ID = "demo-retrostep"
FIRMWARE = "retrostep 0.1.0"
FS_MHZ = 52000
SECOND_LAG_MS = 5000  # the app writes second k this long after it ends
WINDOW_MS = 2000
TICK_MS = 500  # the app's IMU batch: it writes at most this often


@dataclass(frozen=True)
class Walker:
    """How the person walks on one day (cadence in steps/min, sway in degrees)."""

    forward_cadence: float = 106.0
    backward_cadence: float = 86.0
    forward_sway_deg: float = 3.1  # mean per-second roll range, forward
    backward_sway_deg: float = 5.2
    steady_s: float = 70.0  # backward seconds held steadily before sway grows
    reaction_s: float = 2.0  # to turn round at an interval cue


def _cadence_of_second(steps_in: list[int], prev_t: int | None) -> int:
    """steps/min from the step intervals (<= 2 s) ending in this second, as the app."""
    gaps = []
    last = prev_t
    for t in steps_in:
        if last is not None and 0 < t - last <= 2000:
            gaps.append(t - last)
        last = t
    if not gaps:
        return 0
    total = sum(gaps)
    return (60000 * len(gaps) + total // 2) // total


def walk(program: list[tuple[str, int]], repeat: int, who: Walker, rng: random.Random,
         *, cooldown_s: float = 60.0) -> dict:  # fmt: skip
    """What the person does: steps, per-second sway and alert moments (times in ms)."""
    plan: list[tuple[int, int, int]] = []  # (start, end, direction) of walking bouts
    # The coach starts its program when the session opens (the first steps), so the
    # person walks the program from t = 0 and cools down forward after it.
    run_ms = sum(s for _, s in program) * 1000
    for rep in range(repeat):
        off = 0
        for kind, seconds in program:
            a = rep * run_ms + off
            b = a + seconds * 1000
            off += seconds * 1000
            d = {"forward": 1, "backward": -1}.get(kind, 0)
            turn = int(rng.uniform(0.5, 1.5) * who.reaction_s * 1000) if a else 0
            plan.append((a + turn, b, d))
    t_end = repeat * run_ms
    plan.append((t_end + 1500, t_end + int(cooldown_s * 1000), 1))

    steps: list[tuple[int, int]] = []
    backward_run_start = {}  # step time -> ms into its backward bout
    for a, b, d in plan:
        if d == 0 or b <= a:
            continue
        cad = who.forward_cadence if d > 0 else who.backward_cadence
        period = 60000.0 / (cad * rng.uniform(0.95, 1.05))
        x = float(a)
        bout0 = a
        while x < b:
            if d < 0 and (x - bout0) > who.steady_s * 1000 and rng.random() < 0.004:
                x += rng.uniform(4000, 12000)  # tired: a short stop, then on again
                bout0 = x
                continue
            ti = int(x)
            steps.append((ti, d))
            if d < 0:
                backward_run_start[ti] = ti - bout0
            x += period * rng.gauss(1.0, 0.04)
    end_ms = (steps[-1][0] if steps else 0) + int(rng.uniform(4000, 15000))

    n_sec = end_ms // 1000 + 1
    per_sec: list[list[int]] = [[] for _ in range(n_sec)]
    for ti, d in steps:
        per_sec[ti // 1000].append(ti * d)
    seconds = []
    alerts: list[tuple[int, int, int]] = []
    last_alert = -10**9
    prev_t = None
    for k in range(n_sec):
        items = per_sec[k]
        f = sum(1 for v in items if v > 0)
        bk = len(items) - f
        times = [abs(v) for v in items]
        cadence = _cadence_of_second(times, prev_t)
        if times:
            prev_t = times[-1]
        if f + bk == 0:
            rng_deg = rng.uniform(0.4, 1.4)
            p_alert = 0.0
        elif bk > f:
            into = max(backward_run_start.get(t_, 0) for t_ in times) / 1000.0
            over = max(0.0, into - who.steady_s) / max(who.steady_s, 1.0)
            rng_deg = who.backward_sway_deg * (1 + 0.6 * over) * rng.gauss(1.0, 0.12)
            p_alert = min(0.25, 0.003 + 0.08 * over)
        else:
            rng_deg = who.forward_sway_deg * rng.gauss(1.0, 0.1)
            p_alert = 0.0008
        rng_deg = max(0.3, rng_deg)
        rate = rng_deg * rng.uniform(2.2, 3.0)
        seconds.append((k * 1000, f, bk, cadence, int(round(rng_deg * 10)), int(round(rate * 10))))
        t_alert = k * 1000 + rng.randrange(0, 1000)
        if p_alert and rng.random() < p_alert and t_alert - last_alert >= 3000:
            last_alert = t_alert
            side = 1 if rng.random() < 0.5 else -1
            alerts.append((t_alert, side, int(rng.uniform(103, 150))))
    return {"steps": steps, "seconds": seconds, "alerts": alerts, "end_ms": end_ms}


def encode_session(
    session_id: int, wall_start: int, program: list[tuple[str, int]], repeat: int,
    walked: dict, *, end_reason: int = r.END_BUTTON, sway_limit_cdeg: int = 1000,
    config_crc: int = 0, firmware: str = FIRMWARE,
) -> bytes:  # fmt: skip
    """The log the firmware writes for this walk (record order and timing as in the app)."""
    enc = r.Encoder()
    out = bytearray()

    def put(frame) -> None:
        if frame is not None:
            out.extend(bytes(frame))

    put(enc.header(session_id, wall_start, FS_MHZ, sway_limit_cdeg, 0, 1, config_crc, firmware))
    coach = Coach(program, repeat)
    if coach.start(0):
        put(enc.interval(coach.interval_start, coach.kind, coach.index, coach.repeat))
    steps, seconds, alerts = walked["steps"], walked["seconds"], walked["alerts"]
    end_ms = walked["end_ms"]
    i_step = i_alert = k = 0
    next_window = WINDOW_MS
    fwd = bwd = walking_s = 0
    now = 0
    while now < end_ms:
        now = min(now + TICK_MS, end_ms)
        while i_step < len(steps) and steps[i_step][0] < now:
            t, d = steps[i_step]
            put(enc.window_step(t, d))
            coach.step(t, d)
            fwd += d > 0
            bwd += d < 0
            i_step += 1
        while i_alert < len(alerts) and alerts[i_alert][0] < now:
            put(enc.sway_alert(*alerts[i_alert]))
            i_alert += 1
        while k < len(seconds) and (k + 1) * 1000 + SECOND_LAG_MS <= now:
            t0, f, bk, cad, rng_, rate = seconds[k]
            walking_s += f + bk > 0
            put(enc.window_second(t0, f, bk, cad, rng_, rate))
            k += 1
        while coach.update(now):
            put(enc.interval(coach.interval_start, coach.kind, coach.index, coach.repeat))
        if now >= next_window:
            next_window = now + WINDOW_MS
            put(enc.flush_window())
    while k < len(seconds) and seconds[k][0] < end_ms:
        t0, f, bk, cad, rng_, rate = seconds[k]
        walking_s += f + bk > 0
        put(enc.window_second(t0, f, bk, cad, rng_, rate))
        k += 1
    put(enc.flush_window())
    if coach.started and not coach.done:
        coach.update(end_ms)
    put(enc.end(end_ms, fwd, bwd, len(alerts), walking_s, coach.backward_ms // 1000, end_reason))
    return bytes(out)


def wall_start_of(when: datetime) -> int:
    """HEADER wall_start for a moment: seconds since 2000-01-01 UTC."""
    return int((when.astimezone(timezone.utc) - DEVICE_EPOCH).total_seconds())


@dataclass(frozen=True)
class DemoSession:
    """One synthesized session: its raw log and what went into it."""

    raw: bytes
    session_id: int
    start: datetime
    program: list[tuple[str, int]]
    repeat: int


def history(
    weeks: int = 4, per_week: int = 3, *, first_day: date | None = None, seed: int = 1,
    first_session_id: int = 1, backward_s: int = 60, forward_s: int = 240, repeat: int = 4,
    unknown_clock_every: int = 0, recovered_every: int = 0, adapt: bool = True,
) -> list[DemoSession]:  # fmt: skip
    """``weeks`` of sessions, ``per_week`` a week, oldest first.

    ``first_day``: a Monday (default: the Monday ``weeks`` weeks before this one, so the
    history ends in the current week). Sessions start between 09:00 and 11:00 UTC.
    Every ``unknown_clock_every``-th session has no wall-clock start (the device clock
    was not set), every ``recovered_every``-th ends with a power cut (END recovered).
    With ``adapt`` the backward interval follows the weekly suggestion.
    """
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    until = now if first_day is None else None  # the default history ends today
    if first_day is None:
        today = now.date()
        first_day = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    who = Walker()
    days = [0, 2, 4, 5, 6, 1, 3][: max(1, min(per_week, 7))]
    out: list[DemoSession] = []
    sid = first_session_id
    for week in range(weeks):
        program = [("forward", forward_s), ("backward", backward_s)]
        week_alerts = 0
        week_bwd_s = 0.0
        week_comp = week_sched = 0.0
        for day in sorted(days):
            when = datetime.combine(first_day + timedelta(days=7 * week + day),
                                    time(9, 0), timezone.utc)  # fmt: skip
            when += timedelta(seconds=rng.randrange(0, 7200))
            if until is not None and when > until:
                continue
            walked = walk(program, repeat, who, rng)
            n = len(out) + 1
            clock = 0 if unknown_clock_every and n % unknown_clock_every == 0 else (
                wall_start_of(when))  # fmt: skip
            reason = r.END_RECOVERED if recovered_every and n % recovered_every == 0 else (
                r.END_BUTTON)  # fmt: skip
            raw = encode_session(sid, clock, program, repeat, walked, end_reason=reason)
            out.append(DemoSession(raw, sid, when, list(program), repeat))
            sid += 1
            s = derive(raw)  # what the weekly suggestion looks at, as the store has it
            week_alerts += s.backward_sway_alerts
            week_bwd_s += s.backward_walking_s
            week_comp += s.compliance_s or 0
            week_sched += s.backward_interval_s
        # training effect: steadier and a little faster backward, week by week
        who = replace(
            who, steady_s=who.steady_s + rng.uniform(8, 16),
            backward_sway_deg=max(3.6, who.backward_sway_deg * rng.uniform(0.95, 0.99)),
            backward_cadence=min(100.0, who.backward_cadence + rng.uniform(0.3, 1.2)),
        )  # fmt: skip
        if adapt:
            compliance = week_comp / week_sched if week_sched else None
            action = decide(week_alerts, week_bwd_s / 60.0, compliance)
            backward_s = next_interval(backward_s, action)
    return out
