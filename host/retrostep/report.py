"""`retrostep report`: one self-contained HTML file with plots.

Everything is inside the file: the plots are SVG drawn by matplotlib and written inline,
the styles are one ``<style>`` element, and there is no script, font, image or link to
fetch. It opens offline in any browser and prints as it looks. Sections: the weekly
progress (backward minutes and steps per week, sway alert rate and backward sway) with
next week's suggestion; one session (steps over time by direction with the backward
intervals shaded, sway per second with the alerts and the limit); the recent sessions.

Plot elements carry ids (``steps-forward``, ``sway-alerts``, ``week-backward-min-0``...)
so tests and readers can find them.
"""

from __future__ import annotations

import html
import io
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path

from .errors import RetrostepError
from .progress import suggest, sway_trend, weeks_of
from .session_stats import timeline
from .store import SessionRow, Store

FORWARD = "#0072B2"  # Okabe-Ito: distinguishable with the common colour-vision deficits
BACKWARD = "#E69F00"
ALERT = "#D55E00"
GREY = "#6b6b6b"
BIN_S = 10  # steps are counted per 10 s in the session plot (5 s under 10 min)


class ReportError(RetrostepError):
    """The report could not be written."""

    exit_code = 1


def _svg(fig, salt: str) -> str:
    """A figure as an inline <svg> element (text kept as text, ids unique per figure)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg")  # constrained layout: no second "tight" pass
    text = buf.getvalue()
    start = text.index("<svg")
    return text[start:]


def _figure(rows: int, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#e4e4e4", linewidth=0.8)
        ax.set_axisbelow(True)
    return fig, axes


def session_figure(raw: bytes) -> str:
    """Steps over time by direction and sway with alerts, for one session log."""
    import numpy as np

    tl = timeline(raw)
    fig, (ax1, ax2) = _figure(2, 2.6)
    minutes = max(tl.duration_s, 1.0) / 60.0
    bin_s = BIN_S if tl.duration_s >= 600 else BIN_S // 2  # finer for short sessions
    edges = np.arange(0, tl.duration_s + bin_s, bin_s)
    fwd = np.histogram([t for t, d in tl.steps if d > 0], bins=edges)[0]
    bwd = np.histogram([t for t, d in tl.steps if d < 0], bins=edges)[0]
    scale = 60.0 / bin_s  # steps per minute
    for a, b in zip(tl.intervals, [*tl.intervals[1:], None], strict=True):
        if a["kind"] == "backward":
            stop = b["t"] if b is not None else tl.duration_s
            for ax in (ax1, ax2):
                ax.axvspan(a["t"] / 60, stop / 60, color=BACKWARD, alpha=0.10, linewidth=0)
    sf = ax1.stairs(fwd * scale, edges / 60.0, fill=True, color=FORWARD, label="forward")
    sb = ax1.stairs(-bwd * scale, edges / 60.0, fill=True, color=BACKWARD, label="backward")
    sf.set_gid("steps-forward")
    sb.set_gid("steps-backward")
    ax1.axhline(0, color="#333333", linewidth=0.8)
    ax1.set_xlim(0, minutes)
    top = max(1.0, float((fwd * scale).max(initial=0)), float((bwd * scale).max(initial=0)))
    ax1.set_ylim(-top * 1.1, top * 1.1)
    ax1.yaxis.set_major_formatter(lambda v, _: f"{abs(v):.0f}")
    ax1.set_ylabel("steps/min\n(backward below 0)")
    ax1.set_title(f"Steps over time by direction ({bin_s} s bins; shaded: backward intervals)",
                  loc="left", fontsize=11)  # fmt: skip
    ax1.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=2,
               fontsize=9)

    t = np.array([s["t"] for s in tl.seconds], dtype=float)
    walking = np.array([s["forward"] + s["backward"] > 0 for s in tl.seconds], dtype=bool)
    rng = np.array([s["roll_range_deg"] for s in tl.seconds], dtype=float)
    rng[~walking] = np.nan
    (line,) = ax2.plot((t + 0.5) / 60.0, rng, color=GREY, linewidth=1.0,
                       label="roll range per second (walking)")  # fmt: skip
    line.set_gid("sway-range")
    limit = ax2.axhline(tl.sway_limit_deg, color=ALERT, linestyle="--", linewidth=1.2,
                        label=f"alert limit {tl.sway_limit_deg:g}°")  # fmt: skip
    limit.set_gid("sway-limit")
    if tl.alerts:
        (al,) = ax2.plot(
            [a["t"] / 60 for a in tl.alerts], [a["deviation_deg"] for a in tl.alerts],
            linestyle="none", marker="v", markersize=8, color=ALERT,
            label=f"sway alert ({len(tl.alerts)}): lean from your baseline",
        )  # fmt: skip
        al.set_gid("sway-alerts")
    ax2.set_xlim(0, minutes)
    peak = max([tl.sway_limit_deg, *[a["deviation_deg"] for a in tl.alerts],
                *[v for v in rng if not math.isnan(v)]])  # fmt: skip
    ax2.set_ylim(0, peak * 1.15)
    ax2.set_ylabel("degrees")
    ax2.set_xlabel("minutes since the session started")
    ax2.set_title("Sway: side-to-side trunk roll per second, alerts and the limit", loc="left",
                  fontsize=11)  # fmt: skip
    ax2.legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), frameon=False, fontsize=9,
               ncols=3)
    return _svg(fig, "session")


def weekly_figure(weeks) -> str:
    """Backward minutes and steps per week, sway alert rate and backward sway."""
    fig, (ax1, ax2, ax3) = _figure(3, 2.2)
    x = list(range(len(weeks)))
    labels = [w.label[2:] for w in weeks]  # "26-W47"
    bars1 = ax1.bar(x, [w.backward_min for w in weeks], color=BACKWARD, width=0.7)
    bars2 = ax2.bar(x, [w.backward_steps for w in weeks], color=BACKWARD, width=0.7)
    for i, (b1, b2) in enumerate(zip(bars1.patches, bars2.patches, strict=True)):
        b1.set_gid(f"week-backward-min-{i}")
        b2.set_gid(f"week-backward-steps-{i}")
    ax1.set_ylabel("minutes")
    ax1.set_title("Backward walking per week", loc="left", fontsize=11)
    ax2.set_ylabel("steps")
    ax2.set_title("Backward steps per week", loc="left", fontsize=11)
    rate = [w.alerts_per_backward_min for w in weeks]
    pts = [(i, v) for i, v in zip(x, rate, strict=True) if v is not None]
    if pts:
        (ln,) = ax3.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=ALERT,
                         label="sway alerts per backward minute")  # fmt: skip
        ln.set_gid("week-alert-rate")
    ax3.set_ylabel("alerts/min")
    ax3.set_ylim(bottom=0)
    ax3b = ax3.twinx()
    ax3b.spines[["top"]].set_visible(False)
    sway = [(i, w.backward_sway_range_mean_deg) for i, w in enumerate(weeks)
            if w.backward_sway_range_mean_deg is not None]  # fmt: skip
    if sway:
        (ls,) = ax3b.plot([p[0] for p in sway], [p[1] for p in sway], marker="s", color=GREY,
                          linestyle=":", label="mean roll range walking backward (°)")  # fmt: skip
        ls.set_gid("week-backward-sway")
    ax3b.set_ylabel("degrees")
    ax3b.set_ylim(bottom=0)
    ax3.set_title("Sway alert rate and backward sway per week", loc="left", fontsize=11)
    handles = ax3.get_legend_handles_labels()
    handles2 = ax3b.get_legend_handles_labels()
    ax3.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="upper left",
               bbox_to_anchor=(0.0, -0.15), frameon=False, fontsize=9, ncols=2)  # fmt: skip
    step = max(1, len(weeks) // 13)
    for ax in (ax1, ax2, ax3):
        ax.set_xticks(x[::step], labels[::step])
        ax.set_xlim(-0.6, len(weeks) - 0.4)
    return _svg(fig, "weeks")


# -- HTML ----------------------------------------------------------------------------------

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d1d1d; margin: 0 auto; max-width: 1040px; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 8px; border-bottom: 1px solid #ddd; }
.meta { color: #5b5b5b; }
.plot svg { width: 100%; height: auto; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; white-space: nowrap; }
th { background: #f5f5f5; }
.facts td { text-align: left; }
.suggestion { border-left: 4px solid #009E73; background: #f1faf6; padding: 8px 14px; }
.note { color: #7a4b00; }
@media print { body { max-width: none; } h2 { break-before: auto; } }
"""


def _e(v) -> str:
    return html.escape(str(v))


def _table(head: list[str], rows: list[list], cls: str = "") -> str:
    out = [f'<table class="{cls}">' if cls else "<table>", "<tr>"]
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _when(s: SessionRow) -> str:
    t = s.start.astimezone().strftime("%a %d %b %Y %H:%M")
    return t + (" (sync time)" if s.start_estimated else "")


def _mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _opt(v, fmt: str, unit: str = "") -> str:
    return "–" if v is None else f"{v:{fmt}}{unit}"


def session_facts(s: SessionRow) -> list[tuple[str, str]]:
    """The facts of one session as (label, value) lines (shared with `retrostep show`)."""
    st = s.stats
    comp = s.compliance
    prog = st["program"]
    lines = [
        ("Session", f"{s.id} (device {s.device_id}, its session {s.device_session})"),
        ("Started", _when(s)),
        ("Duration", _mmss(st["duration_s"])),
        ("Backward", f"{st['backward_steps']} steps, {st['backward_walking_s'] / 60:.1f} min"),
        ("Forward", f"{st['forward_steps']} steps, {st['forward_walking_s'] / 60:.1f} min"),
        ("Cadence", f"{_opt(st['cadence_spm'], '.0f', ' steps/min')} "
                    f"(backward {_opt(st['backward_cadence_spm'], '.0f', ' steps/min')})"),
        ("Interval program", "none" if not prog else
         " + ".join(f"{k} {v} s" for k, v in prog) + f", {st['program_repeat']}×"),
        ("Interval compliance", "–" if comp is None else
         f"{comp:.0%} ({st['compliance_s']} of {st['backward_interval_s']:.0f} s walked "
         f"backward in backward intervals)"),
        ("Sway alerts", f"{st['sway_alerts']} ({st['backward_sway_alerts']} walking backward)"),
        ("Sway (roll range/s)", f"mean {_opt(st['sway_range_mean_deg'], '.1f', '°')}, 95th "
         f"percentile {_opt(st['sway_range_p95_deg'], '.1f', '°')}, backward mean "
         f"{_opt(st['backward_sway_range_mean_deg'], '.1f', '°')}; roll rate "
         f"{_opt(st['sway_rate_rms_deg_s'], '.1f', '°/s')} RMS"),
        ("Alert limit", f"{st['sway_limit_deg']:g}°"),
        ("Ended", st["end_reason"] or "still open when synced"),
        ("Firmware", st["firmware"]),
    ]  # fmt: skip
    if st["damaged_bytes"]:
        lines.append(("Damaged bytes", f"{st['damaged_bytes']} (skipped when reading)"))
    return lines


def build(store: Store, session: SessionRow | None = None, weeks: int = 26) -> str:
    """The report as an HTML string (raises the store's EmptyStore without sessions)."""
    sessions = store.sessions()
    if not sessions:
        raise store.empty_error()
    if session is None:
        session = sessions[-1]
    all_weeks = weeks_of(sessions)
    shown = all_weeks[-weeks:]
    sug = suggest(sessions, all_weeks)
    trend = sway_trend(all_weeks)
    generated = datetime.now().astimezone().strftime("%d %b %Y %H:%M")
    first, last = sessions[0].start.astimezone(), sessions[-1].start.astimezone()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>retrostep report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>retrostep: backward-walking report</h1>",
        f'<p class="meta">{len(sessions)} sessions from {first:%d %b %Y} to {last:%d %b %Y}; '
        f"generated {generated}.</p>",
        "<h2>Weekly progress</h2>",
        f'<div class="plot" id="plot-weeks">{weekly_figure(shown)}</div>',
    ]
    b = sug["backward_interval_s"]
    change = ""
    if b["now"] is not None:
        change = (f"backward intervals {b['now']} s → {b['next']} s" if b["next"] != b["now"]
                  else f"backward intervals stay {b['now']} s")  # fmt: skip
    program = " + ".join(f"{k} {v} s" for k, v in sug["program"]) + f", {sug['program_repeat']}×"
    parts.append(
        f'<div class="suggestion" id="suggestion"><b>Next week: {_e(sug["action"])}</b>'
        f"{' (' + _e(change) + ')' if change else ''}. {_e(sug['reason'])}.<br>"
        f"Program: {_e(program)} — <code>retrostep config</code> can put it on the device.</div>"
    )
    if trend is not None:
        word = "steadier" if trend < -0.02 else "more sway" if trend > 0.02 else "about the same"
        parts.append(f"<p>Backward sway trend over the last weeks: {trend:+.2f}° per week "
                     f"({word}).</p>")  # fmt: skip
    rows = [[w.label, w.sessions, f"{w.backward_min:.1f}", w.backward_steps,
             f"{w.forward_s / 60:.1f}", w.sway_alerts,
             _opt(w.alerts_per_backward_min, ".2f"), _opt(w.backward_sway_range_mean_deg, ".1f"),
             _opt(w.compliance, ".0%")] for w in reversed(shown)]  # fmt: skip
    parts.append(_table(["week", "sessions", "backward min", "backward steps", "forward min",
                         "sway alerts", "alerts/backward min", "backward sway °",
                         "compliance"], rows))  # fmt: skip
    parts.append(f"<h2>Session {session.id}: {_e(_when(session))}</h2>")
    if session.start_estimated:
        parts.append('<p class="note">The device clock was not set during this session: '
                     "its start is the time it was synced.</p>")  # fmt: skip
    parts.append(_table(["", ""], [list(f) for f in session_facts(session)], "facts"))
    parts.append(f'<div class="plot" id="plot-session">'
                 f"{session_figure(store.raw(session.id))}</div>")  # fmt: skip
    parts.append("<h2>Recent sessions</h2>")
    rows = [[s.id, _when(s), _mmss(s.stats["duration_s"]), s.stats["backward_steps"],
             f"{s.stats['backward_walking_s'] / 60:.1f}", s.stats["forward_steps"],
             s.stats["sway_alerts"], _opt(s.compliance, ".0%")]
            for s in reversed(sessions[-15:])]  # fmt: skip
    parts.append(_table(["#", "started", "duration", "backward steps", "backward min",
                         "forward steps", "sway alerts", "compliance"], rows))  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def write(store: Store, output: Path, session: SessionRow | None = None, weeks: int = 26) -> Path:
    """Build the report and write it atomically to ``output``."""
    text = build(store, session, weeks)
    output = Path(output)
    if output.is_dir():
        raise ReportError(f"{output} is a directory: give a file name with --output")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=output.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    except OSError as e:
        raise ReportError(f"cannot write the report to {output}: {e.strerror}") from e
    return output
