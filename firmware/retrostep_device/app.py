"""The asyncio app: IMU batches -> gait pipeline -> session log, haptics, live counters.

Board-agnostic: everything hardware comes through the ``board`` object
(:mod:`board_esp32` or :mod:`board_sim`, same methods). Times: the pipeline's sample
index turned into milliseconds (time is sample count); session records carry
milliseconds since the session started.

Sessions: one opens when the pipeline reports a walking bout (BOUT_START; a STEP with
no session open does the same) or on a button press, and closes after the configured
idle timeout without a step (END idle), on a press (END button), or when the board
stops delivering samples (END power: the sim board at the end of its trace).

What reaches the log when: every ``WINDOW_MS`` (2 s) of session time the app writes
one WINDOW record (the steps the pipeline released since the last one, and the
per-second summaries that became final) and flushes the store, so a power cut loses at
most about 2 s of what the app had (``docs/storage.md``). Alerts, interval changes and
notes are written when they happen and reach flash with the same flush. Second ``k`` of
a session is final ``SECOND_LAG_S`` seconds after it ends, because the pipeline releases
a bout's first steps only when it confirms the bout; a step released later still is in
the WINDOW's step list all the same (the per-second counts are a summary, the steps are
the count).

The button is polled once per batch (its IRQ only keeps the press time: a press
counts on the sample clock, also in a faster-than-real-time replay); the battery once
a minute of sample time. Tasks (imu, motor) each run under a supervisor: an exception is
printed, counted in ``live.errors`` and the task restarted. The imu task owns the
pipeline and the log; the motor task only polls the haptics player.
"""

import asyncio
import sys
from array import array

from retrostep_core import config as cfg
from retrostep_core import events as ev
from retrostep_core import haptic_patterns as hp
from retrostep_core import records as r
from retrostep_core.coaching import Coach
from retrostep_core.compat import const
from retrostep_core.pipeline import GaitPipeline

from . import VERSION
from .storage import SessionStore

FIRMWARE = "retrostep " + VERSION  # retrostep_device.VERSION: also the flash manifest's
CONFIG_FILE = "/config.bin"  # under the board's ``fs_root`` (the flash filesystem)
LOG_DIR = "/logs"
BATCH_MAX = const(64)  # samples per IMU batch, at most
MOTOR_STEP_MS = const(10)  # haptics resolution
SECOND_LAG_S = const(5)
_RING = const(8)  # > SECOND_LAG_S + 1
WINDOW_MS = const(2000)  # a WINDOW record and a store flush this often (session time)
CADENCE_GAP_MS = const(2000)  # a longer step interval is a pause, not a cadence
LOW_BATTERY_MV = const(3450)
BATTERY_PERIOD_MS = const(60000)


class Live:
    """Counters other parts (BLE later) read; the app is the only writer."""

    def __init__(self):
        self.state = "idle"  # idle / session / deep_sleep / stopped
        self.session_id = None
        self.forward = 0  # since boot
        self.backward = 0
        self.sway_alerts = 0
        self.storage_full = False
        self.battery_mv = 0
        self.config_problems = 0  # 0: the stored config was used as is
        self.errors = 0  # task failures (each was restarted)


class Haptics:
    """The player driven on the app's clock: ``advance(t)`` replays every 10 ms poll up
    to ``t``, so the motor timeline is exact however late the caller is."""

    def __init__(self, board, strength):
        self.board = board
        self.player = hp.Player(strength)
        self.t = 0

    def advance(self, t_ms):
        t = self.t
        while t + MOTOR_STEP_MS <= t_ms:
            t += MOTOR_STEP_MS
            self.board.motor(self.player.level(t), t)
        self.t = t

    def play(self, pattern, t_ms):
        self.advance(t_ms)
        res = self.player.play(pattern, self.t)
        self.board.motor(self.player.level(self.t), self.t)  # a pulse starts now, not 10 ms on
        return res


def load_config(path):
    """``(config, problems)``: a missing file is the defaults with no problem; an
    unreadable or corrupt one is the defaults (or per-field defaults) with problems."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        if e.args and e.args[0] == 2:  # ENOENT: never configured
            return cfg.defaults(), []
        return cfg.defaults(), ["config: unreadable (%r)" % (e,)]
    return cfg.decode(data)


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


class App:
    def __init__(self, board, config_path=None, log_root=None, started=None):
        self.board = board
        self.started = started  # called once after the first batch: the loader's health check
        root = board.fs_root  # "" where the flash is the root filesystem (ESP32)
        self.config_path = config_path or root + CONFIG_FILE
        self.log_root = log_root or root + LOG_DIR
        self.live = Live()
        self.done = False
        # Something that needs the board awake (the BLE service: a central connected),
        # a callable returning True while it does; None: nothing.
        self.awake = None

    # -- setup -------------------------------------------------------------------------

    def setup(self):
        b = self.board
        b.start()
        conf, problems = load_config(self.config_path)
        for p in problems:
            print("config:", p)
        self.config = conf
        self.problems = len(problems)
        self.live.config_problems = self.problems
        fs = b.imu_rate_hz(conf["sample_rate_hz"])
        self.pipeline = GaitPipeline(fs, conf["sway_limit_deg"], conf["sway_min_ms"],
                                     conf["sway_refractory_ms"], 128)  # fmt: skip
        self.fs_mhz = self.pipeline.fs_mhz
        g = _gcd(1000000, self.fs_mhz)  # ms = t * num // den, small ints for ~a day
        self._num = 1000000 // g
        self._den = self.fs_mhz // g
        self.idle_ms = conf["idle_timeout_s"] * 1000
        self.coach = Coach.from_config(conf)
        self.haptics = Haptics(b, conf["haptic_strength"])
        self.enc = r.Encoder()
        self.store = SessionStore(self.log_root)
        self.store.recover()
        self.buf = array("i", [0] * (6 * BATCH_MAX))
        self.sid = None
        self.last_step = 0  # session ms of the last step (set per session in open)
        self.next_window = 0
        self.last_activity = 0  # ms of the last step (or boot, or a press)
        self.dropped_seen = 0
        self.sleeping = False
        self.next_battery = 0
        self._rf = bytearray(_RING)
        self._rb = bytearray(_RING)
        self._rr = array("i", [0] * _RING)
        self._rs = array("i", [0] * _RING)
        self._ri = array("i", [0] * _RING)  # sum of step intervals ending in the second
        self._rn = bytearray(_RING)  # and their number (cadence)

    def ms(self, t_index):
        """Sample index -> ms since boot (time is sample count)."""
        return t_index * self._num // self._den

    # -- running -----------------------------------------------------------------------

    async def run(self):
        self.setup()
        tasks = [
            asyncio.create_task(self._supervise("imu", self._imu)),
            asyncio.create_task(self._supervise("motor", self._motor)),
        ]
        for t in tasks:
            await t
        self.live.state = "stopped"
        self.board.stop()

    async def _supervise(self, name, fn):
        while not self.done:
            try:
                await fn()
                return
            except Exception as e:  # the device must keep counting: log, restart
                self.live.errors += 1
                print("task %s failed, restarting:" % name)
                sys.print_exception(e)  # type: ignore[attr-defined]
                await asyncio.sleep_ms(10)

    async def _imu(self):
        b = self.board
        buf = self.buf
        p = self.pipeline
        push = p.push
        while not self.done:
            n = await b.read_batch(buf)
            if n == 0:
                self.shutdown()
                return
            k = 0
            end = 6 * n
            while k < end:
                push(buf[k], buf[k + 1], buf[k + 2], buf[k + 3], buf[k + 4], buf[k + 5])
                k += 6
            self.drain()
            self.tick(self.ms(p.t))
            b.feed_watchdog()
            if self.started is not None:  # healthy: tell the loader, once
                started, self.started = self.started, None
                started()

    async def _motor(self):
        while not self.done:
            self.haptics.advance(self.board.now_ms())
            await asyncio.sleep_ms(MOTOR_STEP_MS)

    def shutdown(self):
        """The board stops delivering samples: close everything in order."""
        p = self.pipeline
        p.finish()
        self.drain()
        now = self.ms(p.t)
        self.haptics.advance(now)
        if self.sid is not None:
            self.close(now, r.END_POWER)
        self.haptics.advance(now + 5000)  # let a cue in progress finish on the log
        self.board.motor(0, self.haptics.t)
        self.done = True

    # -- events ------------------------------------------------------------------------

    def drain(self):
        q = self.pipeline.events
        while q.count:
            i = q.pop()
            self.event(q.kind[i], q.t[i], q.a[i], q.b[i])
        if q.dropped > self.dropped_seen:
            if self.sid is not None:
                self.log(self.enc.note(self.rel(self.ms(self.pipeline.t)),
                                       r.NOTE_EVENTS_DROPPED, q.dropped - self.dropped_seen))
            self.dropped_seen = q.dropped

    def event(self, kind, t, a, b):
        ms = self.ms(t)
        if kind == ev.STEP:
            if self.sid is None:
                self.open(ms)
            self.step(ms, a)
        elif kind == ev.BOUT_START:
            if self.sid is None:
                self.open(ms)
        elif kind == ev.SWAY_ALERT:
            self.live.sway_alerts += 1
            if self.sid is not None:  # logged first: the record matters more than the buzz
                self.alerts += 1
                self.log(self.enc.sway_alert(self.rel(ms), a, b))
            self.haptics.play(hp.SWAY_ALERT, ms)
        elif kind == ev.SWAY_METRICS and self.sid is not None:
            s = self.rel(ms) - 1
            if s >= 0 and s // 1000 >= self.sec_next:
                j = (s // 1000) % _RING
                self._rr[j] = a
                self._rs[j] = b

    def step(self, ms, direction):
        rel = self.rel(ms)
        self.last_activity = ms if ms > self.last_activity else self.last_activity
        live = self.live
        if direction < 0:
            live.backward += 1
            self.backward += 1
        else:
            live.forward += 1
            self.forward += 1
        self.log(self.enc.window_step(rel, direction))
        self.coach.step(rel, direction)
        k = rel // 1000
        gap = rel - self.last_step
        self.last_step = rel
        if k >= self.sec_next:
            j = k % _RING
            if direction < 0:
                self._rb[j] += 1 if self._rb[j] < 255 else 0
            else:
                self._rf[j] += 1 if self._rf[j] < 255 else 0
            if 0 < gap <= CADENCE_GAP_MS and self._rn[j] < 255:
                self._ri[j] += gap
                self._rn[j] += 1

    def press(self, ms):
        self.last_activity = ms
        if self.sid is None:
            self.open(ms)
        else:
            self.close(ms, r.END_BUTTON)

    # -- sessions ----------------------------------------------------------------------

    def rel(self, ms):
        d = ms - self.t0
        return d if d > 0 else 0

    def log(self, frame):
        if frame is None or self.sid is None:
            return
        self.store.append(frame)
        if self.store.full and not self.live.storage_full:
            self.live.storage_full = True
            self.haptics.play(hp.STORAGE_FULL, self.ms(self.pipeline.t))

    def open(self, ms):
        c = self.config
        self.t0 = ms
        self.last_activity = ms
        self.forward = 0
        self.backward = 0
        self.alerts = 0
        self.walking_s = 0
        self.sec_next = 0
        self.next_window = WINDOW_MS
        self.last_step = -CADENCE_GAP_MS - 1
        for j in range(_RING):
            self._clear_second(j)
        self.enc.reset()
        self.sid = self.store.begin({
            "wall_start": self.board.wall_time(), "fs_mhz": self.fs_mhz,
            "sway_limit_cdeg": int(c["sway_limit_deg"] * 100 + 0.5),
            "config_version": cfg.CONFIG_VERSION, "config_crc": cfg.config_crc(c),
            "firmware": FIRMWARE,
        })  # fmt: skip
        self.live.session_id = self.sid
        self.live.state = "session"
        self.live.storage_full = self.store.full
        if self.store.full:  # every session that starts with no room says so once
            self.haptics.play(hp.STORAGE_FULL, ms)
        if self.problems:
            self.log(self.enc.note(0, r.NOTE_CONFIG_DEFAULTS, self.problems))
        self.coach.reset()
        if self.coach.start(0):
            self.interval(0)

    def interval(self, rel):
        co = self.coach
        self.log(self.enc.interval(co.interval_start, co.kind, co.index, co.repeat))
        self.haptics.play(hp.interval_pattern(co.kind), self.t0 + rel)

    def tick(self, now):
        """Once per batch: button, flushes, per-second summaries, coaching, idle."""
        self.haptics.advance(now)
        t = self.board.button_pressed()  # the IRQ (or the script) kept the press time
        if t is not None:
            self.press(t)
        if now >= self.next_battery:
            self.battery(now)
        if self.sid is None:
            if (not self.sleeping and now - self.last_activity >= self.idle_ms
                    and not (self.awake is not None and self.awake())):  # fmt: skip
                self.sleeping = True
                self.live.state = "deep_sleep"
                self.board.deep_sleep()
            return
        rel = self.rel(now)
        while (self.sec_next + 1 + SECOND_LAG_S) * 1000 <= rel:
            self.second()
        while self.coach.update(rel):
            self.interval(rel)
        if rel >= self.next_window:  # bound what a power cut loses: about 2 s
            self.next_window = rel + WINDOW_MS
            self.log(self.enc.flush_window())
            self.store.flush()
        self.store.tick(rel)
        if now - self.last_activity >= self.idle_ms:
            self.close(now, r.END_IDLE)

    def second(self):
        k = self.sec_next
        j = k % _RING
        f = self._rf[j]
        bk = self._rb[j]
        n = self._rn[j]
        cadence = 0
        if f + bk:
            self.walking_s += 1
            if n:
                cadence = (60000 * n + self._ri[j] // 2) // self._ri[j]
        self.log(self.enc.window_second(k * 1000, f, bk, cadence, self._rr[j], self._rs[j]))
        self._clear_second(j)
        self.sec_next = k + 1

    def _clear_second(self, j):
        self._rf[j] = 0
        self._rb[j] = 0
        self._rr[j] = 0
        self._rs[j] = 0
        self._ri[j] = 0
        self._rn[j] = 0

    def close(self, now, reason):
        rel = self.rel(now)
        while self.sec_next * 1000 < rel:
            self.second()
        self.log(self.enc.flush_window())
        if self.coach.started and not self.coach.done:
            self.coach.update(rel)
        self.store.end({
            "t": rel, "forward": self.forward, "backward": self.backward,
            "alerts": self.alerts, "walking_s": self.walking_s,
            "compliance_s": self.coach.backward_ms // 1000, "reason": reason,
        })  # fmt: skip
        self.sid = None
        self.live.session_id = None
        self.live.state = "idle"
        if reason != r.END_IDLE:  # after an idle end the board may sleep at once
            self.last_activity = now
        self.sleeping = False

    def battery(self, now):
        mv = self.board.battery_mv()
        was = self.live.battery_mv
        self.live.battery_mv = mv
        self.next_battery = now + BATTERY_PERIOD_MS
        if mv < LOW_BATTERY_MV and (was == 0 or was >= LOW_BATTERY_MV):
            self.haptics.play(hp.LOW_BATTERY, now)
            if self.sid is not None:
                self.log(self.enc.note(self.rel(now), r.NOTE_LOW_BATTERY, mv))
