"""A :class:`~.pull.SessionSink` on the session store: what a sync fetches ends up in the
SQLite store, and a sync cut short resumes where it stopped, also in a later run.

Bytes of a session not finished yet go to a *part file* next to the store,
``<store>.partial/<device id>/<session id>.part``, appended as they arrive (READ data
is checked and in order, so every prefix of it is good; a crash at worst loses the
tail, which is fetched again). :meth:`StoreSink.finish` (whole and verified by the
device's SHA-256) imports the bytes with :meth:`Store.import_session` and only then
removes the part file; the store's rules apply (the same bytes again change nothing,
longer bytes extend, different bytes are a conflict: :class:`SinkRefused`, the session
is not acknowledged and the device keeps it).

A session still recording is fetched as far as it goes; :meth:`StoreSink.keep_open`
imports that much (so it shows up) and keeps the part file for the next sync.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from retrostep_core import records as r

from ..store import SessionConflict, Store
from .errors import ProtocolError, SinkRefused


def _complete(raw: bytes) -> bool:
    """The bytes end with an END record (the device will not add to them)."""
    recs = r.decode_report(raw)["records"]
    return bool(recs) and recs[-1][0] == r.END


class StoreSink:
    """Sessions of a sync into ``store``. ``name``: the device's name for the store's
    device table. ``on_bytes(n)``: called with every piece's size (a progress bar).
    ``imported``: ``{device session id: ImportResult}`` of this sync."""

    def __init__(self, store: Store, name: str | None = None, on_bytes=None) -> None:
        self.store = store
        self.name = name
        self.on_bytes = on_bytes
        self.dir = store.path.with_name(store.path.name + ".partial")
        self.imported: dict = {}
        self._ignore_stored: set[tuple[bytes, int]] = set()  # discarded: start from 0

    # -- where the bytes are -------------------------------------------------------------

    def part(self, device_id: bytes, sid: int) -> Path:
        return self.dir / _safe(device_id) / f"{sid}.part"

    def _stored(self, device_id: bytes, sid: int) -> bytes | None:
        if (device_id, sid) in self._ignore_stored:
            return None
        return self.store.device_raw(device_id.decode("ascii", "replace"), sid)

    def _bytes(self, device_id: bytes, sid: int) -> bytes:
        p = self.part(device_id, sid)
        try:
            return p.read_bytes()
        except FileNotFoundError:
            return self._stored(device_id, sid) or b""

    # -- SessionSink -----------------------------------------------------------------------

    def held(self, device_id: bytes, sid: int) -> int:
        p = self.part(device_id, sid)
        try:
            return p.stat().st_size
        except FileNotFoundError:
            return len(self._stored(device_id, sid) or b"")

    def append(self, device_id: bytes, sid: int, offset: int, data: bytes) -> None:
        p = self.part(device_id, sid)
        if not p.exists():  # continue a copy the store holds (imported while open)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(self._stored(device_id, sid) or b"")
        with open(p, "ab") as f:
            have = f.tell()
            if offset != have:
                raise ProtocolError(f"session {sid}: data for offset {offset}, held {have}")
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if self.on_bytes is not None:
            self.on_bytes(len(data))

    def digest(self, device_id: bytes, sid: int) -> bytes:
        return hashlib.sha256(self._bytes(device_id, sid)).digest()

    def discard(self, device_id: bytes, sid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.part(device_id, sid).unlink()
        self._ignore_stored.add((device_id, sid))

    def finish(self, device_id: bytes, sid: int) -> None:
        self._import(device_id, sid)
        with contextlib.suppress(FileNotFoundError):
            self.part(device_id, sid).unlink()
        self._ignore_stored.discard((device_id, sid))

    def finished(self, device_id: bytes, sid: int) -> bool:
        if self.part(device_id, sid).exists():
            return False
        raw = self._stored(device_id, sid)
        return raw is not None and _complete(raw)

    # -- beyond the protocol -----------------------------------------------------------------

    def keep_open(self, device_id: bytes, sid: int) -> None:
        """A session still recording: import what arrived, keep the part file."""
        if self.part(device_id, sid).exists():
            self._import(device_id, sid)

    def _import(self, device_id: bytes, sid: int) -> None:
        raw = self._bytes(device_id, sid)
        try:
            res = self.store.import_session(device_id.decode("ascii", "replace"), raw,
                                            device_name=self.name)  # fmt: skip
        except SessionConflict as e:
            raise SinkRefused(str(e)) from e
        self.imported[sid] = res


def _safe(device_id: bytes) -> str:
    """A directory name for a device id (ids are short ASCII; anything else is hexed)."""
    s = device_id.decode("ascii", "replace")
    if s and all(c.isalnum() or c in "-_." for c in s) and not s.startswith("."):
        return s
    return "x-" + device_id.hex()
