"""What can go wrong while flashing, one class per thing the user can act on.

Each is a :class:`~retrostep.errors.RetrostepError`: the CLI prints the message as one
line and exits with the class's code (docs/flashing.md lists them).
"""

from __future__ import annotations

from ..errors import RetrostepError


class FlashError(RetrostepError):
    """Flashing failed (base class)."""

    exit_code = 10


class PortError(FlashError):
    """No usable serial port: none or several boards, missing, busy, permission denied."""

    exit_code = 11


class NotMicroPython(FlashError):
    """Something answers on the port, but not a MicroPython REPL."""

    exit_code = 12


class IncompatibleBoard(FlashError):
    """MicroPython too old, or an .mpy ABI this compiler cannot produce."""

    exit_code = 13


class NotEnoughSpace(FlashError):
    """The board's filesystem cannot hold the new version next to the current one."""

    exit_code = 14


class TransferError(FlashError):
    """The connection broke, or the board reported an error, during the transfer."""

    exit_code = 15


class VerifyError(FlashError):
    """A file on the board does not have the manifest's SHA-256 after the copy."""

    exit_code = 16


class StartFailed(FlashError):
    """The new version did not start healthily: rolled back, or no answer."""

    exit_code = 17


class ProvisionError(FlashError):
    """The device's name/key and this computer's record of them disagree."""

    exit_code = 18


class BuildError(FlashError):
    """The firmware could not be compiled (mpy-cross failed or is missing)."""

    exit_code = 19
