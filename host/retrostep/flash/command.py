"""The `retrostep flash` command's body: which board, a progress bar, the summary."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from ..errors import UsageProblem
from . import Options, flash, summary
from .ports import check_port, find_port


def default_sim_image() -> Path:
    """Where `retrostep flash --sim` keeps its virtual board's flash between runs."""
    env = os.environ.get("RETROSTEP_DATA_DIR")
    if env:
        return Path(env) / "virtual-board.img"
    import platformdirs

    return Path(platformdirs.user_data_dir("retrostep")) / "virtual-board.img"


class _Bar:
    """A click progress bar over the bytes of the files sent, made when the total is
    known; nothing when stderr is not a terminal."""

    def __init__(self, stack: ExitStack):
        self.stack = stack
        self.bar = None
        self.at = 0
        self.show = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.show or total <= 0:
            return
        if self.bar is None:
            self.bar = self.stack.enter_context(
                click.progressbar(length=total, label="sending", file=sys.stderr,
                                  show_pos=False, show_percent=True))  # fmt: skip
        self.bar.update(done - self.at)
        self.at = done


def run(port: str | None, sim: bool, image: str | None, dry_run: bool, full: bool,
        firmware: str | None, start_timeout: float, verbose: bool) -> list[str]:  # fmt: skip
    """Flash and return the summary lines (FlashError on failure)."""
    from ..sim import firmware_dir

    if sim and port:
        raise UsageProblem("--port and --sim exclude each other")
    if image and not sim:
        raise UsageProblem("--image goes with --sim (the virtual board's flash image)")
    fw = Path(firmware) if firmware else firmware_dir()

    def note(msg: str) -> None:
        click.echo(msg, err=True)

    with ExitStack() as stack:
        lines: list[str] = []
        if sim:
            from ..virtual_board import VirtualBoard

            img = Path(image) if image else default_sim_image()
            img.parent.mkdir(parents=True, exist_ok=True)
            board = stack.enter_context(VirtualBoard(img))
            port = board.port
            lines.append(f"virtual board image {img} (retrostep sim board --image {img})")
        elif port is None:
            port = find_port()
        assert port is not None
        check_port(port)
        opts = Options(port=port, firmware=fw, dry_run=dry_run, full=full,
                       start_timeout=start_timeout, progress=_Bar(stack),
                       log=note if verbose else None,
                       console=(lambda line: note("| " + line)) if verbose else None,
                       warn=lambda m: note(f"warning: {m}"))  # fmt: skip
        rep = flash(opts)
        return summary(rep) + lines
