"""Errors of a sync: one base, subclasses that say what went wrong."""

from __future__ import annotations

from retrostep_core import sync_protocol as sp

from ..errors import RetrostepError


class SyncError(RetrostepError):
    """Sync with the device failed. ``partial``: data bytes of a READ that arrived
    before the failure (checked by the link layer and in order: keep them, resume
    there); empty for other requests."""

    def __init__(self, message: str, partial: bytes = b""):
        super().__init__(message)
        self.partial = partial


class LinkLost(SyncError):
    """The link dropped."""

    def __init__(self, message: str = "the link to the device was lost", partial: bytes = b""):
        super().__init__(message, partial)


class SyncTimeout(SyncError):
    """The device stopped answering (no fragment for the idle timeout)."""


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
    not prove it holds the key."""
