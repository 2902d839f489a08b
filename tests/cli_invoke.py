"""Invoke the `retrostep` CLI in process with stderr kept apart (shared by tests)."""

from click.testing import CliRunner

from retrostep.cli import main


def invoke(*args):
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args])
