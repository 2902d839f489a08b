"""`retrostep flash`: install the firmware on a MicroPython board (docs/flashing.md).

Layers: :mod:`ports` (which serial port), :mod:`device` (a raw-REPL session on
mpremote's transport), :mod:`build` (mpy-cross, manifest), :mod:`plan` (what changes),
:mod:`provision` (name and key), :mod:`flasher` (the steps in a cut-safe order). Every
failure is a :class:`~retrostep.flash.errors.FlashError` with its own exit code.
"""

from __future__ import annotations

from .flasher import Flasher, Options, Report
from .plan import COPY, KEEP, SEND


def flash(opts: Options) -> Report:
    return Flasher(opts).run()


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def summary(rep: Report) -> list[str]:
    """The human report: what the board is, what changed, where the key is."""
    pr, bld, plan = rep.probe, rep.build, rep.plan
    free = f", {_kb(pr.free_bytes)} free before" if pr.free_bytes is not None else ""
    lines = [
        f"board     {rep.port}: MicroPython {pr.version_text} on {pr.platform}, .mpy "
        f"{bld.abi.label} {bld.abi.arch or ''}{free}",
        f"firmware  {bld.label}: {len(bld.files)} modules, {_kb(bld.compiled_size)} compiled "
        f"({_kb(bld.source_size)} source)",
    ]
    if rep.outcome == "up to date":
        lines.append(f"installed {bld.label} is already running from slot {plan.active}: "
                     "nothing sent (--full re-installs)")  # fmt: skip
    else:
        would = "would be " if rep.dry_run else ""
        sent = plan.paths(SEND)
        names = ", ".join(f"{x} ({_kb(bld.files[x].size)})" for x in sent[:4])
        more = f" and {len(sent) - 4} more" if len(sent) > 4 else ""
        lines.append(
            f"slot {plan.target}    {len(sent)} {would}sent{': ' + names + more if sent else ''}; "
            f"{len(plan.paths(COPY))} {would}copied on the board; "
            f"{len(plan.paths(KEEP))} already there; {len(plan.remove)} {would}removed")
        loader = ", ".join(plan.loader) + f" {would}written" if plan.loader else "unchanged"
        lines.append(f"loader    {loader}")
    d = rep.identity
    ident = d.identity
    where = f"; key in {rep.record_path} (0600)" if rep.record_path else ""
    if rep.dry_run and (d.write_host or d.write_device):
        lines.append(f"device    {ident.name} (id {ident.device_id}) would be: {d.note}")
    else:
        lines.append(f"device    {ident.name} (id {ident.device_id}): {d.note}{where}")
    if rep.dry_run:
        lines.append("dry run: nothing was changed on the board or here")
        return lines
    if rep.verified:
        lines.append(f"verified  {rep.verified} files (SHA-256, computed on the board)")
    files = ""
    if rep.payload_bytes:
        files = f" ({_kb(rep.payload_bytes)} of files"
        if rep.wire_payload_bytes < rep.payload_bytes:
            files += f", {_kb(rep.wire_payload_bytes)} deflated"
        files += ")"
    lines.append(f"sent      {_kb(rep.bytes_sent)} over the port in {rep.seconds:.1f} s{files}")
    if rep.outcome == "running":
        prev = (f"; previous {rep.previous} kept in slot {plan.active}"
                if rep.previous and plan.active else "")  # fmt: skip
        lines.append(f"started   {bld.label} is running from slot {plan.target}{prev}")
    return lines


__all__ = ["Options", "Report", "flash", "summary"]
