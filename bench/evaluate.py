"""Score the pipeline on a set of traces with ground truth (synthetic or real)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrostep.metrics import StepScore, SwayScore, score_steps, score_sway
from retrostep.pipeline_io import AnalysisResult
from retrostep.trace import Trace, Truth


@dataclass
class CaseResult:
    name: str
    duration_s: float
    steps: StepScore
    sway: SwayScore

    @property
    def count_error(self) -> float | None:
        if not self.steps.n_true:
            return None
        return (self.steps.n_detected - self.steps.n_true) / self.steps.n_true


@dataclass
class Totals:
    cases: list[CaseResult] = field(default_factory=list)
    steps: StepScore = field(default_factory=StepScore)
    sway: SwayScore = field(default_factory=SwayScore)

    def add(self, case: CaseResult) -> None:
        self.cases.append(case)
        self.steps.add(case.steps)
        self.sway.add(case.sway)

    @property
    def pooled_count_error(self) -> float:
        s = self.steps
        return abs(s.n_detected - s.n_true) / s.n_true if s.n_true else 0.0

    @property
    def mean_abs_pct_error(self) -> float:
        errs = [abs(c.count_error) for c in self.cases if c.count_error is not None]
        return float(np.mean(errs)) if errs else 0.0

    @property
    def false_steps_without_walking(self) -> int:
        return sum(c.steps.n_detected for c in self.cases if c.steps.n_true == 0)

    @property
    def sway_recall(self) -> float | None:
        s = self.sway
        return s.alerted_over / s.episodes_over if s.episodes_over else None

    @property
    def mild_alerts(self) -> int | None:
        return self.sway.alerted_mild if self.sway.episodes_mild else None

    @property
    def false_alerts_per_min(self) -> float:
        s = self.sway
        return s.false_alerts / s.walking_minutes if s.walking_minutes else 0.0

    def latency(self, q: float) -> float | None:
        lat = self.sway.latencies
        return float(np.percentile(lat, q)) if lat else None


def score_case(name: str, trace: Trace, truth: Truth, result: AnalysisResult) -> CaseResult:
    return CaseResult(
        name=name,
        duration_s=trace.duration_s,
        steps=score_steps(truth, result.steps()),
        sway=score_sway(truth, result.sway_alerts(), trace.duration_s),
    )
