"""Gravity tracking and the horizontal walking frame.

The device may be tilted up to ~45 degrees and rotated on the belt, so nothing assumes
its axes are level. A slow low-pass of the accelerometer gives gravity (the wearer's
baseline posture); from it the frame is built:

* ``u`` up: gravity direction,
* ``f`` forward: the device x axis projected on the horizontal plane,
* ``l`` left: ``u x f``.

Each filter step projects the sample on that frame: vertical dynamic acceleration
``av`` (gravity removed), anteroposterior ``aap``, mediolateral ``aml`` (mm/s^2), and
the roll, pitch and yaw rates about ``f``, ``l`` and ``u`` (mrad/s).

Fixed point: unit vectors in Q14 (16384 = 1.0); gravity low-pass in mm/s^2 * 16.
"""

import micropython

from .compat import alpha_q16, const, isqrt, samples_for

_ONE = const(16384)
_GRAVITY_MM = const(9807)

TAU_BASELINE_MS = const(8000)  # walking posture baseline
TAU_WARMUP_MS = const(500)  # first seconds after start: converge fast
WARMUP_MS = const(3000)
REFRESH_MS = const(200)  # frame recomputed 5 times a second


class Orientation:
    def __init__(self, fs_mhz, n):
        self.k_slow = alpha_q16(TAU_BASELINE_MS, fs_mhz, n)
        self.k_warm = alpha_q16(TAU_WARMUP_MS, fs_mhz, n)
        self.warmup = samples_for(WARMUP_MS, fs_mhz, n)
        self.refresh_every = max(1, samples_for(REFRESH_MS, fs_mhz, n))
        self.reset()

    def reset(self):
        self.started = 0
        self.frozen = 0  # set by the sway monitor while a lean is in progress
        self.gx = 0
        self.gy = 0
        self.gz = _GRAVITY_MM << 4
        self.gmag = _GRAVITY_MM
        self.ux = 0
        self.uy = 0
        self.uz = _ONE
        self.fx = _ONE
        self.fy = 0
        self.fz = 0
        self.lx = 0
        self.ly = _ONE
        self.lz = 0
        self.n = 0
        self.refresh_in = 1
        # Outputs of the last update.
        self.av = 0
        self.aap = 0
        self.aml = 0
        self.wroll = 0
        self.wpitch = 0
        self.wyaw = 0

    @micropython.native
    def update(self, ax, ay, az, wx, wy, wz):
        """One filter step: acceleration in mm/s^2, angular rate in mrad/s, FLU."""
        if not self.started:
            self.started = 1
            self.gx = ax << 4
            self.gy = ay << 4
            self.gz = az << 4
            self.refresh_in = 1
        elif not self.frozen:
            k = self.k_warm if self.n < self.warmup else self.k_slow
            # (x - g/16) * k >> 12 == ((x << 4) - g) * k >> 16 to within one unit, with
            # products below 2**30 for accelerations up to 8 g.
            self.gx += (ax - (self.gx >> 4)) * k >> 12
            self.gy += (ay - (self.gy >> 4)) * k >> 12
            self.gz += (az - (self.gz >> 4)) * k >> 12
        self.n += 1
        self.refresh_in -= 1
        if self.refresh_in <= 0:
            self.refresh_in = self.refresh_every
            self.refresh_frame()
        ux = self.ux
        uy = self.uy
        uz = self.uz
        fx = self.fx
        fy = self.fy
        fz = self.fz
        self.av = ((ax * ux + ay * uy + az * uz) >> 14) - self.gmag
        self.aap = (ax * fx + ay * fy + az * fz) >> 14
        self.aml = (ax * self.lx + ay * self.ly + az * self.lz) >> 14
        self.wroll = (wx * fx + wy * fy + wz * fz) >> 14
        self.wpitch = (wx * self.lx + wy * self.ly + wz * self.lz) >> 14
        self.wyaw = (wx * ux + wy * uy + wz * uz) >> 14

    def refresh_frame(self):
        """Rebuild u, f, l from the gravity estimate (a few times a second)."""
        gx = self.gx >> 4
        gy = self.gy >> 4
        gz = self.gz >> 4
        g = isqrt(gx * gx + gy * gy + gz * gz)
        if g < 2000:  # free fall or nonsense: keep the previous frame
            return
        ux = gx * _ONE // g
        uy = gy * _ONE // g
        uz = gz * _ONE // g
        # Forward: device x with its vertical part removed.
        fx = _ONE - (ux * ux >> 14)
        fy = -(ux * uy >> 14)
        fz = -(ux * uz >> 14)
        fn = isqrt(fx * fx + fy * fy + fz * fz)
        if fn < 3000:  # device x nearly vertical: heading undefined, keep the old one
            return
        fx = fx * _ONE // fn
        fy = fy * _ONE // fn
        fz = fz * _ONE // fn
        self.gmag = g
        self.ux = ux
        self.uy = uy
        self.uz = uz
        self.fx = fx
        self.fy = fy
        self.fz = fz
        self.lx = (uy * fz - uz * fy) >> 14
        self.ly = (uz * fx - ux * fz) >> 14
        self.lz = (ux * fy - uy * fx) >> 14
