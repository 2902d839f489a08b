"""`retrostep flash` when there is no usable board: one clear line and an exit code, never
a traceback. Real ports where it matters: a pty that echoes, a pty nobody answers on, a
port held open by another program, a file that is not a tty."""

from __future__ import annotations

import os
import threading
import time
import tty
from pathlib import Path

import pytest
import serial
import serial.tools.list_ports
from cli_invoke import invoke

from retrostep.flash.errors import NotMicroPython, PortError

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTEP_CONFIG_DIR", str(tmp_path / "config"))


def _fails(res, code: int, *needles: str) -> str:
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in res.stdout + res.stderr
    for n in needles:
        assert n in err, err
    return err


class _Pty:
    """A pty whose far end echoes every byte back (``echo``) or says nothing."""

    def __init__(self, echo: bool):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.stop = False
        self.thread = threading.Thread(target=self._run, args=(echo,), daemon=True)
        self.thread.start()

    def _run(self, echo: bool) -> None:
        import select

        while not self.stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 1024)
                except OSError:
                    return
                if echo:
                    os.write(self.master, data)

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)


def test_wrong_port():
    _fails(invoke("flash", "--port", "/dev/retrostep-no-such-port"), PortError.exit_code,
           "port /dev/retrostep-no-such-port not found")  # fmt: skip


def test_no_board(monkeypatch):
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [])
    _fails(invoke("flash"), PortError.exit_code, "no board found", "--port")


def test_several_boards(monkeypatch):
    from serial.tools.list_ports_common import ListPortInfo

    ports = []
    for dev, vid in (("/dev/ttyUSB0", 0x10C4), ("/dev/ttyACM0", 0x303A)):
        p = ListPortInfo(dev, skip_link_detection=True)
        p.vid, p.pid = vid, 0x1234
        ports.append(p)
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: ports)
    _fails(invoke("flash"), PortError.exit_code, "several serial ports found",
           "/dev/ttyACM0 (Espressif)", "/dev/ttyUSB0 (Silicon Labs CP210x)", "--port")  # fmt: skip


def test_not_a_serial_port(tmp_path):
    f = tmp_path / "not-a-port"
    f.write_text("")
    _fails(invoke("flash", "--port", f), PortError.exit_code, "is not a serial port")


def test_port_busy():
    p = _Pty(echo=False)
    try:
        holder = serial.Serial(p.port, exclusive=True)  # another program has it open
        try:
            _fails(invoke("flash", "--port", p.port), PortError.exit_code, "is busy")
        finally:
            holder.close()
    finally:
        p.close()


def test_echo_is_not_micropython():
    p = _Pty(echo=True)
    t0 = time.monotonic()
    try:
        _fails(invoke("flash", "--port", p.port), NotMicroPython.exit_code,
               "echoes what is sent", "not a MicroPython board")  # fmt: skip
    finally:
        p.close()
    assert time.monotonic() - t0 < 15


def test_silent_port():
    p = _Pty(echo=False)
    try:
        _fails(invoke("flash", "--port", p.port), NotMicroPython.exit_code, "no answer on")
    finally:
        p.close()


def test_something_else_talking():
    """A device that answers, but not as a MicroPython REPL (e.g. another firmware's
    shell)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def talk() -> None:
        while not stop.wait(0.05):
            try:
                os.read(master, 1024) if _readable(master) else None
                os.write(master, b"ERR unknown command\r\n$ ")
            except OSError:
                return

    th = threading.Thread(target=talk, daemon=True)
    th.start()
    try:
        _fails(invoke("flash", "--port", os.ttyname(slave)), NotMicroPython.exit_code,
               "answers, but not as a MicroPython REPL", "ERR unknown command")  # fmt: skip
    finally:
        stop.set()
        th.join()
        os.close(master)
        os.close(slave)


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


def test_option_conflicts():
    _fails(invoke("flash", "--sim", "--port", "/dev/ttyUSB0"), 2, "exclude each other")
    _fails(invoke("flash", "--image", "x.img", "--port", "/dev/ttyUSB0"), 2, "--image goes with")
