"""``retrostep scan``, ``sync`` and ``config get|set``: the commands over BLE
(``docs/sync.md``). Each is a plain function running its own ``asyncio.run``; the click
commands in :mod:`retrostep.cli` only parse and print.

Python API (also for the demo)::

    from retrostep.sync.command import sync_device
    from retrostep.sync.ble import Radio

    with Store.open(path) as store:
        outcome = sync_device(store, Radio.simulated(), on_progress=print)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from retrostep_core import config as cfg

from ..errors import UsageProblem
from ..store import Store
from . import keys
from .ble import Found, Radio, choose, connect, scan
from .errors import DeviceError, SyncError
from .protocol_client import DeviceInfo, ProtocolClient, SessionEntry
from .pull import PullReport, pull_sessions
from .store_sink import StoreSink

DEFAULT_SCAN_S = 5.0


def radio_for(sim: bool) -> Radio:
    return Radio.simulated() if sim else Radio.os()


# -- scan ------------------------------------------------------------------------------------


def scan_devices(radio: Radio, timeout: float = DEFAULT_SCAN_S,
                 include_others: bool = False) -> list[dict]:  # fmt: skip
    """Retrostep devices heard within ``timeout`` s (with ``include_others``, every
    device), as dicts: name, address, rssi, unsynced ..., and ``key``: whether this
    computer has a key for that name (None: not a retrostep device)."""
    found = asyncio.run(scan(radio, timeout))
    names = keys.known_names()
    out = []
    for f in found:
        if not f.retrostep and not include_others:
            continue
        d = {**f.to_json(), "retrostep": f.retrostep}
        d["key"] = (f.name in names) if f.retrostep else None
        out.append(d)
    return out


# -- sync ------------------------------------------------------------------------------------


@dataclass
class SyncOutcome:
    name: str
    address: str
    device_id: str = ""
    report: PullReport = field(default_factory=PullReport)
    imported: dict = field(default_factory=dict)  # device session id -> ImportResult
    seconds: float = 0.0
    total_bytes: int = 0  # what the listing said was left to fetch

    def to_json(self) -> dict:
        rep = self.report
        return {
            "device": {"name": self.name, "address": self.address, "id": self.device_id},
            "clock_set": rep.clock, "listed": rep.listed, "bytes": rep.fetched_bytes,
            "seconds": round(self.seconds, 3), "acknowledged": rep.acked,
            "recording": rep.recording, "mismatched": rep.mismatched,
            "refused": [{"session": s, "reason": why} for s, why in rep.refused],
            "sessions": [{"device_session": sid, "status": res.status, "store_id": res.id,
                          "bytes": res.stored_bytes} for sid, res in
                         sorted(self.imported.items())],
        }  # fmt: skip

    def lines(self) -> list[str]:
        """The summary for people."""
        rep = self.report
        out = []
        for sid, res in sorted(self.imported.items()):
            what = {"new": "new", "extended": "extended", "unchanged": "already stored"}
            extra = " (still recording: the rest comes next sync)" if sid in rep.recording else ""
            out.append(f"  session {sid}: {what.get(res.status, res.status)}, "
                       f"{res.stored_bytes} bytes, store #{res.id}{extra}")  # fmt: skip
        new = sum(1 for r in self.imported.values() if r.status == "new")
        ext = sum(1 for r in self.imported.values() if r.status == "extended")
        head = (f"{self.name}: {new} new, {ext} extended session(s), "
                f"{rep.fetched_bytes} bytes in {self.seconds:.1f} s")  # fmt: skip
        if not self.imported and not rep.fetched_bytes:
            head = f"{self.name}: nothing new ({rep.listed} session(s) on the device, all stored)"
        if rep.clock is not None:
            head += "; device clock set"
        out.insert(0, head)
        for sid, why in rep.refused:
            out.append(f"  session {sid}: NOT stored, left on the device: {why}")
        for sid in rep.mismatched:
            out.append(f"  session {sid}: did not verify; it is read again next sync")
        return out


async def _open(radio: Radio, device: str | None, timeout: float):
    found = choose(await scan(radio, timeout, device), device, radio.sim)
    return found


async def _sync(store: Store, radio: Radio, device: str | None, timeout: float,
                on_total: Callable[[int], None] | None,
                on_progress: Callable[[int], None] | None,
                outcome_box: list) -> SyncOutcome:  # fmt: skip
    found: Found = await _open(radio, device, timeout)
    out = SyncOutcome(found.name, found.address)
    outcome_box.append(out)
    t0 = time.monotonic()
    async with connect(radio, found) as link, ProtocolClient(link) as pc:
        info: DeviceInfo = await pc.info()
        out.device_id = info.device_id.decode("ascii", "replace")
        out.name = info.name or found.name
        key = keys.key_for(info.device_id, out.name)
        sink = StoreSink(store, out.name, on_progress)
        out.imported = sink.imported

        def listed(dev: bytes, sessions: list[SessionEntry]) -> None:
            left = sum(max(0, e.size - sink.held(dev, e.id)) for e in sessions
                       if not sink.finished(dev, e.id))  # fmt: skip
            out.total_bytes = left
            if on_total is not None:
                on_total(left)

        try:
            await pull_sessions(pc, key, sink, report=out.report, on_listed=listed)
            keys.remember_name(info.device_id, found.name)  # it proved it has our key
        finally:
            out.seconds = time.monotonic() - t0
        for sid in out.report.recording:
            sink.keep_open(info.device_id, sid)
    out.seconds = time.monotonic() - t0
    return out


class SyncInterrupted(SyncError):
    """A sync that failed part way: the message says what arrived and how to resume."""

    def __init__(self, cause: SyncError, outcome: SyncOutcome | None):
        got = ""
        if outcome is not None and (outcome.imported or outcome.report.fetched_bytes):
            got = (f" ({len(outcome.imported)} session(s) stored, "
                   f"{outcome.report.fetched_bytes} bytes kept)")  # fmt: skip
        super().__init__(f"{cause}{got}; run `retrostep sync` again to resume")
        self.exit_code = cause.exit_code
        self.cause = cause
        self.outcome = outcome


def sync_device(store: Store, radio: Radio, device: str | None = None,
                timeout: float = DEFAULT_SCAN_S, on_total: Callable[[int], None] | None = None,
                on_progress: Callable[[int], None] | None = None) -> SyncOutcome:  # fmt: skip
    """Find the device (``device``: name or address; default: the one retrostep device
    heard within ``timeout`` s), authenticate with this computer's key, set its clock,
    fetch every new session into ``store``, verify, acknowledge. ``on_total(bytes)``
    once the device listed its sessions, ``on_progress(bytes)`` per piece received.

    A drop part way raises :class:`SyncInterrupted` (exit code 24) after keeping what
    arrived: the next call resumes there."""
    box: list[SyncOutcome] = []
    try:
        return asyncio.run(_sync(store, radio, device, timeout, on_total, on_progress, box))
    except SyncError as e:
        from .errors import LinkLost, SyncTimeout

        if isinstance(e, (LinkLost, SyncTimeout)):
            raise SyncInterrupted(e, box[0] if box else None) from e
        raise


# -- config ------------------------------------------------------------------------------------


def parse_assignments(items: tuple[str, ...] | list[str]) -> dict:
    """``KEY=VALUE`` strings into config values: numbers as numbers; ``program`` as
    ``backward:60,rest:30`` (or JSON); ``device_name`` as it is. UsageProblem if
    malformed or unknown."""
    out: dict = {}
    for item in items:
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep or not k:
            raise UsageProblem(f"{item!r}: expected KEY=VALUE (keys: {', '.join(cfg.FIELDS)})")
        if k not in cfg.FIELDS:
            raise UsageProblem(f"unknown config key {k!r} (keys: {', '.join(cfg.FIELDS)})")
        out[k] = _value(k, v.strip())
    return out


def _value(key: str, v: str):
    if key == "device_name":
        return v
    if key == "program":
        if v.startswith("["):
            try:
                return [tuple(x) for x in json.loads(v)]
            except (ValueError, TypeError) as e:
                raise UsageProblem(f"program: not a JSON list of [kind, seconds] ({e})") from e
        prog = []
        for part in filter(None, (p.strip() for p in v.split(","))):
            kind, _, secs = part.partition(":")
            try:
                prog.append((kind.strip(), int(secs)))
            except ValueError:
                raise UsageProblem(f"program: {part!r} is not KIND:SECONDS") from None
        return prog
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v  # validation names the field and what it must be


async def _config(radio: Radio, device: str | None, timeout: float, changes: dict | None):
    found = await _open(radio, device, timeout)
    async with connect(radio, found) as link, ProtocolClient(link) as pc:
        info = await pc.info()
        name = info.name or found.name
        await pc.authenticate(keys.key_for(info.device_id, name))
        keys.remember_name(info.device_id, found.name)
        conf = await pc.get_config()
        if changes is None:
            return name, conf
        new = {**conf, **changes}
        problems = cfg.validate(new)
        if problems:
            raise UsageProblem("invalid config: " + "; ".join(problems))
        try:
            await pc.set_config(new)
        except DeviceError as e:
            raise SyncError(f"{name} refused the config: {e.text or e}") from e
        return name, await pc.get_config()


def get_config(radio: Radio, device: str | None = None,
               timeout: float = DEFAULT_SCAN_S) -> tuple[str, dict]:  # fmt: skip
    """``(device name, its stored config)``."""
    return asyncio.run(_config(radio, device, timeout, None))


def set_config(radio: Radio, changes: dict, device: str | None = None,
               timeout: float = DEFAULT_SCAN_S) -> tuple[str, dict]:  # fmt: skip
    """Validate ``changes`` merged into the device's config here, send it (the device
    validates again and applies it at its next start); ``(name, config now stored)``."""
    problems = [p for p in cfg.validate({**cfg.defaults(), **changes})]
    if problems:
        raise UsageProblem("invalid config: " + "; ".join(problems))
    return asyncio.run(_config(radio, device, timeout, changes))
