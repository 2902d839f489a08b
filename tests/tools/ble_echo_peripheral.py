# MicroPython script (runs in the unix port with the simulated radio, not in CPython): a
# small BLE peripheral written against MicroPython's documented `bluetooth` API, the way
# the ble_simple_peripheral examples are. tests/test_sim_radio.py drives it with bleak.
#
# Service ECHO_SERVICE:
#   RX    write / write-without-response, 400-byte buffer: every write is echoed back
#         on TX as notifications of at most MTU-3 bytes; "!bye" disconnects,
#         "!indicate" indicates b"ind" on TX, "!update" does gatts_write(TX, b"upd",
#         send_update=True), "!mtu" starts an MTU exchange, "!off" turns the radio off.
#   TX    notify + indicate
#   INFO  read only: b"retrostep-echo v1"
#   SMALL read + write, the default 20-byte buffer
#   COUNT read only: how many central writes the IRQ handler has seen (ASCII), updated
#         in the handler itself
#   LOG   read + write, an 8-byte buffer in append mode (the handler leaves it alone)
# Advertising: flags, the service UUID and manufacturer data; the name in the scan
# response. Every radio event is printed as one line for the test to follow.
import asyncio
import sys
from binascii import hexlify

import bluetooth
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_MTU_EXCHANGED = const(21)

NAME = sys.argv[1] if len(sys.argv) > 1 else "rs-echo"
ADV_INTERVAL_US = 20_000

ECHO_SERVICE = bluetooth.UUID("7e0f0001-5d3a-4b8e-9c1f-2a6b8d3e4f50")
RX = (bluetooth.UUID("7e0f0002-5d3a-4b8e-9c1f-2a6b8d3e4f50"),
      bluetooth.FLAG_WRITE | bluetooth.FLAG_WRITE_NO_RESPONSE)  # fmt: skip
TX = (bluetooth.UUID("7e0f0003-5d3a-4b8e-9c1f-2a6b8d3e4f50"),
      bluetooth.FLAG_NOTIFY | bluetooth.FLAG_INDICATE)  # fmt: skip
INFO = (bluetooth.UUID(0x2A26), bluetooth.FLAG_READ)
SMALL = (bluetooth.UUID("7e0f0004-5d3a-4b8e-9c1f-2a6b8d3e4f50"),
         bluetooth.FLAG_READ | bluetooth.FLAG_WRITE)  # fmt: skip
COUNT = (bluetooth.UUID("7e0f0005-5d3a-4b8e-9c1f-2a6b8d3e4f50"), bluetooth.FLAG_READ)
LOG = (bluetooth.UUID("7e0f0006-5d3a-4b8e-9c1f-2a6b8d3e4f50"),
       bluetooth.FLAG_READ | bluetooth.FLAG_WRITE)  # fmt: skip
SERVICE = (ECHO_SERVICE, (RX, TX, INFO, SMALL, COUNT, LOG))


def ad_field(kind, payload):
    return bytes((len(payload) + 1, kind)) + payload


ADV = (ad_field(0x01, b"\x06")
       + ad_field(0x07, bytes(ECHO_SERVICE))
       + ad_field(0xFF, b"\xff\xff" + b"rs1"))  # fmt: skip
RESP = ad_field(0x09, NAME.encode())

ble = bluetooth.BLE()
events = []
wake = asyncio.ThreadSafeFlag()
handles = {}
writes = [0]


def irq(event, data):
    # Copy what is needed and return; the task does the work.
    if event == _IRQ_CENTRAL_CONNECT:
        conn, addr_type, addr = data
        events.append(("CONNECT", conn, addr_type, bytes(addr)))
    elif event == _IRQ_CENTRAL_DISCONNECT:
        conn, addr_type, addr = data
        events.append(("DISCONNECT", conn))
    elif event == _IRQ_GATTS_WRITE:
        conn, attr = data
        if attr != handles["log"]:  # a read would empty the append-mode buffer
            events.append(("WRITE", conn, attr, ble.gatts_read(attr)))
        writes[0] += 1
        ble.gatts_write(handles["count"], str(writes[0]))
    elif event == _IRQ_MTU_EXCHANGED:
        conn, mtu = data
        events.append(("MTU", conn, mtu))
    elif event == _IRQ_GATTS_INDICATE_DONE:
        conn, attr, status = data
        events.append(("INDICATE_DONE", conn, attr, status))
    wake.set()


def say(*words):
    print(" ".join(str(w) for w in words))


async def main():
    ble.active(True)
    ble.config(gap_name=NAME, mtu=247)
    ((rx, tx, info, small, count, log),) = ble.gatts_register_services((SERVICE,))
    handles.update(rx=rx, tx=tx, info=info, small=small, count=count, log=log)
    ble.gatts_set_buffer(log, 8, True)
    ble.gatts_write(count, b"0")
    ble.gatts_set_buffer(rx, 400)
    ble.gatts_write(info, b"retrostep-echo v1")
    ble.irq(irq)
    ble.gap_advertise(ADV_INTERVAL_US, ADV, resp_data=RESP)
    say("READY", hexlify(ble.config("mac")[1]).decode(), rx, tx, info, small)
    mtus = {}
    while True:
        await wake.wait()
        while events:
            ev = events.pop(0)
            kind = ev[0]
            if kind == "CONNECT":
                say("CONNECT", ev[1], ev[2], hexlify(ev[3]).decode())
            elif kind == "DISCONNECT":
                mtus.pop(ev[1], None)
                say("DISCONNECT", ev[1])
                ble.gap_advertise(ADV_INTERVAL_US)  # reuses the payloads
            elif kind == "MTU":
                mtus[ev[1]] = ev[2]
                say("MTU", ev[1], ev[2])
            elif kind == "INDICATE_DONE":
                say("INDICATE_DONE", ev[1], ev[2], ev[3])
            elif kind == "WRITE":
                conn, attr, value = ev[1], ev[2], ev[3]
                say("WRITE", conn, attr, len(value))
                if attr == rx:
                    command(conn, value, mtus.get(conn, 23))


def command(conn, value, mtu):
    tx = handles["tx"]
    if value == b"!bye":
        ble.gap_disconnect(conn)
    elif value == b"!indicate":
        ble.gatts_indicate(conn, tx, b"ind")
    elif value == b"!update":
        ble.gatts_write(tx, b"upd", True)
    elif value == b"!mtu":
        ble.gattc_exchange_mtu(conn)
    elif value == b"!off":
        ble.active(False)
        say("OFF", ble.active())
    else:
        step = mtu - 3
        for i in range(0, len(value), step):
            ble.gatts_notify(conn, tx, value[i : i + step])


asyncio.run(main())
