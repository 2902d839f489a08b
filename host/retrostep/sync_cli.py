"""The BLE commands: scan, sync, config get|set (``docs/sync.md``); ``retrostep.cli``
adds them with :func:`register`. The work is in :mod:`retrostep.sync.command`."""

from __future__ import annotations

import json
import sys

import click

SIM_HELP = ("Talk to the `retrostep sim board` running in another terminal, through its "
            "simulated radio, instead of this computer's Bluetooth.")  # fmt: skip
TIMEOUT_HELP = "Seconds to listen for devices."


def _db(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("db")


@click.command("scan")
@click.option("--sim", is_flag=True, help=SIM_HELP)
@click.option("--timeout", type=click.FloatRange(0.5), default=5.0, show_default=True,
              metavar="S", help=TIMEOUT_HELP)  # fmt: skip
@click.option("--all", "show_all", is_flag=True, help="Also list other Bluetooth devices.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of the devices.")
def scan_cmd(sim, timeout, show_all, as_json):
    """List the retrostep devices in range: name, address, signal, whether sessions wait
    to be synced, whether this computer has the device's key."""
    from .companion_cli import table
    from .sync.command import radio_for, scan_devices

    devices = scan_devices(radio_for(sim), timeout, include_others=show_all)
    if as_json:
        click.echo(json.dumps(devices, indent=1))
        return
    if not devices:
        click.echo("no retrostep device found" + (" on the simulated radio" if sim else ""))
        return
    rows = []
    for d in devices:
        if not d["retrostep"]:
            rows.append([d["name"] or "?", d["address"], d["rssi"], "-", "-", "other device"])
            continue
        waiting = f"{d['unsynced_sessions']}" if d["unsynced"] else "0"
        state = "recording" if d["recording"] else ("storage full" if d["storage_full"] else "")
        key = "yes" if d["key"] else ("no: run retrostep flash" if d["provisioned"] is False
                                      else "not known here")  # fmt: skip
        rows.append([d["name"] or "?", d["address"], d["rssi"], waiting, key, state])
    for line in table(["name", "address", "rssi", "unsynced", "key", "state"], rows, left=2):
        click.echo(line)


@click.command("sync")
@click.argument("device", required=False)
@click.option("--sim", is_flag=True, help=SIM_HELP)
@click.option("--timeout", type=click.FloatRange(0.5), default=5.0, show_default=True,
              metavar="S", help=TIMEOUT_HELP)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="What arrived, as one JSON object.")
@click.pass_context
def sync_cmd(ctx, device, sim, timeout, as_json):
    """Fetch the new sessions from a device into the session store.

    DEVICE: its name or address; default: the one retrostep device in range. The sync
    authenticates with the key `retrostep flash` left on this computer, sets the
    device's clock, reads every session not stored yet (a progress bar when stderr is
    a terminal), checks each against the device's SHA-256, stores it and only then lets
    the device forget it. A sync cut short (link lost) keeps what arrived and exits
    with code 24: run it again and it resumes there.
    """
    from .store import Store
    from .sync.command import radio_for, sync_device

    radio = radio_for(sim)
    bar = _Bar() if sys.stderr.isatty() and not as_json else None
    with Store.open(_db(ctx)) as store:
        try:
            out = sync_device(store, radio, device, timeout,
                              on_total=bar.start if bar else None,
                              on_progress=bar.update if bar else None)  # fmt: skip
        finally:
            if bar is not None:
                bar.finish()
    if as_json:
        click.echo(json.dumps(out.to_json(), indent=1))
        return
    for line in out.lines():
        click.echo(line)
    if out.report.refused:
        sys.exit(26)


class _Bar:
    """A click progress bar in bytes, created once the device listed its sessions."""

    def __init__(self) -> None:
        self.bar = None

    def start(self, total: int) -> None:
        if total > 0:
            self.bar = click.progressbar(length=total, label="syncing", file=sys.stderr,
                                         show_pos=True)  # fmt: skip
            self.bar.__enter__()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.group("config")
def config_group() -> None:
    """Read or change the settings stored on a device (over BLE)."""


@config_group.command("get")
@click.argument("device", required=False)
@click.option("--sim", is_flag=True, help=SIM_HELP)
@click.option("--timeout", type=click.FloatRange(0.5), default=5.0, show_default=True,
              metavar="S", help=TIMEOUT_HELP)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The config as one JSON object.")
def config_get(device, sim, timeout, as_json):
    """Show the device's stored config (DEVICE: name or address; default: the one in
    range)."""
    from .sync.command import get_config, radio_for

    name, conf = get_config(radio_for(sim), device, timeout)
    if as_json:
        click.echo(json.dumps(conf, indent=1))
        return
    click.echo(f"{name}:")
    for k, v in conf.items():
        if k == "program":
            v = ", ".join(f"{kind}:{s}" for kind, s in v) or "(none)"
        click.echo(f"  {k} = {v}")


@config_group.command("set")
@click.argument("args", nargs=-1, metavar="KEY=VALUE... [DEVICE]")
@click.option("--suggested", is_flag=True,
              help="Set the coaching program `retrostep progress` suggests from the store.")
@click.option("--sim", is_flag=True, help=SIM_HELP)
@click.option("--timeout", type=click.FloatRange(0.5), default=5.0, show_default=True,
              metavar="S", help=TIMEOUT_HELP)  # fmt: skip
@click.pass_context
def config_set(ctx, args, suggested, sim, timeout):
    """Change settings on the device, e.g. `config set sway_limit_deg=8
    program=backward:60,rest:30`. Checked here, then by the device; the device applies
    them at its next start. An argument without "=" names the device (name or
    address; default: the one retrostep device in range)."""
    from .errors import UsageProblem
    from .sync.command import parse_assignments, radio_for, set_config

    names = [a for a in args if "=" not in a]
    if len(names) > 1:
        raise UsageProblem(f"one DEVICE at most, got {', '.join(names)}")
    device = names[0] if names else None
    changes = parse_assignments([a for a in args if "=" in a])
    if suggested:
        from .progress import suggested_program
        from .store import Store

        with Store.open(_db(ctx), readonly=True) as store:
            changes = {**suggested_program(store), **changes}
    if not changes:
        raise UsageProblem("nothing to set: give KEY=VALUE... or --suggested")
    name, conf = set_config(radio_for(sim), changes, device, timeout)
    shown = ", ".join(f"{k}={conf[k]}" for k in changes)
    click.echo(f"{name}: set {shown} (applied at the device's next start)")


def register(main: click.Group) -> None:
    for cmd in (scan_cmd, sync_cmd, config_group):
        main.add_command(cmd)
