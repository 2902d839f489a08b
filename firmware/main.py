"""Entry point: pick the board, start the app. The sim board (any platform but the
ESP32) takes its settings from the command line (see board_sim.from_args)."""

import asyncio
import sys


def pick_board():
    if sys.platform == "esp32":
        from retrostep_device import board_esp32

        return board_esp32.Board()
    from retrostep_device import board_sim

    return board_sim.from_args(sys.argv[1:])


def main():
    from retrostep_device.app import App

    board = pick_board()
    app = App(board)
    asyncio.run(app.run())
    if hasattr(board, "report"):  # the sim board prints what its motor and power did
        board.report()
    live = app.live
    print("L %d %d %d %d %d" % (live.forward, live.backward, live.sway_alerts,
                                live.config_problems, live.errors))


if __name__ == "__main__":
    main()
