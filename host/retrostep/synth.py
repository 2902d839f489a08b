"""Gait synthesizer: waist-worn IMU traces of forward and backward walking, with ground truth.

The model is described in ``docs/synthesizer.md``. In short:

* a gait **phase** advances one unit per step, initial contact (IC) at integer phase;
* the pelvis acceleration (heading frame: AP forward, ML left, V up; gravity excluded) and
  the trunk angle oscillations (roll, pitch, yaw) are harmonic series over the **stride**
  phase ``s = phase / 2`` (stride harmonics k = 1..6; even k are step harmonics), shaped
  after the inverted pendulum for forward walking (vertical peak just after IC, forward
  velocity highest when the body is lowest);
* **backward** walking evaluates the same person's forward waveforms (perturbed) with time
  reversed: at backward phase ``psi`` the forward phase is ``phi_toe_off - psi``, so a
  forward toe-off becomes a backward foot landing;
* non-walking activities (standing, sitting transitions, fidgeting) are smooth movement
  primitives (displacements and trunk rotations);
* a sensor model composes heading, trunk orientation (scipy ``Rotation``) and the mounting
  rotation, projects gravity, differentiates orientation into body angular rate, low-passes
  like a MEMS IMU, resamples, and adds noise, bias and optional quantisation.

Frames: world ENU-like (z up); body/sensor FLU (x forward, y left, z up). Roll is about x
(positive = lean to the right), pitch about y (positive = lean forward / nose down), yaw
about z (positive = turn left). Accelerometer: specific force in m/s^2 (+9.81 on z at
rest); gyro: rad/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi
from scipy.spatial.transform import Rotation

from .trace import STANDARD_GRAVITY, SwayEpisode, Trace, Truth, TruthStep

G = STANDARD_GRAVITY
FS_INTERNAL_HZ = 400.0  # internal simulation rate (output is low-passed and resampled)
FS_RANGE_HZ = (10.0, 400.0)
KINDS = ("adult", "older", "rehab")
ACTIVITIES = ("stand", "fidget", "sit", "walk", "turn", "turn_in_place")
SPEEDS = ("slow", "normal", "fast")
SWAY_LIMIT_DEG = 10.0
GENERATOR = "retrostep.synth v1"

# Rows of a gait shape (harmonic coefficients): accelerations then trunk angles.
AP, ML, V, ROLL, PITCH, YAW = range(6)
A_ROLL, A_PITCH, A_YAW = range(3)  # columns of Motion.ang
N_HARM = 6  # stride harmonics k = 1..6 (k = 2, 4, 6 are step harmonics 1..3)
_K = np.arange(1, N_HARM + 1)

CADENCE_LIMITS = {"forward": (60.0, 130.0), "backward": (50.0, 100.0)}  # steps/min

# --------------------------------------------------------------------------- the person


@dataclass(eq=False)
class Person:
    """Physiological parameters of one simulated wearer, randomised by :func:`make_person`.

    Cadences in steps/min at the preferred ("normal") speed, CVs and asymmetries as
    fractions, accelerations in m/s^2, lengths in m, angles in degrees. ``shape_fwd`` and
    ``shape_bwd`` are complex harmonic coefficients (rows AP, ML, V in m/s^2 and roll,
    pitch, yaw in rad; columns stride harmonics 1..6) of the waveforms at preferred speed;
    both are functions of the FORWARD phase (``shape_bwd`` is evaluated time-reversed).
    """

    seed: int
    kind: str
    cadence_fwd: float
    cadence_bwd: float
    cv_fwd: float
    cv_bwd: float
    asym_time: float  # relative left/right step-duration difference
    asym_amp: float  # relative left/right amplitude difference
    amp_cv: float  # step-to-step amplitude variability (lognormal sigma)
    irregular_p: float  # probability of an irregular (hesitant / hurried, weaker) step
    speed_exponent: float  # acceleration amplitude ~ (cadence ratio) ** exponent
    step_len_fwd_m: float
    step_len_bwd_m: float
    phi_peak: float  # vertical acceleration peak after IC, fraction of a step (forward)
    phi_toe_off: float  # contralateral toe-off after IC, fraction of a step (forward)
    shape_fwd: np.ndarray
    shape_bwd: np.ndarray
    heel_strike_fwd: float  # median heel-strike transient peak, m/s^2
    heel_strike_bwd: float  # forefoot landing transient, m/s^2
    heel_strike_ap: float  # AP part of the transient relative to the vertical one
    heel_strike_hz: float
    heel_strike_tau_s: float
    gait_noise: float  # band-limited step-to-step waveform variability, m/s^2 RMS
    shape_jitter: float  # per-step, per-axis amplitude variability (lognormal sigma)
    timing_jitter: float  # per-step shift of each waveform relative to IC, steps (sigma)
    trunk_wobble_deg: float  # slow irregular trunk motion while walking, deg RMS
    postural_sway_deg: float  # quiet standing sway, deg RMS
    posture_pitch_deg: float  # standing pelvis/trunk pitch relative to the body frame
    posture_roll_deg: float
    lean_fwd_deg: float  # extra forward lean while walking forward
    lean_bwd_deg: float  # extra lean while walking backward
    sway_pivot_m: float  # height of the sensor above the pivot of a lateral lean
    sit_flex_deg: float  # forward trunk flexion during sit-to-stand transitions
    sit_recline_deg: float  # pelvis posterior tilt while seated (negative pitch)
    sit_drop_m: float  # pelvis height change sitting down

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.seed}"


# fmt: off
_KIND_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    # cadence: Tudor-Locke & Rowe 2012 (adults ~100-120 normal); backward: ~70-90 % of
    # forward cadence with ~55-65 % step length (Thorstensson 1986; Laufer 2005).
    "adult": {
        "cad_f": (102, 118), "cad_b": (80, 96), "cv_f": (0.015, 0.03), "cv_b": (0.04, 0.065),
        "av": (2.3, 3.8), "asym_t": (0.005, 0.03), "asym_a": (0.02, 0.06),
        "step_f": (0.66, 0.78), "step_b": (0.38, 0.5), "hs": (1.0, 3.0), "roll": (1.5, 3.5),
        "yaw": (2.5, 5.0), "pitch": (1.0, 2.0), "ml": (0.6, 1.3), "wob": (0.4, 0.9),
        "irr": (0.003, 0.01), "noise": (0.08, 0.14), "shape_j": (0.08, 0.12),
        "timing_j": (0.025, 0.04),
    },
    "older": {
        "cad_f": (94, 108), "cad_b": (70, 85), "cv_f": (0.025, 0.04), "cv_b": (0.05, 0.08),
        "av": (1.7, 2.8), "asym_t": (0.01, 0.04), "asym_a": (0.03, 0.08),
        "step_f": (0.55, 0.66), "step_b": (0.3, 0.4), "hs": (0.7, 2.0), "roll": (1.5, 3.5),
        "yaw": (2.0, 4.0), "pitch": (1.0, 2.0), "ml": (0.5, 1.2), "wob": (0.5, 1.1),
        "irr": (0.01, 0.03), "noise": (0.12, 0.2), "shape_j": (0.1, 0.16),
        "timing_j": (0.035, 0.05),
    },
    "rehab": {
        "cad_f": (78, 92), "cad_b": (58, 70), "cv_f": (0.035, 0.055), "cv_b": (0.06, 0.09),
        "av": (1.3, 2.0), "asym_t": (0.04, 0.12), "asym_a": (0.08, 0.2),
        "step_f": (0.4, 0.55), "step_b": (0.22, 0.32), "hs": (0.4, 1.4), "roll": (2.0, 4.0),
        "yaw": (1.5, 3.5), "pitch": (1.0, 2.0), "ml": (0.5, 1.5), "wob": (0.7, 1.4),
        "irr": (0.03, 0.06), "noise": (0.16, 0.26), "shape_j": (0.14, 0.22),
        "timing_j": (0.045, 0.07),
    },
}
# fmt: on


def make_person(seed: int, *, kind: str = "adult") -> Person:
    """A randomised wearer; deterministic for ``(seed, kind)``.

    ``kind``: "adult", "older" (slower, smaller, more variable) or "rehab" (slow,
    variable, asymmetric, small amplitudes).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown person kind {kind!r} (use one of {', '.join(KINDS)})")
    rng = np.random.default_rng([int(seed), KINDS.index(kind), 7919])
    r = _KIND_RANGES[kind]

    def u(key: str) -> float:
        return float(rng.uniform(*r[key]))

    cad_f, cad_b = u("cad_f"), u("cad_b")
    cv_f, cv_b = u("cv_f"), u("cv_b")
    av = u("av")
    phi_to = float(rng.uniform(0.15, 0.25))
    phi_peak = float(rng.uniform(0.05, min(0.15, phi_to - 0.05)))
    amps = {
        "ap": av * float(rng.uniform(0.5, 0.85)),
        "ml": u("ml"),
        "roll": math.radians(u("roll")),
        "pitch": math.radians(u("pitch")),
        "yaw": math.radians(u("yaw")),
    }
    shape_fwd = _forward_shape(rng, av, phi_peak, amps)
    shape_bwd = _backward_shape(rng, shape_fwd, float(rng.uniform(0.6, 0.85)))
    hs = u("hs")
    return Person(
        seed=int(seed),
        kind=kind,
        cadence_fwd=cad_f,
        cadence_bwd=cad_b,
        cv_fwd=cv_f,
        cv_bwd=cv_b,
        asym_time=u("asym_t"),
        asym_amp=u("asym_a"),
        amp_cv=float(rng.uniform(0.05, 0.1)) * (1.4 if kind == "rehab" else 1.0),
        irregular_p=u("irr"),
        speed_exponent=float(rng.uniform(1.5, 2.2)),
        step_len_fwd_m=u("step_f"),
        step_len_bwd_m=u("step_b"),
        phi_peak=phi_peak,
        phi_toe_off=phi_to,
        shape_fwd=shape_fwd,
        shape_bwd=shape_bwd,
        heel_strike_fwd=hs,
        heel_strike_bwd=hs * float(rng.uniform(0.3, 0.6)),
        heel_strike_ap=float(rng.uniform(0.3, 0.8)),
        heel_strike_hz=float(rng.uniform(15.0, 30.0)),
        heel_strike_tau_s=float(rng.uniform(0.008, 0.02)),
        gait_noise=av * u("noise"),
        shape_jitter=u("shape_j"),
        timing_jitter=u("timing_j"),
        trunk_wobble_deg=u("wob"),
        postural_sway_deg=float(rng.uniform(0.2, 0.6)) * (1.5 if kind != "adult" else 1.0),
        posture_pitch_deg=float(np.clip(rng.normal(0.0, 2.0), -4.0, 4.0)),
        posture_roll_deg=float(np.clip(rng.normal(0.0, 1.0), -2.0, 2.0)),
        lean_fwd_deg=float(rng.uniform(1.0, 5.0)),
        lean_bwd_deg=float(rng.uniform(-1.0, 4.0)),
        sway_pivot_m=float(rng.uniform(0.1, 0.6)),
        sit_flex_deg=float(rng.uniform(30.0, 45.0)),
        sit_recline_deg=float(rng.uniform(10.0, 25.0)),
        sit_drop_m=float(rng.uniform(0.35, 0.5)),
    )


def _series(coef: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Evaluates harmonic rows ``coef`` (rows, 6) at stride phases ``s`` -> (len(s), rows)."""
    e = np.exp(2j * np.pi * np.outer(s, _K))
    return (e @ coef.T).real


def _shift(row: np.ndarray, dphi: float) -> np.ndarray:
    """The waveform delayed by ``dphi`` steps: x_new(phi) = x(phi - dphi)."""
    return row * np.exp(-1j * np.pi * _K * dphi)


_GRID_PHI = np.linspace(-0.5, 1.5, 2000, endpoint=False)


def _step_peaks(row: np.ndarray) -> tuple[float, float]:
    """Mean position (steps after IC) and mean height of the per-step maxima of a row."""
    x = _series(row[None, :], _GRID_PHI / 2.0)[:, 0]
    pos, height = [], []
    for j in (0, 1):
        sel = (_GRID_PHI >= j - 0.5) & (_GRID_PHI < j + 0.5)
        i = int(np.argmax(np.where(sel, x, -np.inf)))
        pos.append(_GRID_PHI[i] - j)
        height.append(x[i])
    return float(np.mean(pos)), float(np.mean(height))


def _rand_phase(rng: np.random.Generator) -> complex:
    return complex(np.exp(1j * rng.uniform(-np.pi, np.pi)))


def _forward_shape(
    rng: np.random.Generator, a_v: float, phi_peak: float, amps: dict[str, float]
) -> np.ndarray:
    """Harmonic coefficients of forward walking at preferred speed (see module doc).

    Vertical: step fundamental plus random 2nd/3rd step harmonics and small stride terms,
    shifted so the per-step maximum lies ``phi_peak`` steps after IC and scaled to ``a_v``.
    AP: a truncated falling sawtooth (slow rise through single support, sharp drop at
    ``phi_drop`` near the vertical peak: forward velocity is highest there, when the body
    is lowest). ML: stride fundamental (towards the swing side at mid-stance). Angles:
    roll and yaw at stride frequency, pitch at step frequency.
    """
    c = np.zeros((6, N_HARM), dtype=complex)
    # Vertical.
    c[V, 1] = 1.0
    c[V, 3] = rng.uniform(0.15, 0.45) * np.exp(1j * rng.normal(0.0, 0.5))
    c[V, 5] = rng.uniform(0.04, 0.18) * _rand_phase(rng)
    c[V, 0] = rng.uniform(0.05, 0.2) * _rand_phase(rng)  # stride terms: left/right differ
    c[V, 2] = rng.uniform(0.04, 0.12) * _rand_phase(rng)
    pos, _ = _step_peaks(c[V])
    c[V] = _shift(c[V], phi_peak - pos)
    c[V] *= a_v / _step_peaks(c[V])[1]
    # Anteroposterior: -sum w_h / h * sin(2 pi h (phi - phi_drop) + eps_h).
    phi_drop = phi_peak + rng.uniform(-0.08, 0.08)
    weights = (1.0, rng.uniform(0.45, 0.9), rng.uniform(0.15, 0.5))
    for h, w in enumerate(weights, start=1):
        eps = 0.0 if h == 1 else rng.normal(0.0, 0.35)
        c[AP, 2 * h - 1] = w / h * np.exp(1j * (np.pi / 2 + eps - 2 * np.pi * h * phi_drop))
    c[AP, 0] = rng.uniform(0.08, 0.2) * _rand_phase(rng)
    c[AP, 2] = rng.uniform(0.04, 0.12) * _rand_phase(rng)
    x = _series(c[AP][None, :], _GRID_PHI / 2.0)[:, 0]
    c[AP] *= amps["ap"] / (0.5 * (x.max() - x.min()))
    # Mediolateral: leftward acceleration peaks at right mid-stance (stride phase 0.25).
    c[ML, 0] = np.exp(-2j * np.pi * (0.25 + rng.normal(0.0, 0.03)))
    c[ML, 2] = rng.uniform(0.15, 0.4) * _rand_phase(rng)
    c[ML, 1] = rng.uniform(0.1, 0.3) * _rand_phase(rng)
    c[ML, 3] = rng.uniform(0.05, 0.15) * _rand_phase(rng)
    x = _series(c[ML][None, :], _GRID_PHI / 2.0)[:, 0]
    c[ML] *= amps["ml"] / np.abs(x).max()
    # Trunk angles (rad): pelvic obliquity drops the swing side in single support.
    a = amps["roll"]
    c[ROLL, 0] = a * np.exp(1j * (np.pi - 2 * np.pi * 0.25 + rng.normal(0.0, 0.3)))
    c[ROLL, 1] = 0.15 * a * _rand_phase(rng)
    a = amps["pitch"]
    c[PITCH, 1] = a * np.exp(-2j * np.pi * rng.uniform(0.3, 0.6))
    c[PITCH, 0] = 0.2 * a * _rand_phase(rng)
    a = amps["yaw"]
    c[YAW, 0] = a * np.exp(1j * rng.normal(0.0, 0.3))  # pelvis turned left at right IC
    c[YAW, 2] = 0.1 * a * _rand_phase(rng)
    return c


_DOMINANT = np.zeros((6, N_HARM), dtype=bool)
_DOMINANT[[AP, V, ML, ROLL, PITCH, YAW], [1, 1, 0, 0, 1, 0]] = True


def _backward_shape(rng: np.random.Generator, fwd: np.ndarray, amp_scale: float) -> np.ndarray:
    """The same person's backward waveforms: forward ones, perturbed and smaller.

    Still a function of the forward phase; time reversal happens at evaluation. Each
    coefficient gets a random gain (lognormal, 15 % dominant / 30 % minor terms) and phase
    (0.25 / 0.6 rad); the peak-to-peak size of the accelerations is then set to ``amp_scale``
    times the forward one (vertical exactly, AP and ML within +-15 %): shorter steps.
    """
    sig_a = np.where(_DOMINANT, 0.15, 0.3)
    sig_p = np.where(_DOMINANT, 0.25, 0.6)
    noise = np.exp(rng.normal(0.0, sig_a) + 1j * rng.normal(0.0, sig_p))
    c = fwd * noise
    for row in (AP, ML, V):  # keep the overall size: shorter steps, smaller accelerations
        size = amp_scale * (1.0 if row == V else rng.uniform(0.85, 1.15))
        c[row] *= size * _p2p(fwd[row]) / _p2p(c[row])
    c[3:] *= rng.uniform(0.75, 1.1)
    return c


def _p2p(row: np.ndarray) -> float:
    x = _series(row[None, :], _GRID_PHI / 2.0)[:, 0]
    return float(x.max() - x.min())


# --------------------------------------------------------------------------- shapes in time


def _minjerk(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk ramp 0 -> 1 for u in [0, 1] (clipped outside)."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)


def _rcos(u: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1 for u in [0, 1] (clipped outside)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def _hold(u: np.ndarray, rise: float, fall: float) -> np.ndarray:
    """0 -> 1 -> 0 over u in [0, 1]: min-jerk rise over ``rise``, plateau, fall over ``fall``."""
    return np.minimum(_minjerk(u / rise), _minjerk((1.0 - u) / fall))


def _sway_shape(x: np.ndarray, rise: float, plateau: float, fall: float) -> np.ndarray:
    """Raised-cosine rise, plateau, raised-cosine fall; ``x`` seconds since the start."""
    return np.minimum(_rcos(x / rise), _rcos((rise + plateau + fall - x) / fall))


# --------------------------------------------------------------------------- motion canvas


@dataclass
class Bout:
    """One walking bout as rendered: its gait phase over samples ``i0:i0+len(phase)``."""

    direction: str
    i0: int
    phase: np.ndarray  # gait phase (steps since the first IC), one per sample
    ics: np.ndarray  # IC times, s
    activity: str


@dataclass
class Motion:
    """Body motion on the internal grid, before the sensor model.

    ``acc``: pelvis acceleration without gravity in the heading frame (AP, ML, V), m/s^2;
    ``disp``: extra displacements (same frame, m) whose second derivative adds to ``acc``;
    ``ang``: trunk roll, pitch, yaw offsets (rad) on top of the heading ``heading_rate``
    (rad/s, integrated); ``speed``: signed walking speed along the heading (m/s) for the
    centripetal term; ``walk_env``: 0..1 walking envelope; ``gait_noise``: RMS (m/s^2) of
    the band-limited waveform variability added while walking.
    """

    fs: float
    t: np.ndarray
    acc: np.ndarray
    disp: np.ndarray
    ang: np.ndarray
    heading_rate: np.ndarray
    speed: np.ndarray
    walk_env: np.ndarray
    gait_noise: np.ndarray
    steps: list[TruthStep] = field(default_factory=list)
    sway: list[SwayEpisode] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)
    bouts: list[Bout] = field(default_factory=list)
    sway_over_s: list[float] = field(default_factory=list)  # per episode: time above the limit

    def window(self, t0: float, t1: float) -> slice:
        """Sample slice covering [t0, t1) seconds (clipped to the canvas)."""
        n = len(self.t)
        i0 = min(max(int(math.ceil(t0 * self.fs - 1e-9)), 0), n)
        i1 = min(max(int(math.ceil(t1 * self.fs - 1e-9)), i0), n)
        return slice(i0, i1)


def _new_motion(duration: float, fs: float) -> Motion:
    n = int(math.floor(duration * fs)) + 2
    t = np.arange(n) / fs
    z3 = np.zeros((n, 3))
    return Motion(
        fs=fs,
        t=t,
        acc=z3.copy(),
        disp=z3.copy(),
        ang=z3.copy(),
        heading_rate=np.zeros(n),
        speed=np.zeros(n),
        walk_env=np.zeros(n),
        gait_noise=np.zeros(n),
    )


def _band_noise(
    rng: np.random.Generator,
    n: int,
    fs: float,
    lo: float | None,
    hi: float,
    cols: int,
    order: int = 2,
) -> np.ndarray:
    """Unit-RMS Gaussian noise band-limited to [lo, hi] Hz (low-pass when ``lo`` is None).

    Butterworth of ``order``; use 4 for displacements (differentiated twice).
    """
    pad = int(4.0 * fs / (lo if lo else hi)) + 16
    w = rng.standard_normal((n + pad, cols))
    if lo:
        sos = butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")
    else:
        sos = butter(order, hi, btype="lowpass", fs=fs, output="sos")
    y = sosfilt(sos, w, axis=0)[pad:]
    return y / np.maximum(y.std(axis=0), 1e-12)


# --------------------------------------------------------------------------- planning


@dataclass
class _Seg:
    activity: str
    start: float
    end: float
    spec: dict
    direction: str = "forward"
    cadence: float = 0.0
    ratio: float = 1.0
    treadmill: bool = False
    turn_deg: float = 0.0
    turn_s: float = 0.0
    step_d: list[float] | None = None  # turn_in_place step durations

    @property
    def walking(self) -> bool:
        return self.activity in ("walk", "turn")


def _num(spec: dict, key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"segment {spec!r}: {key!r} must be a finite number")
    return float(value)


def _resolve_cadence(
    spec: dict, person: Person, direction: str, rng: np.random.Generator
) -> tuple[float, float]:
    """(cadence in steps/min, ratio to the person's preferred cadence for the direction)."""
    pref = person.cadence_fwd if direction == "forward" else person.cadence_bwd
    speed = spec.get("speed", "normal")
    if speed not in SPEEDS:
        raise ValueError(f"segment {spec!r}: speed must be one of {', '.join(SPEEDS)}")
    factor = {"slow": rng.uniform(0.8, 0.88), "normal": 1.0, "fast": rng.uniform(1.1, 1.18)}
    lo, hi = CADENCE_LIMITS[direction]
    if "cadence" in spec:
        cadence = float(np.clip(_num(spec, "cadence", 0.0), 30.0, 160.0))
    else:
        cadence = float(np.clip(pref * factor[speed], lo, hi))
    return cadence, cadence / pref


def _plan(segments: list[dict], person: Person, rng: np.random.Generator) -> list[_Seg]:
    """Resolves durations, directions and cadences; lays the segments end to end."""
    out: list[_Seg] = []
    t = 0.0
    for raw in segments:
        if not isinstance(raw, dict):
            raise ValueError(f"segment {raw!r} is not a dict")
        spec = dict(raw)
        act = spec.get("activity")
        if act not in ACTIVITIES:
            raise ValueError(f"segment {spec!r}: activity must be one of {', '.join(ACTIVITIES)}")
        prev = out[-1] if out else None
        seg = _Seg(act, t, t, spec)
        if act in ("walk", "turn"):
            inherit = prev is not None and prev.walking and act == "turn"
            seg.direction = spec.get("direction") or (prev.direction if inherit else "forward")
            if seg.direction not in ("forward", "backward"):
                raise ValueError(f"segment {spec!r}: direction must be forward or backward")
            if inherit and prev.direction == seg.direction and "speed" not in spec:
                seg.cadence, seg.ratio, seg.treadmill = prev.cadence, prev.ratio, prev.treadmill
            else:
                seg.cadence, seg.ratio = _resolve_cadence(spec, person, seg.direction, rng)
                seg.treadmill = bool(spec.get("treadmill", False))
        if act == "walk":
            duration = _num(spec, "duration", 30.0)
        elif act == "turn":
            seg.turn_deg = _num(spec, "angle_deg", 90.0)
            natural = float(np.clip(0.8 + abs(seg.turn_deg) / 90.0 * rng.uniform(0.6, 1.0), 1, 3))
            seg.turn_s = _num(spec, "turn_s", natural)
            duration = _num(spec, "duration", seg.turn_s + rng.uniform(0.8, 1.4))
            seg.turn_s = min(seg.turn_s, max(duration - 0.4, 0.5))
        elif act == "turn_in_place":
            seg.turn_deg = _num(spec, "angle_deg", 180.0)
            n_steps = int(spec.get("steps", rng.integers(2, 5)))
            if not 1 <= n_steps <= 8:
                raise ValueError(f"segment {spec!r}: steps must be 1..8")
            seg.turn_s = _num(spec, "turn_s", rng.uniform(1.5, 3.0))
            mean_d = seg.turn_s / max(n_steps, 1)
            seg.step_d = list(mean_d * np.clip(1 + 0.12 * rng.standard_normal(n_steps), 0.7, 1.3))
            seg.cadence = 60.0 / mean_d
            duration = _num(spec, "duration", 0.5 + sum(seg.step_d[:-1]) + 0.9)
        elif act == "sit":
            duration = _num(spec, "duration", 20.0)
            if duration < 8.0:
                raise ValueError(f"segment {spec!r}: a sit segment needs at least 8 s")
        else:
            duration = _num(spec, "duration", 5.0 if act == "stand" else 10.0)
        if duration <= 0:
            raise ValueError(f"segment {spec!r}: duration must be positive")
        seg.end = t + duration
        out.append(seg)
        t = seg.end
    if not out:
        raise ValueError("no segments")
    return out


def _group_bouts(plan: list[_Seg]) -> list[list[int]]:
    """Indices of consecutive walking segments of one direction; turn_in_place alone."""
    bouts: list[list[int]] = []
    for i, seg in enumerate(plan):
        if seg.walking:
            prev = plan[i - 1] if i else None
            if prev is not None and prev.walking and prev.direction == seg.direction:
                bouts[-1].append(i)
            else:
                bouts.append([i])
        elif seg.activity == "turn_in_place":
            bouts.append([i])
    return bouts


def _is_moving(seg: _Seg | None) -> bool:
    return seg is not None and (seg.walking or seg.activity == "turn_in_place")


# --------------------------------------------------------------------------- walking


def _bout_envelope(phi: np.ndarray, n_steps: int) -> np.ndarray:
    """Gait initiation / termination: ramps up over phase -0.6..0.5, down after the last IC."""
    return np.minimum(_rcos((phi + 0.6) / 1.1), _rcos((n_steps - 1 + 0.7 - phi) / 1.0))


def _walk_steps(
    segs: list[_Seg], t_first: float, t_stop: float, person: Person, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """IC times of a bout and per-step parameters.

    Returns (ics, params, last_d): ``params`` columns are the segment index, gain, angle
    gain and walking speed (m/s); ``last_d`` the duration of the step after the last IC.
    Step durations follow the segment cadence with a slow AR(1) drift (overground),
    alternating left/right asymmetry, per-step Gaussian jitter (CV) and, with probability
    ``irregular_p``, an irregular step (duration x0.7..1.4, amplitude x0.5..0.9).
    """
    direction = segs[0].direction
    cv0 = person.cv_fwd if direction == "forward" else person.cv_bwd
    step_len = person.step_len_fwd_m if direction == "forward" else person.step_len_bwd_m
    foot = int(rng.integers(2))
    drift, t, k, j = 0.0, t_first, 0, 0
    ics: list[float] = []
    params: list[tuple[float, float, float, float]] = []
    while True:
        while j < len(segs) - 1 and t >= segs[j].end:
            j += 1
        seg = segs[j]
        turning = seg.activity == "turn"
        cv = cv0 * (2.0 if turning else 1.0) * (0.5 if seg.treadmill else 1.0)
        cadence = seg.cadence * math.exp(drift) * (0.92 if turning else 1.0)
        side = 1.0 if (k + foot) % 2 == 0 else -1.0
        d = 60.0 / cadence * (1.0 + side * person.asym_time / 2.0)
        d *= float(np.clip(1.0 + cv * rng.standard_normal(), 0.6, 1.4))
        gain = seg.ratio**person.speed_exponent * (1.0 + side * person.asym_amp / 2.0)
        gain *= math.exp(person.amp_cv * (0.6 if seg.treadmill else 1.0) * rng.standard_normal())
        ang_gain = math.sqrt(seg.ratio)
        speed = step_len * seg.ratio**0.8 * cadence / 60.0
        if turning:
            gain, speed = gain * 0.85, speed * 0.85
        if k > 0 and rng.random() < person.irregular_p:
            d *= rng.uniform(0.7, 1.4)
            gain *= rng.uniform(0.5, 0.9)
        ics.append(t)
        params.append((j, gain, ang_gain, speed))
        if t + d > t_stop:
            return np.array(ics), np.array(params), d
        t += d
        k += 1
        if not seg.treadmill:
            drift = 0.95 * drift + 0.025 * math.sqrt(1 - 0.95**2) * rng.standard_normal()


def _render_bout(
    m: Motion,
    ics: np.ndarray,
    first_d: float,
    last_d: float,
    params: np.ndarray,
    shape: np.ndarray,
    direction: str,
    person: Person,
    rng: np.random.Generator,
    *,
    activity: str,
    lean_deg: float,
    ap_scale: float = 1.0,
) -> None:
    """Adds one bout's gait waveforms, heel strikes and lean to the canvas.

    ``params`` columns: (segment, gain, angle gain, speed) per step (see _walk_steps).
    Forward: the waveform is evaluated at the phase itself; backward at
    ``phi_toe_off - phase`` (time reversal that maps forward toe-off onto backward IC).
    """
    n_steps = len(ics)
    t_ext = np.concatenate([[ics[0] - first_d], ics, [ics[-1] + last_d]])
    idx_ext = np.arange(-1, n_steps + 1, dtype=float)
    win = m.window(t_ext[0], t_ext[-1])
    if win.stop <= win.start:
        return
    tt = m.t[win]
    phi = np.interp(tt, t_ext, idx_ext)
    env = _bout_envelope(phi, n_steps)
    k_idx = np.arange(n_steps, dtype=float)
    gain = np.interp(phi, k_idx, params[:, 1])
    ang_gain = np.interp(phi, k_idx, params[:, 2])
    speed = np.interp(phi, k_idx, params[:, 3])
    # Backward walking is less practised: more variable from step to step.
    var = 1.0 if direction == "forward" or activity == "turn_in_place" else 1.3
    jitter = np.exp(var * person.shape_jitter * rng.standard_normal((n_steps, 3)))
    chan = np.column_stack([np.interp(phi, k_idx, jitter[:, c]) for c in range(3)])
    # Bout-to-bout variation of the waveform (phases drift a little between bouts).
    coef = shape * np.exp(1j * rng.normal(0.0, 0.05, shape.shape))
    sign = 1.0 if direction == "forward" else -1.0
    phi_fwd = phi if direction == "forward" else person.phi_toe_off - phi
    foot = float(rng.integers(2))
    # Per-step timing jitter of each waveform relative to the contacts (steps; angles share
    # one): the V-AP relation wanders a little from step to step, as in real gait.
    shift = rng.normal(0.0, var * person.timing_jitter, (n_steps, 4))
    w = np.empty((len(phi), 6))
    for c in range(6):
        d = np.interp(phi, k_idx, shift[:, min(c, 3)])
        w[:, c] = _series(coef[c : c + 1], (phi_fwd + d + foot) / 2.0)[:, 0]
    amp = (env * gain)[:, None] * chan
    amp[:, AP] *= ap_scale
    m.acc[win] += amp * w[:, :3]
    m.ang[win] += (env * ang_gain)[:, None] * w[:, 3:]
    m.ang[win, A_PITCH] += math.radians(lean_deg) * env
    m.speed[win] += sign * speed * env
    m.walk_env[win] = np.maximum(m.walk_env[win], env)
    m.gait_noise[win] = np.maximum(m.gait_noise[win], var * person.gait_noise * env)
    _heel_strikes(m, ics, params[:, 1], direction, person, rng, ap_scale)
    m.bouts.append(Bout(direction, win.start, phi, ics.copy(), activity))
    label = direction if activity != "turn_in_place" else "forward"
    m.steps.extend(TruthStep(float(t), label) for t in ics)


def _heel_strikes(
    m: Motion,
    ics: np.ndarray,
    gains: np.ndarray,
    direction: str,
    person: Person,
    rng: np.random.Generator,
    ap_scale: float,
) -> None:
    """Short damped impact transients at each IC (vertical up, AP braking)."""
    n_k = int(6 * person.heel_strike_tau_s * m.fs) + 2
    tau = np.arange(n_k) / m.fs
    kernel = np.exp(-tau / person.heel_strike_tau_s) * np.sin(
        2 * np.pi * person.heel_strike_hz * tau
    )
    kernel /= np.abs(kernel).max()
    base = person.heel_strike_fwd if direction == "forward" else person.heel_strike_bwd
    n = len(ics)
    amp = base * np.sqrt(np.maximum(gains, 0.05)) * np.exp(0.4 * rng.standard_normal(n))
    amp[0] *= 0.5  # first step of a bout: lighter
    i0 = np.round(ics * m.fs).astype(int)
    idx = i0[:, None] + np.arange(n_k)[None, :]
    ok = idx < len(m.t)
    contrib = amp[:, None] * kernel[None, :]
    ap_sign = -1.0 if direction == "forward" else 1.0
    np.add.at(m.acc[:, V], idx[ok], contrib[ok])
    np.add.at(m.acc[:, AP], idx[ok], ap_sign * person.heel_strike_ap * ap_scale * contrib[ok])


def _add_turn(m: Motion, t0: float, duration: float, angle_deg: float) -> None:
    """Heading change of ``angle_deg`` (positive = left) with a min-jerk profile."""
    win = m.window(t0, t0 + duration)
    u = (m.t[win] - t0) / duration
    rate = 30.0 * u * u * (1 - u) ** 2 / duration  # d/dt of the min-jerk ramp
    m.heading_rate[win] += math.radians(angle_deg) * rate


def _render_walking(m: Motion, plan: list[_Seg], person: Person, rng: np.random.Generator) -> None:
    for bout in _group_bouts(plan):
        segs = [plan[i] for i in bout]
        before = plan[bout[0] - 1] if bout[0] > 0 else None
        after = plan[bout[-1] + 1] if bout[-1] + 1 < len(plan) else None
        start, end = segs[0].start, segs[-1].end
        lead = rng.uniform(0.15, 0.3) if _is_moving(before) else rng.uniform(0.35, 0.7)
        tail = rng.uniform(0.25, 0.4) if _is_moving(after) else rng.uniform(0.35, 0.6)
        if segs[0].activity == "turn_in_place":
            _render_turn_in_place(m, segs[0], person, rng)
            continue
        d0 = 60.0 / segs[0].cadence
        if start == 0.0:
            lead = max(lead, 0.65 * d0)
        if end >= plan[-1].end - 1e-9:  # the trace ends while walking
            tail = max(tail, 0.75 * d0)
        t_first = start + min(lead, max(end - start - 0.2, 0.0))
        ics, params, last_d = _walk_steps(segs, t_first, end - tail, person, rng)
        direction = segs[0].direction
        shape = person.shape_fwd if direction == "forward" else person.shape_bwd
        lean = person.lean_fwd_deg if direction == "forward" else person.lean_bwd_deg
        _render_bout(
            m,
            ics,
            d0,
            last_d,
            params,
            shape,
            direction,
            person,
            rng,
            activity="walk",
            lean_deg=lean,
        )
        for seg in segs:
            speed_key = seg.spec.get("speed", "normal")
            label = "walk_" + direction if seg.activity == "walk" else "walk_turn"
            m.segments.append(
                {
                    "start": seg.start,
                    "end": seg.end,
                    "activity": label,
                    "direction": direction,
                    "speed": speed_key,
                    "cadence_spm": round(seg.cadence, 1),
                    "treadmill": seg.treadmill,
                }
            )
            if seg.activity == "turn":
                t0 = seg.start + (seg.end - seg.start - seg.turn_s) / 2.0
                _add_turn(m, t0, seg.turn_s, seg.turn_deg)
                m.segments[-1]["angle_deg"] = seg.turn_deg
            elif not seg.treadmill:
                win = m.window(seg.start, seg.end)
                wander = _band_noise(rng, win.stop - win.start, m.fs, None, 0.15, 1)[:, 0]
                m.heading_rate[win] += 0.04 * wander * m.walk_env[win]
            _add_glances(m, seg, rng)
            for sway in seg.spec.get("sway", []):
                _add_sway(m, seg, sway, person, rng)


def _add_glances(m: Motion, seg: _Seg, rng: np.random.Generator) -> None:
    """Looking around (over the shoulder when walking backward): held pelvis/trunk twists.

    Backward overground about one every 12 s (8-20 deg), forward one every 40 s (5-12 deg).
    """
    backward = seg.direction == "backward"
    every = (12.0 if backward else 40.0) * (2.5 if seg.treadmill else 1.0)
    t = seg.start + rng.exponential(every)
    while t < seg.end - 4.0:
        size = rng.uniform(8.0, 20.0) if backward else rng.uniform(5.0, 12.0)
        sgn = float(rng.choice([-1.0, 1.0]))
        timing = (rng.uniform(0.3, 0.6), rng.uniform(0.5, 2.0), rng.uniform(0.3, 0.6))
        t += _add_primitive(
            m, t, timing, (0.0, 0.0, 0.0), (sgn * rng.uniform(0, 2), 0.0, sgn * size)
        )
        t += rng.exponential(every)


def _render_turn_in_place(m: Motion, seg: _Seg, person: Person, rng: np.random.Generator) -> None:
    """A few small, irregular steps while the heading turns; steps are labelled forward."""
    d = np.array(seg.step_d)
    ics = seg.start + 0.5 + np.concatenate([[0.0], np.cumsum(d[:-1])])
    n = len(ics)
    gain = rng.uniform(0.3, 0.5) * np.exp(0.15 * rng.standard_normal(n))
    params = np.column_stack([np.zeros(n), gain, np.full(n, 0.6), np.zeros(n)])
    _render_bout(
        m,
        ics,
        d[0],
        d[-1],
        params,
        person.shape_fwd,
        "forward",
        person,
        rng,
        activity="turn_in_place",
        lean_deg=0.0,
        ap_scale=0.3,
    )
    t0 = ics[0] - 0.3
    _add_turn(m, t0, ics[-1] + 0.5 - t0, seg.turn_deg)
    m.segments.append(
        {
            "start": seg.start,
            "end": seg.end,
            "activity": "turn_in_place",
            "angle_deg": seg.turn_deg,
            "steps": n,
        }
    )


def _add_sway(m: Motion, seg: _Seg, spec: dict, person: Person, rng: np.random.Generator) -> None:
    """A lateral lean episode added to the trunk roll (and the matching sideways shift)."""
    if not isinstance(spec, dict):
        raise ValueError(f"sway {spec!r} is not a dict")
    peak = _num(spec, "peak_deg", 15.0)
    side = spec.get("side", "left")
    if side not in ("left", "right") or peak <= 0:
        raise ValueError(f"sway {spec!r}: side must be left/right and peak_deg positive")
    duration = _num(spec, "duration", rng.uniform(1.0, 2.5))
    start = seg.start + _num(spec, "at", 0.0)
    if duration < 0.2 or start < seg.start or start + duration > seg.end:
        raise ValueError(f"sway {spec!r} does not fit in its walking segment")
    rise = _num(spec, "rise_s", duration * rng.uniform(0.2, 0.35))
    fall = _num(spec, "fall_s", duration * rng.uniform(0.2, 0.4))
    if rise + fall > duration:
        rise, fall = rise * duration / (rise + fall), fall * duration / (rise + fall)
    plateau = duration - rise - fall
    win = m.window(start, start + duration)
    shape = _sway_shape(m.t[win] - start, rise, plateau, fall)
    roll = math.radians(peak) * shape * (-1.0 if side == "left" else 1.0)
    m.ang[win, A_ROLL] += roll
    # The pelvis pivots about the feet/hips: a lean also shifts it sideways.
    m.disp[win, ML] += -person.sway_pivot_m * np.sin(roll)
    t_over, over_s = None, 0.0
    if peak > SWAY_LIMIT_DEG:
        x = math.acos(1.0 - 2.0 * SWAY_LIMIT_DEG / peak) / math.pi  # ramp fraction at the limit
        t_over = start + rise * x
        over_s = duration - (rise + fall) * x
    m.sway_over_s.append(over_s)
    m.sway.append(SwayEpisode(start, start + duration, peak, side, t_over, SWAY_LIMIT_DEG))


# --------------------------------------------------------------------------- non-walking


def _add_primitive(
    m: Motion, t0: float, timing: tuple[float, float, float], disp: tuple, ang_deg: tuple
) -> float:
    """A movement out and back: min-jerk ramps of ``timing`` = (rise, hold, fall) seconds.

    ``disp`` (AP, ML, V) in m and ``ang_deg`` (roll, pitch, yaw) in degrees at the hold.
    The peak acceleration of a ramp is 5.77 * D / rise^2. Returns the duration (s).
    """
    rise, hold, fall = timing
    duration = rise + hold + fall
    win = m.window(t0, t0 + duration)
    x = m.t[win] - t0
    prof = np.minimum(_minjerk(x / rise), _minjerk((duration - x) / fall))[:, None]
    m.disp[win] += prof * np.asarray(disp, dtype=float)[None, :]
    m.ang[win] += prof * np.radians(np.asarray(ang_deg, dtype=float))[None, :]
    return duration


def _add_oscillation(
    m: Motion,
    t0: float,
    duration: float,
    freq: float,
    acc_amp: float,
    axis: int,
    ang_axis: int,
    ang_deg: float,
) -> None:
    """Rhythmic rocking/bouncing without steps: sinusoid under a smooth window."""
    win = m.window(t0, t0 + duration)
    x = m.t[win] - t0
    env = _hold(x / duration, 0.25, 0.25)
    osc = np.sin(2 * np.pi * freq * x)
    m.disp[win, axis] += acc_amp / (2 * np.pi * freq) ** 2 * env * osc
    m.ang[win, ang_axis] += math.radians(ang_deg) * env * osc


def _movement(
    m: Motion, t0: float, kind: str, person: Person, rng: np.random.Generator, seated: bool
) -> float:
    """Adds one random movement primitive at ``t0``; returns its duration (s).

    reach, bend (pick something up), shift (weight), twist (look around), jerk (fidget),
    rock (2-4 rhythmic sways or knee bends, no steps), jiggle (knee bouncing, seated).
    """
    sgn = float(rng.choice([-1.0, 1.0]))
    s = 0.5 if seated else 1.0
    u = rng.uniform
    if kind == "reach":
        return _add_primitive(
            m,
            t0,
            (u(0.5, 1.0), u(0.2, 1.0), u(0.5, 1.0)),
            (u(0.03, 0.1) * s, sgn * u(0, 0.04), -u(0, 0.04) * s),
            (sgn * u(0, 6), u(8, 25), sgn * u(0, 25)),
        )
    if kind == "bend":
        return _add_primitive(
            m,
            t0,
            (u(0.8, 1.5), u(0.3, 1.5), u(0.8, 1.5)),
            (u(0.05, 0.12), 0.0, -u(0.15, 0.35) * s),
            (sgn * u(0, 5), u(35, 65) * (0.6 if seated else 1.0), sgn * u(0, 10)),
        )
    if kind == "shift":
        return _add_primitive(
            m,
            t0,
            (u(0.4, 0.9), u(0.3, 2.0), u(0.4, 0.9)),
            (0.0, sgn * u(0.02, 0.05) * s, -u(0, 0.01)),
            (-sgn * u(2, 5), u(-1, 1), sgn * u(0, 5)),
        )
    if kind == "twist":
        return _add_primitive(
            m,
            t0,
            (u(0.5, 1.0), u(0.2, 1.0), u(0.5, 1.0)),
            (0.0, 0.0, 0.0),
            (sgn * u(0, 3), u(-2, 4), sgn * u(15, 45)),
        )
    if kind == "jerk":
        half = u(0.15, 0.4)
        return _add_primitive(
            m,
            t0,
            (half, 0.0, half),
            tuple(rng.normal(0.0, 0.008, 3) * s),
            tuple(rng.normal(0.0, 2.0, 3)),
        )
    if kind == "rock":
        freq = u(0.8, 1.8)
        dur = float(rng.integers(2, 5)) / freq
        axis, ang_axis = [(V, A_PITCH), (AP, A_PITCH), (ML, A_ROLL)][int(rng.integers(3))]
        _add_oscillation(m, t0, dur, freq, u(0.4, 1.2) * s, axis, ang_axis, u(0.5, 2.5))
        return dur
    if kind == "jiggle":
        dur = u(2.0, 8.0)
        _add_oscillation(m, t0, dur, u(3.0, 5.0), u(0.1, 0.4), V, A_PITCH, 0.3)
        return dur
    raise ValueError(f"unknown movement {kind!r}")


_STAND_MOVES = (("reach", 3), ("bend", 2), ("shift", 3), ("twist", 2), ("jerk", 3), ("rock", 1))
_SEAT_MOVES = (("reach", 3), ("bend", 1), ("shift", 2), ("twist", 2), ("jerk", 3), ("jiggle", 1))


def _fill_movements(
    m: Motion,
    t0: float,
    t1: float,
    person: Person,
    rng: np.random.Generator,
    seated: bool,
    rest: tuple[float, float] = (0.3, 2.0),
) -> None:
    """Random movement primitives separated by rests, between ``t0`` and ``t1``."""
    moves = _SEAT_MOVES if seated else _STAND_MOVES
    names = [k for k, _ in moves]
    p = np.array([w for _, w in moves], dtype=float)
    t = t0 + rng.uniform(0.2, 1.0)
    while t < t1:
        kind = str(rng.choice(names, p=p / p.sum()))
        sub = _new_motion(12.0, m.fs)  # rendered aside first: its duration decides if it fits
        dur = _movement(sub, 0.0, kind, person, rng, seated)
        if t + dur > t1:
            break
        win = m.window(t, t + dur)
        n = win.stop - win.start
        m.disp[win] += sub.disp[:n]
        m.ang[win] += sub.ang[:n]
        t += dur + rng.uniform(*rest)


def _render_still(m: Motion, plan: list[_Seg], person: Person, rng: np.random.Generator) -> None:
    for seg in plan:
        if seg.activity == "stand":
            if seg.end - seg.start > 8.0 and rng.random() < 0.7:  # an occasional weight shift
                t0 = rng.uniform(seg.start + 1.0, seg.end - 4.0)
                _movement(m, t0, "shift", person, rng, False)
            m.segments.append({"start": seg.start, "end": seg.end, "activity": "stand"})
        elif seg.activity == "fidget":
            _fill_movements(m, seg.start, seg.end - 0.3, person, rng, False)
            m.segments.append({"start": seg.start, "end": seg.end, "activity": "fidget"})
        elif seg.activity == "sit":
            _render_sit(m, seg, person, rng)


def _render_sit(m: Motion, seg: _Seg, person: Person, rng: np.random.Generator) -> None:
    """Sit down (trunk flexes forward, pelvis drops and moves back), sit, stand up."""
    t_d = rng.uniform(1.6, 2.6)
    t_u = rng.uniform(1.6, 2.6)
    d0, d1 = seg.start + 0.3, seg.start + 0.3 + t_d
    u1 = seg.end - 0.3
    u0 = u1 - t_u
    flex_d = math.radians(person.sit_flex_deg * rng.uniform(0.9, 1.1))
    flex_u = math.radians(person.sit_flex_deg * rng.uniform(0.9, 1.1))
    recline = -math.radians(person.sit_recline_deg)
    drop, back = person.sit_drop_m, rng.uniform(0.1, 0.25)
    win = m.window(seg.start, seg.end)
    tt = m.t[win]
    ud = (tt - d0) / t_d
    uu = (tt - u0) / t_u
    down_flex = flex_d * _hold(ud, 0.5, 0.5)
    up_flex = flex_u * _hold(uu, 0.5, 0.5)
    seated = _minjerk((ud - 0.4) / 0.6) * (1.0 - _minjerk(uu / 0.6))
    m.ang[win, A_PITCH] += down_flex + up_flex + recline * seated
    lowered = _minjerk((ud - 0.2) / 0.7) * (1.0 - _minjerk((uu - 0.1) / 0.7))
    m.disp[win, V] += -drop * lowered
    m.disp[win, AP] += -back * _minjerk(ud / 0.9) * (1.0 - _minjerk(uu / 0.6))
    # Landing on the seat: a damped vertical bump.
    t_hit = d0 + 0.85 * t_d
    hit = m.window(t_hit, t_hit + 0.5)
    x = m.t[hit] - t_hit
    f, tau = rng.uniform(5.0, 9.0), rng.uniform(0.04, 0.08)
    m.acc[hit, V] += rng.uniform(1.0, 3.0) * np.exp(-x / tau) * np.sin(2 * np.pi * f * x)
    if seg.spec.get("fidget", False):
        _fill_movements(m, d1 + 0.5, u0 - 0.5, person, rng, True)
    m.segments += [
        {"start": seg.start, "end": d1, "activity": "sit_down"},
        {"start": d1, "end": u0, "activity": "sit"},
        {"start": u0, "end": seg.end, "activity": "stand_up"},
    ]


def _add_background(m: Motion, person: Person, rng: np.random.Generator) -> None:
    """Posture, breathing, postural sway, gait waveform variability, trunk wobble."""
    n = len(m.t)
    walk = m.walk_env
    still = 1.0 - walk
    m.ang[:, A_PITCH] += math.radians(person.posture_pitch_deg)
    m.ang[:, A_ROLL] += math.radians(person.posture_roll_deg)
    f_breath = rng.uniform(0.2, 0.33)
    m.ang[:, A_PITCH] += math.radians(rng.uniform(0.1, 0.25)) * np.sin(
        2 * np.pi * f_breath * m.t + rng.uniform(0, 2 * np.pi)
    )
    # Trunk wobble while walking (< 0.8 Hz); quiet-standing sway is slower (< 0.3 Hz).
    wobble = _band_noise(rng, n, m.fs, None, 0.8, 3) * np.array([1.0, 1.0, 1.5])[None, :]
    m.ang += wobble * (math.radians(person.trunk_wobble_deg) * walk)[:, None]
    sway = _band_noise(rng, n, m.fs, None, 0.3, 3)
    m.ang += sway * (math.radians(person.postural_sway_deg) * still)[:, None]
    gait = _band_noise(rng, n, m.fs, 1.0, 12.0, 3)
    m.acc += gait * (m.gait_noise + 0.02 * still)[:, None] * np.array([1.2, 1.0, 1.0])[None, :]
    # Postural sway also moves the pelvis (small, slow).
    m.disp += _band_noise(rng, n, m.fs, None, 0.5, 3, order=4) * (0.004 * still)[:, None]


def simulate_motion(segments: list[dict], person: Person, *, seed: int = 0) -> Motion:
    """Body motion (before the sensor) for a scenario; see :func:`synthesize` for ``segments``.

    Exposed for tests and diagnostics: ``Motion.bouts`` holds each bout's gait phase.
    """
    rng = np.random.default_rng([int(seed), person.seed, 104729])
    plan = _plan(segments, person, rng)
    m = _new_motion(plan[-1].end, FS_INTERNAL_HZ)
    _render_walking(m, plan, person, rng)
    _render_still(m, plan, person, rng)
    _add_background(m, person, rng)
    m.steps.sort(key=lambda s: s.t)
    m.segments.sort(key=lambda s: s["start"])
    for s in m.segments:
        s["start"], s["end"] = round(float(s["start"]), 4), round(float(s["end"]), 4)
    order = sorted(range(len(m.sway)), key=lambda i: m.sway[i].start)
    m.sway = [m.sway[i] for i in order]
    m.sway_over_s = [m.sway_over_s[i] for i in order]
    return m


# --------------------------------------------------------------------------- sensor model

ACCEL_LSB = 8 * G / 32768.0  # +-8 g, 16 bit
GYRO_LSB = math.radians(2000.0) / 32768.0  # +-2000 deg/s, 16 bit


@dataclass
class SensorSpec:
    """Mounting (deg) and sensor imperfections (SI units)."""

    tilt_deg: float = 0.0
    roll_deg: float = 0.0
    yaw_deg: float = 0.0
    accel_noise: float = 0.0
    gyro_noise: float = 0.0
    accel_bias: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gyro_bias: np.ndarray = field(default_factory=lambda: np.zeros(3))
    quantize: bool = False


def _random_bias(rng: np.random.Generator, max_norm: float) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v) * rng.uniform(0.0, max_norm)


def _sensor(
    m: Motion, spec: SensorSpec, fs_out: float, n_out: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """IMU samples (n_out, 6) in the sensor frame at ``fs_out`` from the motion.

    Specific force ``f_s = R_s^T (a_world + g z)`` with ``R_s = R_body R_mount``; the body
    angular rate comes from the relative rotation of neighbouring samples. Both are
    low-passed (2nd-order causal Butterworth at 0.4 fs_out, like an IMU's digital filter)
    and linearly resampled; then white noise, bias and quantisation.
    """
    dt = 1.0 / m.fs
    acc = m.acc.copy()
    acc += np.gradient(np.gradient(m.disp, dt, axis=0), dt, axis=0)
    heading = np.cumsum(m.heading_rate) * dt
    acc[:, ML] += m.speed * m.heading_rate  # centripetal: omega x v
    c, s = np.cos(heading), np.sin(heading)
    f_world = np.column_stack(
        [c * acc[:, AP] - s * acc[:, ML], s * acc[:, AP] + c * acc[:, ML], acc[:, V] + G]
    )
    euler = np.column_stack([heading + m.ang[:, A_YAW], m.ang[:, A_PITCH], m.ang[:, A_ROLL]])
    r_body = Rotation.from_euler("ZYX", euler)
    r_mount = Rotation.from_euler("ZYX", [spec.yaw_deg, spec.tilt_deg, spec.roll_deg], degrees=True)
    f_sensor = (r_body * r_mount).inv().apply(f_world)
    w_body = np.empty_like(f_world)
    w_body[1:-1] = (r_body[:-2].inv() * r_body[2:]).as_rotvec() / (2.0 * dt)
    w_body[0], w_body[-1] = w_body[1], w_body[-2]
    w_sensor = r_mount.inv().apply(w_body)
    imu = np.column_stack([f_sensor, w_sensor])
    sos = butter(2, min(0.4 * fs_out, 0.4 * m.fs), fs=m.fs, output="sos")
    zi = sosfilt_zi(sos)[:, :, None] * imu[0][None, None, :]
    imu, _ = sosfilt(sos, imu, axis=0, zi=zi)
    t_out = np.arange(n_out) / fs_out
    out = np.column_stack([np.interp(t_out, m.t, imu[:, j]) for j in range(6)])
    out[:, :3] += spec.accel_bias + spec.accel_noise * rng.standard_normal((n_out, 3))
    out[:, 3:] += spec.gyro_bias + spec.gyro_noise * rng.standard_normal((n_out, 3))
    if spec.quantize:
        out[:, :3] = np.round(out[:, :3] / ACCEL_LSB) * ACCEL_LSB
        out[:, 3:] = np.round(out[:, 3:] / GYRO_LSB) * GYRO_LSB
    return t_out, out


def _fmt3(v: np.ndarray) -> str:
    return ",".join(f"{x:.5f}" for x in v)


def synthesize(
    segments: list[dict],
    person: Person,
    *,
    fs_hz: float = 100.0,
    seed: int = 0,
    mount_tilt_deg: float = 0.0,
    mount_roll_deg: float = 0.0,
    mount_yaw_deg: float = 0.0,
    noise: bool = True,
    quantize: bool = False,
    scenario: str = "custom",
) -> tuple[Trace, Truth]:
    """A synthetic waist-worn IMU trace of ``person`` doing ``segments``, with ground truth.

    ``segments``: list of dicts laid end to end, each with an ``activity``:

    * ``stand`` (duration, default 5 s): quiet standing with postural sway;
    * ``fidget`` (duration, default 10 s): reaching, bending, weight shifts, twists,
      jerks, rocking while standing (no steps);
    * ``sit`` (duration >= 8 s, default 20; ``fidget``: bool): sit down, sit, stand up;
    * ``walk`` (duration, default 30; ``direction`` forward|backward, ``speed``
      slow|normal|fast or ``cadence`` steps/min, ``treadmill``: bool, ``sway``: list of
      ``{"at": s after segment start, "peak_deg", "side": left|right, "duration": s,
      optional "rise_s", "fall_s"}``);
    * ``turn`` (``angle_deg``, positive = left; optional duration/turn_s/direction/speed):
      a turn while walking, merged with adjacent walking of the same direction;
    * ``turn_in_place`` (``angle_deg``, optional ``steps`` 1..8, ``turn_s``): a few small
      steps on the spot (labelled "forward" in the truth).

    ``mount_tilt_deg`` (pitch, positive = sensor nose down), ``mount_roll_deg`` and
    ``mount_yaw_deg`` (rotation of the clip on the belt) rotate the sensor relative to the
    body. ``noise`` adds white noise and constant biases; ``quantize`` rounds to a 16-bit
    +-8 g / +-2000 deg/s sensor's LSB. Deterministic for (segments, person, seed, options).
    """
    fs_hz = float(fs_hz)
    if not FS_RANGE_HZ[0] <= fs_hz <= FS_RANGE_HZ[1]:
        raise ValueError(f"fs_hz must be within {FS_RANGE_HZ[0]:g}..{FS_RANGE_HZ[1]:g} Hz")
    motion = simulate_motion(segments, person, seed=seed)
    rng = np.random.default_rng([int(seed), person.seed, 15485863])
    spec = SensorSpec(mount_tilt_deg, mount_roll_deg, mount_yaw_deg, quantize=quantize)
    if noise:
        spec.accel_noise = float(rng.uniform(0.02, 0.05))
        spec.gyro_noise = float(rng.uniform(0.003, 0.007))
        spec.accel_bias = _random_bias(rng, 0.2)
        spec.gyro_bias = _random_bias(rng, 0.02)
    duration = float(motion.t[-1] - 1.0 / motion.fs)
    n_out = int(math.floor(duration * fs_hz + 1e-9))
    t, imu = _sensor(motion, spec, fs_hz, n_out, rng)
    n_fwd = sum(1 for s in motion.steps if s.direction == "forward")
    meta = {
        "source": "synthetic",
        "generator": GENERATOR,
        "scenario": scenario,
        "person": person.name,
        "person_kind": person.kind,
        "seed": str(int(seed)),
        "mount_tilt_deg": f"{mount_tilt_deg:g}",
        "mount_roll_deg": f"{mount_roll_deg:g}",
        "mount_yaw_deg": f"{mount_yaw_deg:g}",
        "noise": "1" if noise else "0",
        "quantize": "1" if quantize else "0",
        "accel_noise": f"{spec.accel_noise:.4f}",
        "gyro_noise": f"{spec.gyro_noise:.4f}",
        "accel_bias": _fmt3(spec.accel_bias),
        "gyro_bias": _fmt3(spec.gyro_bias),
        "internal_fs_hz": f"{FS_INTERNAL_HZ:g}",
    }
    trace = Trace(t=t, imu=imu, fs_hz=fs_hz, meta=meta)
    truth = Truth(
        steps=motion.steps,
        sway_episodes=motion.sway,
        scored_intervals=None,
        segments=motion.segments,
        meta={
            "generator": GENERATOR,
            "scenario": scenario,
            "person": person.name,
            "person_kind": person.kind,
            "seed": int(seed),
            "fs_hz": fs_hz,
            "duration_s": round(n_out / fs_hz, 4),
            "mount_deg": {"tilt": mount_tilt_deg, "roll": mount_roll_deg, "yaw": mount_yaw_deg},
            "n_steps_forward": n_fwd,
            "n_steps_backward": len(motion.steps) - n_fwd,
            "cadence_fwd_spm": round(person.cadence_fwd, 1),
            "cadence_bwd_spm": round(person.cadence_bwd, 1),
            "note": "steps: initial contacts; turn_in_place steps are labelled forward",
        },
    )
    return trace, truth


# --------------------------------------------------------------------------- benchmark suite

# fmt: off
_PEOPLE = {
    "A1": ("adult", 11), "A2": ("adult", 12), "A3": ("adult", 13), "A4": ("adult", 14),
    "A5": ("adult", 15), "O1": ("older", 21), "O2": ("older", 22), "O3": ("older", 23),
    "R1": ("rehab", 31), "R2": ("rehab", 32),
}
# fmt: on


def _st(d: float) -> dict:
    return {"activity": "stand", "duration": d}


def _w(d: float, direction: str = "forward", speed: str = "normal", **extra) -> dict:
    return {"activity": "walk", "direction": direction, "speed": speed, "duration": d, **extra}


def _b(d: float, speed: str = "normal", **extra) -> dict:
    return _w(d, "backward", speed, **extra)


def _turn(angle: float, **extra) -> dict:
    return {"activity": "turn", "angle_deg": angle, **extra}


def _tip(angle: float, steps: int) -> dict:
    return {"activity": "turn_in_place", "angle_deg": angle, "steps": steps}


def _sit(d: float, fidget: bool = False) -> dict:
    return {"activity": "sit", "duration": d, "fidget": fidget}


def _fid(d: float) -> dict:
    return {"activity": "fidget", "duration": d}


def _sw(at: float, peak: float, side: str, duration: float) -> dict:
    return {"at": at, "peak_deg": peak, "side": side, "duration": duration}


def _case(
    person: str,
    seed: int,
    fs: float,
    segments: list[dict],
    tilt: float = 0.0,
    roll: float = 0.0,
    yaw: float = 0.0,
    quantize: bool = False,
) -> dict:
    kind, pseed = _PEOPLE[person]
    return {
        "person_kind": kind,
        "person_seed": pseed,
        "segments": segments,
        "fs_hz": fs,
        "seed": seed,
        "mount_tilt_deg": tilt,
        "mount_roll_deg": roll,
        "mount_yaw_deg": yaw,
        "quantize": quantize,
    }


def benchmark_suite() -> list[tuple[str, dict]]:
    """The fixed benchmark cases: (name, keyword arguments for :func:`make_case`)."""
    excessive_f = [_sw(12, 15, "left", 1.6), _sw(55, 20, "right", 2.2), _sw(95, 13, "left", 1.4)]
    mild_f = [_sw(30, 3, "right", 1.2), _sw(75, 4, "left", 1.8), _sw(108, 2.5, "right", 0.8)]
    excessive_b = [_sw(20, 18, "right", 2.0), _sw(62, 12.5, "left", 1.5), _sw(100, 25, "left", 2.8)]
    mild_b = [_sw(8, 4, "left", 1.0), _sw(42, 3, "right", 2.0), _sw(82, 2, "left", 0.6)]
    # fmt: off
    return [
        # Forward walking at three speeds.
        ("fwd_normal_A1", _case("A1", 1, 100, [_st(5), _w(90), _st(5)])),
        ("fwd_slow_A2", _case("A2", 2, 52, [_st(4), _w(100, speed="slow"), _st(4)], 15, 0, -10)),
        ("fwd_fast_A3", _case("A3", 3, 200, [_st(3), _w(80, speed="fast"), _st(3)], -10, 5)),
        ("fwd_normal_O1", _case("O1", 4, 25, [_st(5), _w(100), _st(5)], 30, quantize=True)),
        ("fwd_slow_R1", _case("R1", 5, 104, [_st(5), _w(90, speed="slow"), _st(5)], 20, 0, 25)),
        ("fwd_fast_A4", _case(
            "A4", 6, 104, [_st(3), _w(60, speed="fast"), _turn(180), _w(55, speed="fast"), _st(3)],
            45,
        )),
        ("fwd_normal_R2", _case("R2", 7, 52, [_st(5), _w(80), _st(5)], 0, 30, 0)),
        # Backward walking at two speeds.
        ("bwd_normal_A1", _case("A1", 8, 100, [_st(5), _b(90), _st(5)])),
        ("bwd_slow_A2", _case("A2", 9, 52, [_st(4), _b(100, "slow"), _st(4)], 15, 0, -10)),
        ("bwd_normal_A5", _case("A5", 10, 200, [_st(4), _b(100), _st(4)], 40, 0, 20)),
        ("bwd_slow_O2", _case("O2", 11, 25, [_st(5), _b(90, "slow"), _st(5)], 10, -8)),
        ("bwd_slow_R2", _case("R2", 12, 104, [_st(5), _b(80, "slow"), _st(5)], 25, 0, -30, True)),
        ("bwd_normal_O3", _case("O3", 13, 52, [_st(5), _b(80), _st(5)], 35)),
        # Interval programs: direct reversals and reversals after a pause.
        ("interval_direct_A3", _case(
            "A3", 14, 100, [_st(3), _w(55), _b(30), _w(55), _b(30), _st(3)], 5,
        )),
        ("interval_pause_A4", _case(
            "A4", 15, 52,
            [_st(3), _w(40), _st(5), _b(30), _st(5), _w(40), _st(5), _b(30), _st(3)], 20, 0, 10,
        )),
        ("interval_mixed_O1", _case(
            "O1", 16, 104,
            [_st(4), _w(30), _b(20), _st(4), _w(30), _st(3), _b(20), _w(30), _st(4)], 20,
        )),
        ("interval_R1", _case(
            "R1", 17, 100,
            [_st(5), _w(30), _st(8), _b(25, "slow"), _st(8), _w(30), _b(25, "slow"), _st(5)], 30,
        )),
        ("interval_fast_A5", _case(
            "A5", 18, 25,
            [_st(4), _w(40, speed="fast"), _b(25), _w(40, speed="fast"), _b(25), _st(4)],
            -5, 0, -20, True,
        )),
        # Daily-life mixes.
        ("daily_mix_A2", _case(
            "A2", 19, 100,
            [_st(4), _w(20), _turn(90), _w(12), _st(3), _w(8), _sit(25), _fid(10), _w(15),
             _tip(180, 3), _w(10), _st(4)], 10, 0, 15,
        )),
        ("daily_mix_O2", _case(
            "O2", 20, 52,
            [_st(5), _w(15, speed="slow"), _turn(-90), _w(10), _st(4), _fid(12), _tip(-120, 2),
             _w(12), _sit(30, True), _w(10), _turn(180), _w(10), _st(5)], 25, 0, -25,
        )),
        ("daily_mix_R2", _case(
            "R2", 21, 104,
            [_st(5), _w(20, speed="slow"), _st(6), _sit(30), _w(15), _tip(90, 4), _w(10),
             _fid(15), _w(12), _st(5)], 40,
        )),
        ("daily_mix_bwd_A1", _case(
            "A1", 22, 200,
            [_st(4), _w(15), _st(2), _b(10), _st(3), _fid(8), _w(12), _turn(90), _w(6),
             _b(10), _sit(20), _w(10), _st(3)], 0, 0, 30,
        )),
        # Treadmill: very regular, long, constant cadence.
        ("treadmill_fwd_A3", _case("A3", 23, 100, [_st(5), _w(150, treadmill=True), _st(5)])),
        ("treadmill_bwd_A4", _case(
            "A4", 24, 200, [_st(5), _b(120, treadmill=True), _st(5)], 20,
        )),
        ("treadmill_interval_O3", _case(
            "O3", 25, 52,
            [_st(5), _w(60, treadmill=True), _b(30, treadmill=True), _w(60, treadmill=True),
             _st(5)], 10, 0, 5,
        )),
        # Not walking at all: zero steps.
        ("nonwalk_sit_fidget_A5", _case(
            "A5", 26, 52, [_st(5), _sit(50, True), _fid(25), _sit(40), _st(5)], 15,
        )),
        ("nonwalk_stand_random_O1", _case(
            "O1", 27, 100, [_st(10), _fid(50), _st(10), _fid(40)], 30, 0, 20,
        )),
        ("nonwalk_mixed_R1", _case(
            "R1", 28, 25, [_sit(40, True), _st(10), _fid(30), _sit(30)], 0, 20, 0,
        )),
        # Sway episodes (excessive and mild), forward and backward.
        ("sway_fwd_A1", _case(
            "A1", 29, 100, [_st(5), _w(120, sway=excessive_f + mild_f), _st(5)], 15,
        )),
        ("sway_bwd_A2", _case(
            "A2", 30, 104, [_st(5), _b(120, sway=excessive_b + mild_b), _st(5)], 0, 0, 10,
        )),
        ("sway_interval_O2", _case(
            "O2", 31, 52,
            [_st(4), _w(50, sway=[_sw(10, 16, "right", 2.0), _sw(30, 3.5, "left", 1.5)]),
             _b(40, sway=[_sw(8, 14, "left", 1.8), _sw(25, 2, "right", 1.0)]),
             _w(40, sway=[_sw(15, 22, "left", 2.5), _sw(30, 4, "right", 2.0)]), _st(4)], 30,
        )),
        ("sway_bwd_R2", _case(
            "R2", 32, 100,
            [_st(5), _b(100, "slow", sway=[_sw(10, 12, "left", 1.5), _sw(30, 3, "right", 1.5),
                                            _sw(50, 17, "right", 2.4), _sw(70, 4, "left", 1.0),
                                            _sw(88, 14, "right", 3.0)]), _st(5)], 20, 0, -15,
        )),
        ("sway_fwd_fast_A5", _case(
            "A5", 33, 200,
            [_st(3), _w(90, speed="fast", sway=[_sw(10, 13, "right", 1.2), _sw(25, 2, "left", 0.8),
                                                 _sw(45, 19, "left", 2.0), _sw(65, 3, "right", 1.4),
                                                 _sw(78, 24, "right", 3.0)]), _st(3)],
            10, 0, 30,
        )),
        # Turns while walking and on the spot.
        ("turns_fwd_A4", _case(
            "A4", 34, 100,
            [_st(3), _w(12), _turn(90), _w(10), _turn(-180), _w(8), _st(2), _tip(90, 3), _w(10),
             _turn(120), _w(8), _st(2), _tip(-180, 4), _w(10), _turn(-90), _w(8), _st(3)], 25,
        )),
        ("turns_bwd_O3", _case(
            "O3", 35, 25,
            [_st(4), _b(15), _turn(60), _b(12), _turn(-90), _b(12), _st(3), _tip(180, 3), _b(15),
             _turn(90), _b(12), _st(4)], 15, 0, 10,
        )),
        # Stops and restarts: short bouts.
        ("stop_start_A3", _case(
            "A3", 36, 52,
            [_st(3), _w(8), _st(2), _w(5), _st(3), _w(10), _st(1.5), _w(6), _st(4), _b(8),
             _st(2), _b(6), _st(3), _w(4), _st(2), _b(5), _st(3)], 35, 0, -5,
        )),
        ("stop_start_R1", _case(
            "R1", 37, 104,
            [_st(4), _w(10, speed="slow"), _st(3), _w(6), _st(4), _b(8, "slow"), _st(3), _w(12),
             _st(2), _b(6), _st(5), _w(8), _st(4)], 45,
        )),
    ]
    # fmt: on


def cost_case_kwargs(fs_hz: float) -> dict:
    """:func:`make_case` kwargs of a fixed 60 s mixed trace at ``fs_hz`` (for cost runs).

    Standing, forward walking with one excessive sway episode, backward walking, fidgeting.
    """
    segments = [
        _st(5),
        _w(20, sway=[_sw(8, 15, "left", 1.5)]),
        _b(20),
        _fid(10),
        _st(5),
    ]
    return _case("A2", 99, float(fs_hz), segments, 20.0)


def make_case(name: str, **kwargs) -> tuple[Trace, Truth]:
    """Builds one case deterministically: a suite case by name, or ``kwargs`` of that form.

    ``kwargs`` keys: person_kind, person_seed, segments, fs_hz, seed, mount_tilt_deg,
    mount_roll_deg, mount_yaw_deg, quantize (as in :func:`benchmark_suite`).
    """
    if not kwargs:
        suite = dict(benchmark_suite())
        if name not in suite:
            raise ValueError(f"unknown benchmark case {name!r} (known: {', '.join(suite)})")
        kwargs = suite[name]
    person = make_person(int(kwargs.get("person_seed", 1)), kind=kwargs.get("person_kind", "adult"))
    return synthesize(
        kwargs["segments"],
        person,
        fs_hz=float(kwargs.get("fs_hz", 100.0)),
        seed=int(kwargs.get("seed", 0)),
        mount_tilt_deg=float(kwargs.get("mount_tilt_deg", 0.0)),
        mount_roll_deg=float(kwargs.get("mount_roll_deg", 0.0)),
        mount_yaw_deg=float(kwargs.get("mount_yaw_deg", 0.0)),
        noise=bool(kwargs.get("noise", True)),
        quantize=bool(kwargs.get("quantize", False)),
        scenario=name,
    )


def write_suite(out_dir: str | Path, *, names: list[str] | None = None) -> list[Path]:
    """Writes ``<name>.csv.gz`` and ``<name>.truth.json`` per case; returns the trace paths."""
    from .trace import write_trace, write_truth

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suite = benchmark_suite()
    known = {n for n, _ in suite}
    if names is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown benchmark case(s): {', '.join(unknown)}")
    paths = []
    for name, kwargs in suite:
        if names is not None and name not in names:
            continue
        trace, truth = make_case(name, **kwargs)
        path = out / f"{name}.csv.gz"
        write_trace(path, trace)
        write_truth(out / f"{name}.truth.json", truth)
        paths.append(path)
    return paths


def long_walk(duration_s: float, *, fs_hz: float = 52.0, seed: int = 11) -> Trace:
    """A long deterministic walk for soak tests and device benchmarks: a 5-minute tile
    (forward and backward bouts, normal and slow, stops of 8-25 s, two excessive leans)
    repeated end to end on one continuous clock and cut to ``duration_s``.

    Every stop is shorter than the default idle timeout, so the device keeps one session
    open throughout. The tiles join at a standing phase (the joins are not smooth, but
    the same for the device and ``retrostep analyze``)."""
    segs = [
        _st(3),
        _w(60, sway=[_sw(20, 16, "left", 1.8)]),
        _st(10),
        _b(40, sway=[_sw(15, 18, "right", 2.0)]),
        _st(25),
        _w(90, speed="slow"),
        _st(8),
        _b(50),
        _st(14),
    ]
    tile, _ = synthesize(segs, make_person(5), fs_hz=fs_hz, seed=seed, scenario="long_walk")
    n = int(round(duration_s * fs_hz))
    reps = -(-n // len(tile.t))
    imu = np.tile(tile.imu, (reps, 1))[:n]
    t = np.arange(n, dtype=np.float64) / fs_hz
    return Trace(t=t, imu=imu, fs_hz=float(fs_hz), meta=dict(tile.meta))
