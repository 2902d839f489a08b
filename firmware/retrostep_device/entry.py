"""The app's entry point: pick the board, run the app and the BLE service, print the
live counters.

Called by the loader (``/main.py``), which imports this module from the active firmware
slot (or from ``sys.path`` when there are no slots, as under ``retrostep sim run``). The
sim board (any platform but the ESP32) takes its settings from the command line (see
``board_sim.from_args``).

BLE (``ble_service.serve``) runs as a task next to the app; where the runtime has no
``bluetooth`` module (``retrostep sim run``) it says so in one line and the app runs
alone. A failing radio never stops the app: it is reported and the app keeps counting.

``started``: called once, without arguments, when the app has processed its first IMU
batch; the loader uses it to end the trial of a freshly flashed version.
"""

import asyncio
import sys


def pick_board():
    if sys.platform == "esp32":
        from retrostep_device import board_esp32

        return board_esp32.Board()
    from retrostep_device import board_sim

    return board_sim.from_args(sys.argv[1:])


def main(started=None):
    from retrostep_device.app import App

    board = pick_board()
    app = App(board, started=started)
    asyncio.run(_run(app, board))
    if hasattr(board, "report"):  # the sim board prints what its motor and power did
        board.report()
    live = app.live
    print("L %d %d %d %d %d" % (live.forward, live.backward, live.sway_alerts,
                                live.config_problems, live.errors))


async def _ble(app, board):
    # The radio is picked here, like the board, and passed in: without a `bluetooth`
    # module the BLE code (sync server, protocol) is never imported, which keeps its
    # ~30 KB of bytecode off a small heap (the sim board's soak runs at 192 KB).
    try:
        import bluetooth
    except ImportError:
        print("ble: no bluetooth module, sync is off")
        return None
    from retrostep_device import ble_service

    try:
        return await ble_service.serve(app, board, bluetooth)
    except Exception as e:  # no radio after all (OSError from active()): walk on without
        print("ble: off:", repr(e))
        return None


async def _run(app, board):
    ble = asyncio.create_task(_ble(app, board))
    try:
        await app.run()
    finally:
        if ble.done():  # running: radio off (centrals dropped), as a reset would
            svc = await ble
            if svc is not None:
                await svc.stop()
        else:  # still waiting for the app's setup
            ble.cancel()
