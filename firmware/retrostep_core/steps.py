"""Step candidates from vertical trunk acceleration, and walking-bout logic.

:class:`StepDetector` band-passes vertical (and anteroposterior) acceleration and
finds one positive lobe of vertical acceleration per step: at the waist, vertical
acceleration peaks just after a foot lands, when the body is lowest. The lobe's peak
(refined by parabolic interpolation) minus a lead proportional to the recent step
duration gives the initial contact.
An adaptive threshold follows the wearer's own step amplitude.

:class:`BoutTracker` turns candidates into counted steps. A bout is confirmed by a few
regular candidates; its first steps are held back and released at confirmation with
their own contact times, so standing up, fidgeting or a lone stumble never count.
Inside a bout each step is released as soon as its lobe ends (a fraction of a step
after contact, well under a second).
"""

from array import array

import micropython

from .compat import alpha_q16, const, samples_for
from .events import BOUT_END, BOUT_START, STEP

TAU_HP_MS = const(600)  # removes gravity leakage and posture drift (~0.27 Hz)
TAU_LP_MS = const(45)  # smooths heel-strike transients (~3.5 Hz)
TAU_ENV_MS = const(4000)  # decay of the step-amplitude envelope between steps
FLOOR_MM = const(250)  # no lobe below 0.25 m/s^2: quiet standing, breathing, noise
THRESH_PCT = const(30)  # lobe threshold: 30 % of the recent step amplitude
MAX_LOBE_MS = const(1200)  # a longer "lobe" is a posture change, not a step
# Contact precedes the smoothed vertical peak (the body is lowest in double support,
# which lasts longer in slow gait) by about this share of the step duration.
IC_LEAD_PCT = const(13)
STEP_DEFAULT_MS = const(600)  # step duration assumed until two lobes have been seen
STEP_MIN_MS = const(300)
STEP_MAX_MS = const(1400)


class StepDetector:
    """Band-pass filters and lobe detection. Produces at most one candidate per lobe."""

    def __init__(self, fs_mhz, n):
        self.n = n
        self.k_hp = alpha_q16(TAU_HP_MS, fs_mhz, n)
        self.k_lp12 = alpha_q16(TAU_LP_MS, fs_mhz, n) >> 4  # Q12
        self.k_env = alpha_q16(TAU_ENV_MS, fs_mhz, n)
        self.max_lobe = samples_for(MAX_LOBE_MS, fs_mhz, n)
        self.step_default = samples_for(STEP_DEFAULT_MS, fs_mhz)
        self.step_min = samples_for(STEP_MIN_MS, fs_mhz)
        self.step_max = samples_for(STEP_MAX_MS, fs_mhz)
        self.reset()

    def reset(self):
        self.mv = 0  # slow means (mm/s^2 * 16) for the high-pass
        self.map = 0
        self.sv = 0  # band-passed vertical / anteroposterior, mm/s^2
        self.sap = 0
        self.prev = 0  # sv one step ago
        self.env = 0  # recent step amplitude, mm/s^2 * 16
        self.in_lobe = 0
        self.wait_low = 0  # after an over-long lobe: no new lobe until the signal drops
        self.lobe_len = 0
        self.pk = 0
        self.pk_t = 0
        self.pk_before = 0
        self.pk_after = 0
        self.pk_after_set = 0
        self.step_len = self.step_default  # recent step duration, input samples
        self.last_pk_t = -1000000
        # Last candidate.
        self.cand_t = 0
        self.cand_amp = 0

    @micropython.native
    def update(self, av, aap, t):
        """One filter step. ``t``: input sample index at the centre of this step.

        Returns 1 when a lobe has just closed (``cand_t``, ``cand_amp`` are set).
        """
        # Products stay below 2**30 (ESP32 small ints) up to about 8 g.
        hv = av - (self.mv >> 4)
        hap = aap - (self.map >> 4)
        self.mv += hv * self.k_hp >> 12
        self.map += hap * self.k_hp >> 12
        sv = self.sv + ((hv - self.sv) * self.k_lp12 >> 12)
        self.sv = sv
        self.sap += (hap - self.sap) * self.k_lp12 >> 12
        self.env -= self.env * self.k_env >> 16
        thr = self.env * THRESH_PCT // 1600
        if thr < FLOOR_MM:
            thr = FLOOR_MM
        found = 0
        if self.wait_low:
            if sv < (thr >> 2):
                self.wait_low = 0
        elif not self.in_lobe:
            if sv > thr:
                self.in_lobe = 1
                self.lobe_len = 0
                self.pk = sv
                self.pk_t = t
                self.pk_before = self.prev
                self.pk_after_set = 0
        else:
            self.lobe_len += 1
            if sv > self.pk:
                self.pk_before = self.prev
                self.pk = sv
                self.pk_t = t
                self.pk_after_set = 0
            elif not self.pk_after_set:
                self.pk_after = sv
                self.pk_after_set = 1
            if sv < (thr >> 2):
                self.in_lobe = 0
                found = self.close_lobe()
            elif self.lobe_len >= self.max_lobe:
                self.in_lobe = 0
                self.wait_low = 1
        self.prev = sv
        return found

    def close_lobe(self):
        pk = self.pk
        t = self.pk_t
        # Parabolic interpolation of the peak between neighbouring filter steps.
        b = self.pk_before
        a = self.pk_after
        den = b - 2 * pk + a
        if den < 0:
            t += (b - a) * self.n // (2 * den)
        iv = t - self.last_pk_t
        self.last_pk_t = t
        if self.step_min <= iv <= self.step_max:
            self.step_len += (iv - self.step_len) >> 2
        self.cand_t = t - self.step_len * IC_LEAD_PCT // 100
        self.cand_amp = pk
        # Envelope follows the step amplitude (fast rise, slow decay).
        self.env += ((pk << 4) - self.env) >> 1
        return 1


CONFIRM_STEPS = const(4)  # candidates needed to confirm a bout
MIN_INTERVAL_MS = const(250)  # faster than 240 steps/min: a double lobe, not a step
MAX_INTERVAL_MS = const(1600)  # slower than ~38 steps/min: not one bout
BOUT_GAP_MS = const(2500)  # no step for this long ends the bout
CARRY_MS = const(10000)  # a bout's direction evidence is remembered this long after it
RECENT_STEP_MS = const(2000)  # "walking now": a counted step (contact) this recent
IRREGULAR_PCT = const(180)  # same-foot intervals differing more than 1.8x: restart
STRONG_SCORE = const(450)  # a step's own direction score is trusted above this
DIR_ACC_MAX = const(3000)  # bound on accumulated direction evidence
# Weak, mixed evidence (shuffling, turning on the spot) is called forward: that is what
# people mostly do; steady backward walking gives clearly negative scores.
FORWARD_PRIOR = const(300)


class BoutTracker:
    def __init__(self, fs_mhz, events):
        self.events = events
        self.min_iv = samples_for(MIN_INTERVAL_MS, fs_mhz)
        self.max_iv = samples_for(MAX_INTERVAL_MS, fs_mhz)
        self.gap = samples_for(BOUT_GAP_MS, fs_mhz)
        self.recent = samples_for(RECENT_STEP_MS, fs_mhz)
        self.carry = samples_for(CARRY_MS, fs_mhz)
        self.pend_t = array("i", [0] * CONFIRM_STEPS)
        self.pend_s = array("i", [0] * CONFIRM_STEPS)
        self.reset()

    def reset(self):
        self.in_bout = 0
        self.n_pend = 0
        self.last_t = 0
        self.bout_steps = 0
        self.dir_acc = 0
        self.steps_fwd = 0
        self.steps_bwd = 0

    def _emit(self, t, d, conf):
        if d > 0:
            self.steps_fwd += 1
        else:
            self.steps_bwd += 1
        self.bout_steps += 1
        self.events.put(STEP, t, d, conf)

    def _label(self, score):
        """Direction of a step inside a bout: its own score if clear, else the bout's."""
        if score >= STRONG_SCORE:
            d = 1
        elif score <= -STRONG_SCORE:
            d = -1
        else:
            d = 1 if self.dir_acc >= -FORWARD_PRIOR else -1
        # Evidence accumulates over steps (memory of ~4 steps), so one odd step during a
        # turn or a stumble does not flip the bout's direction.
        acc = self.dir_acc - (self.dir_acc >> 2) + score
        if acc > DIR_ACC_MAX:
            acc = DIR_ACC_MAX
        elif acc < -DIR_ACC_MAX:
            acc = -DIR_ACC_MAX
        self.dir_acc = acc
        return d

    def candidate(self, t, score):
        """A candidate step at contact time ``t`` (input samples) with direction score."""
        if self.in_bout:
            dt = t - self.last_t
            if dt < self.min_iv:
                return  # second lobe of the same step
            if dt <= self.gap:
                self.last_t = t
                self._emit(t, self._label(score), score if score >= 0 else -score)
                return
            self.end_bout()
        n = self.n_pend
        if n:
            dt = t - self.pend_t[n - 1]
            if dt < self.min_iv:
                return
            if dt > self.max_iv:
                n = 0
            elif n >= 3:
                # Compare with the interval of the same foot (two steps back): gait may
                # be asymmetric (long-short-long-short) and still perfectly regular.
                prev = self.pend_t[n - 2] - self.pend_t[n - 3]
                if dt * 100 > prev * IRREGULAR_PCT or prev * 100 > dt * IRREGULAR_PCT:
                    # Keep the last candidate as the start of a new run.
                    self.pend_t[0] = self.pend_t[n - 1]
                    self.pend_s[0] = self.pend_s[n - 1]
                    n = 1
        self.pend_t[n] = t
        self.pend_s[n] = score
        n += 1
        if n < CONFIRM_STEPS:
            self.n_pend = n
            return
        # Confirmed: the bout's direction comes from all its first steps together, plus
        # a fading memory of the previous bout (a pause rarely changes direction).
        self.n_pend = 0
        self.in_bout = 1
        self.bout_steps = 0
        total = 0
        if self.pend_t[0] - self.last_t <= self.carry:
            total = self.dir_acc >> 1
        for i in range(n):
            total += self.pend_s[i]
        if total > DIR_ACC_MAX:
            total = DIR_ACC_MAX
        elif total < -DIR_ACC_MAX:
            total = -DIR_ACC_MAX
        self.dir_acc = total
        d = 1 if total >= -FORWARD_PRIOR else -1
        self.events.put(BOUT_START, self.pend_t[0], d, 0)
        for i in range(n):
            s = self.pend_s[i]
            if s >= STRONG_SCORE:
                self._emit(self.pend_t[i], 1, s)
            elif s <= -STRONG_SCORE:
                self._emit(self.pend_t[i], -1, -s)
            else:
                self._emit(self.pend_t[i], d, s if s >= 0 else -s)
        self.last_t = t

    def end_bout(self):
        self.in_bout = 0
        self.events.put(BOUT_END, self.last_t, self.bout_steps, 0)

    def tick(self, t):
        """Called once per filter step: closes a bout after a long pause."""
        if self.in_bout and t - self.last_t > self.gap:
            self.end_bout()
        elif self.n_pend and t - self.pend_t[self.n_pend - 1] > self.max_iv + self.max_iv:
            self.n_pend = 0

    def walking_at(self, t):
        """In a confirmed bout with a step in the last couple of seconds."""
        return self.in_bout and t - self.last_t <= self.recent
