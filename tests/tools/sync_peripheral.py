# MicroPython script (the unix port with the simulated radio, not CPython): the firmware's
# BLE sync service (retrostep_device.ble_service + sync_server) over the session store in
# DIR/logs, with the identity DIR/device.json and the config DIR/config.bin. Prints
# "READY" when advertising, "CLOCK s" when the host sets the clock, "BUZZ n".
# Usage: micropython sync_peripheral.py DIR   (tests/test_sync_sim_radio.py)
import asyncio
import sys

import bluetooth

from retrostep_device import ble_service as bs
from retrostep_device.app import Live
from retrostep_device.storage import SessionStore
from retrostep_device.sync_server import SyncServer

root = sys.argv[1]
live = Live()
live.battery_mv = 3900
live.forward = 1234
live.backward = 321
dev_id, name, key = bs.load_identity(root + "/device.json")
conf = bs.ConfigFile(root + "/config.bin")


def set_clock(s):
    print("CLOCK", s)


def buzz(n):
    print("BUZZ", n)


server = SyncServer(SessionStore(root + "/logs"), live, conf.load, conf.save, key, set_clock,
                    buzz, bs._random_bytes, dev_id, "retrostep 0.1.0", bs.MODEL,
                    default_name=name)  # fmt: skip


async def main():
    bs.BleService(bluetooth, server, live, "retrostep 0.1.0", adv_interval_us=20000).start()
    print("READY")
    while True:
        await asyncio.sleep(1)


asyncio.run(main())
