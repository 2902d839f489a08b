"""Scoring pipeline output against ground truth (used by the benchmark and tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .trace import Truth

MATCH_TOLERANCE_S = 0.25
MILD_SWAY_DEG = 4.0


@dataclass
class StepScore:
    n_true: int = 0
    n_detected: int = 0
    matched: int = 0
    direction_correct: int = 0
    true_forward: int = 0
    true_backward: int = 0
    timing_errors: list[float] = field(default_factory=list)  # detected - true, matched

    @property
    def precision(self) -> float:
        return self.matched / self.n_detected if self.n_detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.n_true if self.n_true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def direction_accuracy(self) -> float:
        return self.direction_correct / self.matched if self.matched else 1.0

    def add(self, other: StepScore) -> None:
        self.n_true += other.n_true
        self.n_detected += other.n_detected
        self.matched += other.matched
        self.direction_correct += other.direction_correct
        self.true_forward += other.true_forward
        self.true_backward += other.true_backward
        self.timing_errors.extend(other.timing_errors)


@dataclass
class SwayScore:
    episodes_over: int = 0  # episodes whose lean exceeds the limit
    alerted_over: int = 0
    latencies: list[float] = field(default_factory=list)
    episodes_mild: int = 0  # peak <= 4 degrees
    alerted_mild: int = 0
    false_alerts: int = 0  # alerts outside every episode
    walking_minutes: float = 0.0

    def add(self, other: SwayScore) -> None:
        self.episodes_over += other.episodes_over
        self.alerted_over += other.alerted_over
        self.latencies.extend(other.latencies)
        self.episodes_mild += other.episodes_mild
        self.alerted_mild += other.alerted_mild
        self.false_alerts += other.false_alerts
        self.walking_minutes += other.walking_minutes


def _in_intervals(t: float, intervals: list[tuple[float, float]] | None) -> bool:
    if intervals is None:
        return True
    return any(s <= t <= e for s, e in intervals)


def match_events(true_t: list[float], det_t: list[float], tol: float) -> list[tuple[int, int]]:
    """One-to-one matching of sorted event times, closest pairs first, within ``tol``."""
    pairs = []
    for i, t in enumerate(true_t):
        j = int(np.searchsorted(det_t, t - tol))
        while j < len(det_t) and det_t[j] <= t + tol:
            pairs.append((abs(det_t[j] - t), i, j))
            j += 1
    pairs.sort()
    used_t: set[int] = set()
    used_d: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            out.append((i, j))
    return out


def score_steps(truth: Truth, steps: list[dict], tol: float = MATCH_TOLERANCE_S) -> StepScore:
    iv = truth.scored_intervals
    ts = [s for s in truth.steps if _in_intervals(s.t, iv)]
    ds = sorted((d for d in steps if _in_intervals(d["t"], iv)), key=lambda d: d["t"])
    true_t = [s.t for s in ts]
    det_t = [d["t"] for d in ds]
    sc = StepScore(n_true=len(ts), n_detected=len(ds))
    sc.true_forward = sum(1 for s in ts if s.direction == "forward")
    sc.true_backward = len(ts) - sc.true_forward
    for i, j in match_events(true_t, det_t, tol):
        sc.matched += 1
        sc.timing_errors.append(det_t[j] - true_t[i])
        if ds[j]["direction"] == ts[i].direction:
            sc.direction_correct += 1
    return sc


def walking_minutes(truth: Truth, duration_s: float) -> float:
    walk = [s for s in truth.segments if str(s.get("activity", "")).startswith("walk")]
    if walk:
        return sum(float(s["end"]) - float(s["start"]) for s in walk) / 60.0
    return duration_s / 60.0 if truth.steps else 0.0


def score_sway(truth: Truth, alerts: list[dict], duration_s: float) -> SwayScore:
    sc = SwayScore(walking_minutes=walking_minutes(truth, duration_s))
    used: set[int] = set()
    alert_t = [a["t"] for a in alerts]
    for ep in truth.sway_episodes:
        # An alert belongs to an episode only if it is in its window and names its side
        # (an alert on the wrong side stays a false alert).
        window = [
            k
            for k, t in enumerate(alert_t)
            if ep.start - 0.2 <= t <= ep.end + 0.5
            and k not in used
            and alerts[k].get("side", ep.side) == ep.side
        ]
        used.update(window)
        if ep.t_over_limit is not None:
            sc.episodes_over += 1
            after = [alert_t[k] for k in window if alert_t[k] >= ep.t_over_limit - 0.2]
            if after:
                sc.alerted_over += 1
                sc.latencies.append(min(after) - ep.t_over_limit)
        elif ep.peak_deg <= MILD_SWAY_DEG:
            sc.episodes_mild += 1
            if window:
                sc.alerted_mild += 1
    sc.false_alerts = len(alert_t) - len(used)
    return sc
