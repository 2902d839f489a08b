"""Errors of a sync: one base, subclasses that say what went wrong.

Exit codes of the ``scan`` / ``sync`` / ``config`` commands (``docs/sync.md``): 20 the
device refused or sent nonsense, 21 no such device in range, 22 not a retrostep
device, 23 several devices (name one), 24 the link dropped or the device went silent
(run it again: it resumes), 25 no key or the wrong one, 26 a session the store would
not take.
"""

from __future__ import annotations

from retrostep_core import sync_protocol as sp

from ..errors import RetrostepError


class SyncError(RetrostepError):
    """Sync with the device failed. ``partial``: data bytes of a READ that arrived
    before the failure (checked by the link layer and in order: keep them, resume
    there); empty for other requests."""

    exit_code = 20

    def __init__(self, message: str, partial: bytes = b""):
        super().__init__(message)
        self.partial = partial


class LinkLost(SyncError):
    """The link dropped."""

    exit_code = 24

    def __init__(self, message: str = "the link to the device was lost", partial: bytes = b""):
        super().__init__(message, partial)


class SyncTimeout(SyncError):
    """The device stopped answering (no fragment for the idle timeout)."""

    exit_code = 24


class ProtocolError(SyncError):
    """The device sent something this host cannot make sense of."""


class DeviceError(SyncError):
    """The device answered with an error status. ``status`` (``sp.ERR_*``), ``op``,
    ``text`` (its message); ``partial`` as for :class:`LinkLost` (a READ whose stream
    the device had to end early)."""

    def __init__(self, op: int, status: int, text: str, partial: bytes = b""):
        name = sp.STATUS_NAMES.get(status, f"status {status}")
        opname = sp.OP_NAMES.get(op, f"op 0x{op:02x}")
        super().__init__(f"device refused {opname}: {name}" + (f" ({text})" if text else ""),
                         partial)  # fmt: skip
        self.op = op
        self.status = status
        self.text = text


class AuthError(SyncError):
    """Authentication failed: wrong key, unprovisioned device, or a device that could
    not prove it holds the key; or this computer has no key for the device."""

    exit_code = 25


class DeviceNotFound(SyncError):
    """No retrostep device (or not the one named) in range."""

    exit_code = 21


class NotARetrostepDevice(SyncError):
    """The device named is in range but does not offer the retrostep service."""

    exit_code = 22


class SeveralDevices(SyncError):
    """More than one retrostep device in range and none named."""

    exit_code = 23


class SinkRefused(SyncError):
    """The sink would not keep a verified session (the store holds other bytes under
    its number): it is not acknowledged, the device keeps it."""

    exit_code = 26
