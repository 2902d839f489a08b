"""`retrostep export`: sessions as CSV, JSON or FIT activity files.

* CSV and JSON: one row / object per session with the stored values (``SESSION_FIELDS``,
  units in the names), or with ``detail`` the per-second summaries, the steps, the sway
  alerts or the coaching intervals decoded from the raw logs.
* FIT: the activity format of Garmin and most training platforms, written with Garmin's
  own FIT SDK (``garmin-fit-sdk``). One file per session: file id, timer events, a
  record per second (cadence), a lap per coaching interval, the session (sport walking)
  and the activity. FIT counts strides (two steps): cadence is steps/min / 2 and
  ``total_strides`` steps / 2, as for running. What FIT has no field for travels as
  developer fields of a "retrostep" application: per second forward and backward steps
  and the roll range; per session forward and backward steps, backward walking time and
  sway alerts.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

from .errors import RetrostepError
from .session_stats import timeline
from .store import SessionRow, Store

SESSION_FIELDS = (
    "id", "device_id", "device_session", "start", "start_estimated", "duration_s",
    "backward_steps", "forward_steps", "backward_walking_s", "forward_walking_s",
    "cadence_spm", "backward_cadence_spm", "sway_alerts", "backward_sway_alerts",
    "sway_range_mean_deg", "sway_range_p95_deg", "sway_rate_rms_deg_s",
    "backward_sway_range_mean_deg", "sway_limit_deg", "backward_interval_s", "compliance_s",
    "compliance", "end_reason", "firmware", "bytes", "sha256",
)  # fmt: skip
DETAIL_FIELDS = {
    "seconds": ("t_s", "forward_steps", "backward_steps", "cadence_spm", "roll_range_deg",
                "roll_rate_deg_s"),
    "steps": ("t_s", "direction"),
    "alerts": ("t_s", "side", "deviation_deg"),
    "intervals": ("t_s", "kind", "index", "repeat"),
}  # fmt: skip
# A fixed application id for the FIT developer fields (any 16 bytes, kept for ever).
FIT_APPLICATION_ID = bytes.fromhex("5f1c2a9e0b7d4c3e8a61d2f4b9e07c35")


class ExportError(RetrostepError):
    """An export that cannot be written as asked."""

    exit_code = 2


def session_record(s: SessionRow) -> dict:
    d = s.to_json()
    return {k: d[k] for k in SESSION_FIELDS}


def detail_rows(store: Store, s: SessionRow, detail: str) -> list[dict]:
    """The rows of one detail kind for one session, decoded from its raw log."""
    tl = timeline(store.raw(s.id))
    if detail == "seconds":
        return [{"t_s": x["t"], "forward_steps": x["forward"], "backward_steps": x["backward"],
                 "cadence_spm": x["cadence_spm"], "roll_range_deg": x["roll_range_deg"],
                 "roll_rate_deg_s": x["roll_rate_deg_s"]} for x in tl.seconds]  # fmt: skip
    if detail == "steps":
        return [{"t_s": t, "direction": "forward" if d > 0 else "backward"} for t, d in tl.steps]
    if detail == "alerts":
        return [{"t_s": a["t"], "side": a["side"], "deviation_deg": a["deviation_deg"]}
                for a in tl.alerts]  # fmt: skip
    if detail == "intervals":
        return [{"t_s": i["t"], "kind": i["kind"], "index": i["index"], "repeat": i["repeat"]}
                for i in tl.intervals]  # fmt: skip
    raise ExportError(f"unknown detail {detail!r}")


def to_csv(store: Store, sessions: Iterable[SessionRow], detail: str | None = None) -> str:
    out = io.StringIO()
    if detail is None:
        w = csv.DictWriter(out, SESSION_FIELDS, lineterminator="\n")
        w.writeheader()
        for s in sessions:
            w.writerow(session_record(s))
        return out.getvalue()
    w = csv.DictWriter(out, ("session", *DETAIL_FIELDS[detail]), lineterminator="\n")
    w.writeheader()
    for s in sessions:
        for row in detail_rows(store, s, detail):
            w.writerow({"session": s.id, **row})
    return out.getvalue()


def to_json(store: Store, sessions: Iterable[SessionRow], detail: str | None = None) -> str:
    items = []
    for s in sessions:
        d = session_record(s)
        if detail is not None:
            d[detail] = detail_rows(store, s, detail)
        items.append(d)
    return json.dumps(items, indent=1) + "\n"


# -- FIT -----------------------------------------------------------------------------------

_KIND_INTENSITY = {"forward": "active", "backward": "interval", "rest": "rest"}


def to_fit(store: Store, s: SessionRow) -> bytes:
    """One session as a FIT activity file (Garmin FIT SDK)."""
    from garmin_fit_sdk import Encoder, Profile
    from garmin_fit_sdk.fit import BASE_TYPE

    m = Profile["mesg_num"]
    st = s.stats
    tl = timeline(store.raw(s.id))
    start = s.start
    end = start + timedelta(seconds=tl.duration_s)
    enc = Encoder()
    enc.write_mesg({
        "mesg_num": m["FILE_ID"], "type": "activity", "manufacturer": "development",
        "product": 1, "time_created": start,
        "serial_number": int.from_bytes(bytes.fromhex(s.digest[:8]), "little") or 1,
    })  # fmt: skip
    enc.write_mesg({
        "mesg_num": m["DEVICE_INFO"], "timestamp": start, "device_index": "creator",
        "manufacturer": "development", "product": 1, "product_name": "retrostep",
        "software_version": _version(st["firmware"]),
    })  # fmt: skip
    dev_id = {"mesg_num": m["DEVELOPER_DATA_ID"], "developer_data_index": 0,
              "application_id": list(FIT_APPLICATION_ID), "application_version": 1}  # fmt: skip
    enc.write_mesg(dev_id)
    fields = [  # key, message, name, base type, units
        (0, "RECORD", "forward_steps", "UINT8", "steps"),
        (1, "RECORD", "backward_steps", "UINT8", "steps"),
        (2, "RECORD", "roll_range", "FLOAT32", "deg"),
        (3, "SESSION", "forward_steps", "UINT32", "steps"),
        (4, "SESSION", "backward_steps", "UINT32", "steps"),
        (5, "SESSION", "backward_walking_time", "FLOAT32", "s"),
        (6, "SESSION", "sway_alerts", "UINT16", "alerts"),
        (7, "SESSION", "backward_sway_alerts", "UINT16", "alerts"),
    ]
    for key, mesg, name, base, units in fields:
        desc = {"mesg_num": m["FIELD_DESCRIPTION"], "developer_data_index": 0,
                "field_definition_number": key, "fit_base_type_id": BASE_TYPE[base],
                "field_name": name, "units": units, "native_mesg_num": m[mesg]}  # fmt: skip
        enc.write_mesg(desc)
        enc.add_developer_field(key, dev_id, desc)
    enc.write_mesg({"mesg_num": m["EVENT"], "timestamp": start, "event": "timer",
                    "event_type": "start"})  # fmt: skip
    for x in tl.seconds:
        enc.write_mesg({
            "mesg_num": m["RECORD"], "timestamp": start + timedelta(seconds=x["t"]),
            "cadence": min(254, int(round(x["cadence_spm"] / 2))),
            "developer_fields": {0: x["forward"], 1: x["backward"], 2: x["roll_range_deg"]},
        })  # fmt: skip
    enc.write_mesg({"mesg_num": m["EVENT"], "timestamp": end, "event": "timer",
                    "event_type": "stop_all"})  # fmt: skip
    laps = [(iv["t"], nxt["t"] if nxt else tl.duration_s, iv["kind"])
            for iv, nxt in zip(tl.intervals, [*tl.intervals[1:], None], strict=True)
            if iv["kind"] != "none"]  # fmt: skip
    if laps and laps[-1][1] < tl.duration_s:
        laps.append((laps[-1][1], tl.duration_s, "forward"))  # after the program
    if not laps:
        laps = [(0.0, tl.duration_s, "forward")]
    for i, (a, b, kind) in enumerate(laps):
        n = sum(1 for t, _ in tl.steps if a <= t < b)
        enc.write_mesg({
            "mesg_num": m["LAP"], "message_index": i, "timestamp": start + timedelta(seconds=b),
            "start_time": start + timedelta(seconds=a), "total_elapsed_time": b - a,
            "total_timer_time": b - a, "total_cycles": n // 2, "sport": "walking",
            "intensity": _KIND_INTENSITY.get(kind, "active"), "event": "lap",
            "event_type": "stop",
        })  # fmt: skip
    steps = st["forward_steps"] + st["backward_steps"]
    enc.write_mesg({
        "mesg_num": m["SESSION"], "message_index": 0, "timestamp": end, "start_time": start,
        "total_elapsed_time": tl.duration_s, "total_timer_time": tl.duration_s,
        "sport": "walking", "sub_sport": "generic", "total_cycles": steps // 2,
        "avg_cadence": int(round((st["cadence_spm"] or 0) / 2)), "first_lap_index": 0,
        "num_laps": len(laps), "event": "session", "event_type": "stop", "trigger": "activity_end",
        "developer_fields": {3: st["forward_steps"], 4: st["backward_steps"],
                             5: st["backward_walking_s"], 6: st["sway_alerts"],
                             7: st["backward_sway_alerts"]},
    })  # fmt: skip
    local = end.astimezone()
    offset = local.utcoffset() or timedelta(0)
    enc.write_mesg({
        "mesg_num": m["ACTIVITY"], "timestamp": end, "total_timer_time": tl.duration_s,
        "num_sessions": 1, "type": "manual", "event": "activity", "event_type": "stop",
        "local_timestamp": int((end + offset).timestamp()) - 631065600,  # FIT epoch 1989-12-31
    })  # fmt: skip
    return enc.close()


def _version(firmware: str) -> float | None:
    """"retrostep 0.1.0" -> 0.1 for FIT's software_version (scale 100)."""
    for word in firmware.split():
        parts = word.split(".")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return int(parts[0]) + int(parts[1]) / 100.0
    return None


def fit_name(s: SessionRow) -> str:
    return f"retrostep-{s.id}-{s.start.astimezone():%Y%m%d-%H%M}.fit"


def write_fit(store: Store, sessions: list[SessionRow], out_dir: Path,
              progress: Callable[[SessionRow], None] | None = None) -> list[Path]:  # fmt: skip
    """One FIT file per session in ``out_dir`` (created if needed)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file: FIT export writes one file per session "
                          f"into a directory (--output DIR)")  # fmt: skip
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for s in sessions:
            p = out_dir / fit_name(s)
            p.write_bytes(to_fit(store, s))
            paths.append(p)
            if progress is not None:
                progress(s)
    except OSError as e:
        raise ExportError(f"cannot write into {out_dir}: {e.strerror}") from e
    return paths
