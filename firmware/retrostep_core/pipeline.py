"""The gait pipeline: IMU samples in, step / sway events out.

Feed one sample at a time with :meth:`GaitPipeline.push` (FLU frame, acceleration in
mm/s^2 including gravity, angular rate in mrad/s, as integers), then drain
``pipeline.events`` (see :mod:`events`). Event times are input sample indices.

Any input rate from 25 to 200 Hz: samples are first averaged in blocks of ``n`` so the
filters always run at 25-50 Hz (``n = fs // 25``), which keeps both the filter design
and the per-sample cost independent of the sensor rate. All state is allocated here,
once; ``push`` allocates nothing.
"""

import micropython

from .compat import const
from .direction import DirectionFeature
from .events import EventQueue
from .orientation import Orientation
from .steps import BoutTracker, StepDetector
from .sway import SwayMonitor

FORMAT_VERSION = const(1)  # bump when event semantics change
MIN_FS_MHZ = const(25000)
MAX_FS_MHZ = const(200000)
FILTER_RATE_HZ = const(25)


class GaitPipeline:
    def __init__(
        self,
        fs_hz=52,
        sway_limit_deg=10,
        sway_min_ms=200,
        sway_refractory_ms=3000,
        event_capacity=64,
    ):
        fs_mhz = int(fs_hz * 1000 + 0.5)
        if not MIN_FS_MHZ <= fs_mhz <= MAX_FS_MHZ:
            raise ValueError("sample rate must be 25..200 Hz")
        self.fs_mhz = fs_mhz
        n = fs_mhz // (FILTER_RATE_HZ * 1000)
        if n < 1:
            n = 1
        self.n = n
        self.center = (n - 1) >> 1
        self.events = EventQueue(event_capacity)
        self.orientation = Orientation(fs_mhz, n)
        self.detector = StepDetector(fs_mhz, n)
        self.direction = DirectionFeature(fs_mhz, n)
        self.bouts = BoutTracker(fs_mhz, self.events)
        self.sway = SwayMonitor(
            fs_mhz,
            n,
            self.events,
            int(sway_limit_deg * 100 + 0.5),
            sway_min_ms,
            sway_refractory_ms,
        )
        self.reset()

    def reset(self):
        """Forget everything (a new recording); configuration is kept."""
        self.t = 0  # input samples seen
        self.left = self.n
        self.sx = 0
        self.sy = 0
        self.sz = 0
        self.swx = 0
        self.swy = 0
        self.swz = 0
        self.events.clear()
        self.orientation.reset()
        self.detector.reset()
        self.direction.reset()
        self.bouts.reset()
        self.sway.reset()

    @micropython.native
    def push(self, ax, ay, az, gx, gy, gz):
        """One IMU sample: acceleration mm/s^2, angular rate mrad/s, FLU, integers."""
        self.t += 1
        self.sx += ax
        self.sy += ay
        self.sz += az
        self.swx += gx
        self.swy += gy
        self.swz += gz
        self.left -= 1
        if self.left:
            return
        n = self.n
        self.left = n
        if n == 1:
            self.step(ax, ay, az, gx, gy, gz)
        else:
            self.step(
                self.sx // n, self.sy // n, self.sz // n,
                self.swx // n, self.swy // n, self.swz // n,
            )  # fmt: skip
        self.sx = 0
        self.sy = 0
        self.sz = 0
        self.swx = 0
        self.swy = 0
        self.swz = 0

    @micropython.native
    def step(self, ax, ay, az, wx, wy, wz):
        """One filter step on block-averaged values."""
        t = self.t - self.n + self.center  # input index at the centre of the block
        o = self.orientation
        o.frozen = self.sway.leaning
        o.update(ax, ay, az, wx, wy, wz)
        det = self.detector
        found = det.update(o.av, o.aap, t)
        self.direction.update(det.sap, det.sv)
        bouts = self.bouts
        if found:
            bouts.candidate(det.cand_t, self.direction.close_step())
        bouts.tick(t)
        self.sway.update(t, o.aml, o.wroll, o.wpitch, o.wyaw, bouts.walking_at(t))

    @property
    def steps_forward(self):
        return self.bouts.steps_fwd

    @property
    def steps_backward(self):
        return self.bouts.steps_bwd

    def finish(self):
        """End of input: close an open bout so its end is reported."""
        if self.bouts.in_bout:
            self.bouts.end_bout()
