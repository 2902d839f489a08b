"""What syncing an hour of walking costs on the air: the real protocol counted, the radio
modelled on paper (docs/sync-protocol.md, "Cost on the air", states the model).

The ATT traffic is not estimated: one session holding an hour of walking is synced for
real (the firmware's SyncServer on a SessionStore, the host's pull_sessions, in-process
over LoopbackLink) at ATT MTU 23, 185 and 247, and every ATT PDU is counted. Only the
link layer below is a model: L2CAP and LL framing, the LE 1M PHY, a connection interval
and a number of packets per connection event. The simulated radio (bumble) has no
air-time model, so it cannot give these figures.

Called by bench/run.py (``sync_section``); alone:

    python -m bench.sync_model
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "firmware") not in sys.path:  # the device package is not installed
    sys.path.insert(0, str(ROOT / "firmware"))

from retrostep.sync.loopback import LoopbackLink  # noqa: E402
from retrostep.sync.protocol_client import ProtocolClient  # noqa: E402
from retrostep.sync.pull import MemorySink, pull_sessions  # noqa: E402
from retrostep_core import records as r  # noqa: E402
from retrostep_core import sync_protocol as sp  # noqa: E402

# LE 1M PHY, unencrypted link (the protocol authenticates, BLE does not encrypt)
US_PER_BYTE = 8
LL_FRAMING = 10  # preamble 1 + access address 4 + LL header 2 + CRC 3
L2CAP_HEADER = 4
T_IFS_US = 150
EMPTY_PDU_US = LL_FRAMING * US_PER_BYTE  # the central's poll when it has nothing to send
DLE = 251  # LL payload with Data Length Extension (ESP32-S3 and current laptops/phones)
NO_DLE = 27  # BLE 4.0/4.1 LL payload
DISCOVERY_EXCHANGES = 14  # services, characteristics x3, descriptors, 2 CCCD writes, MTU...
MTUS = (23, 185, 247)
CONNECTIONS = ((15.0, 4), (30.0, 6), (7.5, 2))  # (interval ms, LL packets per event)

KEY = bytes(range(32))


def hour_log() -> bytes:
    """An hour of walking as the log-format budget describes it (docs/log-format.md,
    "Size per hour"): 100 steps/min, a 5 min forward / 1 min backward program, a summary
    every second, 30 sway alerts, steps flushed with every SECONDS frame."""
    e = r.Encoder()
    out = [bytes(e.header(1, 0, 52000, 1000, 0, 1, 0x89ABCDEF, "0.1.0"))]
    t_step = 300
    for s in range(3600):
        kind = r.KIND_BACKWARD if s % 360 >= 300 else r.KIND_FORWARD
        if s % 360 in (0, 300):
            out.append(bytes(e.interval(1000 * s, kind, 0 if s % 360 == 0 else 1, s // 360)))
        fwd = bwd = 0
        while t_step < 1000 * (s + 1):
            v = e.add_step(t_step, -1 if kind == r.KIND_BACKWARD else 1)
            if v is not None:
                out.append(bytes(v))
            bwd += kind == r.KIND_BACKWARD
            fwd += kind != r.KIND_BACKWARD
            t_step += 600
        if s % 120 == 60:
            out.append(bytes(e.sway_alert(1000 * s + 400, 1, 112)))
        v = e.add_second(1000 * s, fwd, bwd, 1000, 55, 140, True, kind)
        if v is not None:
            out.append(bytes(v))
            v = e.flush_steps()
            if v is not None:
                out.append(bytes(v))
    out.append(bytes(e.end(3600000, 5000, 1000, 30, 3600, 600, r.END_BUTTON)))
    return b"".join(out)


@dataclass
class Traffic:
    """ATT PDUs of one whole sync: sizes (ATT bytes: opcode + handle + value, or the
    1-byte Write Response) and the requests, which each cost a round trip."""

    mtu: int
    log_bytes: int
    up: list[int]  # Write Requests, central -> device
    down: list[int]  # Write Responses and notifications, device -> central
    requests: int  # protocol requests (one may span several writes)
    write_pdus: int


def measure(log: bytes, mtu: int) -> Traffic:
    """Sync one session holding ``log`` at this MTU (for real, in-process) and count."""
    from retrostep_device.app import Live
    from retrostep_device.storage import SessionStore
    from retrostep_device.sync_server import SyncServer

    with tempfile.TemporaryDirectory(prefix="retrostep-syncmodel-") as tmp:
        root = Path(tmp) / "logs"
        root.mkdir()
        (root / "1.rsl").write_bytes(log)
        store = SessionStore(str(root))
        server = SyncServer(store, Live(), dict, lambda data: None, KEY, lambda s: None,
                            lambda n: None, __import__("os").urandom, b"model")  # fmt: skip
        link = LoopbackLink(server, mtu)

        async def go() -> ProtocolClient:
            async with ProtocolClient(link) as client:
                await pull_sessions(client, KEY, MemorySink())
                return client

        client = asyncio.run(go())
        assert store.list_sessions()[0][2], "the session was not acknowledged"
    up = [sp.ATT_HEADER + n for n in link.write_sizes]
    down = [1] * link.writes + [sp.ATT_HEADER + n for n in link.notify_sizes]
    # requests: INFO, AUTH_BEGIN, AUTH_FINISH, SET_TIME, LIST, READ x k, VERIFY, ACK
    requests = 7 + math.ceil(len(log) / sp.READ_MAX)
    assert client.writes == link.writes
    return Traffic(mtu, len(log), up, down, requests, link.writes)


def ll_packets(att: int, ll_max: int) -> list[int]:
    """LL payload sizes carrying one ATT PDU (with its L2CAP header)."""
    n = att + L2CAP_HEADER
    out = [ll_max] * (n // ll_max)
    if n % ll_max:
        out.append(n % ll_max)
    return out


def on_air(att_sizes: list[int], ll_max: int) -> tuple[int, int]:
    """(LL packets, bytes on air) of these ATT PDUs."""
    pk = [p for a in att_sizes for p in ll_packets(a, ll_max)]
    return len(pk), sum(LL_FRAMING + p for p in pk)


def transfer_time(t: Traffic, ll_max: int, interval_ms: float, per_event: int) -> float:
    """Seconds for the sync's requests and responses (connection set up, GATT known).

    Model: a write (with response) goes out in one connection event and its Write
    Response comes in the next; a response's notifications start in that event, up to
    ``per_event`` LL packets (fewer if they do not fit the interval) per event; the next
    request goes out in the event after the last notification. So each write costs two
    events, and each request one more plus its notifications' events."""
    pkt_us = (LL_FRAMING + ll_max) * US_PER_BYTE + 2 * T_IFS_US + EMPTY_PDU_US
    cap = max(1, min(per_event, int(interval_ms * 1000 // pkt_us)))
    events = 2 * t.write_pdus + t.requests
    notify = [a for a in t.down if a > 1]
    ll = sum(len(ll_packets(a, ll_max)) for a in notify)
    events += math.ceil(ll / cap)
    return events * interval_ms / 1000


def setup_time(interval_ms: float, adv_interval_ms: float = 500.0) -> float:
    """Seconds from "sync" to the first request: half an advertising interval to be
    seen, one to connect, then GATT discovery, MTU exchange and subscribing at two
    events each (no GATT cache)."""
    return adv_interval_ms / 2000 + interval_ms / 1000 * (1 + 2 * DISCOVERY_EXCHANGES)


def model(log: bytes | None = None) -> list[dict]:
    """One row per (MTU, LL payload): the counts and times for syncing ``log``."""
    log = log if log is not None else hour_log()
    rows = []
    for mtu in MTUS:
        t = measure(log, mtu)
        for ll_max in (NO_DLE,) if mtu == 23 else (DLE, NO_DLE):
            pk_up, air_up = on_air(t.up, ll_max)
            pk_down, air_down = on_air(t.down, ll_max)
            att_bytes = sum(t.up) + sum(t.down)
            rows.append({
                "mtu": mtu, "ll_max": ll_max, "log_bytes": len(log),
                "att_pdus": len(t.up) + len(t.down), "notifications": len(t.down) - t.write_pdus,
                "writes": t.write_pdus, "att_bytes": att_bytes, "ll_packets": pk_up + pk_down,
                "air_bytes": air_up + air_down,
                "att_efficiency": len(log) / att_bytes,
                "air_efficiency": len(log) / (air_up + air_down),
                "times": [transfer_time(t, ll_max, ci, n) for ci, n in CONNECTIONS],
            })  # fmt: skip
    return rows


def sync_section(log: bytes | None = None) -> list[str]:
    """The benchmark section (markdown lines) for bench/run.py."""
    log = log if log is not None else hour_log()
    rows = model(log)
    conn = ", ".join(f"{ci:g} ms × {n}" for ci, n in CONNECTIONS)
    lines = [
        "## Sync: cost on the air per hour of walking",
        "",
        f"One session holding an hour of walking ({len(log):,} B, the log-format budget "
        "hour) synced for real by `bench/sync_model.py`: the firmware's SyncServer on a "
        "SessionStore and the host's `pull_sessions` (INFO, mutual authentication, "
        "SET_TIME, LIST, READ, VERIFY, ACK) over an in-process link that counts every ATT "
        "PDU. Below ATT it is a model (docs/sync-protocol.md, \"Cost on the air\"): L2CAP "
        "4 B, LL framing 10 B per packet on the LE 1M PHY, unencrypted; LL payload 251 B "
        "with Data Length Extension, 27 B without. Times: the requests and responses "
        f"only, for connection interval × LL packets per event = {conn}; add about "
        f"{setup_time(15.0):.2f} s (15 ms) / {setup_time(30.0):.2f} s (30 ms) to find, "
        "connect and discover the services.",
        "",
        "| ATT MTU | LL payload | ATT PDUs (notifications) | ATT bytes | LL packets | "
        "bytes on air | log / ATT bytes | log / air bytes | "
        + " | ".join(f"time @ {ci:g} ms × {n}" for ci, n in CONNECTIONS) + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(CONNECTIONS),
    ]
    for x in rows:
        times = " | ".join(f"{s:.2f} s" for s in x["times"])
        lines.append(
            f"| {x['mtu']} | {x['ll_max']} | {x['att_pdus']:,} ({x['notifications']:,}) | "
            f"{x['att_bytes']:,} | {x['ll_packets']:,} | {x['air_bytes']:,} | "
            f"{100 * x['att_efficiency']:.1f} % | {100 * x['air_efficiency']:.1f} % | "
            f"{times} |"
        )
    best = next(x for x in rows if x["mtu"] == 247 and x["ll_max"] == DLE)
    worst = rows[0]
    lines += [
        "",
        "The protocol's own overhead is 1 B per notification (fragment header), 5 B per "
        f"response and a few small requests; a READ returns up to {sp.READ_MAX // 1024} KiB. "
        "The rest is ATT (3 B per PDU), L2CAP (4 B) and the link layer (10 B per packet): "
        f"all of it together is {100 * (1 - worst['air_efficiency']):.0f} % of the bytes on "
        f"air at MTU 23 and {100 * (1 - best['air_efficiency']):.0f} % at MTU 247 with DLE. "
        "Without DLE a 247-byte ATT PDU travels as 10 LL packets: a large MTU alone saves "
        "ATT headers, not air time.",
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(sync_section()))
