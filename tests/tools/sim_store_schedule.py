"""MicroPython (unix port): run firmware/main.py on the sim board unchanged, printing
when (board ms since boot) the app hands each frame to the session store.

Usage: micropython sim_store_schedule.py --samples F --fs HZ --image F [--speed N] ...
(the sim board's own arguments). Extra lines: ``O t0`` when a session opens (its
start, ms since boot), ``B t`` at ``begin`` (HEADER committed),
``A t n`` per ``append`` (one frame, n bytes), ``S t rel`` per step the pipeline
releases to the app (``rel``: its contact time, session ms), ``E t`` at ``end`` (END). Used by
tests/test_sim_power_cut.py for the reference run only; the runs it kills are plain
``main.py``.
"""

import sys

import main

from retrostep_device import app, board_sim, storage

_boards = []
_start = board_sim.Board.start
_append = storage.SessionStore.append
_begin = storage.SessionStore.begin
_end = storage.SessionStore.end
_open = app.App.open
_step = app.App.step


def _now():
    return _boards[0].now_ms()


def start(self):
    _boards.append(self)
    _start(self)


def append(self, frame):
    sys.stdout.write(f"A {_now()} {len(frame)}\n")
    return _append(self, frame)


def begin(self, header=None):
    res = _begin(self, header)
    sys.stdout.write(f"B {_now()}\n")
    return res


def open_(self, ms):
    sys.stdout.write(f"O {ms}\n")
    return _open(self, ms)


def step(self, ms, direction):
    sys.stdout.write(f"S {_now()} {self.rel(ms)}\n")
    return _step(self, ms, direction)


def end(self, fields=None):
    sys.stdout.write(f"E {_now()}\n")
    return _end(self, fields)


board_sim.Board.start = start
storage.SessionStore.append = append
storage.SessionStore.begin = begin
storage.SessionStore.end = end
app.App.open = open_
app.App.step = step
main.main()
