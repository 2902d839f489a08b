"""Mediolateral trunk roll relative to the walking baseline, and the sway alert.

Roll deviation ``theta`` is a complementary filter: the gyro's roll rate about the
horizontal forward axis, integrated, corrected slowly towards the accelerometer's
lateral tilt (``aml / g``). Both are measured in the baseline frame of
:mod:`orientation`, so ``theta`` is the lean relative to the wearer's own posture.

Turning is not swaying: people lean into a turn (centripetal acceleration), and a
large yaw rotation turns any small error of the estimated vertical into an apparent
roll. Sitting down or bending is not swaying either (a fast, sustained pitch). While
the smoothed yaw or pitch rate says so, and for a moment after, no alert is raised.

Alert state machine: ``|theta|`` beyond the limit for ``min_ms`` while the wearer is
walking raises one alert; the next needs the lean to come back under 70 % of the limit
and the refractory period to pass. Per-second metrics: roll range and RMS roll rate.

Units: theta in 1e-4 rad (stored * 16), rates in mrad/s, limits in degrees.
"""

import micropython

from .compat import alpha_q16, const, isqrt, samples_for
from .events import SWAY_ALERT, SWAY_METRICS

_RAD4_PER_DEG100 = const(17453)  # 1e-4 rad per 0.01 degree, * 10000
TAU_COMPLEMENTARY_MS = const(1000)
TURN_RATE_MRAD = const(700)  # smoothed yaw rate above this (~40 deg/s) is a turn
TAU_TURN_MS = const(400)  # smoothing of the yaw rate: averages out the stride's yaw swing
TURN_HOLD_MS = const(1500)  # alerts stay off this long after a turn / posture change
PITCH_RATE_MRAD = const(350)  # smoothed pitch rate above this (~20 deg/s): posture change
REARM_PCT = const(70)
MAX_FREEZE_MS = const(10000)  # a lean held longer than this becomes the new baseline


def _deg_to_rad4(deg_x100):
    """0.01-degree units -> 1e-4 rad units (integer)."""
    return (deg_x100 * _RAD4_PER_DEG100 + 5000) // 10000


class SwayMonitor:
    def __init__(self, fs_mhz, n, events, limit_deg_x100=1000, min_ms=200, refractory_ms=3000):
        self.events = events
        self.n = n
        # Gyro integration: theta16 += w[mrad/s] * kw >> 10 (1e-4 rad * 16 per step).
        self.kw = (16 * 10 * 1024 * 1000 * n + fs_mhz // 2) // fs_mhz
        self.kc = alpha_q16(TAU_COMPLEMENTARY_MS, fs_mhz, n)
        self.kyaw = alpha_q16(TAU_TURN_MS, fs_mhz, n)
        self.turn_hold_n = samples_for(TURN_HOLD_MS, fs_mhz, n)
        self.max_freeze_n = samples_for(MAX_FREEZE_MS, fs_mhz, n)
        self.second_len = max(1, samples_for(1000, fs_mhz, n))
        self.set_limit(limit_deg_x100, min_ms, refractory_ms, fs_mhz)
        self.reset()

    def set_limit(self, limit_deg_x100, min_ms, refractory_ms, fs_mhz):
        if not 100 <= limit_deg_x100 <= 4500:
            raise ValueError("sway limit must be 1..45 degrees")
        if not 0 <= min_ms <= 2000 or not 0 <= refractory_ms <= 60000:
            raise ValueError("sway timing out of range")
        self.limit = _deg_to_rad4(limit_deg_x100)
        self.rearm = self.limit * REARM_PCT // 100
        self.min_n = max(1, samples_for(min_ms, fs_mhz, self.n))
        self.refractory_n = samples_for(refractory_ms, fs_mhz, self.n)

    def reset(self):
        self.theta16 = 0
        self.theta = 0
        self.over_n = 0
        self.over_sign = 0
        self.armed = 1
        self.refractory = 0
        self.yaw = 0
        self.pitch = 0
        self.lean_n = 0
        self.turn_hold = 0
        self.win_n = 0
        self.win_min = 0
        self.win_max = 0
        self.win_sq = 0

    @micropython.native
    def update(self, t, aml, wroll, wpitch, wyaw, walking):
        """One filter step. ``t``: input sample index of this step; ``walking``: bool."""
        th = self.theta16 + (wroll * self.kw >> 10)
        # aml [mm/s^2] / 9807 -> rad; * 1e4 * 16 -> theta16 units (1044/64 = 16.31).
        th += ((((aml * 1044) >> 6) - th) >> 4) * self.kc >> 12
        self.theta16 = th
        self.yaw += (wyaw - self.yaw) * self.kyaw >> 16
        self.pitch += (wpitch - self.pitch) * self.kyaw >> 16
        if (
            -TURN_RATE_MRAD < self.yaw < TURN_RATE_MRAD
            and -PITCH_RATE_MRAD < self.pitch < PITCH_RATE_MRAD
        ):
            if self.turn_hold > 0:
                self.turn_hold -= 1
        else:
            self.turn_hold = self.turn_hold_n
        theta = th >> 4
        self.theta = theta
        if (theta if theta >= 0 else -theta) > (self.limit >> 1):
            self.lean_n += 1
        else:
            self.lean_n = 0

        # Alert state machine.
        if self.refractory > 0:
            self.refractory -= 1
        mag = theta if theta >= 0 else -theta
        if mag > self.limit:
            sign = 1 if theta > 0 else -1
            if sign == self.over_sign:
                self.over_n += 1
            else:
                self.over_sign = sign
                self.over_n = 1
            if (
                self.over_n >= self.min_n
                and self.armed
                and walking
                and self.refractory == 0
                and self.turn_hold == 0
            ):
                self.armed = 0
                self.refractory = self.refractory_n
                self.events.put(SWAY_ALERT, t, sign, mag * 573 // 10000)
        else:
            self.over_n = 0
            self.over_sign = 0
            if mag < self.rearm:
                self.armed = 1

        # Per-second metrics.
        if self.win_n == 0:
            self.win_min = theta
            self.win_max = theta
        elif theta < self.win_min:
            self.win_min = theta
        elif theta > self.win_max:
            self.win_max = theta
        w = wroll >> 2  # 4 mrad/s units, clamped: the sum stays a small int
        if w > 2047:
            w = 2047
        elif w < -2047:
            w = -2047
        self.win_sq += w * w
        self.win_n += 1
        if self.win_n >= self.second_len:
            rng = (self.win_max - self.win_min) * 573 // 10000  # 0.1 degree
            rms = isqrt(self.win_sq // self.win_n) * 2292 // 1000  # 0.1 degree/s
            self.events.put(SWAY_METRICS, t, rng, rms)
            self.win_n = 0
            self.win_sq = 0

    @property
    def leaning(self):
        """True while a lean beyond half the limit is in progress, for at most
        ``MAX_FREEZE_MS``: the posture baseline should not absorb a lean, but a lean
        that lasts is the new posture (a clip that moved, a device switched on in the
        hand)."""
        return 0 < self.lean_n <= self.max_freeze_n
