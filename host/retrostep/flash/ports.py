"""Finding the board's serial port, and saying clearly why a port cannot be used."""

from __future__ import annotations

import errno
import os

import serial
import serial.tools.list_ports

from .errors import PortError

# USB vendors of the bridges found on ESP32 boards (and MicroPython's own VID).
KNOWN_VIDS = {0x303A: "Espressif", 0x10C4: "Silicon Labs CP210x", 0x1A86: "WCH CH34x",
              0x0403: "FTDI", 0xF055: "MicroPython"}  # fmt: skip
NO_BOARD = ("no board found: connect it with a USB data cable, or name its port with "
            "--port (--sim flashes the virtual board)")  # fmt: skip


def _describe(p) -> str:
    vendor = KNOWN_VIDS.get(p.vid, p.manufacturer or f"USB {p.vid:04x}:{p.pid:04x}")
    return f"{p.device} ({vendor})"


def usb_ports() -> list:
    """Serial ports that belong to a USB device (what a plugged-in board shows up as)."""
    return sorted((p for p in serial.tools.list_ports.comports() if p.vid is not None),
                  key=lambda p: p.device)  # fmt: skip


def find_port() -> str:
    """The one connected board's port; PortError for none or several."""
    ports = usb_ports()
    if not ports:
        raise PortError(NO_BOARD)
    if len(ports) > 1:
        names = ", ".join(_describe(p) for p in ports)
        raise PortError(f"several serial ports found: {names}; choose one with --port")
    return ports[0].device


def check_port(port: str) -> None:
    """Open the port once, exclusively, to turn the OS's refusal into a clear message
    (mpremote's own open hides the reason)."""
    if "://" in port:  # a pyserial URL (socket://, rfc2217://): nothing to check here
        return
    if not os.path.exists(port):
        others = ", ".join(p.device for p in usb_ports())
        hint = f" (connected: {others})" if others else ""
        raise PortError(f"port {port} not found{hint}")
    try:
        s = serial.Serial(port, 115200, timeout=0, exclusive=True)
    except serial.SerialException as e:
        raise PortError(port_error_message(port, e)) from None
    except OSError as e:
        raise PortError(port_error_message(port, e)) from None
    s.close()


def port_error_message(port: str, e: OSError) -> str:
    code = e.errno
    text = str(e)
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return (f"permission denied on {port}: on Linux, add yourself to the port's group "
                "(sudo usermod -aG dialout $USER) and log in again")  # fmt: skip
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
        return (f"port {port} is busy: another program (a serial monitor, mpremote, an IDE) "
                "has it open")  # fmt: skip
    if code == errno.ENOENT or "No such file" in text:
        return f"port {port} not found"
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return f"{port} is not a serial port"
    return f"cannot open {port}: {text}"
