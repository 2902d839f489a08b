"""Week-by-week progress and the suggestion for next week's program.

Weeks are ISO weeks (Monday to Sunday) in the computer's local time. Per week: backward
and forward walking minutes and steps, sway alerts (all, and those while walking
backward), alerts per backward minute, sway (mean per-second roll range while walking,
and while walking backward, weighted by walking time) and interval compliance. Weeks
without a session between the first and the last are listed with zeros, so a break
shows.

The suggestion (``docs/companion.md`` has the reasoning and sources) looks at the most
recent week with sessions and applies progressive overload to the backward intervals:

* fewer than ``LENGTHEN_BELOW`` backward sway alerts per backward minute and a
  compliance of at least ``COMPLIANCE_GOOD`` (or no program) -> lengthen the backward
  intervals by ``STEP_S`` (up to ``MAX_BACKWARD_S``);
* ``SHORTEN_AT`` or more per minute, or a compliance under ``COMPLIANCE_POOR`` ->
  shorten them by ``STEP_S`` (down to ``MIN_BACKWARD_S``);
* otherwise, or with less than ``MIN_BACKWARD_MIN`` backward minutes to judge -> keep.

The program is the device's coaching program (``retrostep_core.config``: a list of
``(kind, seconds)`` and a repeat count), as the latest session's INTERVAL records show
it; without one, the suggestion is a starter program.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from retrostep_core import config as cfg

from .store import SessionRow, Store

LENGTHEN_BELOW = 0.25  # backward sway alerts per backward minute: fewer -> longer
SHORTEN_AT = 1.0  # this many or more -> shorter
COMPLIANCE_GOOD = 0.8
COMPLIANCE_POOR = 0.5
MIN_BACKWARD_MIN = 3.0  # backward minutes in the week needed to judge
STEP_S = 30
MIN_BACKWARD_S = 30
MAX_BACKWARD_S = 300
STARTER_PROGRAM = [("forward", 240), ("backward", 60)]
STARTER_REPEAT = 4


def decide(backward_alerts: int, backward_minutes: float, compliance: float | None) -> str:
    """"lengthen", "shorten" or "keep" for one week (the rule in the module docstring)."""
    if backward_minutes < MIN_BACKWARD_MIN:
        return "keep"
    rate = backward_alerts / backward_minutes
    if rate >= SHORTEN_AT or (compliance is not None and compliance < COMPLIANCE_POOR):
        return "shorten"
    if rate < LENGTHEN_BELOW and (compliance is None or compliance >= COMPLIANCE_GOOD):
        return "lengthen"
    return "keep"


def next_interval(seconds: int, action: str) -> int:
    """A backward interval's length after ``action``, within the limits."""
    if action == "lengthen":
        return max(seconds, min(MAX_BACKWARD_S, seconds + STEP_S))
    if action == "shorten":
        return min(seconds, max(MIN_BACKWARD_S, seconds - STEP_S))
    return seconds


@dataclass
class Week:
    monday: date
    sessions: int = 0
    forward_steps: int = 0
    backward_steps: int = 0
    forward_s: float = 0.0
    backward_s: float = 0.0
    sway_alerts: int = 0
    backward_sway_alerts: int = 0
    _sway_w: float = 0.0  # walking-time-weighted sums
    _sway_sum: float = 0.0
    _bsway_w: float = 0.0
    _bsway_sum: float = 0.0
    compliance_s: int = 0
    scheduled_s: float = 0.0

    @property
    def label(self) -> str:
        y, w, _ = self.monday.isocalendar()
        return f"{y}-W{w:02d}"

    @property
    def backward_min(self) -> float:
        return self.backward_s / 60.0

    @property
    def alerts_per_backward_min(self) -> float | None:
        return self.backward_sway_alerts / self.backward_min if self.backward_s else None

    @property
    def alerts_per_walking_min(self) -> float | None:
        walking = (self.forward_s + self.backward_s) / 60.0
        return self.sway_alerts / walking if walking else None

    @property
    def sway_range_mean_deg(self) -> float | None:
        return self._sway_sum / self._sway_w if self._sway_w else None

    @property
    def backward_sway_range_mean_deg(self) -> float | None:
        return self._bsway_sum / self._bsway_w if self._bsway_w else None

    @property
    def compliance(self) -> float | None:
        return min(1.0, self.compliance_s / self.scheduled_s) if self.scheduled_s else None

    def add(self, s: SessionRow) -> None:
        st = s.stats
        self.sessions += 1
        self.forward_steps += st["forward_steps"]
        self.backward_steps += st["backward_steps"]
        self.forward_s += st["forward_walking_s"]
        self.backward_s += st["backward_walking_s"]
        self.sway_alerts += st["sway_alerts"]
        self.backward_sway_alerts += st["backward_sway_alerts"]
        walking = st["forward_walking_s"] + st["backward_walking_s"]
        if st["sway_range_mean_deg"] is not None and walking:
            self._sway_w += walking
            self._sway_sum += walking * st["sway_range_mean_deg"]
        if st["backward_sway_range_mean_deg"] is not None and st["backward_walking_s"]:
            self._bsway_w += st["backward_walking_s"]
            self._bsway_sum += st["backward_walking_s"] * st["backward_sway_range_mean_deg"]
        if st["compliance_s"] is not None and st["backward_interval_s"]:
            self.compliance_s += st["compliance_s"]
            self.scheduled_s += st["backward_interval_s"]

    def to_json(self) -> dict:
        def r(v, n=2):
            return None if v is None else round(v, n)

        return {
            "week": self.label, "monday": self.monday.isoformat(), "sessions": self.sessions,
            "backward_minutes": r(self.backward_min), "backward_steps": self.backward_steps,
            "forward_minutes": r(self.forward_s / 60.0), "forward_steps": self.forward_steps,
            "sway_alerts": self.sway_alerts, "backward_sway_alerts": self.backward_sway_alerts,
            "alerts_per_backward_minute": r(self.alerts_per_backward_min, 3),
            "alerts_per_walking_minute": r(self.alerts_per_walking_min, 3),
            "sway_range_mean_deg": r(self.sway_range_mean_deg),
            "backward_sway_range_mean_deg": r(self.backward_sway_range_mean_deg),
            "compliance": r(self.compliance, 3),
        }  # fmt: skip


def weeks_of(sessions: list[SessionRow]) -> list[Week]:
    """Weekly sums, oldest first, with empty weeks between the first and the last."""
    if not sessions:
        return []
    by: dict[date, Week] = {}
    for s in sessions:
        d = s.start.astimezone().date()
        monday = d - timedelta(days=d.weekday())
        by.setdefault(monday, Week(monday)).add(s)
    first, last = min(by), max(by)
    out = []
    m = first
    while m <= last:
        out.append(by.get(m) or Week(m))
        m += timedelta(days=7)
    return out


def sway_trend(weeks: list[Week], n: int = 8) -> float | None:
    """Least-squares slope of the backward sway (degrees per week) over the last ``n``
    weeks that have backward walking; None with fewer than 3 such weeks."""
    pts = [(i, w.backward_sway_range_mean_deg) for i, w in enumerate(weeks)
           if w.backward_sway_range_mean_deg is not None][-n:]  # fmt: skip
    if len(pts) < 3:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def current_program(sessions: list[SessionRow]) -> tuple[list[tuple[str, int]], int] | None:
    """The program of the most recent session that shows a whole one."""
    for s in reversed(sessions):
        prog = s.stats["program"]
        if prog:
            return [(k, int(v)) for k, v in prog], int(s.stats["program_repeat"] or 1)
    return None


def _fmt_rate(v: float) -> str:
    return f"{v:.2f}"


def suggest(sessions: list[SessionRow], weeks: list[Week] | None = None) -> dict:
    """Next week's suggestion (JSON-ready): action, reason and the program to use."""
    weeks = weeks_of(sessions) if weeks is None else weeks
    current = current_program(sessions)
    latest = next((w for w in reversed(weeks) if w.sessions), None)
    if current is None:
        program, repeat = list(STARTER_PROGRAM), STARTER_REPEAT
        action = "start"
        reason = ("no interval program in the sessions yet: start with short backward "
                  "intervals")  # fmt: skip
        now = None
    else:
        program, repeat = current
        if latest is None:
            action, reason = "keep", "no sessions yet"
        else:
            comp = latest.compliance
            action = decide(latest.backward_sway_alerts, latest.backward_min, comp)
            rate = latest.alerts_per_backward_min
            comp_txt = "no program compliance" if comp is None else (
                f"{comp:.0%} interval compliance")  # fmt: skip
            if latest.backward_min < MIN_BACKWARD_MIN:
                reason = (f"only {latest.backward_min:.1f} backward minutes in {latest.label}: "
                          f"not enough to judge")  # fmt: skip
            elif action == "lengthen":
                reason = (f"{_fmt_rate(rate or 0)} sway alerts per backward minute in "
                          f"{latest.label} (fewer than {LENGTHEN_BELOW}) and {comp_txt}")
            elif action == "shorten":
                reason = (f"{_fmt_rate(rate or 0)} sway alerts per backward minute in "
                          f"{latest.label} (limit {SHORTEN_AT}) and {comp_txt}")
            else:
                reason = (f"{_fmt_rate(rate or 0)} sway alerts per backward minute in "
                          f"{latest.label} and {comp_txt}: consolidate before changing")
        backs = [s for k, s in program if k == "backward"]
        now = Counter(backs).most_common(1)[0][0] if backs else None
        changed = [(k, next_interval(s, action) if k == "backward" else s) for k, s in program]
        if action in ("lengthen", "shorten") and changed == program:
            limit = (f"{MAX_BACKWARD_S} s maximum" if action == "lengthen"
                     else f"{MIN_BACKWARD_S} s minimum")  # fmt: skip
            reason += f"; the backward intervals are already at the {limit}"
            action = "keep"
        program = changed
    problems = cfg.validate({**cfg.defaults(), "program": program, "program_repeat": repeat})
    if problems:  # a program from a log always fits the config's limits; belt and braces
        program, repeat, action = list(STARTER_PROGRAM), STARTER_REPEAT, "start"
        reason = "the program in the logs does not fit the device config: starter program"
    nxt = next((s for k, s in program if k == "backward"), None)
    return {
        "action": action,
        "reason": reason,
        "based_on_week": latest.label if latest else None,
        "backward_interval_s": {"now": now, "next": nxt},
        "program": [[k, s] for k, s in program],
        "program_repeat": repeat,
    }


def suggested_program(store: Store) -> dict:
    """The suggested coaching program in the device config's format, for ``retrostep
    config``: ``{"program": [(kind, seconds), ...], "program_repeat": n}``."""
    s = suggest(store.sessions())
    return {"program": [(k, v) for k, v in s["program"]], "program_repeat": s["program_repeat"]}


def progress(store: Store, weeks: int | None = None) -> dict:
    """``retrostep progress --json``: the weeks (the last ``weeks`` of them), the sway
    trend and the suggestion."""
    sessions = store.sessions()
    all_weeks = weeks_of(sessions)
    shown = all_weeks[-weeks:] if weeks else all_weeks
    trend = sway_trend(all_weeks)
    return {
        "weeks": [w.to_json() for w in shown],
        "sway_trend_deg_per_week": None if trend is None else round(trend, 3),
        "suggestion": suggest(sessions, all_weeks),
    }
