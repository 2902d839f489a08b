"""Trace format v1 ("retrostep trace v1") and its ground-truth sidecar.

A trace is CSV text, optionally gzip-compressed (``.csv.gz``)::

    # format=retrostep-trace-v1
    # fs_hz=100
    # ...any other key=value lines...
    t,ax,ay,az,gx,gy,gz
    0.000,0.12,-0.03,9.79,0.001,0.002,-0.010
    ...

Frame FLU as worn (x forward, y left, z up), acceleration in m/s^2 including gravity,
angular rate in rad/s, ``t`` in seconds. The ground-truth sidecar is JSON next to the
trace, named ``<stem>.truth.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_NAME = "retrostep-trace-v1"
TRUTH_FORMAT_NAME = "retrostep-truth-v1"
COLUMNS = ("t", "ax", "ay", "az", "gx", "gy", "gz")
STANDARD_GRAVITY = 9.80665


@dataclass
class Trace:
    """IMU samples in SI units, FLU frame."""

    t: np.ndarray  # shape (n,), seconds, strictly increasing
    imu: np.ndarray  # shape (n, 6), float64: ax, ay, az [m/s^2], gx, gy, gz [rad/s]
    fs_hz: float
    meta: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    @property
    def duration_s(self) -> float:
        return float(len(self.t)) / self.fs_hz if len(self.t) else 0.0


@dataclass
class TruthStep:
    t: float  # initial contact, seconds (same clock as the trace's t column)
    direction: str  # "forward" | "backward"


@dataclass
class SwayEpisode:
    start: float  # seconds: the excursion leaves the baseline
    end: float  # seconds: back at the baseline
    peak_deg: float  # largest roll deviation from the walking baseline, degrees
    side: str  # "left" | "right"
    # First moment the deviation exceeds ``limit_deg`` (None if it never does).
    t_over_limit: float | None = None
    limit_deg: float = 10.0


@dataclass
class Truth:
    steps: list[TruthStep] = field(default_factory=list)
    sway_episodes: list[SwayEpisode] = field(default_factory=list)
    # Intervals [start, end] in seconds where the step list is complete; detections
    # outside them are not scored. None means the whole trace.
    scored_intervals: list[tuple[float, float]] | None = None
    # Labelled activity segments, e.g. {"start": 0, "end": 30, "activity": "walk_backward"}.
    segments: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
