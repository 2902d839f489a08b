"""One session with a MicroPython board over its serial REPL, on mpremote's transport.

mpremote's :class:`~mpremote.transport_serial.SerialTransport` is used as a library: it
speaks the raw REPL and raw-paste mode (flow-controlled, so big commands are safe at any
baud rate). On top of it this module adds what flashing needs and mpremote's command
line does not offer: a handshake with short timeouts that tells "not MicroPython" from
"no answer", a count of every byte sent, board-side helpers (SHA-256 listings, copies
between slots, atomic writes: :mod:`board_agent`), the soft reset that runs ``main.py``
while the console is watched, and every failure turned into a :class:`FlashError`.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from .errors import NotEnoughSpace, NotMicroPython, PortError, TransferError
from .ports import port_error_message

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
CHUNK = 2048  # file bytes per command (base64 in a raw-paste command: ~2.8 KB)
COPIES_PER_COMMAND = 8  # board-side copies batched into one command
AGENT = Path(__file__).with_name("board_agent.py")
IO_ERRORS = (TransportError, serial.SerialException, OSError, struct.error)

PROBE = """
import sys, os
def _rs_probe():
    im = sys.implementation
    r = {"name": im.name, "version": tuple(im.version[:3]), "mpy": getattr(im, "_mpy", None),
         "platform": sys.platform, "machine": getattr(im, "_machine", "")}
    try:
        s = os.statvfs("/")
        r["bsize"] = s[0]
        r["blocks"] = s[2]
        r["bfree"] = s[3]
    except (OSError, AttributeError):
        r["bsize"] = None
    try:
        import machine, binascii
        r["uid"] = binascii.hexlify(machine.unique_id()).decode()
    except (ImportError, AttributeError, OSError):
        r["uid"] = None
    for key, path in (("state", "/fw/state"), ("device", "/device.json")):
        try:
            with open(path) as f:
                r[key] = f.read()
        except OSError:
            r[key] = None
    try:
        import hashlib
        r["sha256"] = hasattr(hashlib, "sha256")
    except ImportError:
        r["sha256"] = False
    try:
        import deflate
        r["deflate"] = hasattr(deflate, "DeflateIO")
    except ImportError:
        r["deflate"] = False
    print(repr(r))
_rs_probe()
del _rs_probe
"""


def compact_source(src: str) -> str:
    """``src`` without comments and docstrings (fewer bytes on the wire; same code)."""
    tree = ast.parse(src)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            del body[0]
            if not body:
                body.append(ast.Pass())
    return ast.unparse(tree) + "\n"


class CountingSerial:
    """The pyserial port, counting the bytes written and read."""

    def __init__(self, ser):
        self._ser = ser
        self.sent = 0
        self.received = 0

    def write(self, data):
        n = self._ser.write(data)
        self.sent += len(data)
        return n

    def read(self, size=1):
        data = self._ser.read(size)
        self.received += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._ser, name)


@dataclass
class Probe:
    """What the board says about itself (one command, nothing changed)."""

    name: str
    version: tuple[int, ...]
    mpy: int | None
    platform: str
    machine: str
    bsize: int | None
    blocks: int | None
    bfree: int | None
    uid: str | None
    state: str | None  # /fw/state as text
    device: str | None  # /device.json as text
    sha256: bool
    deflate: bool  # deflate.DeflateIO: files can be sent compressed

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)

    @property
    def free_bytes(self) -> int | None:
        return None if self.bsize is None or self.bfree is None else self.bsize * self.bfree


class Connection:
    """A raw-REPL session with the board on ``port``."""

    def __init__(self, port: str):
        self.port = port
        try:
            self.t = SerialTransport(port, baudrate=115200)
        except TransportError as e:  # mpremote hides the reason: ask the OS again
            raise PortError(f"cannot open {port}: {e}") from None
        except (serial.SerialException, OSError) as e:
            raise PortError(port_error_message(port, e)) from None
        self.ser = CountingSerial(self.t.serial)
        self.t.serial = self.ser
        # mpremote reads fixed-size answers (the raw-paste header) with this timeout: room
        # for a busy board; reads here only take what has arrived (in_waiting).
        self.ser.timeout = 2.0
        self.agent_loaded = False
        self.closed = False

    # -- low level ---------------------------------------------------------------------

    @property
    def bytes_sent(self) -> int:
        return self.ser.sent

    def _read_for(self, seconds: float, until: bytes | None = None) -> bytes:
        data = b""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                waiting = self.ser.in_waiting
                chunk = self.ser.read(waiting) if waiting else b""
            except IO_ERRORS as e:
                raise TransferError(f"lost the connection to {self.port}: {e}") from None
            if not chunk:
                time.sleep(0.005)
            else:
                data += chunk
                if until is not None and data.endswith(until):
                    break
        return data

    def _write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
        except IO_ERRORS as e:
            raise TransferError(f"lost the connection to {self.port}: {e}") from None

    def enter_raw_repl(self, attempts: int = 3) -> None:
        """Interrupt whatever runs and enter the raw REPL (no reset); tell the failures
        apart: silence, an echo of what was sent, or something else talking."""
        heard = b""
        for _ in range(attempts):
            self._write(b"\r\x03\x03")  # Ctrl-C twice: stop a running program
            heard += self._read_for(0.05)
            self._write(b"\r\x01")  # Ctrl-A: raw REPL
            got = self._read_for(1.5, until=RAW_BANNER)
            heard += got
            if got.endswith(RAW_BANNER):
                # The board answers; let mpremote enter once more its own way (it stops
                # before the ">" prompt that its exec then waits for).
                try:
                    self.t.enter_raw_repl(soft_reset=False, timeout_overall=5)
                except IO_ERRORS as e:
                    raise TransferError(f"lost the connection to {self.port}: {e}") from None
                return
        self.t.in_raw_repl = False
        if not heard:
            raise NotMicroPython(
                f"no answer on {self.port}: nothing replied to Ctrl-C / Ctrl-A. Is it the "
                "board's port, is MicroPython installed, is the board powered?")
        sent = b"\r\x03\x03\r\x01"
        if all(c in sent for c in heard):
            raise NotMicroPython(f"{self.port} echoes what is sent and nothing else: not a "
                                 "MicroPython board (a loopback adapter or a bare terminal?)")
        sample = heard.strip(sent)[:60]
        raise NotMicroPython(f"{self.port} answers, but not as a MicroPython REPL (it sent "
                             f"{sample!r}...): is MicroPython installed on the board?")

    def exec(self, code: str, what: str) -> bytes:
        """Run ``code`` in the raw REPL; its stdout. Board-side exceptions and a broken
        connection become FlashErrors naming ``what`` was being done."""
        try:
            return self.t.exec(code)
        except TransportExecError as e:
            out = e.error_output.strip().splitlines()
            last = out[-1] if out else "error"
            if "ENOSPC" in last or "28" in last.split()[-1:]:
                raise NotEnoughSpace(f"the board's filesystem is full ({what})") from None
            raise TransferError(f"the board failed {what}: {last}") from None
        except IO_ERRORS as e:
            raise TransferError(f"lost the connection to {self.port} {what}: {e}") from None

    # -- what flashing needs -------------------------------------------------------------

    def probe(self) -> Probe:
        out = self.exec(compact_source(PROBE), "describing itself")
        try:
            d = ast.literal_eval(out.decode().strip().splitlines()[-1])
        except (ValueError, SyntaxError, IndexError, UnicodeDecodeError) as e:
            raise NotMicroPython(f"unexpected answer from {self.port}: {out[:80]!r}") from e
        return Probe(
            d["name"], tuple(d["version"]), d.get("mpy"), d["platform"], d.get("machine", ""),
            d.get("bsize"), d.get("blocks"), d.get("bfree"), d.get("uid"), d.get("state"),
            d.get("device"), bool(d.get("sha256")), bool(d.get("deflate")))

    def load_agent(self) -> None:
        if not self.agent_loaded:
            self.exec(compact_source(AGENT.read_text()), "loading the flash helpers")
            self.agent_loaded = True

    def listings(self, dirs: dict[str, str], files: dict[str, list[str]]
                 ) -> dict[str, dict[str, tuple[int, str]]]:  # fmt: skip
        """Size and SHA-256 (computed on the board) of every file under each directory of
        ``dirs`` (tag -> path) and of the files of ``files`` (tag -> paths)."""
        self.load_agent()
        cmd = "".join(f"_rs_list({tag!r}, {d!r})\n" for tag, d in dirs.items())
        cmd += "".join(f"_rs_list_files({tag!r}, {ps!r})\n" for tag, ps in files.items())
        out = self.exec(cmd, "hashing its files")
        res: dict[str, dict[str, tuple[int, str]]] = {t: {} for t in [*dirs, *files]}
        for line in out.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[0] == "F":
                res[parts[1]][parts[2]] = (int(parts[3]), parts[4])
        return res

    def read_file(self, path: str) -> bytes | None:
        self.load_agent()
        out = self.exec(f"_rs_read({path!r})", f"reading {path}").decode().split()
        if len(out) != 2 or out[0] != "R":
            raise TransferError(f"unexpected answer reading {path}: {out!r}")
        return None if out[1] == "-" else b"" if out[1] == "=" else bytes.fromhex(out[1])

    def remove(self, paths: list[str]) -> None:
        if paths:
            self.load_agent()
            self.exec("".join(f"_rs_rm({p!r})\n" for p in paths), "removing old files")

    def copy(self, pairs: list[tuple[str, str]]) -> None:
        """Copy files on the board (``(src, dst)`` pairs), a few per command."""
        self.load_agent()
        for i in range(0, len(pairs), COPIES_PER_COMMAND):
            part = pairs[i : i + COPIES_PER_COMMAND]
            self.exec("".join(f"_rs_copy({s!r},{d!r})\n" for s, d in part),
                      f"copying {part[0][0]}...")  # fmt: skip

    def write_file(self, path: str, data: bytes, progress: Callable[[int], None] | None = None,
                   deflated: bytes | None = None, wbits: int = 10) -> None:  # fmt: skip
        """Stream ``data`` into ``path`` (its directories made), ``CHUNK`` bytes a
        command; ``progress(n)`` after each chunk with the bytes just sent. With
        ``deflated`` (``data`` as raw deflate, window ``wbits``) that is sent instead,
        to ``path.z``, and inflated on the board."""
        self.load_agent()
        wire = data if deflated is None else deflated
        dest = path if deflated is None else path + ".z"
        self.exec(f"_rs_open({dest!r})", f"creating {dest}")
        for i in range(0, len(wire), CHUNK):
            chunk = wire[i : i + CHUNK]
            self.exec(f"_rs_w({base64.b64encode(chunk).decode()!r})", f"writing {dest}")
            if progress:
                progress(len(chunk))
        self.exec("_rs_close()", f"closing {dest}")
        if deflated is not None:
            self.exec(f"_rs_inflate({dest!r}, {path!r}, {wbits})", f"inflating {path}")

    def put_atomic(self, path: str, data: bytes) -> None:
        """Write a small file whole: a temporary file, its hash checked, a rename."""
        self.load_agent()
        sha = hashlib.sha256(data).hexdigest()
        self.exec(f"_rs_put({path!r}, {base64.b64encode(data).decode()!r}, {sha!r})",
                  f"writing {path}")  # fmt: skip

    def soft_reset_and_watch(self, done: Callable[[str], bool], timeout: float,
                             echo: Callable[[str], None] | None = None,
                             ) -> tuple[str | None, list[str]]:  # fmt: skip
        """Soft-reset from the friendly REPL (the board runs boot.py, then main.py) and
        read its console until ``done(line)`` (that line is returned with every line
        seen) or ``timeout`` s pass (None)."""
        self._write(b"\r\x02")  # Ctrl-B: friendly REPL (main.py runs only from there)
        self._read_for(0.1)
        self.t.in_raw_repl = False
        self.agent_loaded = False  # the reset clears the REPL's globals
        self._write(b"\x04")  # Ctrl-D: soft reset
        lines: list[str] = []
        buf = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            buf += self._read_for(0.1)
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").rstrip("\r")
                lines.append(line)
                if echo:
                    echo(line)
                if done(line):
                    return line, lines
        return None, lines

    def close(self, restart: bool = True) -> None:
        """End the session. ``restart``: if the board answered as MicroPython, soft-reset
        it from the friendly REPL so main.py runs again (whatever version the state
        names: the new one, or the old one after a failure)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.t.in_raw_repl:
                self.ser.write(b"\r\x02")  # Ctrl-B: friendly REPL
                if restart:
                    self._read_for(0.1)
                    self.ser.write(b"\x04")  # Ctrl-D: soft reset
                self.ser.flush()
        except (*IO_ERRORS, TransferError):
            pass
        self.t.serial = self.ser._ser  # mpremote sets DTR/RTS on the real port
        try:
            self.t.close()
        except IO_ERRORS:
            pass
