"""Forward or backward: the sense of rotation of trunk motion in the sagittal plane.

Physics: in walking the body vaults over the stance leg like an inverted pendulum, so
the centre of mass moves fastest in the walking direction when it is lowest (around
double support, when vertical acceleration peaks). Backward walking is close to
forward walking played in reverse (Thorstensson; Grasso et al.): accelerations keep
their sign under time reversal, velocities flip. Hence the velocity/acceleration
hodograph in the sagittal plane turns one way when walking forward and the other way
when walking backward. Its circulation over one step,

    C = sum(v_ap * a_v - v_v * a_ap),

is positive forward and negative backward. It is invariant to rotations within the
sagittal plane (device pitch, trunk lean, posture), to walking speed, and to treadmill
use (a belt moving at constant speed is an inertial frame), and it ignores the
mediolateral axis, so a clip rotated on the belt only scales it by cos(yaw).

Accelerations are band-passed; velocities are leaky integrals of them. The normalised
circulation ``C / (|v| |a|)`` in -1000..1000 is the per-step direction score.
"""

import micropython

from .compat import alpha_q16, const, isqrt, samples_for

TAU_LEAK_MS = const(400)  # velocity high-pass: drift and bias never accumulate
STALE_MS = const(2000)  # no step for this long: the sums start afresh


class DirectionFeature:
    def __init__(self, fs_mhz, n):
        # v += a * dt (mm/s * 8 units) ; leak with tau.
        self.kdt = (8 * 65536 * 1000 * n + fs_mhz // 2) // fs_mhz
        self.kleak = alpha_q16(TAU_LEAK_MS, fs_mhz, n)
        self.max_n = samples_for(STALE_MS, fs_mhz, n)
        self.reset()

    def reset(self):
        self.vap = 0
        self.vv = 0
        self.c = 0
        self.ea = 0
        self.ev = 0
        self.n = 0
        self.score = 0

    @micropython.native
    def update(self, aap, av):
        """One filter step with band-passed accelerations (mm/s^2)."""
        vap = self.vap
        vv = self.vv
        vap += (aap * self.kdt >> 16) - (vap * self.kleak >> 16)
        vv += (av * self.kdt >> 16) - (vv * self.kleak >> 16)
        self.vap = vap
        self.vv = vv
        # Scaled down to keep the per-step sums within a 31-bit small int.
        self.n += 1
        if self.n > self.max_n:  # a long pause: its motion says nothing of the next step
            self.n = 0
            self.c = 0
            self.ea = 0
            self.ev = 0
        self.c += (vap * av - vv * aap) >> 10
        self.ea += (aap * aap + av * av) >> 10
        self.ev += (vap * vap + vv * vv) >> 10

    def close_step(self):
        """End of a step cycle: compute the score of the cycle, start the next one."""
        d = isqrt(self.ea) * isqrt(self.ev)
        s = 0
        if d > 0:
            s = self.c * 1000 // d
            if s > 1000:
                s = 1000
            elif s < -1000:
                s = -1000
        self.score = s
        self.n = 0
        self.c = 0
        self.ea = 0
        self.ev = 0
        return s
