"""The `retrostep` command line."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

import click

from . import __version__
from .errors import RetrostepError, UsageProblem


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
@click.option("--db", "db_path", type=click.Path(dir_okay=False), metavar="PATH",
              help="Session store file. Default: $RETROSTEP_DB, else sessions.sqlite3 in "
                   "the user data directory.")  # fmt: skip
@click.pass_context
def main(ctx: click.Context, db_path: str | None) -> None:
    """Companion tool for the retrostep backward-walking trainer."""
    ctx.ensure_object(dict)["db"] = db_path  # read by the session store commands


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
    """Run the firmware gait pipeline on recorded traces (trace format v1).

    \b
    --json prints, for one input, one object:
      {"steps": [...], "sway_alerts": [...], "summary": {...}}
    and for several inputs a list of such objects, each with an added
    "source": <path> key (in input order; unreadable inputs are left out).

    An unreadable trace is reported on stderr as one "Error: <file>:<line>: ..." line;
    the other traces are still analyzed and the exit code is 2.
    """
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
        if len(traces) > 1:
            click.echo(json.dumps([{"source": r.source, **r.to_json()} for r in results], indent=1))
        elif results:
            click.echo(json.dumps(results[0].to_json(), indent=1))
    if not as_json or out_dir:
        # With --json, stdout carries only machine-readable output (paths or JSON).
        for r in results:
            click.echo(human_summary(trace_stem(r.source), r), err=as_json)
    if errors:
        sys.exit(2)


# --------------------------------------------------------------------------- synth


def _segment_duration(seg: dict) -> float:
    """Planned duration of a synth segment in s (turns estimated as the synthesizer does)."""
    act = seg.get("activity")
    if "duration" in seg:
        return float(seg["duration"])
    if act == "turn":
        return min(max(0.8 + abs(float(seg.get("angle_deg", 90.0))) / 90.0 * 0.8, 1.0), 3.0) + 1.1
    if act == "turn_in_place":
        return 3.5
    return {"stand": 5.0, "sit": 20.0, "walk": 30.0}.get(act, 10.0)


def describe_case(kwargs: dict) -> str:
    """One line about a benchmark case: rate, wearer, duration and what happens."""
    segs = kwargs["segments"]
    walk = {"forward": 0.0, "backward": 0.0}
    counts: dict[str, int] = {}
    n_sway = 0
    for seg in segs:
        act = seg["activity"]
        if act == "walk":
            walk[seg.get("direction", "forward")] += _segment_duration(seg)
            n_sway += len(seg.get("sway", []))
            if seg.get("treadmill"):
                counts["treadmill"] = 1
        elif act in ("turn", "turn_in_place", "sit", "fidget"):
            counts[act] = counts.get(act, 0) + 1
    parts = [f"{d[0]}wd {s:.0f} s" for d, s in walk.items() if s]
    labels = {"turn": "turn(s)", "turn_in_place": "turn(s) in place", "sit": "sit(s)",
              "fidget": "fidgeting bout(s)"}  # fmt: skip
    parts += [a if a == "treadmill" else f"{n} {labels[a]}" for a, n in counts.items()]
    if n_sway:
        parts.append(f"{n_sway} sway episode(s)")
    duration = sum(_segment_duration(s) for s in segs)
    person = f"{kwargs.get('person_kind', 'adult')} {kwargs.get('person_seed', 1)}"
    what = ", ".join(parts) if parts else "no walking"
    return f"{kwargs['fs_hz']:>3g} Hz  {person:<9} ~{duration:>3.0f} s  {what}"


def _select_cases(names: tuple[str, ...]) -> list[tuple[str, dict]]:
    """The suite cases named (all when none), in the order asked; unknown -> UsageProblem."""
    import difflib

    from .synth import benchmark_suite

    suite = dict(benchmark_suite())
    if not names:
        return list(suite.items())
    for name in names:
        if name not in suite:
            close = difflib.get_close_matches(name, suite, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageProblem(
                f"unknown benchmark case {name!r} ({hint}'retrostep synth --list' shows them)"
            )
    return [(n, suite[n]) for n in dict.fromkeys(names)]


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Directory for <name>.csv.gz and <name>.truth.json.")
@click.option("--case", "cases", multiple=True, metavar="NAME",
              help="Only this benchmark case (repeatable). Default: the whole suite.")
@click.option("--list", "list_only", is_flag=True, help="List the cases and exit.")
def synth(out_dir, cases, list_only):
    """Write the synthetic benchmark suite (or some of its cases) as traces.

    Each case becomes <name>.csv.gz (trace v1) and <name>.truth.json (ground truth).
    The trace paths are printed on stdout, one a line, so they can be passed on:

    \b
      retrostep analyze $(retrostep synth --out traces/ --case bwd_normal_A1)
    """
    selected = _select_cases(cases)
    if list_only:
        width = max(len(n) for n, _ in selected)
        for name, kwargs in selected:
            click.echo(f"{name:<{width}}  {describe_case(kwargs)}")
        return
    if not out_dir:
        raise click.UsageError("--out DIR is required (or use --list)")
    from .synth import write_suite

    out = Path(out_dir)
    names = [n for n, _ in selected]
    paths: list[Path] = []
    progress = click.progressbar(
        names,
        label="synthesizing",
        file=sys.stderr,
        item_show_func=lambda n: n or "",
    )
    with progress if sys.stderr.isatty() else nullcontext(names) as bar:
        for name in bar:
            paths += write_suite(out, names=[name])
    for path in paths:
        click.echo(str(path))


# --------------------------------------------------------------------------- demo


@main.group(invoke_without_command=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/week",
              show_default=True, help="Where the demo's image, store and report go.")
@click.option("--scan", "scan_s", type=click.FloatRange(0.5), default=2.0, show_default=True,
              metavar="S", help="How long the sync listens for the device.")
@click.pass_context
def demo(ctx, out_dir, scan_s):
    """A week of training from device to report, all on simulated hardware.

    Installs the firmware on a blank virtual board (`retrostep flash`), records six days
    of synthesized interval walks with the firmware on the sim board, boots the device
    with its simulated radio, syncs it into a new session store over BLE (`retrostep
    sync`), then prints the sessions and the weekly progress and writes an HTML report.
    Everything (image, keys, store, report) stays in --out.

    `retrostep demo engine` is the gait engine's own demo (accuracy against ground truth).
    """
    if ctx.invoked_subcommand is not None:
        return
    from .companion_cli import progress_cmd, sessions_cmd
    from .week_demo import DemoPaths, run

    paths = DemoPaths(Path(out_dir))
    res = run(paths, click.echo, scan_s=scan_s, progress_bars=sys.stderr.isatty())
    ctx.ensure_object(dict)["db"] = str(paths.store)
    click.echo("\n4. The sessions in the store (retrostep sessions):")
    ctx.invoke(sessions_cmd, as_json=False, last=None, since=None, device_id=None)
    click.echo("\n5. Progress (retrostep progress):")
    ctx.invoke(progress_cmd, as_json=False, weeks=12)
    click.echo(f"\nReport: {res['report']}")
    click.echo(f"Try: retrostep --db {paths.store} show latest")


@demo.command("engine")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/demo",
              show_default=True, help="Where the synthesized sessions are written.")
@click.option(
    "--runtime",
    type=click.Choice(["micropython", "cpython"]),
    default="micropython",
    show_default=True,
    help="Run the gait engine inside the MicroPython unix port (as on the device) or here.",
)
def demo_engine(out_dir, runtime):
    """Synthesize three sessions, run the firmware gait engine on them, show the result.

    An interval program, a daily-life mix of an older adult and a seated session with
    fidgeting; for each: the summary, the first events and the accuracy against the
    synthesizer's ground truth.
    """
    from .demo import render, run_demo

    outcomes = run_demo(Path(out_dir), runtime)
    for line in render(outcomes, runtime):
        click.echo(line)
    if runtime == "micropython":
        from .demo import on_sim_board

        click.echo("")
        for line in on_sim_board(outcomes, Path(out_dir)):
            click.echo(line)


# --------------------------------------------------------------------------- sim


@main.group()
def sim() -> None:
    """Run the unmodified firmware on the sim board (MicroPython unix port)."""


@sim.command("run")
@click.option("--trace", "trace_path", required=True, type=click.Path(dir_okay=False),
              help="Trace (format v1) the sim board's IMU replays.")
@click.option("--speed", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Times real time; 0 = as fast as possible.")
@click.option("--image", type=click.Path(dir_okay=False),
              help="LittleFS flash image to use and keep (created blank if missing).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Binary config (retrostep config v1) written to /flash/config.bin first.")
@click.option("--heap", help="MicroPython heap size, e.g. 64k (micropython -X heapsize=).")
@click.option("--heap-every", "heap_every", type=click.IntRange(1),
              help="Heap diagnostic: gc.collect() + gc.mem_alloc() every this many ms of "
                   "sample time.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Sessions, motor pulses and counters.")
def sim_run(trace_path, speed, image, config_path, heap, heap_every, as_json):
    """Boot the firmware with a trace as its IMU; print what it logged and buzzed."""
    from . import sim as simmod

    res = simmod.run(trace_path, image=image, speed=speed, config=config_path, heap=heap,
                     heap_every_ms=heap_every)  # fmt: skip
    if as_json:
        out = {
            "sessions": res.sessions, "live": res.live, "power": res.power,
            "motor_pulses": [list(p) for p in simmod.motor_pulses(res)],
        }  # fmt: skip
        if heap_every is not None:
            out["heap"] = [list(h) for h in res.heap]
            out["heap_peak"] = res.heap_peak
        click.echo(json.dumps(out, indent=1))
        return
    for line in simmod.describe(res):
        click.echo(line)
    for t, alloc, free in res.heap:
        click.echo(f"heap {t / 1000:8.1f} s  {alloc} B allocated, {free} B free")


@sim.command("logs")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="A list of sessions with their records.")
def sim_logs(image, as_json):
    """Decode the session logs stored in a sim board's flash image."""
    from . import sim as simmod

    sessions = simmod.read_sessions(image)
    if as_json:
        click.echo(json.dumps(sessions, indent=1))
        return
    if not sessions:
        click.echo("no sessions")
    for s in sessions:
        click.echo(
            f"session {s['id']}: {s['forward_steps']} forward, {s['backward_steps']} backward "
            f"steps, {s['sway_alerts']} sway alert(s), {s['duration_s']:.1f} s, "
            f"{len(s['records'])} records, ended: {s['end_reason']}"
        )


@sim.command("board")
@click.option(
    "--image",
    type=click.Path(dir_okay=False),
    help="LittleFS flash image, the board's whole filesystem (created blank if missing, "
    "kept). Default: a temporary image, deleted at exit.",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False),
    help="Trace (format v1) the IMU replays. Default: a still, upright wearer.",
)
@click.option(
    "--speed",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="IMU speed, times real time; 0 = as fast as possible (with --trace).",
)
@click.option(
    "--link",
    type=click.Path(dir_okay=False),
    help="Also make this symlink to the port (removed at exit).",
)
@click.option("--no-radio", is_flag=True,
              help="No simulated radio (by default `retrostep scan|sync|config --sim` in "
                   "another terminal reach the board through it).")  # fmt: skip
def sim_board(image, trace_path, speed, link, no_radio):
    """A virtual board on a pseudo-terminal, for mpremote and serial terminals.

    The MicroPython unix port runs behind the port with the image mounted at / and
    behaves like a board on the wire: REPL, raw REPL, Ctrl-C, soft reset (Ctrl-D),
    hard reset (machine.reset()); /boot.py and /main.py run at boot. main.py gets the
    sim board's arguments in sys.argv; the trace's samples are at /host/imu.i32.

    The board has the simulated radio (docs/simulated-radio.md), published in
    $RETROSTEP_SIM_RADIO (default: radio.json in the user runtime directory): the
    firmware's BLE service advertises on it, and `retrostep scan --sim`,
    `retrostep sync --sim` and `retrostep config ... --sim` reach it.

    The first line printed is the port's path. It runs until interrupted (Ctrl-C,
    SIGTERM), then stops the board and exits:

    \b
      retrostep sim board --link /tmp/board &
      mpremote connect /tmp/board cp main.py : + reset
    """
    from .virtual_board import VirtualBoard, serve

    board = VirtualBoard(image, trace=trace_path, speed=speed, link=link, radio=not no_radio)

    def announce(port: str) -> None:
        click.echo(port)
        sys.stdout.flush()
        where = f"image {image}" if image else "a temporary image"
        click.echo(f"virtual board on {port} ({where}); Ctrl-C stops it", err=True)

    serve(board, announce)


# --------------------------------------------------------------------------- flash


@main.command()
@click.option("--port", help="The board's serial port. Default: the one USB board connected.")
@click.option("--sim", is_flag=True,
              help="Flash a virtual board (as `retrostep sim board` runs) started for this.")
@click.option("--image", type=click.Path(dir_okay=False),
              help="With --sim: its flash image. Default: one kept in the user data directory.")
@click.option("--dry-run", is_flag=True, help="Probe, build and show what would change; change "
              "nothing.")
@click.option("--full", is_flag=True,
              help="Send every file, even those the board has (still staged and verified).")
@click.option("--firmware", "firmware_dir", type=click.Path(file_okay=False, exists=True),
              help="Firmware tree to install. Default: the one installed with this tool.")
@click.option("--timeout", "start_timeout", type=click.FloatRange(1), default=30.0,
              show_default=True, metavar="S",
              help="Seconds the new version has to start healthily.")
@click.option("-v", "--verbose", is_flag=True, help="Show the steps and the board's console.")
def flash(port, sim, image, dry_run, full, firmware_dir, start_timeout, verbose):
    """Install the firmware on a MicroPython board over USB serial (docs/flashing.md).

    Compiles the app with mpy-cross for the board's .mpy ABI, copies only what changed
    into the inactive slot, verifies every file's SHA-256 on the board, switches
    atomically (the previous version is kept), restarts the board and checks the new
    version starts; if it does not, the board rolls back and this exits non-zero. The
    first flash gives the device a name and a secret key (kept in the user config
    directory, mode 0600).
    """
    from .flash.command import run

    for line in run(port, sim, image, dry_run, full, firmware_dir, start_timeout, verbose):
        click.echo(line)


# --------------------------------------------------------------------------- session store
# sessions, show, progress, report, export, db: host/retrostep/companion_cli.py

from .companion_cli import register as _register_companion  # noqa: E402

_register_companion(main)

# --------------------------------------------------------------------------- BLE sync
# scan, sync, config get|set: host/retrostep/sync_cli.py

from .sync_cli import register as _register_sync  # noqa: E402

_register_sync(main)


if __name__ == "__main__":
    main()
