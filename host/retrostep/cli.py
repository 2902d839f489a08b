"""The `retrostep` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import RetrostepError


def _warn(msg: str) -> None:
    click.echo(f"warning: {msg}", err=True)


class _Group(click.Group):
    """Turns RetrostepError into a one-line message and its exit code (no traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RetrostepError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(e.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="retrostep")
def main() -> None:
    """Companion tool for the retrostep backward-walking trainer."""


@main.command()
@click.argument("traces", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Write <stem>.json per input here."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
@click.option(
    "--runtime",
    type=click.Choice(["cpython", "micropython"]),
    default="cpython",
    show_default=True,
    help="Run the pipeline here or inside the MicroPython unix port.",
)
@click.option("--sway-limit", type=click.FloatRange(1, 45), default=10.0, show_default=True,
              help="Sway alert limit in degrees.")
def analyze(traces, out_dir, as_json, runtime, sway_limit):
    """Run the firmware gait pipeline on recorded traces (trace format v1)."""
    from .analyze import analyze_traces, human_summary, load_traces, write_outputs
    from .pipeline_io import PipelineConfig
    from .trace import trace_stem

    loaded, errors = load_traces(list(traces), _warn)
    for e in errors:
        click.echo(f"Error: {e}", err=True)
    results = analyze_traces(loaded, runtime, PipelineConfig(sway_limit_deg=sway_limit))
    if out_dir:
        for path in write_outputs(results, Path(out_dir)):
            click.echo(str(path), err=not as_json)
    elif as_json:
        docs = [r.to_json() for r in results]
        click.echo(json.dumps(docs[0] if len(docs) == 1 and not errors else docs, indent=1))
    if not as_json or out_dir:
        for r in results:
            click.echo(human_summary(trace_stem(r.source), r))
    if errors:
        sys.exit(2)


if __name__ == "__main__":
    main()
