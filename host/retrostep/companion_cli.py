"""The companion's commands on the session store: sessions, show, progress, report, export
and db (check, info, import). ``retrostep.cli`` adds them with :func:`register`.

Conventions (``docs/companion.md``): every command has ``--json`` (stable keys, nothing
else on stdout) or writes a file; tables are for people; colour only when stdout is a
terminal and ``NO_COLOR`` is unset; progress bars only when stderr is a terminal; errors
are one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from datetime import date, datetime, time
from pathlib import Path

import click

# -- output conventions ----------------------------------------------------------------------


def color_on(stream=None) -> bool:
    """Colour only on a terminal, and not when NO_COLOR is set (https://no-color.org)."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, **style) -> str:
    return click.style(text, **style) if color_on() else text


def table(head: list[str], rows: list[list], left: int = 1) -> list[str]:
    """Aligned columns: the first ``left`` columns to the left, numbers to the right."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(head)]  # fmt: skip

    def line(values: list[str]) -> str:
        out = [v.ljust(w) if i < left else v.rjust(w)
               for i, (v, w) in enumerate(zip(values, widths, strict=True))]  # fmt: skip
        return "  ".join(out).rstrip()

    return [paint(line(head), bold=True), *(line(r) for r in cells)]


def progress_bar(items, label: str, length: int | None = None):
    """A click progress bar on stderr when it is a terminal; the plain items otherwise."""
    if sys.stderr.isatty():
        return click.progressbar(items, label=label, file=sys.stderr, length=length)
    return nullcontext(items)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=1, ensure_ascii=False))


def _db(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("db")


def _open(ctx: click.Context, readonly: bool = True):
    from .store import Store

    return Store.open(_db(ctx), readonly=readonly)


# -- session references ------------------------------------------------------------------------


class SessionRef(click.ParamType):
    """A session number as `retrostep sessions` lists it, or "latest"."""

    name = "SESSION"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        v = str(value).strip().lower()
        if v in ("latest", "last"):
            return "latest"
        if v.startswith("#"):
            v = v[1:]
        if v.isdigit():
            return int(v)
        self.fail(f"{value!r} is not a session number (or 'latest')", param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        from .store import Store

        try:
            root = ctx.find_root()
            with Store.open(root.params.get("db_path"), readonly=True) as store:
                rows = store.sessions()[-50:]
        except Exception:  # completion must never fail loudly  # noqa: BLE001
            return []
        items = [CompletionItem("latest", help="the most recent session")]
        for s in reversed(rows):
            if str(s.id).startswith(incomplete):
                when = f"{s.start.astimezone():%Y-%m-%d %H:%M}"
                items.append(CompletionItem(str(s.id), help=when))
        return items


def _resolve(store, ref):
    return store.latest() if ref == "latest" else store.session(ref)


def _day(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError as e:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=what) from e
    return datetime.combine(d, time()).astimezone()  # local midnight


def _mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _opt(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


# -- commands ------------------------------------------------------------------------------------


@click.command("sessions")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of sessions (all values).")
@click.option("--last", type=click.IntRange(1), help="Only the last N sessions.")
@click.option("--since", metavar="DATE",
              help="Only sessions from this day on (YYYY-MM-DD, local time).")
@click.option("--device", "device_id", help="Only this device's sessions.")
@click.pass_context
def sessions_cmd(ctx, as_json, last, since, device_id):
    """List the stored sessions, oldest first."""
    with _open(ctx) as store:
        rows = store.sessions(device_id=device_id, since=_day(since, "--since"))
        empty_msg = str(store.empty_error()) if not store.count() else "no sessions match"
    if last:
        rows = rows[-last:]
    if as_json:
        _echo_json([s.to_json() for s in rows])
        return
    if not rows:
        click.echo(empty_msg)
        return
    out = []
    estimated = False
    for s in rows:
        st = s.stats
        mark = "*" if s.start_estimated else ""
        estimated |= s.start_estimated
        out.append([
            s.id, f"{s.start.astimezone():%Y-%m-%d %H:%M}{mark}", _mmss(st["duration_s"]),
            st["backward_steps"], f"{st['backward_walking_s'] / 60:.1f}", st["forward_steps"],
            f"{st['forward_walking_s'] / 60:.1f}", st["sway_alerts"],
            _opt(s.compliance, ".0%"), st["end_reason"] or "open",
        ])  # fmt: skip
    head = ["#", "started", "duration", "bwd steps", "bwd min", "fwd steps", "fwd min",
            "alerts", "compliance", "ended"]  # fmt: skip
    for line in table(head, out, left=2):
        click.echo(line)
    if estimated:
        click.echo("* device clock not set: the start shown is the sync time")


@click.command("show")
@click.argument("session", type=SessionRef())
@click.option("--json", "as_json", is_flag=True, help="All values of the session as JSON.")
@click.pass_context
def show_cmd(ctx, session, as_json):
    """Show one session: SESSION is its number in `retrostep sessions`, or "latest"."""
    from .report import session_facts
    from .session_stats import derive

    with _open(ctx) as store:
        s = _resolve(store, session)
        notes = derive(store.raw(s.id)).notes
    if as_json:
        _echo_json({**s.to_json(), "notes": notes})
        return
    facts = session_facts(s)
    width = max(len(k) for k, _ in facts)
    for k, v in facts:
        click.echo(f"{paint(k.ljust(width), bold=True)}  {v}")
    for n in notes:
        click.echo(f"{'Note'.ljust(width)}  at {n['t']:.0f} s: code {n['code']} value {n['value']}")


_ACTION_STYLE = {"lengthen": {"fg": "green"}, "shorten": {"fg": "yellow"}, "start": {"fg": "cyan"}}


@click.command("progress")
@click.option("--json", "as_json", is_flag=True,
              help="Weeks, sway trend and the suggestion (its program in the device config's "
                   "format) as JSON.")  # fmt: skip
@click.option("--weeks", type=click.IntRange(0), default=12, show_default=True,
              help="How many recent weeks to show (0: all).")
@click.pass_context
def progress_cmd(ctx, as_json, weeks):
    """Week by week: backward minutes and steps, sway, and next week's suggestion.

    The suggestion lengthens the backward intervals when sway alerts were rare in the
    last week walked, shortens them when they were frequent (or the intervals were not
    followed), and keeps them otherwise; its program is what `retrostep config` can put
    on the device.
    """
    from .progress import progress

    with _open(ctx) as store:
        out = progress(store, weeks or None)
        empty = str(store.empty_error()) if not store.count() else None
    if as_json:
        _echo_json(out)
        return
    if empty:
        click.echo(empty)
        return
    rows = [[w["week"], w["sessions"], f"{w['backward_minutes']:.1f}", w["backward_steps"],
             f"{w['forward_minutes']:.1f}", w["sway_alerts"],
             _opt(w["alerts_per_backward_minute"], ".2f"),
             _opt(w["backward_sway_range_mean_deg"], ".1f"), _opt(w["compliance"], ".0%")]
            for w in out["weeks"]]  # fmt: skip
    head = ["week", "sessions", "bwd min", "bwd steps", "fwd min", "alerts", "alerts/bwd min",
            "bwd sway deg", "compliance"]  # fmt: skip
    for line in table(head, rows):
        click.echo(line)
    trend = out["sway_trend_deg_per_week"]
    if trend is not None:
        word = "steadier" if trend < -0.02 else "more sway" if trend > 0.02 else "about the same"
        click.echo(f"\nBackward sway trend: {trend:+.2f} deg per week ({word}).")
    sug = out["suggestion"]
    b = sug["backward_interval_s"]
    change = ""
    if b["now"] is not None:
        change = (f" (backward intervals {b['now']} s -> {b['next']} s)" if b["next"] != b["now"]
                  else f" (backward intervals stay {b['now']} s)")  # fmt: skip
    action = paint(sug["action"], bold=True, **_ACTION_STYLE.get(sug["action"], {}))
    click.echo(f"\nNext week: {action}{change}. {sug['reason']}.")
    program = " + ".join(f"{k} {v} s" for k, v in sug["program"])
    click.echo(f"Program: {program}, {sug['program_repeat']}x (retrostep config can put it on "
               f"the device).")  # fmt: skip


@click.command("report")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="HTML file to write. Default: retrostep-report-<date>.html here.")
@click.option("--open", "open_it", is_flag=True, help="Open the report in the browser.")
@click.option("--session", "session", type=SessionRef(), default="latest", show_default=True,
              help="The session to plot in detail.")
@click.option("--weeks", type=click.IntRange(1), default=26, show_default=True,
              help="Weeks in the progress plots.")
@click.pass_context
def report_cmd(ctx, output, open_it, session, weeks):
    """Write one self-contained HTML report with plots (no network, no other files)."""
    from . import report

    path = Path(output or f"retrostep-report-{date.today():%Y-%m-%d}.html")
    with _open(ctx) as store:
        s = None if not store.count() else _resolve(store, session)
        report.write(store, path, s, weeks)
    click.echo(str(path))
    if open_it:
        click.launch(str(path.resolve()))


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "fit"]), required=True,
              help="csv or json (stdout or --output FILE); fit: one FIT activity file per "
                   "session into --output DIR.")  # fmt: skip
@click.option("--output", "-o", type=click.Path(), help="File (csv, json) or directory (fit).")
@click.option("--detail", type=click.Choice(["seconds", "steps", "alerts", "intervals"]),
              help="csv/json: per-second summaries, steps, alerts or intervals instead of "
                   "one row per session.")  # fmt: skip
@click.option("--session", "refs", type=SessionRef(), multiple=True,
              help="Only this session (repeatable). Default: all.")
@click.option("--since", metavar="DATE", help="Only sessions from this day on (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Only sessions before this day (YYYY-MM-DD).")
@click.pass_context
def export_cmd(ctx, fmt, output, detail, refs, since, until):
    """Export sessions as CSV, JSON or FIT (the activity format of Garmin and others)."""
    from . import export as ex
    from .errors import UsageProblem

    if fmt == "fit" and not output:
        raise UsageProblem("--format fit writes one file per session: give --output DIR")
    if fmt == "fit" and detail:
        raise UsageProblem("--detail is for csv and json (FIT files always hold the detail)")
    with _open(ctx) as store:
        if refs:
            rows = [_resolve(store, r) for r in dict.fromkeys(refs)]
        else:
            rows = store.sessions(since=_day(since, "--since"), until=_day(until, "--until"))
        if fmt == "fit":
            if not rows:
                raise store.empty_error() if not store.count() else UsageProblem(
                    "no sessions match")  # fmt: skip
            with progress_bar(rows, "writing FIT files") as bar:
                paths = ex.write_fit(store, list(bar), Path(output))
            for p in paths:
                click.echo(str(p))
            return
        if detail and len(rows) > 20:
            with progress_bar(rows, f"decoding {detail}") as bar:
                rows = list(bar)
        text = (ex.to_csv if fmt == "csv" else ex.to_json)(store, rows, detail)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageProblem(f"cannot write {output}: {e.strerror}") from e
        click.echo(output, err=True)
    else:
        click.echo(text, nl=False)


# -- db --------------------------------------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """The session store itself: check it, show where it is, import logs into it."""


@db_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="The findings as JSON.")
@click.pass_context
def db_check(ctx, as_json):
    """Check the store: SQLite's integrity check, then every raw log decoded again and
    compared with its digest and stored values. Exit code 1 if anything is wrong."""
    with _open(ctx) as store:
        if not store.exists:
            raise store.empty_error()
        n = store.count()
        if sys.stderr.isatty() and n:
            with click.progressbar(length=n, label="checking sessions", file=sys.stderr) as bar:
                rep = store.check(lambda done, total: bar.update(1))
        else:
            rep = store.check()
    if as_json:
        _echo_json(rep.to_json())
    else:
        click.echo(f"store: {rep.path} (schema v{rep.schema_version})")
        click.echo(f"SQLite integrity: {', '.join(rep.integrity)}")
        click.echo(f"sessions checked: {rep.sessions}")
        for p in rep.problems:
            click.echo(paint(f"problem: {p}", fg="red"))
        click.echo(paint("ok", fg="green") if rep.ok else paint("NOT OK", fg="red", bold=True))
    if not rep.ok:
        sys.exit(1)


@db_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.pass_context
def db_info(ctx, as_json):
    """Where the store is, its schema version, sessions, devices and size."""
    with _open(ctx) as store:
        info = store.info()
    if as_json:
        _echo_json(info)
        return
    click.echo(f"path: {info['path']}{'' if info['exists'] else ' (not created yet)'}")
    click.echo(f"schema: v{info['schema_version']}")
    click.echo(f"sessions: {info['sessions']} from {info['devices']} device(s)")
    per = info["bytes_per_session"]
    click.echo(f"size: {info['file_bytes']} bytes ({info['raw_log_bytes']} of raw logs"
               f"{f'; {per} bytes per session' if per else ''})")  # fmt: skip


@db_group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--device-id", required=True,
              help="The device the logs come from (the id `retrostep sync` uses for it).")
@click.option("--device-name", help="A name to show for the device.")
@click.option("--json", "as_json", is_flag=True, help="One result per session as JSON.")
@click.pass_context
def db_import(ctx, paths, device_id, device_name, as_json):
    """Import session logs (.rsl files copied off a device) or every session of a flash
    image (the sim board's LittleFS image). Importing the same log twice stores it once."""
    from datetime import timezone

    from .importing import read_logs
    from .store import SessionConflict

    logs = read_logs(paths)
    results = []
    conflicts = []
    now = datetime.now(timezone.utc)
    with _open(ctx, readonly=False) as store:
        with progress_bar(logs, "importing") as bar, store.transaction():
            for source, raw in bar:
                try:  # a conflict keeps the stored copy; the other sessions go on
                    res = store.import_session(device_id, raw, synced_at=now,
                                               device_name=device_name)  # fmt: skip
                except SessionConflict as e:
                    conflicts.append(f"{source}: {e}")
                    continue
                results.append((source, res))
    if as_json:
        _echo_json([{"source": src, "status": r.status, "id": r.id, "device_id": r.device_id,
                     "session_id": r.session_id, "bytes": r.bytes,
                     "stored_bytes": r.stored_bytes} for src, r in results])  # fmt: skip
    else:
        counts: dict[str, int] = {}
        for src, r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
            click.echo(f"{src}: session {r.session_id} -> #{r.id} {r.status} ({r.bytes} bytes)")
        click.echo(", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing imported")
    if conflicts:
        for c in conflicts:
            click.echo(f"Error: {c}", err=True)
        sys.exit(SessionConflict.exit_code)


COMMANDS = (sessions_cmd, show_cmd, progress_cmd, report_cmd, export_cmd, db_group)


def register(group: click.Group) -> None:
    """Add the companion commands to the `retrostep` group."""
    for cmd in COMMANDS:
        group.add_command(cmd)

