"""The app's entry point: pick the board, run the app, print the live counters.

Called by the loader (``/main.py``), which imports this module from the active firmware
slot (or from ``sys.path`` when there are no slots, as under ``retrostep sim run``). The
sim board (any platform but the ESP32) takes its settings from the command line (see
``board_sim.from_args``).

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
    asyncio.run(app.run())
    if hasattr(board, "report"):  # the sim board prints what its motor and power did
        board.report()
    live = app.live
    print("L %d %d %d %d %d" % (live.forward, live.backward, live.sway_alerts,
                                live.config_problems, live.errors))
