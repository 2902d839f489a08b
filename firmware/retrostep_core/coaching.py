"""Interval coaching: where the wearer is in the program, and how well they follow it.

A program is what the config holds: a list of ``(kind, seconds)`` intervals, kind
``"forward"`` / ``"backward"`` / ``"rest"`` (or the interval kind codes of
:mod:`records`, ``KIND_FORWARD`` ...), run ``repeat`` times. An empty program means no
coaching: the coach never starts and never reports a change.

Two inputs, both with times in milliseconds since the session started (ints, the
``t`` of the log records; never a wrapping ``ticks_ms``):

* :meth:`Coach.update` with the current time, at least about once a second. It returns
  True when the program moved to another interval (at most one per call: call it again
  while it returns True, after a long gap, so that no interval goes unlogged). Then
  ``kind``, ``index``, ``repeat`` and ``interval_start`` (the scheduled start, which is
  what goes into the INTERVAL record) describe the new interval. After the last interval
  the change is to ``KIND_NONE`` with ``index`` 0 and ``repeat`` equal to the repeat
  count (the position just after the end), and ``done`` becomes True.
* :meth:`Coach.step` with each step's contact time and direction (+1 forward, -1
  backward), in time order, as the gait pipeline reports them. Steps may arrive late
  (the pipeline releases the first steps of a bout only when it confirms the bout): the
  credit is worked out from the step times against the fixed schedule, so it does not
  matter whether ``update`` already moved on.

Compliance: the time between two consecutive steps of the same direction, less than
``GAP_MAX_MS`` (2 s) apart, counts as walked in that direction. ``backward_ms`` is the
part of that backward walking time that lies inside backward intervals, ``forward_ms``
the part of forward walking inside forward intervals. A pause (a gap of 2 s or more),
or a change of direction, breaks the chain: the gap before the first step after it is
not counted. Walking time is therefore measured from the first to the last contact of
each run of steps, and under-reads a run by at most one step interval.

The program clock runs on from :meth:`Coach.start` whatever the wearer does: there is
no pause when they stop, so intervals missed while standing still simply earn no
compliance. (Pausing would need a definition of "stopped" and makes a session's
schedule depend on the gait detector; the log keeps both, so a report can show it.)

Nothing here allocates after construction: state is small ints, the program is held in
preallocated arrays.
"""

from array import array

from .compat import const
from .config import KINDS
from .records import KIND_BACKWARD, KIND_FORWARD, KIND_NONE, KIND_REST

GAP_MAX_MS = const(2000)  # steps further apart than this are not continuous walking
_RUN_MAX_MS = const(1000000000)  # one run of the program: small ints on a 31-bit port


class Coach:
    """The coaching state machine for one session (see the module docstring).

    Attributes (read them, do not write them):

    * ``enabled``: the program has at least one interval;
    * ``started``, ``done``: :meth:`start` was called; the program is over;
    * ``kind``: interval kind now (``KIND_*``; ``KIND_NONE`` before the start, after
      the end and without a program), ``index`` (in the program) and ``repeat`` (the
      run of the program), both from 0;
    * ``interval_start``, ``interval_end``: scheduled bounds of the current interval, ms;
    * ``backward_ms``, ``forward_ms``: compliance so far, ms.
    """

    def __init__(self, program, repeat=1):
        n = len(program)
        if n > 255:
            raise ValueError("program: at most 255 intervals")
        if not 1 <= repeat <= 255:
            raise ValueError("program repeat must be 1..255")
        self.n = n
        self.repeats = repeat
        self.enabled = n > 0
        self.kinds = bytearray(n)
        self.durations = array("i", [0] * n)  # ms
        self.offsets = array("i", [0] * n)  # start of each interval within one run, ms
        run = 0
        for i in range(n):
            item = program[i]
            kind = item[0]
            seconds = item[1]
            if isinstance(kind, str):
                if kind not in KINDS:
                    raise ValueError("program: unknown interval kind %r" % (kind,))
                kind = KINDS[kind]
            elif kind not in (KIND_FORWARD, KIND_BACKWARD, KIND_REST):
                raise ValueError("program: unknown interval kind %r" % (kind,))
            if not isinstance(seconds, int) or not 1 <= seconds <= 65535:
                raise ValueError("program: interval %d must last 1..65535 s" % i)
            self.kinds[i] = kind
            self.durations[i] = seconds * 1000
            self.offsets[i] = run
            run += seconds * 1000
        if run > _RUN_MAX_MS:
            raise ValueError("program: one run must be shorter than 11 days")
        self.run_ms = run
        self.reset()

    @classmethod
    def from_config(cls, config):
        """A coach for a (validated) config dict: its ``program`` and ``program_repeat``."""
        return cls(config["program"], config["program_repeat"])

    def reset(self):
        """Back to before :meth:`start`: no interval, no compliance, no step seen."""
        self.started = False
        self.done = not self.enabled
        self.kind = KIND_NONE
        self.index = 0
        self.repeat = 0
        self.t0 = 0
        self.interval_start = 0
        self.interval_end = 0
        self.backward_ms = 0
        self.forward_ms = 0
        self._last_t = 0
        self._last_dir = 0

    def start(self, t_ms):
        """Start the program at ``t_ms``. True if there is a first interval to cue and
        log (``kind``, ``index`` 0, ``repeat`` 0), False for an empty program."""
        if not self.enabled:
            return False
        self.started = True
        self.done = False
        self.t0 = t_ms
        self.index = 0
        self.repeat = 0
        self.kind = self.kinds[0]
        self.interval_start = t_ms
        self.interval_end = t_ms + self.durations[0]
        self.backward_ms = 0
        self.forward_ms = 0
        return True

    def update(self, t_ms):
        """Advance the schedule to ``t_ms``: True if a new interval began (at
        ``interval_start``, which may be earlier than ``t_ms``), at most one per call."""
        if not self.started or self.done or t_ms < self.interval_end:
            return False
        at = self.interval_end
        i = self.index + 1
        r = self.repeat
        if i >= self.n:
            i = 0
            r += 1
        self.interval_start = at
        if r >= self.repeats:
            self.done = True
            self.kind = KIND_NONE
            self.index = 0
            self.repeat = r
            self.interval_end = at
            return True
        self.index = i
        self.repeat = r
        self.kind = self.kinds[i]
        self.interval_end = at + self.durations[i]
        return True

    def step(self, t_ms, direction):
        """One step: contact time ``t_ms``, ``direction`` +1 forward / -1 backward.

        Credits the time since the previous step when both went the same way and were
        less than ``GAP_MAX_MS`` apart, to whichever intervals of that kind it overlaps.
        """
        d = 1 if direction > 0 else -1 if direction < 0 else 0
        last_t = self._last_t
        last_d = self._last_dir
        self._last_t = t_ms
        self._last_dir = d
        if not self.started or d == 0 or d != last_d:
            return
        if not 0 < t_ms - last_t < GAP_MAX_MS:
            return
        if d > 0:
            self.forward_ms += self._overlap(last_t, t_ms, KIND_FORWARD)
        else:
            self.backward_ms += self._overlap(last_t, t_ms, KIND_BACKWARD)

    def _overlap(self, a, b, want):
        """Milliseconds of ``[a, b)`` that fall inside intervals of kind ``want``."""
        if a < self.t0:
            a = self.t0
        if a >= b:
            return 0
        e = a - self.t0
        r = e // self.run_ms
        if r >= self.repeats:
            return 0
        off = e - r * self.run_ms
        n = self.n
        kinds = self.kinds
        durations = self.durations
        offsets = self.offsets
        i = 0
        while i + 1 < n and offsets[i + 1] <= off:
            i += 1
        start = a - (off - offsets[i])  # scheduled start of interval i of run r
        got = 0
        while a < b:
            end = start + durations[i]
            cut = b if b < end else end
            if kinds[i] == want:
                got += cut - a
            a = cut
            start = end
            i += 1
            if i >= n:
                i = 0
                r += 1
                if r >= self.repeats:
                    break
        return got
