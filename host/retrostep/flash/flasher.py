"""`retrostep flash`: the steps, in the order that keeps the board bootable throughout.

1. port (given, or the single USB board), probe: MicroPython, version, .mpy ABI, space;
2. build for that ABI and architecture (:mod:`build`), plan against what the board
   holds, hashed on the board (:mod:`plan`);
3. identity: name and key on first flash (:mod:`provision`; the host record first);
4. transfer into the inactive slot only: its manifest removed first (an incomplete slot
   has none), stale files removed, each file kept / copied on the board / sent;
5. verify every file's SHA-256 on the board, then write the slot's manifest;
6. loader files (temp file + hash check + rename) and the switch: ``/fw/state`` renamed
   into place names the new slot, on trial, the old one as previous. The loader goes
   first when a state exists (the new loader runs the old slot too), after the switch
   on a first install (an older main.py ignores the state);
7. soft reset, watch the console for the loader's verdict, read the state back.

A cut anywhere before the rename of step 6 leaves the state naming the old slot: the
board boots the old version and the next flash reuses whatever arrived intact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import build as b
from . import plan as p
from . import provision
from .device import Connection, Probe
from .errors import IncompatibleBoard, NotEnoughSpace, NotMicroPython, StartFailed, VerifyError

MIN_VERSION = (1, 23, 0)  # `vfs`, asyncio as today, .mpy v6.3
STATE_VERSION = 1
RUNNING = "retrostep: running "
ROLLED_BACK = "retrostep: rolled back to "
NO_PREVIOUS = "no previous version: "


@dataclass
class Options:
    port: str
    firmware: Path
    dry_run: bool = False
    full: bool = False
    start_timeout: float = 30.0
    progress: Callable[[int, int], None] | None = None  # (bytes done, total) of files sent
    log: Callable[[str], None] | None = None  # step messages
    console: Callable[[str], None] | None = None  # the board's console during the start
    warn: Callable[[str], None] | None = None


@dataclass
class Report:
    port: str
    probe: Probe
    build: b.Build
    plan: p.Plan
    identity: provision.Decision
    record_path: Path | None = None
    dry_run: bool = False
    bytes_sent: int = 0  # every byte written to the port
    payload_bytes: int = 0  # bytes of the files sent (as they are on the board)
    wire_payload_bytes: int = 0  # the same, as sent (deflated where smaller; no base64)
    seconds: float = 0.0  # connect to report
    transfer_seconds: float = 0.0  # from the first change on the board to the switch
    verified: int = 0
    sent_files: list[str] = field(default_factory=list)  # written over the wire, in order
    previous: str | None = None  # label of the version kept as previous
    outcome: str = ""  # "running", "up to date", "dry run"
    state: dict = field(default_factory=dict)
    console: list[str] = field(default_factory=list)


def check_board(probe: Probe, build_abi: tuple[int, int], port: str) -> b.Abi:
    """The board's ABI, or a clear refusal."""
    if probe.name != "micropython":
        raise NotMicroPython(f"the board on {port} runs {probe.name}, not MicroPython")
    if probe.version < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION[:2]))
        raise IncompatibleBoard(f"MicroPython {probe.version_text} on the board is too old: "
                                f"the firmware needs {need} or later")  # fmt: skip
    if probe.mpy is None:
        raise IncompatibleBoard(f"MicroPython {probe.version_text} on the board cannot load "
                                ".mpy files (built without persistent code)")  # fmt: skip
    abi = b.Abi.from_sys_mpy(probe.mpy)
    if (abi.version, abi.sub) != build_abi:
        have = f"v{build_abi[0]}.{build_abi[1]}"
        raise IncompatibleBoard(
            f".mpy ABI mismatch: MicroPython {probe.version_text} on the board loads .mpy "
            f"{abi.label}, this mpy-cross emits {have} (native code needs an exact match): "
            f"install the mpy-cross of the board's MicroPython release, or update the board")
    if not probe.sha256:
        raise IncompatibleBoard("the board's MicroPython has no hashlib.sha256: the flasher "
                                "verifies every file with it")  # fmt: skip
    return abi


def parse_state(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        st = json.loads(text)
    except ValueError:
        return None
    return st if isinstance(st, dict) and st.get("active") in ("a", "b") else None


def slot_path(slot: str, rel: str = "") -> str:
    return f"/fw/{slot}" + (f"/{rel}" if rel else "")


class Flasher:
    def __init__(self, opts: Options):
        self.o = opts
        self.conn: Connection | None = None

    def _log(self, msg: str) -> None:
        if self.o.log:
            self.o.log(msg)

    def run(self) -> Report:
        t0 = time.monotonic()
        exe = b.mpy_cross_executable()
        desc, mv, ms = b.compiler_abi(exe)
        self._log(f"connecting to {self.o.port}")
        conn = self.conn = Connection(self.o.port)
        try:
            conn.enter_raw_repl()
            probe = conn.probe()
            abi = check_board(probe, (mv, ms), self.o.port)
            self._log(f"board: MicroPython {probe.version_text} ({probe.platform}, .mpy "
                      f"{abi.label}, {abi.arch or 'no native code'})")  # fmt: skip
            bld = b.build(self.o.firmware, abi.arch, exe=exe)
            state = parse_state(probe.state)
            found = conn.listings({"a": "/fw/a", "b": "/fw/b"}, {"root": ["/boot.py", "/main.py"]})
            if state is None and probe.state is not None:  # unreadable: as the loader does
                complete = [s for s in "ab" if "manifest.json" in found[s]]
                state = {"active": complete[0], "version": None} if complete else None
            slots = {s: p.Listing(found[s]) for s in "ab"}
            plan = p.make_plan(bld, state, slots, p.Listing(found["root"]), full=self.o.full)
            decision = provision.decide(probe.uid, probe.device, self.o.warn,
                                        fix=not self.o.dry_run)  # fmt: skip
            rep = Report(self.o.port, probe, bld, plan, decision, dry_run=self.o.dry_run,
                         previous=state.get("version") if state else None)  # fmt: skip
            if self.o.dry_run:
                rep.outcome = "dry run"
            elif plan.up_to_date:
                rep.outcome = "up to date"
                self._provision(rep)
            else:
                self._check_space(probe, bld, plan, slots)
                self._install(rep, state, slots)
            rep.bytes_sent = conn.bytes_sent
            rep.seconds = time.monotonic() - t0
            return rep
        finally:
            conn.close()

    # -- steps -------------------------------------------------------------------------

    def _check_space(self, probe: Probe, bld: b.Build, plan: p.Plan,
                     slots: dict[str, p.Listing]) -> None:  # fmt: skip
        if probe.bsize is None or probe.bfree is None:
            if self.o.warn:
                self.o.warn("the board does not report its free space; not checked")
            return
        need, freed = p.space_needed(bld, plan, slots, probe.bsize)
        have = probe.bfree + freed
        if need > have:
            kb = probe.bsize / 1024
            raise NotEnoughSpace(
                f"not enough space on the board: the new version needs about "
                f"{need * kb:.0f} KB, {have * kb:.0f} KB can be used "
                f"({probe.bfree * kb:.0f} KB free); sync and delete old session logs, "
                f"or flash with a smaller build")

    def _provision(self, rep: Report) -> None:
        d = rep.identity
        conn = self.conn
        assert conn is not None
        if d.write_host:  # first: a key must never exist only on the device
            rep.record_path = provision.save_record(
                d.identity, {"firmware": rep.build.label, "port": rep.port})
        else:
            rep.record_path = provision.record_path(d.identity.device_id)
        if d.write_device:
            conn.put_atomic(provision.DEVICE_FILE, d.identity.device_json())

    def _install(self, rep: Report, state: dict | None, slots: dict[str, p.Listing]) -> None:
        conn = self.conn
        assert conn is not None
        bld, plan = rep.build, rep.plan
        tgt, act = plan.target, plan.active
        t0 = time.monotonic()
        sent_before = conn.bytes_sent
        # 4. the target slot becomes "incomplete" before anything in it changes; a state
        # naming it as the fallback stops doing so first
        if state and state.get("prev") == tgt:
            st = dict(state, prev=None, prev_version=None)
            conn.put_atomic("/fw/state", json.dumps(st).encode())
            self._log(f"slot {tgt} held the previous version "
                      f"{state.get('prev_version')}: overwriting it")  # fmt: skip
        conn.remove([slot_path(tgt, "manifest.json")] + [slot_path(tgt, x) for x in plan.remove])
        wire: dict[str, bytes | None] = {}  # path -> deflated form, None: sent as is
        for path in plan.paths(p.SEND):
            z = bld.files[path].deflated() if rep.probe.deflate else None
            wire[path] = z if z is not None and len(z) < bld.files[path].size else None
        total = sum(len(z) if z is not None else bld.files[x].size for x, z in wire.items())
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            done += n
            if self.o.progress:
                self.o.progress(done, total)

        if self.o.progress:
            self.o.progress(0, total)
        for path, z in wire.items():
            conn.write_file(slot_path(tgt, path), bld.files[path].data, progress, z,
                            b.DEFLATE_WBITS)  # fmt: skip
            rep.payload_bytes += bld.files[path].size
            rep.sent_files.append(path)
        rep.wire_payload_bytes = total
        if plan.paths(p.COPY):
            assert act is not None
            conn.copy([(slot_path(act, x), slot_path(tgt, x)) for x in plan.paths(p.COPY)])
        # 5. verify on the board, then mark the slot complete
        self._log(f"verifying slot {tgt} on the board (SHA-256)")
        got = conn.listings({"t": slot_path(tgt)}, {})["t"]
        bad = [x for x, e in bld.files.items() if got.get(x, (0, ""))[1] != e.sha256]
        extra = [x for x in got if x not in bld.files]
        if bad or extra:
            raise VerifyError(f"verification failed in slot {tgt}: "
                              + ", ".join([f"{x} differs" for x in bad]
                                          + [f"{x} unexpected" for x in extra]))  # fmt: skip
        rep.verified = len(got)
        conn.put_atomic(slot_path(tgt, "manifest.json"), bld.manifest_bytes())
        self._provision(rep)
        # 6. loader and switch
        prev = act if act is not None and "manifest.json" in slots[act].files else None
        new_state = {"v": STATE_VERSION, "active": tgt, "prev": prev, "trial": True,
                     "boots": 0, "version": bld.label,
                     "prev_version": state.get("version") if prev and state else None,
                     "rollback": None}  # fmt: skip
        rep.previous = new_state["prev_version"]
        switch = json.dumps(new_state).encode()
        if state is None:
            conn.put_atomic("/fw/state", switch)
        for name in plan.loader:
            conn.put_atomic("/" + name, bld.loader[name].data)
        if state is not None:
            conn.put_atomic("/fw/state", switch)
        rep.transfer_seconds = time.monotonic() - t0
        self._log(f"switched to slot {tgt} ({conn.bytes_sent - sent_before} bytes sent); "
                  "restarting the board")  # fmt: skip
        # 7. start, watch, read back
        def verdict(line: str) -> bool:
            return line.startswith((RUNNING, ROLLED_BACK)) or (
                line.startswith("retrostep: ") and NO_PREVIOUS in line)

        _, rep.console = conn.soft_reset_and_watch(verdict, self.o.start_timeout,
                                                   self.o.console)  # fmt: skip
        conn.enter_raw_repl()
        st = parse_state((conn.read_file("/fw/state") or b"").decode()) or {}
        rep.state = st
        self._verdict(rep, st, rep.console)

    def _verdict(self, rep: Report, st: dict, lines: list[str]) -> None:
        label = rep.build.label
        rb = st.get("rollback") or {}
        if rb.get("from") == label:
            if rb.get("to"):
                raise StartFailed(f"the new version {label} failed to start and the board "
                                  f"rolled back to {rb['to']}: {rb.get('error')}")  # fmt: skip
            raise StartFailed(f"the new version {label} failed to start (no previous version "
                              f"to go back to): {rb.get('error')}")  # fmt: skip
        if st.get("version") == label and st.get("active") == rep.plan.target:
            if not st.get("trial"):
                rep.outcome = "running"
                return
            tail = " | ".join(x for x in lines[-3:] if x.strip())
            raise StartFailed(
                f"{label} is installed but did not report a healthy start within "
                f"{self.o.start_timeout:.0f} s (it stays on trial: the board goes back to "
                f"the previous version after repeated failed starts). Console: {tail}")
        raise StartFailed(f"after the switch the board's state names "
                          f"{st.get('version')!r}, not {label}")  # fmt: skip
