"""The host's side of the sync protocol, over any link (``docs/sync-protocol.md``).

A link is anything with

* ``mtu``: the ATT MTU now in force (fragments are cut to ``mtu - 3`` bytes);
* ``async write(data)``: one control-point write, with response (raises
  :class:`~.errors.LinkLost` when the link is gone);
* ``notifications()``: an async iterator of data-characteristic notification values,
  which ends when the link drops.

The BLE link (bleak), the simulated radio and :class:`~.loopback.LoopbackLink` all fit.
:class:`ProtocolClient` sends one request at a time and waits for its response; a
response that stops arriving for ``timeout`` seconds is :class:`~.errors.SyncTimeout`.
Every device error is :class:`~.errors.DeviceError`; a READ cut short (link lost, or a
stream the device had to end) hands over the data that did arrive in ``partial``, so
:meth:`ProtocolClient.read_session` can resume exactly there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from retrostep_core import config as cfg
from retrostep_core import sync_protocol as sp

from .errors import AuthError, DeviceError, LinkLost, ProtocolError, SyncError, SyncTimeout

DEFAULT_TIMEOUT = 10.0  # s without a fragment of the awaited response


class Link(Protocol):
    @property
    def mtu(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    def notifications(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class DeviceInfo:
    version: int
    provisioned: bool
    authenticated: bool
    clock_set: bool
    request_max: int
    read_max: int
    device_id: bytes
    firmware: str
    model: str
    name: str


@dataclass(frozen=True)
class SessionEntry:
    id: int
    size: int  # bytes on the device's flash now
    synced: bool  # acknowledged: the device may evict it
    complete: bool  # ends with END: will not change again
    recording: bool  # the session open right now


@dataclass(frozen=True)
class Verification:
    id: int
    size: int
    complete: bool
    synced: bool
    digest: bytes  # SHA-256 of the first ``size`` bytes


def _entry(sid: int, size: int, flags: int) -> SessionEntry:
    return SessionEntry(sid, size, bool(flags & sp.SESSION_SYNCED),
                        bool(flags & sp.SESSION_COMPLETE), bool(flags & sp.SESSION_RECORDING))


def device_seconds(when: datetime | float | None = None) -> int:
    """Seconds since 2000-01-01 UTC (the device's clock) of a datetime or a Unix time;
    now if None. A naive datetime is taken as UTC."""
    if when is None:
        when = datetime.now(timezone.utc)
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        when = when.timestamp()
    return int(when) - sp.EPOCH_2000_UNIX


class ProtocolClient:
    """One connection's worth of protocol. Use as ``async with ProtocolClient(link)``
    (or call :meth:`start` / :meth:`close`); make a new client for every connection.

    Counters: ``writes``, ``notifications``, ``bytes_out``, ``bytes_in`` (ATT values),
    ``stale`` (responses nobody was waiting for)."""

    def __init__(self, link: Link, timeout: float = DEFAULT_TIMEOUT):
        self.link = link
        self.timeout = timeout
        self.device_info: DeviceInfo | None = None
        self.authenticated = False
        self.writes = 0
        self.notifications = 0
        self.bytes_out = 0
        self.bytes_in = 0
        self.stale = 0
        self._seq = 0
        self._rid = 0
        self._rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
        self._pending: tuple[int, int, asyncio.Future] | None = None
        self._abandoned = b""  # data of a READ stream the device ended early
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        self._closed = False
        self._last_rx = 0.0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> ProtocolClient:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_loop())
        return self

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def __aenter__(self) -> ProtocolClient:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- fragments in ------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            async for frag in self.link.notifications():
                self._on_fragment(bytes(frag))
        finally:
            self._closed = True
            self._fail(LinkLost(partial=self._partial_data()))

    def _partial_data(self) -> bytes:
        """Data bytes of an unfinished OK response to the pending READ."""
        rx = self._rx
        p = self._pending
        if p is None or p[0] != sp.OP_READ or not rx.in_progress():
            return b""
        part = rx.partial()
        if len(part) < sp.RESPONSE_HEADER or part[4] != sp.OK or (part[2], part[3]) != p[:2]:
            return b""
        return part[sp.RESPONSE_HEADER :]

    def _fail(self, exc: SyncError) -> None:
        p = self._pending
        if p is not None and not p[2].done():
            p[2].set_exception(exc)

    def _on_fragment(self, frag: bytes) -> None:
        self.notifications += 1
        self.bytes_in += len(frag)
        self._last_rx = asyncio.get_running_loop().time()
        rx = self._rx
        if frag and frag[0] & sp.START and rx.in_progress():
            self._abandoned = self._partial_data()  # the device ended that stream early
        res = rx.feed(frag)
        if res == sp.DONE:
            self._deliver(sp.parse_response(rx.message()))
        elif res in (sp.GAP, sp.BAD, sp.TOO_LONG):
            # a notification went missing or arrived damaged: what came before is good
            partial = self._abandoned or self._partial_data()
            self._fail(ProtocolError(f"response fragments out of order ({res})", partial))

    def _deliver(self, resp) -> None:
        p = self._pending
        if resp is None or p is None or p[2].done():
            self.stale += 1
            return
        op, rid, status, body = resp
        if (op, rid) == p[:2]:
            p[2].set_result((status, body))
        elif op == sp.OP_NONE and status != sp.OK:  # the device could not read our request
            p[2].set_result((status, body))
        else:
            self.stale += 1

    # -- requests ----------------------------------------------------------------------

    async def call(self, op: int, body: bytes = b"") -> bytes:
        """Send one request, return the body of its OK response (DeviceError otherwise)."""
        if self._reader is None:
            await self.start()
        async with self._lock:
            if self._closed:
                raise LinkLost()
            loop = asyncio.get_running_loop()
            self._rid = (self._rid + 1) & 0xFF
            fut: asyncio.Future = loop.create_future()
            self._pending = (op, self._rid, fut)
            self._abandoned = b""
            try:
                for frag in sp.fragments(sp.request(op, self._rid, body), self.link.mtu,
                                         self._seq):  # fmt: skip
                    self._seq = (self._seq + 1) & sp.SEQ_MASK
                    self.writes += 1
                    self.bytes_out += len(frag)
                    await self.link.write(frag)
                self._last_rx = loop.time()
                while not fut.done():
                    left = self.timeout - (loop.time() - self._last_rx)
                    if left <= 0:
                        raise SyncTimeout(f"no answer to {sp.OP_NAMES.get(op, op)} within "
                                          f"{self.timeout:g} s")  # fmt: skip
                    await asyncio.wait({fut}, timeout=left)
                status, rbody = fut.result()
            finally:
                self._pending = None
                if not fut.done():
                    fut.cancel()
        if status != sp.OK:
            raise DeviceError(op, status, sp.body_text(rbody), self._abandoned)
        return rbody

    # -- operations --------------------------------------------------------------------

    async def info(self) -> DeviceInfo:
        d = sp.decode_info(await self.call(sp.OP_INFO))
        if d is None:
            raise ProtocolError("unreadable INFO")
        if d["version"] != sp.PROTOCOL_VERSION:
            raise ProtocolError(f"the device speaks sync protocol v{d['version']}, this host "
                                f"v{sp.PROTOCOL_VERSION}: update the firmware or this tool")
        self.device_info = DeviceInfo(**d)
        return self.device_info

    async def authenticate(self, key: bytes) -> None:
        """Mutual challenge-response: prove the key to the device, and check the
        device's proof that it holds the same key."""
        info = self.device_info or await self.info()
        if not info.provisioned:
            raise AuthError(f"{info.name or 'the device'} has no key yet: provision it with "
                            "`retrostep flash`")  # fmt: skip
        nh = secrets.token_bytes(sp.NONCE_LEN)
        try:
            nd = await self.call(sp.OP_AUTH_BEGIN, nh)
            if len(nd) != sp.NONCE_LEN:
                raise ProtocolError("AUTH_BEGIN: the device nonce is not 16 bytes")
            proof = await self.call(sp.OP_AUTH_FINISH,
                                    sp.host_proof(key, info.device_id, nh, nd))  # fmt: skip
        except DeviceError as e:
            if e.status in (sp.ERR_AUTH_FAILED, sp.ERR_NOT_PROVISIONED):
                raise AuthError(f"{info.name or 'the device'} refused this computer's key "
                                f"({sp.STATUS_NAMES[e.status]})") from e  # fmt: skip
            raise
        if not hmac.compare_digest(proof, sp.device_proof(key, info.device_id, nh, nd)):
            raise AuthError("the device could not prove it holds the key: not the device "
                            "this computer provisioned")  # fmt: skip
        self.authenticated = True

    async def list_sessions(self) -> list[SessionEntry]:
        out: list[SessionEntry] = []
        first = 0
        while True:
            d = sp.decode_list(await self.call(sp.OP_LIST, struct.pack("<I", first)))
            if d is None:
                raise ProtocolError("unreadable LIST")
            entries, more = d
            out.extend(_entry(*e) for e in entries)
            if not more or not entries:
                return out
            first = entries[-1][0] + 1

    async def read(self, sid: int, offset: int, length: int) -> bytes:
        """Up to ``length`` (at most READ_MAX) bytes of a session from ``offset``."""
        return await self.call(sp.OP_READ, struct.pack("<IIH", sid, offset, min(length, 0xFFFF)))

    async def read_session(self, sid: int, offset: int, size: int,
                           on_data: Callable[[int, bytes], None]) -> int:  # fmt: skip
        """Fetch bytes ``offset .. size`` of a session, handing each piece to
        ``on_data(offset, data)`` as it comes (also the part of a READ that arrived
        before the link dropped). Returns the offset reached."""
        read_max = self.device_info.read_max if self.device_info else sp.READ_MAX
        while offset < size:
            try:
                data = await self.read(sid, offset, min(size - offset, read_max))
            except SyncError as e:
                part = getattr(e, "partial", b"")
                if part:
                    on_data(offset, part)
                raise
            if not data:
                break  # shorter than listed: the caller's VERIFY will tell
            on_data(offset, data)
            offset += len(data)
        return offset

    async def verify(self, sid: int) -> Verification:
        d = sp.decode_verify(await self.call(sp.OP_VERIFY, struct.pack("<I", sid)))
        if d is None:
            raise ProtocolError("unreadable VERIFY")
        vsid, size, flags, digest = d
        return Verification(vsid, size, bool(flags & sp.SESSION_COMPLETE),
                            bool(flags & sp.SESSION_SYNCED), digest)  # fmt: skip

    async def ack(self, sid: int, digest: bytes) -> None:
        """The host has the session (with this digest, as VERIFY gave it in this
        connection): the device may evict it."""
        await self.call(sp.OP_ACK, struct.pack("<I", sid) + digest)

    async def set_time(self, when: datetime | float | None = None) -> int:
        s = device_seconds(when)
        await self.call(sp.OP_SET_TIME, struct.pack("<I", s))
        return s

    async def get_config(self) -> dict:
        conf, problems = cfg.decode(await self.call(sp.OP_GET_CONFIG))
        if problems:
            raise ProtocolError("the device sent an unreadable config: " + "; ".join(problems))
        return conf

    async def set_config(self, config: dict) -> None:
        try:
            data = cfg.encode(config)
        except ValueError as e:
            raise SyncError(str(e)) from e
        await self.call(sp.OP_SET_CONFIG, data)

    async def status(self) -> dict:
        d = sp.parse_status(await self.call(sp.OP_STATUS))
        if d is None:
            raise ProtocolError("unreadable STATUS")
        return d

    async def buzz(self, count: int = 1) -> None:
        await self.call(sp.OP_BUZZ, bytes((count & 0xFF,)))
