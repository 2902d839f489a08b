"""Vibration patterns as data, and a tiny non-blocking player the haptics driver polls.

A pattern is a tuple of ``(on_ms, off_ms)`` pulses at one intensity (% of full drive)
with a priority. ``docs/coaching-and-haptics.md`` has the table and the reasoning; in
short, every cue is recognisable by rhythm alone (the wearer cannot look at the device):

* ``SWAY_ALERT``: three short strong pulses (safety);
* ``INTERVAL_FORWARD`` one long pulse, ``INTERVAL_BACKWARD`` two long pulses,
  ``INTERVAL_REST`` long-short, ``INTERVAL_DONE`` short-short-long (program over);
* ``FIND_ME``: five strong pulses (the host asks the device to buzz so it can be found);
* ``LOW_BATTERY``: four softer slow ticks, ``STORAGE_FULL``: softer short-long-short.

:class:`Player` rules, all times in ms (ints from a clock that does not wrap, e.g. session time):

* **Priorities.** ``PRIO_SAFETY`` (sway) > ``PRIO_CUE`` (interval cues, find-me) >
  ``PRIO_STATUS`` (battery, storage). A request of higher priority than the pattern
  playing preempts it at once; the preempted pattern, if it had pulses left, goes back
  to the queue and is later replayed from its start (a cut-off "two long" would read as
  "one long", forward for backward, so a cue is felt whole or not at all). A request of
  equal or lower priority waits in a one-pattern queue. The queue keeps the higher
  priority, and of equal priorities the newer request; whatever loses is dropped and
  counted in ``dropped``. Requesting the pattern that is playing is dropped (the wearer
  is feeling it already).
* **Separation.** After a pattern, ``GAP_MS`` of quiet before the next one, so two cues
  do not run together. The gap belongs to the pattern: only a higher priority cuts it.
* **Staleness.** A queued pattern that cannot start within its ``stale_ms`` of being
  requested is dropped: a sway alert more than 0.5 s late describes a lean that may be
  over; an interval cue is worth giving for 20 s.
* **Duty cycle.** In any ``WINDOW_MS`` (10 s) the motor is on at most ``BUDGET_MS``
  (3000 ms, 30 %). A pattern starts only if its whole on-time fits; otherwise it waits
  (queued, subject to staleness). Patterns are never shortened to fit, for the reason
  above. Non-safety patterns together may use only ``BUDGET_MS - SAFETY_RESERVE_MS``
  (1560 ms) of any window, so sway alerts always have room for four alerts per window,
  whatever else is going on; only a fifth sway alert within about 10 s (possible only
  with a refractory period under 2.65 s) can be refused. The sway alert is bounded too,
  on purpose: the bound protects the motor and the battery, and a vibration that never
  stops is felt less and less (vibrotactile adaptation) and gets the device taken off.
  The SWAY_ALERT record is logged either way; this only governs the motor.

The driver calls :meth:`Player.level` every few ms (10-20 ms is plenty: the shortest
pulse is 100 ms) and drives the motor at that duty, 0..100. ``level`` allocates nothing.
"""

from array import array

from .compat import const
from .records import KIND_BACKWARD, KIND_FORWARD, KIND_REST

PRIO_STATUS = const(1)
PRIO_CUE = const(2)
PRIO_SAFETY = const(3)

WINDOW_MS = const(10000)
BUDGET_MS = const(3000)  # 30 % of WINDOW_MS
SAFETY_RESERVE_MS = const(1440)  # four sway alerts; others may use BUDGET_MS minus this
MAX_PULSE_MS = const(2000)  # longest single motor-on time (hardware/assembly.md: heat)
GAP_MS = const(400)  # quiet after every pattern
HISTORY = const(48)  # started patterns remembered for the duty-cycle window

# play() results
DROPPED = const(0)
STARTED = const(1)
QUEUED = const(2)


class Pattern:
    """One vibration pattern: ``pulses`` ((on_ms, off_ms), ...), ``intensity`` 1..100 %,
    ``priority`` (PRIO_*), ``stale_ms`` how long a queued request stays worth playing."""

    def __init__(self, name, pulses, intensity, priority, stale_ms):
        if not pulses:
            raise ValueError("pattern: no pulses")
        if not 1 <= intensity <= 100 or not PRIO_STATUS <= priority <= PRIO_SAFETY:
            raise ValueError("pattern: intensity 1..100, priority PRIO_*")
        on = 0
        span = 0
        for p in pulses:
            if not 1 <= p[0] <= MAX_PULSE_MS or not 0 <= p[1] <= 5000:
                raise ValueError("pattern: pulses must be (1..2000, 0..5000) ms")
            on += p[0]
            span += p[0] + p[1]
        self.name = name
        self.pulses = tuple((p[0], p[1]) for p in pulses)
        self.intensity = intensity
        self.priority = priority
        self.stale_ms = stale_ms
        self.on_ms = on  # total on-time
        self.span_ms = span  # first pulse on to end of the last off

    def __repr__(self):
        return "Pattern(%s)" % self.name


# Pulses are at least 100 ms and gaps between pulses at least 120 ms: a coin ERM needs
# some 30-60 ms to spin up and as long to stop, so shorter ones blur into each other.
SWAY_ALERT = Pattern("sway_alert", ((120, 120), (120, 120), (120, 0)), 100, PRIO_SAFETY, 500)
INTERVAL_FORWARD = Pattern("interval_forward", ((700, 0),), 85, PRIO_CUE, 20000)
INTERVAL_BACKWARD = Pattern("interval_backward", ((400, 300), (400, 0)), 85, PRIO_CUE, 20000)
INTERVAL_REST = Pattern("interval_rest", ((400, 300), (120, 0)), 85, PRIO_CUE, 20000)
INTERVAL_DONE = Pattern("interval_done", ((120, 150), (120, 150), (700, 0)), 85, PRIO_CUE,
                        20000)  # fmt: skip
FIND_ME = Pattern("find_me", ((300, 300),) * 4 + ((300, 0),), 100, PRIO_CUE, 5000)
LOW_BATTERY = Pattern("low_battery", ((100, 400),) * 3 + ((100, 0),), 70, PRIO_STATUS, 60000)
STORAGE_FULL = Pattern("storage_full", ((100, 250), (400, 250), (100, 0)), 70, PRIO_STATUS,
                       60000)  # fmt: skip

PATTERNS = (SWAY_ALERT, INTERVAL_FORWARD, INTERVAL_BACKWARD, INTERVAL_REST, INTERVAL_DONE,
            FIND_ME, LOW_BATTERY, STORAGE_FULL)  # fmt: skip


def interval_pattern(kind):
    """The cue for a coaching change to interval ``kind`` (records.KIND_*); KIND_NONE
    (the program is over) gives INTERVAL_DONE."""
    if kind == KIND_FORWARD:
        return INTERVAL_FORWARD
    if kind == KIND_BACKWARD:
        return INTERVAL_BACKWARD
    if kind == KIND_REST:
        return INTERVAL_REST
    return INTERVAL_DONE


class Player:
    """Plays one pattern at a time; see the module docstring for the rules.

    ``strength`` is the configured haptic strength (config ``haptic_strength``, 0..100 %):
    the duty is the pattern's intensity scaled by it. Read-only attributes: ``playing``
    and ``pending`` (Pattern or None), ``dropped`` (requests never played: coalesced,
    displaced from the queue, stale), ``throttled`` (patterns held back at least once by
    the duty-cycle rule).
    """

    def __init__(self, strength=80):
        self.strength = 0
        self._h_end = array("i", [0] * HISTORY)  # when each started pattern ended / ends
        self._h_on = array("i", [0] * HISTORY)  # its on-time, ms (0: free slot)
        self._h_safe = bytearray(HISTORY)  # 1: a safety pattern
        self._h_next = 0
        self._h_slot = 0
        self.dropped = 0
        self.throttled = 0
        self.stop()
        self.set_strength(strength)

    def set_strength(self, strength):
        if not 0 <= strength <= 100:
            raise ValueError("haptic strength must be 0..100 %")
        self.strength = strength
        p = self.playing
        self._duty = 0 if p is None else p.intensity * strength // 100

    def stop(self):
        """Silence now and forget the queue (the duty-cycle history is kept)."""
        self.playing = None  # type: Pattern | None
        self.pending = None  # type: Pattern | None
        self._pending_t = 0
        self._pending_held = False
        self._start = 0
        self._req_t = 0
        self._pulse = 0
        self._pulse_at = 0
        self._duty = 0

    # -- requests ----------------------------------------------------------------------

    def play(self, pattern, t_ms):
        """Request ``pattern`` at ``t_ms``: STARTED, QUEUED or DROPPED."""
        self._retire(t_ms)
        cur = self.playing
        if cur is not None:
            if pattern is cur:
                self.dropped += 1
                return DROPPED
            if pattern.priority <= cur.priority:
                return self._queue(pattern, t_ms)
            if not self._fits(pattern, t_ms):
                self.throttled += 1
                return self._queue(pattern, t_ms, True)
            self._interrupt(t_ms)
            self._begin(pattern, t_ms, t_ms)
            return STARTED
        q = self.pending
        if q is not None and q.priority > pattern.priority:
            return self._queue(pattern, t_ms)
        if self._fits(pattern, t_ms):
            if q is not None and q.priority == pattern.priority:
                self.pending = None  # the newer request of that priority wins
                self.dropped += 1
            self._begin(pattern, t_ms, t_ms)
            return STARTED
        self.throttled += 1
        return self._queue(pattern, t_ms, True)

    def _queue(self, pattern, t_ms, held=False):
        q = self.pending
        if q is not None and q.priority > pattern.priority:
            self.dropped += 1
            return DROPPED
        if q is not None:
            self.dropped += 1
        self.pending = pattern
        self._pending_t = t_ms
        self._pending_held = held
        return QUEUED

    # -- the poll ----------------------------------------------------------------------

    def level(self, t_ms):
        """Motor duty 0..100 at ``t_ms``; starts queued patterns when their turn comes."""
        self._retire(t_ms)
        p = self.playing
        if p is None:
            if self.pending is None:
                return 0
            self._try_pending(t_ms)
            p = self.playing
            if p is None:
                return 0
        e = t_ms - self._start
        if e < 0:
            return 0
        pulses = p.pulses
        n = len(pulses)
        i = self._pulse
        at = self._pulse_at
        while i < n and e >= at + pulses[i][0] + pulses[i][1]:
            at += pulses[i][0] + pulses[i][1]
            i += 1
        self._pulse = i
        self._pulse_at = at
        if i < n and e < at + pulses[i][0]:
            return self._duty
        return 0

    # -- internals ---------------------------------------------------------------------

    def _retire(self, t_ms):
        p = self.playing
        if p is not None and t_ms - self._start >= p.span_ms + GAP_MS:
            self.playing = None
            self._duty = 0

    def _try_pending(self, t_ms):
        q = self.pending
        if q is None:
            return
        if t_ms - self._pending_t > q.stale_ms:
            self.pending = None
            self.dropped += 1
            return
        if self._fits(q, t_ms):
            self.pending = None
            self._begin(q, t_ms, self._pending_t)
        elif not self._pending_held:
            self._pending_held = True
            self.throttled += 1

    def _fits(self, pattern, t_ms):
        """Whether ``pattern`` started at ``t_ms`` keeps every 10 s window within budget.

        Counts the whole on-time of every pattern that overlaps the last WINDOW_MS: all
        of them against BUDGET_MS, the non-safety ones (for a non-safety pattern) against
        BUDGET_MS - SAFETY_RESERVE_MS. If each start passes this check, no window ever
        holds more: the latest-starting pattern in any window saw all the others when it
        started (each of them ends after the window opens, so after that start's own
        window opened).
        """
        since = t_ms - WINDOW_MS
        ends = self._h_end
        ons = self._h_on
        safe = self._h_safe
        w = self._h_next
        if ons[w] and ends[w] > since:
            return False  # history full of recent patterns: refuse rather than forget
        total = pattern.on_ms
        low = total
        for k in range(HISTORY):
            if ons[k] and ends[k] > since:
                total += ons[k]
                if not safe[k]:
                    low += ons[k]
        if total > BUDGET_MS:
            return False
        return pattern.priority >= PRIO_SAFETY or low <= BUDGET_MS - SAFETY_RESERVE_MS

    def _begin(self, pattern, t_ms, req_t):
        self.playing = pattern
        self._start = t_ms
        self._req_t = req_t
        self._pulse = 0
        self._pulse_at = 0
        self._duty = pattern.intensity * self.strength // 100
        w = self._h_next
        self._h_end[w] = t_ms + pattern.span_ms
        self._h_on[w] = pattern.on_ms
        self._h_safe[w] = 1 if pattern.priority >= PRIO_SAFETY else 0
        self._h_slot = w
        self._h_next = w + 1 if w + 1 < HISTORY else 0

    def _interrupt(self, t_ms):
        """Stop the playing pattern for a preemption: book the on-time it really used,
        and queue it again if it had pulses left."""
        p = self.playing
        if p is None:
            return
        e = t_ms - self._start
        on = 0
        at = 0
        for pulse in p.pulses:
            if e > at:
                on += pulse[0] if e - at > pulse[0] else e - at
            at += pulse[0] + pulse[1]
        w = self._h_slot
        self._h_on[w] = on
        self._h_end[w] = t_ms
        self.playing = None
        self._duty = 0
        if e < p.span_ms - p.pulses[-1][1]:  # not all pulses felt: replay it whole later
            q = self.pending
            if q is None or p.priority > q.priority:
                if q is not None:
                    self.dropped += 1
                self.pending = p
                self._pending_t = self._req_t
                self._pending_held = False
            else:
                self.dropped += 1
