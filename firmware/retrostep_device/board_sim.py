"""The sim board: the board HAL for the MicroPython unix port (``docs/simulator.md``).

Same interface as :mod:`board_esp32`, so the app cannot tell them apart:

* IMU: replays an int32 sample file (6 ints per sample: mm/s^2 and mrad/s, FLU, the
  ``.i32`` files ``retrostep.runtime.micropython_port`` writes) in FIFO-like batches;
  ``speed`` 1 = real time, 10 = ten times faster, 0 = as fast as possible. Without a
  sample file the IMU is a still, upright wearer (gravity on +z, a few mm/s^2 and
  mrad/s of deterministic noise) for ever, at ``fs_hz`` (default 52 Hz).
* clock: simulated milliseconds, driven by the samples consumed (time is sample count).
* motor: every change of duty is printed at once as an ``M t_ms duty`` line (streamed,
  not kept: a long run must not grow the heap).
* button: a script of press times (ms); battery: a stepwise ``(t_ms, mV)`` curve.
* flash: a LittleFS image in a file (``FileBlockDevice`` + ``vfs.VfsLfs2``) mounted at
  ``/flash``; a blank image is formatted, any other image that does not mount is an
  error (a corrupt image is never silently wiped). With ``mounted`` the flash is
  already mounted there (the virtual board mounts its image at ``/``, as the ESP32's
  flash is its root filesystem): the board neither mounts nor unmounts it, and
  ``fs_root`` follows (``""`` for ``/``).
* power: state changes printed at once as ``P t_ms state`` lines: ``active``,
  ``light`` (between batches) and ``deep`` (after the idle timeout).
* heap (diagnostic, sim only): with ``heap_ms`` (``--heap-every MS``), every ``heap_ms``
  of sample time the board runs ``gc.collect()`` and prints ``H t_ms alloc free``
  (``gc.mem_alloc()`` / ``gc.mem_free()`` after the collection), and one ``H 0 ...``
  line at ``start()`` (the baseline: imported modules, app objects, mounted flash; on
  the unix port the modules' bytecode is on the heap, on the ESP32 it is frozen in
  flash); at the end it prints
  ``HP max_alloc max_raw peak`` (largest ``H`` alloc, largest ``gc.mem_alloc()`` seen
  before any collection, at each batch, and ``micropython.mem_peak()`` or -1 where the
  port lacks it).

Nothing here runs at import time; :func:`from_args` builds a board from a command line.
"""

import asyncio
import gc
import sys

import vfs

from .blockdev import DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE, FileBlockDevice

FLASH = "/flash"
BATCH = 26  # samples per FIFO batch (0.5 s at 52 Hz, like the real watermark)
STILL_HZ = 52  # the still IMU's default rate (the ESP32 board's)
G_MM = 9807  # gravity, mm/s^2


class SimError(Exception):
    pass


class Board:
    name = "sim"
    fs_root = FLASH  # where the app finds its files: the image, mounted here

    def __init__(self, samples, fs_hz, image, speed=0, buttons=(), battery=((0, 4000),),
                 batch=BATCH, block_count=DEFAULT_BLOCK_COUNT, config=None,
                 fault_ms=None, heap_ms=None, mounted=None):  # fmt: skip
        self.samples_path = samples  # None: the still IMU
        self.mounted = mounted  # the flash is already mounted here (None: mount image)
        if mounted is not None:
            self.fs_root = "" if mounted == "/" else mounted.rstrip("/")
        self.fs_mhz = int(fs_hz * 1000 + 0.5)
        self.image = image
        self.speed = speed
        self.buttons = sorted(buttons)
        self.battery = sorted(battery)
        self.batch = batch
        self.block_count = block_count
        self.config = config  # a host file copied to /flash/config.bin at start
        self.fault_ms = fault_ms  # the motor driver fails once at this time (tests)
        self.wall0 = None  # wall clock (s since 2000) at board time 0, None: never set
        self.consumed = 0  # samples delivered so far: the clock
        self.heap_ms = heap_ms  # heap report period (ms of sample time), None: off
        self._next_heap = heap_ms if heap_ms else 0
        self.heap_max = 0  # largest alloc after a collection (H lines)
        self.heap_raw_max = 0  # largest alloc seen at a batch, garbage included
        self.out = sys.stdout
        self._duty = 0
        self._power = None
        self._f = None
        self._bd = None
        self._pressed = 0  # button presses delivered
        self._noise = 1  # the still IMU's noise generator state

    # -- lifecycle ---------------------------------------------------------------------

    def start(self):
        """Open the sample file and mount the flash (unless it is mounted already)."""
        if self.samples_path is not None:
            try:
                self._f = open(self.samples_path, "rb")
            except OSError:
                raise SimError("cannot open samples %s" % self.samples_path) from None
        if self.mounted is None:
            self._mount()
        if self.heap_ms:
            self.heap_line()
        if self.config is not None:  # as if the host had written it over BLE
            with open(self.config, "rb") as src:
                data = src.read()
            with open(self.fs_root + "/config.bin", "wb") as dst:
                dst.write(data)
        self.set_power("active")

    def _mount(self):
        bd = FileBlockDevice(self.image, DEFAULT_BLOCK_SIZE, self.block_count)
        self._bd = bd
        # The stubs type block devices as an abstract class; ours follows the protocol.
        try:
            fs = vfs.VfsLfs2(bd)  # type: ignore[abstract, arg-type]
        except OSError:
            if not self._blank(bd):
                raise SimError("flash image %s is not a LittleFS image" % self.image) from None
            vfs.VfsLfs2.mkfs(bd)  # type: ignore[arg-type]
            fs = vfs.VfsLfs2(bd)  # type: ignore[abstract, arg-type]
        vfs.mount(fs, FLASH)

    def _blank(self, bd):
        buf = bytearray(DEFAULT_BLOCK_SIZE)
        for b in (0, 1):
            bd.readblocks(b, buf)
            for x in buf:
                if x != 0xFF:
                    return False
        return True

    def stop(self):
        self.motor(0)
        if self.mounted is None:
            try:
                vfs.umount(FLASH)
            except OSError:
                pass
        if self._bd is not None:
            self._bd.close()
        if self._f is not None:
            self._f.close()

    # -- clock -------------------------------------------------------------------------

    def now_ms(self):
        return self.consumed * 1000000 // self.fs_mhz

    def wall_time(self):
        """Seconds since 2000-01-01 UTC on the sample clock; 0 until set (``--wall`` or
        :meth:`set_wall_time`, which the host's sync does)."""
        if self.wall0 is None:
            return 0
        return self.wall0 + self.now_ms() // 1000

    def set_wall_time(self, seconds):
        self.wall0 = seconds - self.now_ms() // 1000

    # -- IMU ---------------------------------------------------------------------------

    def imu_rate_hz(self, wanted_hz):
        """The rate the IMU runs at: the trace's, whatever the config asks for."""
        return self.fs_mhz / 1000

    async def read_batch(self, buf):
        """Fill ``buf`` (array('i'), 6 ints per sample) with the next batch; returns the
        number of samples, 0 when the trace is over (the sim board's power-off)."""
        if self.speed:
            self.set_power("light")
            await asyncio.sleep_ms(int(self.batch * 1000000 // self.fs_mhz // self.speed))
        else:
            await asyncio.sleep_ms(0)  # let the other tasks run between batches
        self.set_power("active")
        want = self.batch if len(buf) >= 6 * self.batch else len(buf) // 6
        if self.samples_path is None:
            n = self._still(buf, want)
        else:
            mv = memoryview(buf)
            got = self._f.readinto(mv[: 6 * want]) if self._f is not None else 0
            n = (got or 0) // 24
        self.consumed += n
        if self.heap_ms:
            self._heap_check()
        return n

    def _still(self, buf, n):
        """``n`` samples of a still, upright wearer: gravity on +z, noise of +-10 mm/s^2
        and +-2 mrad/s from a small LCG (deterministic, small ints: no allocation)."""
        s = self._noise
        k = 0
        end = 6 * n
        while k < end:
            s = (s * 75 + 74) % 65537
            j = k % 6
            if j < 3:
                buf[k] = (G_MM if j == 2 else 0) + s % 21 - 10
            else:
                buf[k] = s % 5 - 2
            k += 1
        self._noise = s
        return n

    def _heap_check(self):
        a = gc.mem_alloc()
        if a > self.heap_raw_max:
            self.heap_raw_max = a
        if self.now_ms() >= self._next_heap:
            self._next_heap += self.heap_ms
            self.heap_line()

    def heap_line(self):
        """Collect, then print ``H t_ms alloc free``."""
        gc.collect()
        a = gc.mem_alloc()
        if a > self.heap_max:
            self.heap_max = a
        self.out.write("H %d %d %d\n" % (self.now_ms(), a, gc.mem_free()))

    # -- motor, button, battery --------------------------------------------------------

    def motor(self, duty, t_ms=None):
        if self.fault_ms is not None and self.now_ms() >= self.fault_ms:
            self.fault_ms = None
            raise OSError(5, "sim: motor driver fault")
        if duty != self._duty:
            self._duty = duty
            self.out.write("M %d %d\n" % (self.now_ms() if t_ms is None else t_ms, duty))

    def button_pressed(self):
        """Time (ms) of the next scripted press whose time has come, once; else None."""
        if self._pressed < len(self.buttons) and self.buttons[self._pressed] <= self.now_ms():
            self._pressed += 1
            return self.buttons[self._pressed - 1]
        return None

    def battery_mv(self):
        now = self.now_ms()
        mv = self.battery[0][1]
        for t, v in self.battery:
            if t <= now:
                mv = v
        return mv

    # -- power -------------------------------------------------------------------------

    def set_power(self, state):
        if state != self._power:
            self._power = state
            self.out.write("P %d %s\n" % (self.now_ms(), state))

    def deep_sleep(self):
        """Deep sleep until motion: recorded; the sim wakes at the next batch."""
        self.set_power("deep")

    def feed_watchdog(self):
        pass

    def report(self, out=None):
        """End of run: the ``M`` / ``P`` lines were streamed as they happened; with the
        heap diagnostic on, a last ``H`` line and the ``HP`` summary."""
        if not self.heap_ms:
            return
        out = out or self.out
        self.heap_line()
        try:
            import micropython

            peak = micropython.mem_peak()  # type: ignore[attr-defined]  # not in every port
        except (ImportError, AttributeError):
            peak = -1
        out.write("HP %d %d %d\n" % (self.heap_max, self.heap_raw_max, peak))


def from_args(argv):
    """A board from ``[--samples F --fs HZ] (--image F | --mounted DIR) [--speed N]
    [--config F] [--fault MS] [--heap-every MS] [--wall S] [--button MS]...
    [--battery MS:MV]...``. ``--wall``: the wall clock at boot, seconds since 2000-01-01.

    No ``--samples``: the still IMU at ``--fs`` (default 52 Hz), ``--speed`` default 1
    (with samples: 0). ``--mounted DIR``: the flash filesystem is already mounted at DIR
    (``/`` on the virtual board) instead of an ``--image`` to mount at ``/flash``."""
    opts = {"samples": None, "fs": None, "image": None, "speed": None, "config": None,
            "fault": None, "heap-every": None, "mounted": None, "wall": None}  # fmt: skip
    buttons = []
    battery = []
    i = 0
    while i < len(argv):
        k = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        if v is None or not k.startswith("--"):
            raise SimError("bad sim board arguments: %s" % " ".join(argv))
        k = k[2:]
        if k == "button":
            buttons.append(int(v))
        elif k == "battery":
            t, mv = v.split(":")
            battery.append((int(t), int(mv)))
        elif k in opts:
            opts[k] = v
        else:
            raise SimError("unknown sim board option --%s" % k)
        i += 2
    samples = opts["samples"]
    if samples is not None and opts["fs"] is None:
        raise SimError("sim board needs --fs with --samples")
    if (opts["image"] is None) == (opts["mounted"] is None):
        raise SimError("sim board needs --image or --mounted (one of them)")
    fs = float(opts["fs"] or STILL_HZ)
    speed = float(opts["speed"] or 0) if opts["speed"] is not None else (
        0.0 if samples is not None else 1.0)  # fmt: skip
    heap = opts["heap-every"]
    board = Board(samples, fs, opts["image"], speed,
                  buttons, battery or [(0, 4000)], config=opts["config"],
                  fault_ms=None if opts["fault"] is None else int(opts["fault"]),
                  heap_ms=None if heap is None else int(heap),
                  mounted=opts["mounted"])  # fmt: skip
    if opts["wall"] is not None:  # the wall clock at boot (as if synced earlier)
        board.wall0 = int(opts["wall"])
    return board
