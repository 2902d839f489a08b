"""A virtual board on a pseudo-terminal: the MicroPython unix port behind a serial port
that behaves like a real board's, so unmodified ``mpremote connect <port> ...`` works.

::

    with VirtualBoard("flash.img") as board:        # board.port: "/dev/pts/7"
        subprocess.run(["mpremote", "connect", board.port, "ls"])

The port is one pty (raw, no echo, like a USB CDC port); behind it, the ``micropython``
executable runs on a second pty with :file:`runtime/board_boot.py` as its boot sequence:
the LittleFS image (the sim board's flash, ``retrostep_device.blockdev`` defaults: 1 MB)
is the root filesystem, a host directory is mounted at ``/host``, ``/boot.py`` and
``/main.py`` run, then the REPL. The unix port already speaks the friendly REPL, the
raw REPL and raw-paste mode; this class adds what it lacks, forwarding bytes both ways
in a background thread:

* soft reset: the interpreter exits (Ctrl-D at an empty prompt, ``sys.exit()``,
  ``machine.soft_reset()``, SystemExit from main.py) and is started again, with
  ``MPY: soft reboot`` on the wire as a real port prints. After a soft reset from the
  raw REPL main.py is skipped and the board comes back in the raw REPL (the
  ``raw REPL; CTRL-B to exit`` banner), which is what mpremote's soft-reset handshake
  expects; after any other, main.py runs and the friendly REPL follows.
* hard reset: ``machine.reset()`` (what ``mpremote reset`` calls) or :meth:`hard_reset`
  kill the interpreter (SIGKILL: a power cut, which LittleFS is made to survive) and
  boot it again, main.py included. An interpreter that dies any other way reboots the
  same way, after a line saying so.
* Ctrl-C: the interpreter's pty sends SIGINT for it while code runs (KeyboardInterrupt
  in main.py, then the friendly REPL) and passes it as a byte to the REPL otherwise.
  Input is held back while the interpreter could not take a Ctrl-C safely (starting,
  mounting, between the end of main.py and the REPL) and delivered afterwards.

With ``radio=True`` the board has the simulated radio (``docs/simulated-radio.md``): a
:class:`~retrostep.radio.BackgroundSimRadio` started with the board and published (the
runtime file) so that ``retrostep scan|sync|config --sim`` in another process find it;
the interpreter imports its ``bluetooth`` stand-in at boot. The radio outlives every
interpreter: a soft or hard reset is a new process taking over the peripheral, which
drops the connected central and starts from a powered-off radio, as an ESP32 reset does.

One interpreter owns the image at a time: the next one starts only after the previous
one is gone. Output nobody reads is kept up to a bound, then dropped (a UART nobody
listens to); everything sent on the wire is also kept (bounded) for :meth:`wait_for`.

POSIX only (``os.openpty``, ``os.posix_spawn`` with ``setsid``); tested on Linux.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import signal
import tempfile
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .errors import RuntimeUnavailable
from .runtime.micropython_port import micropython_executable
from .sim import SimError, firmware_dir

BOOT_SCRIPT = Path(__file__).with_name("runtime") / "board_boot.py"
# The board's flash: retrostep_device.blockdev's defaults (DEFAULT_BLOCK_SIZE 4 KB sectors
# x DEFAULT_BLOCK_COUNT), the size board_boot.py's FileBlockDevice gives the image.
FLASH_BYTES = 4096 * 256
SAMPLES_NAME = "imu.i32"  # the trace's int32 samples, at /host/imu.i32 on the board

SOFT_REBOOT = b"MPY: soft reboot\r\n"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER = b'Type "help()" for more information.'
PROMPT = b">>> "
CTRL_A, CTRL_C, CTRL_D = b"\x01", b"\x03", b"\x04"

_MARK = b"\x1b_retrostep-board:"  # board_boot.py's markers: ESC _ ... ESC \
_MARK_END = b"\x1b\\"

OUT_LIMIT = 256 * 1024  # unread output kept for the port, then the oldest is dropped
IN_LIMIT = 64 * 1024  # held input; beyond it the port is not read (flow control)
LOG_LIMIT = 4 * 1024 * 1024  # wire transcript kept for wait_for()
BOOT_TIMEOUT_S = 30.0
STOP_GRACE_S = 3.0  # a stopping interpreter gets this long to exit by itself


class VirtualBoard:
    """The virtual board. :meth:`start` returns the port's path; :meth:`stop` ends it.

    ``image``: the LittleFS image (the board's whole filesystem), created blank if
    missing; None: a temporary image, deleted by :meth:`stop`. ``trace``: a trace file
    (format v1) the sim board's IMU replays at ``speed`` times real time (0: as fast as
    possible); without one the IMU is a still, upright wearer, in real time. ``link``: a
    symlink to the port, made by :meth:`start` and removed by :meth:`stop`.
    ``main_args``: more sim board arguments for main.py (``--button MS`` ...).
    ``heap``: the unix port's heap size (``"256k"``); None: the port's default.
    ``radio``: run the simulated radio (:attr:`radio` is then the
    :class:`~retrostep.radio.SimRadio` while started); ``publish``: where it is published
    (True: the default runtime file, or a path; False: not at all); ``radio_name``
    seeds the board's Bluetooth address (default: from the image's file name, so a
    board keeps its address across runs).
    """

    def __init__(
        self, image: str | os.PathLike | None = None, *, trace: str | os.PathLike | None = None,
        speed: float = 1.0, link: str | os.PathLike | None = None,
        main_args: tuple[str, ...] = (), heap: str | None = None, radio: bool = False,
        publish: bool | str | os.PathLike = True, radio_name: str | None = None,
    ) -> None:  # fmt: skip
        if speed < 0 or (trace is None and speed == 0):
            raise SimError("speed must be > 0 (0, as fast as possible, needs a trace)")
        self._image = Path(image).absolute() if image is not None else None
        self.image: Path | None = self._image  # the image in use (a temporary one too)
        self.trace = Path(trace) if trace is not None else None
        self.speed = float(speed)
        self.link = Path(link).absolute() if link is not None else None
        self.main_args = tuple(main_args)
        self.heap = heap
        self.use_radio = radio
        self.publish = publish
        self.radio_name = radio_name or (
            f"board-{self._image.name}" if self._image is not None else "retrostep-sim")
        self.radio = None  # the SimRadio while started (radio=True)
        self._radio_owner = None  # its BackgroundSimRadio
        self.port: str | None = None
        self.host_dir: Path | None = None  # mounted at /host on the board
        self._tmp: Path | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Condition()
        self._cmds: deque[str] = deque()
        self._wake_r = self._wake_w = -1
        self._master = self._slave = -1  # the port
        self._cmd: list[str] = []  # micropython ... board_boot.py IMAGE HOSTDIR
        self._args: list[str] = []  # main.py's arguments (the sim board's)
        self._env: dict[str, str] = {}
        self._clear()

    def _clear(self) -> None:
        """The state of a board that has not started yet."""
        self._cmds.clear()
        self._child: _Child | None = None
        self._phase = "down"
        self._boot_kind = "hard"
        self._mode = "friendly"  # the REPL the interpreter is in: friendly or raw
        self._after_banner = "repl"  # what follows the REPL banner: repl, soft, fail, stop
        self._banner = bytearray()  # interpreter output after a marker, until the prompt
        self._pending = b""  # interpreter output that may be the start of a marker
        self._tail = b""  # the end of the forwarded output (banners across reads)
        self._out = bytearray()  # for the port, unwritten
        self._to_child = bytearray()
        self._held = bytearray()  # input waiting until the interpreter can take it
        self._log = bytearray()
        self._log_base = 0  # bytes dropped from the front of _log
        self._boots = 0  # boots that reached user code
        self._fails = 0  # boots that failed (the image did not mount ...)
        self._failure = ""  # why the last one failed
        self._reset_asked = False  # the interpreter is being killed for a hard reset
        self._stopping = False
        self._stop_deadline = 0.0
        self._exit_deadline = 0.0  # a soft reset's exit, then it is killed
        self._crashed: BaseException | None = None
        self.dropped_output = 0  # bytes of output nobody read, dropped

    # -- public ------------------------------------------------------------------------

    def start(self, timeout: float = BOOT_TIMEOUT_S) -> str:
        """Create the port, boot the board; returns the port's path once the image is
        mounted and user code starts (SimError if the board cannot boot)."""
        if self._thread is not None:
            raise SimError("the virtual board is already started")
        exe = micropython_executable()
        if not os.access(exe, os.X_OK):
            raise RuntimeUnavailable(f"cannot run the MicroPython unix port {exe}")
        fw = firmware_dir()
        self._clear()
        self._tmp = Path(tempfile.mkdtemp(prefix="retrostep-board-"))
        try:
            if self.use_radio:
                self._start_radio()
            self._prepare(exe, fw)
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)  # a USB CDC port: bytes as they are, no echo
            os.set_blocking(self._master, False)
            self.port = os.ttyname(self._slave)
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            if self.link is not None:
                self._make_link()
            self._thread = threading.Thread(target=self._run, name="virtual-board", daemon=True)
            self._thread.start()
            self._wait_boot(1, 0, timeout)
        except BaseException:
            self.stop()
            raise
        return self.port

    def stop(self) -> None:
        """Stop the interpreter (it is interrupted and asked to exit, killed if it does
        not within a few seconds), close the port, remove the link and temporary files."""
        if self._thread is not None:
            self._command("stop")
            self._thread.join()
            self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1
        if self.link is not None and self.port is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.port:
                    os.unlink(self.link)
        if self._radio_owner is not None:  # after the interpreter: it powers off first
            self._radio_owner.stop()
            self._radio_owner = None
            self.radio = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def hard_reset(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        """Press the reset button: the interpreter is killed (a power cut) and the board
        boots again (main.py runs); returns when user code starts."""
        if self._thread is None:
            raise SimError("the virtual board is not started")
        with self._lock:
            boots, fails = self._boots, self._fails
        self._command("hard_reset")
        self._wait_boot(boots + 1, fails, timeout)

    def check(self) -> None:
        """SimError if the forwarding thread has failed (the board is dead)."""
        with self._lock:
            if self._crashed is not None:
                raise SimError(f"the virtual board failed: {self._crashed!r}")

    @property
    def boots(self) -> int:
        """How many times the board has booted (reached boot.py) since :meth:`start`."""
        with self._lock:
            return self._boots

    def output_mark(self) -> int:
        """A position in the wire transcript, for :meth:`wait_for`."""
        with self._lock:
            return self._log_base + len(self._log)

    def output(self, since: int = 0) -> bytes:
        """Everything the board sent on the wire since ``since`` (what is still kept)."""
        with self._lock:
            return bytes(self._log[max(0, since - self._log_base) :])

    def wait_for(self, needle: bytes, timeout: float = 10.0, since: int = 0) -> int:
        """Wait until ``needle`` is sent on the wire after position ``since``; returns the
        position just after it. TimeoutError if it is not sent in time."""
        end = time.monotonic() + timeout
        with self._lock:
            while True:
                start = max(0, since - self._log_base)
                i = self._log.find(needle, start)
                if i >= 0:
                    return self._log_base + i + len(needle)
                if self._crashed is not None:
                    raise SimError(f"the virtual board failed: {self._crashed!r}")
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{needle!r} not seen on the virtual board's console")
                self._lock.wait(left)

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- setup -------------------------------------------------------------------------

    def _prepare(self, exe: str, fw: Path) -> None:
        assert self._tmp is not None
        self.host_dir = self._tmp / "host"
        self.host_dir.mkdir()
        if self._image is None:
            self.image = self._tmp / "flash.img"  # deleted with _tmp
        else:
            self.image = img = self._image
            if img.exists() and not img.is_file():
                raise SimError(f"flash image {img} is not a file")
            if img.exists() and not os.access(img, os.R_OK | os.W_OK):
                raise SimError(f"flash image {img} cannot be read and written")
            size = img.stat().st_size if img.exists() else 0
            if size not in (0, FLASH_BYTES):  # never extend (modify) someone else's file
                raise SimError(f"flash image {img} is {size} bytes: the board's flash is "
                               f"{FLASH_BYTES} (an empty file is a blank flash)")  # fmt: skip
            if not img.exists() and not img.parent.is_dir():
                raise SimError(f"cannot create flash image {img}: no directory {img.parent}")
        args = ["--mounted", "/", "--speed", repr(self.speed)]
        if self.trace is not None:
            from .pipeline_io import trace_to_int_samples
            from .trace import read_trace

            if not self.trace.is_file():
                raise SimError(f"trace not found: {self.trace}")
            tr = read_trace(self.trace)
            trace_to_int_samples(tr).astype("<i4").tofile(self.host_dir / SAMPLES_NAME)
            args += ["--samples", "/host/" + SAMPLES_NAME, "--fs", repr(float(tr.fs_hz))]
        cmd = [exe]
        if self.heap is not None:
            cmd += ["-X", f"heapsize={self.heap}"]
        cmd += ["-i", str(BOOT_SCRIPT), str(self.image), str(self.host_dir)]
        self._cmd = cmd
        self._args = args + list(self.main_args)
        self._env = dict(os.environ, MICROPYPATH=str(fw))
        if self.radio is not None:  # RETROSTEP_RADIO, and the stand-in on MICROPYPATH
            self._env.update(self.radio.mp_env(str(fw)))

    def _start_radio(self) -> None:
        from .radio import BackgroundSimRadio

        publish = self.publish
        if publish is not True and publish is not False:
            publish = Path(publish)
        owner = BackgroundSimRadio(name=self.radio_name, publish=publish)
        self.radio = owner.start()
        self._radio_owner = owner

    def _make_link(self) -> None:
        assert self.link is not None and self.port is not None
        if self.link.is_symlink():
            self.link.unlink()  # a stale link from an earlier board
        elif self.link.exists():
            raise SimError(f"{self.link} exists and is not a symlink: not replacing it")
        try:
            self.link.symlink_to(self.port)
        except OSError as e:
            raise SimError(f"cannot create the link {self.link}: {e.strerror}") from None

    def _command(self, what: str) -> None:
        with self._lock:
            self._cmds.append(what)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def _wait_boot(self, boots: int, fails: int, timeout: float) -> None:
        """Until the board has booted ``boots`` times (SimError at a failed boot)."""
        end = time.monotonic() + timeout
        with self._lock:
            while self._boots < boots:
                if self._fails > fails:
                    raise SimError(self._failure)
                if self._crashed is not None:
                    raise SimError(f"the virtual board failed: {self._crashed!r}")
                if self._thread is None or not self._thread.is_alive():
                    raise SimError("the virtual board stopped")
                left = end - time.monotonic()
                if left <= 0:
                    tail = bytes(self._log[-300:]).decode("utf-8", "replace").strip()
                    raise SimError(f"the virtual board did not boot within {timeout:g} s"
                                   + (f"; its console: {tail}" if tail else ""))  # fmt: skip
                self._lock.wait(min(left, 0.5))

    # -- the forwarding loop (background thread) ---------------------------------------

    def _run(self) -> None:
        try:
            self._spawn("hard")
            self._loop()
        except BaseException as e:  # reported by the waiting calls; never silently
            with self._lock:
                self._crashed = e
                self._lock.notify_all()
            raise
        finally:
            if self._child is not None:
                self._child.kill()
                self._child.close()
                self._child = None

    def _loop(self) -> None:
        while True:
            with self._lock:
                cmds = list(self._cmds)
                self._cmds.clear()
            for c in cmds:
                self._do(c)
            if self._stopping and self._child is None:
                return
            if self._child is not None and (self._stopping or self._phase == "exiting"):
                late = self._stop_deadline if self._stopping else self._exit_deadline
                if time.monotonic() > late:
                    self._child.kill()  # it did not exit by itself in time
            rl, wl = [self._wake_r], []
            if len(self._held) + len(self._to_child) < IN_LIMIT:
                rl.append(self._master)
            if self._out:
                wl.append(self._master)
            child = self._child
            if child is not None:
                rl.append(child.fd)
                if self._to_child:
                    wl.append(child.fd)
            r, w, _ = select.select(rl, wl, [], 0.2)
            if self._wake_r in r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)
            if child is not None and child.fd in r:
                self._read_child(child)
            if self._master in r:
                self._read_port()
            if self._master in w:
                self._write_port()
            if self._child is child and child is not None and child.fd in w:
                self._write_child(child)

    def _do(self, cmd: str) -> None:
        if cmd == "stop" and not self._stopping:
            self._stopping = True
            self._stop_deadline = time.monotonic() + STOP_GRACE_S
            if self._child is None:
                return
            # Interrupt what runs, then Ctrl-D at the prompt: the interpreter exits by
            # itself (at the REPL it is taken at once; in main.py the boot script's REPL
            # marker brings it, see _banner_done).
            self._held.clear()
            self._after_banner = "stop"
            if self._phase == "boot":
                self._to_child += CTRL_C
            elif self._phase == "repl":
                self._to_child += CTRL_C + CTRL_D
        elif cmd == "hard_reset" and not self._stopping:
            if self._child is not None:
                self._reset_asked = True
                self._child.kill()  # its exit reboots the board (_child_exited)
            else:
                self._spawn("hard")

    def _spawn(self, kind: str) -> None:
        """Start an interpreter: ``kind`` hard (power on, reset), soft (soft reset from
        the friendly REPL or main.py), raw (soft reset from the raw REPL: no main.py,
        back to the raw REPL) or repl (no main.py, the friendly REPL)."""
        self._child = _Child(self._cmd + [kind] + self._args, self._env)
        self._phase = "spawn"
        self._boot_kind = kind
        self._mode = "raw" if kind == "raw" else "friendly"
        self._after_banner = "repl"
        self._reset_asked = False
        self._banner.clear()
        self._pending = b""
        self._tail = b""
        self._to_child.clear()

    def _read_child(self, child: _Child) -> None:
        try:
            data = os.read(child.fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if data:
            self._from_child(data)
            return
        # EOF (EIO on Linux): the interpreter is gone.
        status = child.wait()
        child.close()
        self._child = None
        self._child_exited(status)

    def _child_exited(self, status: int) -> None:
        if self._pending:  # an unfinished marker: it was output after all
            self._emit(self._pending)
            self._pending = b""
        phase = self._phase
        if self._stopping:
            return
        if self._reset_asked:
            self._spawn("hard")
        elif phase == "halted":  # a failed boot: down until a hard reset
            return
        elif phase == "exiting":  # the soft reset board_boot.py asked for
            self._emit_soft_reboot()
            self._spawn("raw" if self._boot_kind == "raw" else "soft")
        elif phase == "spawn":  # gone before its boot script ran: it cannot boot
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"status {os.WEXITSTATUS(status)}")  # fmt: skip
            self._fail(f"the MicroPython unix port exited at start ({how})")
        elif os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT:
            # A Ctrl-C in the instant between two programs (main.py over, the REPL not
            # reading yet), where the unix port has no handler for it: the user wanted
            # the REPL, so the board comes back there, without main.py.
            self._send(b"\r\nvirtual board: Ctrl-C between two programs; "
                       b"restarting without main.py\r\n")  # fmt: skip
            self._spawn("repl")
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig != signal.SIGKILL:  # SIGKILL is a reset (machine.reset()); else a crash
                name = signal.Signals(sig).name if sig in signal.valid_signals() else sig
                self._send(f"\r\nvirtual board: the interpreter died ({name}); "
                           "rebooting\r\n".encode())  # fmt: skip
            self._spawn("hard")
        else:  # a normal exit is a soft reset; from the raw REPL it comes back there
            self._emit_soft_reboot()
            self._spawn("raw" if self._mode == "raw" else "soft")

    def _emit_soft_reboot(self) -> None:
        self._phase = "down"
        self._send(SOFT_REBOOT)

    def _fail(self, why: str) -> None:
        with self._lock:
            self._fails += 1
            self._failure = why
            self._lock.notify_all()
        self._send(f"\r\nvirtual board: {why}\r\n".encode())
        self._phase = "halted"
        if self._child is not None:
            self._child.kill()

    # -- interpreter output ------------------------------------------------------------

    def _from_child(self, data: bytes) -> None:
        """Split off board_boot.py's markers, pass the rest on."""
        buf = self._pending + data
        self._pending = b""
        while buf:
            i = buf.find(_MARK)
            if i < 0:
                keep = _partial_suffix(buf, _MARK)
                self._emit(buf[: len(buf) - keep])
                self._pending = buf[len(buf) - keep :]
                return
            self._emit(buf[:i])
            j = buf.find(_MARK_END, i + len(_MARK))
            if j < 0:
                self._pending = buf[i:]
                return
            self._marker(buf[i + len(_MARK) : j].decode("utf-8", "replace"))
            buf = buf[j + len(_MARK_END) :]

    def _marker(self, what: str) -> None:
        if what == "alive":
            self._phase = "boot"
            self._release_input()
            if self._stopping:  # stop() came while it started: interrupt main.py
                self._to_child += CTRL_C
            with self._lock:
                self._boots += 1
                self._lock.notify_all()
        elif what in ("repl", "soft") or what.startswith("fail:"):
            self._phase = "banner"
            self._banner.clear()
            if what.startswith("fail:"):
                self._fail(what[5:])
            elif self._after_banner != "stop":
                self._after_banner = what

    def _emit(self, data: bytes) -> None:
        """Interpreter output, by phase: to the wire, or held while the REPL starts."""
        if not data:
            return
        phase = self._phase
        if phase in ("spawn", "boot", "repl"):
            self._send(data)
            if phase == "repl":
                self._track_mode(data)
        elif phase == "banner":
            self._banner += data
            i = self._banner.find(PROMPT)
            if i >= 0:
                self._banner_done(i + len(PROMPT))
        elif phase == "rawenter":
            self._banner += data
            self._raw_entered()
        # exiting, halted: the interpreter's last words are not the board's

    def _banner_done(self, end: int) -> None:
        """The interpreter's REPL has printed its first prompt (``_banner[:end]``); what
        follows it answers input typed ahead while main.py ended."""
        then = self._after_banner
        if then == "repl" and self._mode == "friendly":
            data = bytes(self._banner)
            self._banner.clear()
            self._phase = "repl"
            self._send(data)
            self._track_mode(data)
            self._release_input()
        elif then == "repl":  # back to the raw REPL, as the soft reset found it
            del self._banner[:end]
            self._phase = "rawenter"
            self._to_child += CTRL_A
            self._raw_entered()
        else:  # soft reset or stop: leave through the REPL, a normal exit
            self._banner.clear()
            self._phase = "exiting"
            self._exit_deadline = time.monotonic() + STOP_GRACE_S
            self._to_child += CTRL_D

    def _raw_entered(self) -> None:
        i = self._banner.find(RAW_BANNER)
        if i < 0:
            return
        rest = bytes(self._banner[i:])
        self._banner.clear()
        self._phase = "repl"
        self._mode = "raw"
        self._send(rest)
        self._release_input()
        if self._stopping:
            self._to_child += CTRL_D

    def _track_mode(self, data: bytes) -> None:
        seen = self._tail + data
        raw = seen.rfind(RAW_BANNER)
        friendly = seen.rfind(FRIENDLY_BANNER)
        if raw >= 0 or friendly >= 0:
            self._mode = "raw" if raw > friendly else "friendly"
        self._tail = seen[-64:]

    def _release_input(self) -> None:
        self._to_child += self._held
        self._held.clear()

    # -- the port ----------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """To the wire: the port's buffer (bounded) and the transcript."""
        self._out += data
        if len(self._out) > OUT_LIMIT:
            cut = len(self._out) - OUT_LIMIT
            del self._out[:cut]
            self.dropped_output += cut
        with self._lock:
            self._log += data
            if len(self._log) > LOG_LIMIT:
                cut = len(self._log) - LOG_LIMIT
                del self._log[:cut]
                self._log_base += cut
            self._lock.notify_all()

    def _write_port(self) -> None:
        try:
            n = os.write(self._master, self._out)
        except BlockingIOError:
            return
        del self._out[:n]

    def _read_port(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        if self._stopping:
            return
        if self._phase in ("boot", "repl") and self._child is not None:
            self._to_child += data
        else:
            self._held += data

    def _write_child(self, child: _Child) -> None:
        try:
            n = os.write(child.fd, self._to_child)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            return  # the interpreter is going: its EOF comes next
        del self._to_child[:n]


def serve(board: VirtualBoard, announce: Callable[[str], None]) -> None:
    """Start ``board``, ``announce`` its port, run until SIGINT or SIGTERM, stop it
    (`retrostep sim board`)."""
    quit_ = threading.Event()
    old = {sig: signal.signal(sig, lambda *_: quit_.set()) for sig in _QUIT_SIGNALS}
    try:
        announce(board.start())
        while not quit_.wait(0.5):
            board.check()
    finally:
        board.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)


_QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _partial_suffix(buf: bytes, needle: bytes) -> int:
    """Length of the longest end of ``buf`` that is a proper start of ``needle``."""
    for k in range(min(len(needle) - 1, len(buf)), 0, -1):
        if buf.endswith(needle[:k]):
            return k
    return 0


class _Child:
    """The interpreter on its own pty, which is its controlling terminal: the pty turns
    Ctrl-C into SIGINT while code runs (the port's REPL switches the pty to raw mode
    while it reads a line, so there Ctrl-C stays a byte)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        try:
            attrs = termios.tcgetattr(slave)
            off = os.fpathconf(slave, "PC_VDISABLE")
            attrs[0] = 0  # iflag: no CR/NL mapping, no flow control
            attrs[1] = 0  # oflag: bytes out as the interpreter writes them
            attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8 | termios.CREAD
            attrs[3] = termios.ISIG | termios.NOFLSH  # only signals: no echo, no lines
            cc = attrs[6]
            cc[termios.VINTR] = CTRL_C
            for k in (termios.VQUIT, termios.VSUSP):  # Ctrl-\ and Ctrl-Z are just bytes
                cc[k] = bytes([off]) if isinstance(cc[k], bytes) else off
            cc[termios.VMIN], cc[termios.VTIME] = 1, 0
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            path = os.ttyname(slave)
            # A new session whose first terminal is opened in the child: the pty becomes
            # its controlling terminal, so Ctrl-C reaches it as SIGINT.
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, path, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ]
            self.pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.fd = master
        self.status: int | None = None

    def kill(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        if self.status is None:
            self.status = os.waitpid(self.pid, 0)[1]
        return self.status

    def close(self) -> None:
        if self.fd >= 0:
            self.kill()
            self.wait()
            os.close(self.fd)
            self.fd = -1
