"""Bounded event queue: the pipeline's only output channel.

Preallocated ring of (kind, t, a, b) integer records; pushing never allocates. The
consumer drains it after each batch of samples. If it falls behind, the oldest events
are kept and new ones counted in ``dropped`` (never lost silently).

Times ``t`` are input sample indices (time is sample count; divide by the sample rate).
"""

from array import array

from .compat import const

STEP = const(1)  # a = +1 forward / -1 backward, b = direction confidence 0..1000
SWAY_ALERT = const(2)  # a = +1 right / -1 left, b = roll deviation in 0.1 degree
# t = end of the ~1 s window, a = roll range 0.1 deg, b = RMS roll rate 0.1 deg/s
SWAY_METRICS = const(3)
BOUT_START = const(4)  # t = contact time of the bout's first step, a = +1/-1 direction
BOUT_END = const(5)  # t = contact time of the bout's last step, a = steps in the bout

KIND_NAMES = {
    STEP: "step",
    SWAY_ALERT: "sway_alert",
    SWAY_METRICS: "sway_metrics",
    BOUT_START: "bout_start",
    BOUT_END: "bout_end",
}


class EventQueue:
    def __init__(self, capacity=64):
        self.capacity = capacity
        self.kind = array("b", bytes(capacity))
        self.t = array("i", [0] * capacity)
        self.a = array("i", [0] * capacity)
        self.b = array("i", [0] * capacity)
        self.head = 0  # index of the oldest event
        self.count = 0
        self.dropped = 0

    def put(self, kind, t, a, b):
        if self.count >= self.capacity:
            self.dropped += 1
            return
        i = self.head + self.count
        if i >= self.capacity:
            i -= self.capacity
        self.kind[i] = kind
        self.t[i] = t
        self.a[i] = a
        self.b[i] = b
        self.count += 1

    def pop(self):
        """Remove the oldest event; return its slot index (read kind/t/a/b there)."""
        i = self.head
        self.head = i + 1 if i + 1 < self.capacity else 0
        self.count -= 1
        return i

    def clear(self):
        self.head = 0
        self.count = 0
        self.dropped = 0
