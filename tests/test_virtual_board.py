"""The virtual board (`retrostep sim board`, ``retrostep.virtual_board``): the MicroPython
unix port behind a pseudo-terminal, its LittleFS image as the root filesystem, driven
through the real ``mpremote`` (as a command and as a library) and through pyserial the
way a terminal does: friendly and raw REPL, raw-paste, soft and hard resets, boot.py and
main.py, Ctrl-C; then the firmware itself on it, with the still IMU and with a trace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from cli_invoke import invoke as _invoke
from mpremote.transport import TransportExecError
from mpremote.transport_serial import SerialTransport

from retrostep import sim, synth
from retrostep.runtime.micropython_port import micropython_executable
from retrostep.sim import SimError
from retrostep.trace import write_trace
from retrostep.virtual_board import FLASH_BYTES, VirtualBoard
from retrostep_device import blockdev

EXE = micropython_executable()  # the unix port is a test dependency: fail loudly if absent
FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"

BOOT_PY = 'print("boot.py ran")\n'
MAIN_PY = """\
import time
print("main.py ran")
n = 0
while True:
    n += 1
    time.sleep_ms(5)
"""
# The app as firmware/main.py starts it on the sim board (that file is the flashing
# loader now; the app itself is what this test is about).
APP_MAIN_PY = """\
import asyncio
import sys

from retrostep_device import board_sim
from retrostep_device.app import App

board = board_sim.from_args(sys.argv[1:])
app = App(board)
asyncio.run(app.run())
live = app.live
print("L %d %d %d %d" % (live.forward, live.backward, live.sway_alerts, live.errors))
"""


def mpremote(port: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real mpremote, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", port, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, f"mpremote {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc


class Terminal:
    """The port opened the way a serial terminal opens it (pyserial)."""

    def __init__(self, port: str) -> None:
        self.s = serial.Serial(port, 115200, timeout=0.05)
        self.s.reset_input_buffer()
        self.seen = b""

    def send(self, data: bytes) -> None:
        self.s.write(data)

    def expect(self, needle: bytes, timeout: float = 10.0) -> bytes:
        """Everything read up to and including ``needle``; the rest is kept."""
        end = time.monotonic() + timeout
        while needle not in self.seen:
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} not received; got {self.seen[-400:]!r}")
            self.seen += self.s.read(4096)
        i = self.seen.index(needle) + len(needle)
        out, self.seen = self.seen[:i], self.seen[i:]
        return out

    def close(self) -> None:
        self.s.close()


@pytest.fixture
def board(tmp_path):
    b = VirtualBoard(tmp_path / "flash.img")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def boot_files(tmp_path):
    (tmp_path / "boot.py").write_text(BOOT_PY)
    (tmp_path / "main.py").write_text(MAIN_PY)
    return tmp_path / "boot.py", tmp_path / "main.py"


def test_blank_image_becomes_the_root_filesystem(board, tmp_path):
    img = tmp_path / "flash.img"
    assert FLASH_BYTES == blockdev.DEFAULT_BLOCK_SIZE * blockdev.DEFAULT_BLOCK_COUNT
    assert img.stat().st_size == FLASH_BYTES
    out = mpremote(board.port, "ls").stdout
    assert out.splitlines()[0] == "ls :"
    assert "host/" in out  # the host directory mount; nothing else on a blank image
    code = ("import os, sys, vfs; print(repr(os.getcwd()), sys.path, "
            "[(type(fs).__name__, p) for fs, p in vfs.mount()], os.statvfs('/')[0:3])")  # fmt: skip
    out = mpremote(board.port, "exec", code).stdout.strip()
    assert out.startswith("'/' ['', '.frozen', '/lib'] ")
    assert "('VfsLfs2', '/')" in out and "('VfsPosix', '/host')" in out
    assert out.endswith("(4096, 4096, 256)")  # the image, not the host's disk


def test_files_persist_across_soft_reset_and_board_restart(board, tmp_path):
    src = tmp_path / "notes.txt"
    src.write_text("backward\nwalking\n")
    mpremote(board.port, "cp", str(src), ":notes.txt")
    assert "notes.txt" in mpremote(board.port, "ls").stdout
    # Every mpremote command above began with a soft reset: the file survived those;
    # now an explicit one, and a variable that must not survive it.
    mpremote(board.port, "resume", "exec", "x = 42")
    boots = board.boots
    out = mpremote(board.port, "soft-reset", "exec", "print('x' in globals())").stdout
    assert out.strip() == "False" and board.boots == boots + 1
    assert mpremote(board.port, "cat", "notes.txt").stdout == "backward\nwalking\n"
    board.stop()  # the interpreter exits, the port closes
    assert not os.path.exists(board.port)
    board.start()  # a new port, the same image
    assert mpremote(board.port, "cat", "notes.txt").stdout == "backward\nwalking\n"
    mpremote(board.port, "rm", "notes.txt")
    assert "notes.txt" not in mpremote(board.port, "ls").stdout


def test_exec_run_and_raw_paste(board, tmp_path):
    assert mpremote(board.port, "exec", "print(1+1)").stdout == "2\n"
    script = tmp_path / "script.py"
    # Longer than raw-paste's 128-byte window: the flow control is exercised too.
    lines = [f"total += {i}  # {'x' * 40}\n" for i in range(200)]
    script.write_text("total = 0\n" + "".join(lines) + "print('total', total)\n")
    assert mpremote(board.port, "run", str(script)).stdout == f"total {sum(range(200))}\n"
    # mpremote's transport as a library: it keeps raw-paste only if the board accepts it.
    t = SerialTransport(board.port)
    try:
        t.enter_raw_repl(soft_reset=True)
        assert t.exec("print(sum(range(10)))") == b"45\n"
        assert t.use_raw_paste  # the board answered R\x01 to the raw-paste request
        assert t.exec(script.read_bytes()).endswith(b"total 19900\n")
        with pytest.raises(TransportExecError, match="ZeroDivisionError"):
            t.exec("1/0")
        t.exit_raw_repl()
    finally:
        t.close()
    assert b"R\x01" in board.output()
    # `mpremote mount`: the board imports from the host through mpremote's binary protocol.
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "on_host.py").write_text("print('imported from', __file__)\n")
    out = mpremote(board.port, "mount", str(tmp_path / "lib"), "exec", "import on_host").stdout
    assert out.endswith("imported from on_host.py\n")  # mpremote made /remote the cwd


def test_main_runs_after_friendly_soft_reset_not_after_raw_one(board, boot_files):
    boot, main = boot_files
    mpremote(board.port, "cp", str(boot), ":boot.py", "+", "cp", str(main), ":main.py")
    # mpremote's own soft reset (raw REPL): boot.py only, back in the raw REPL.
    mark = board.output_mark()
    mpremote(board.port, "soft-reset")
    seen = board.output(mark)
    assert b"MPY: soft reboot\r\nboot.py ran\n" in seen
    assert b"main.py ran" not in seen
    # Ctrl-D at the friendly prompt: soft reboot, boot.py, then main.py.
    term = Terminal(board.port)
    try:
        term.send(b"\r")
        term.expect(b">>> ")
        term.send(b"\x04")
        out = term.expect(b"main.py ran\n")
        assert out.index(b"soft reboot\r\n") < out.index(b"boot.py ran") < out.index(b"main.py")
        # Ctrl-C interrupts main.py's loop: KeyboardInterrupt, then the friendly REPL,
        # in main.py's namespace (as on a real board).
        time.sleep(0.2)
        term.send(b"\x03")
        out = term.expect(b">>> ")
        assert b"KeyboardInterrupt" in out
        assert b'Type "help()" for more information.' in out
        term.send(b"n > 10\r")
        assert b"True" in term.expect(b">>> ")
        # Ctrl-C at the prompt only cancels the line; the board does not reboot.
        boots = board.boots
        term.send(b"print('never'\x03")
        term.expect(b">>> ")
        assert board.boots == boots
        # sys.exit() at the REPL is a soft reset too, main.py runs again.
        term.send(b"import sys; sys.exit()\r")
        assert b"soft reboot" in term.expect(b"main.py ran\n")
    finally:
        term.close()
    mpremote(board.port, "rm", "main.py")  # mpremote stops the loop with its Ctrl-C


def test_hard_reset(board, boot_files):
    boot, main = boot_files
    mpremote(board.port, "cp", str(boot), ":boot.py", "+", "cp", str(main), ":main.py")
    boots = board.boots
    mark = board.output_mark()
    mpremote(board.port, "resume", "reset")  # machine.reset(): the interpreter is killed
    end = board.wait_for(b"main.py ran\n", since=mark)
    seen = board.output(mark)[: end - mark]
    assert b"soft reboot" not in seen and b"boot.py ran\n" in seen
    assert board.boots == boots + 1
    # The reset button (the API the flash tool uses), while main.py runs.
    mark = board.output_mark()
    board.hard_reset()
    board.wait_for(b"main.py ran\n", since=mark)
    assert board.boots == boots + 2
    assert mpremote(board.port, "resume", "exec", "print(n > 0)").stdout == "True\n"
    mpremote(board.port, "rm", "main.py")


def test_mpremote_repl(board):
    """`mpremote repl`, with a terminal of its own (a pty)."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mpremote", "connect", board.port, "repl"],
                            stdin=slave, stdout=slave, stderr=slave)  # fmt: skip
    os.close(slave)
    seen = b""

    def expect(needle: bytes) -> None:
        nonlocal seen
        end = time.monotonic() + 10
        while needle not in seen:
            assert time.monotonic() < end, f"{needle!r} not seen in {seen!r}"
            try:
                seen += os.read(master, 4096)
            except OSError:
                break

    try:
        expect(b"Use Ctrl-] or Ctrl-x to exit this shell")
        os.write(master, b"\r")
        expect(b">>> ")
        os.write(master, b"print(6 * 7)\r")
        expect(b"42")
        os.write(master, b"\x1d")  # Ctrl-]: leave mpremote
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _stage_firmware(tmp_path: Path) -> Path:
    """The firmware's source packages (no caches) and the app's main.py, ready to copy."""
    stage = tmp_path / "stage"
    for pkg in ("retrostep_core", "retrostep_device"):
        (stage / pkg).mkdir(parents=True)
        for f in (FIRMWARE / pkg).glob("*.py"):
            (stage / pkg / f.name).write_bytes(f.read_bytes())
    (stage / "main.py").write_text(APP_MAIN_PY)
    return stage


def test_the_firmware_runs_on_it(tmp_path):
    stage = _stage_firmware(tmp_path)
    image = tmp_path / "flash.img"
    # 1. Still IMU in real time: the app idles, its clock follows the wall clock.
    with VirtualBoard(image) as board:
        mpremote(board.port, "cp", "-r", str(stage / "retrostep_core"),
                 str(stage / "retrostep_device"), str(stage / "main.py"), ":")  # fmt: skip
        mark = board.output_mark()
        board.hard_reset()
        board.wait_for(b"P 0 active\n", timeout=30, since=mark)
        t0 = time.monotonic()
        board.wait_for(b"P 1500 light\n", timeout=30, since=mark)
        time.sleep(0.5)
        elapsed_ms = (time.monotonic() - t0) * 1000
        assert b"Traceback" not in board.output(mark)  # no task failed
        # mpremote's Ctrl-C stops the app; its objects stay in the REPL's namespace.
        code = "print(app.live.forward, app.live.backward, app.live.errors, board.now_ms())"
        out = mpremote(board.port, "resume", "exec", code).stdout
        fwd, bwd, errors, now_ms = map(int, out.split())
        assert (fwd, bwd, errors) == (0, 0, 0)
        assert elapsed_ms * 0.5 <= now_ms <= elapsed_ms + 600  # real time, never faster
    # 2. A short walk replayed at 20x on the same image: counts as `retrostep analyze`.
    segs = [synth._st(2), synth._w(12), synth._b(8), synth._st(2)]
    trace, _ = synth.synthesize(segs, synth.make_person(5), fs_hz=52, seed=7)
    walk = tmp_path / "walk.csv"
    write_trace(walk, trace)
    res = _invoke("analyze", walk, "--json")
    assert res.exit_code == 0, res.stderr
    want = json.loads(res.stdout)["summary"]
    assert want["forward_steps"] > 10 and want["backward_steps"] > 5
    with VirtualBoard(image, trace=walk, speed=20) as board:
        end = board.wait_for(b"\nL ", timeout=30)
        line = board.wait_for(b"\n", since=end)
        counts = board.output(end)[: line - end].split()
        assert list(map(int, counts)) == [want["forward_steps"], want["backward_steps"],
                                          want["sway_alerts"], 0]  # fmt: skip
        board.wait_for(b">>> ", since=line)  # main.py over: the REPL
    sessions = sim.read_sessions(str(image))  # the host's codec reads the board's /logs
    assert sessions[-1]["forward_steps"] == want["forward_steps"]
    assert sessions[-1]["backward_steps"] == want["backward_steps"]
    assert sessions[-1]["end_reason"] == "power" and sessions[-1]["ended_cleanly"]


def _start_cli(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "retrostep.cli", "sim", "board", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_runs_until_interrupted(tmp_path, sig):
    image, link = tmp_path / "flash.img", tmp_path / "board"
    args = ("--image", str(image)) if sig == signal.SIGINT else ()
    proc, port = _start_cli(*args, "--link", str(link))
    try:
        assert port.startswith("/dev/") and os.readlink(link) == port
        assert mpremote(str(link), "exec", "print('via the link')").stdout == "via the link\n"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and out == ""
    assert not link.exists() and not link.is_symlink()
    assert not os.path.exists(port)  # the pty is gone with its master
    assert image.is_file() == (sig == signal.SIGINT)  # kept when named


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"not a filesystem" * (FLASH_BYTES // 16))
    proc = subprocess.run(
        [sys.executable, "-m", "retrostep.cli", "sim", "board", "--image", str(bad)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"Error: flash image {bad} is not a LittleFS image (nor blank)"
    assert bad.read_bytes() == b"not a filesystem" * (FLASH_BYTES // 16)  # never wiped
    short = tmp_path / "short.img"
    short.write_bytes(b"\xff" * 4096)
    with pytest.raises(SimError, match="is 4096 bytes: the board's flash is 1048576"):
        VirtualBoard(short).start()
    assert short.stat().st_size == 4096
    res = _invoke("sim", "board", "--speed", "0")
    assert res.exit_code == 2 and "needs a trace" in res.stderr
    with pytest.raises(SimError, match="trace not found"):
        VirtualBoard(tmp_path / "x.img", trace=tmp_path / "missing.csv").start()
