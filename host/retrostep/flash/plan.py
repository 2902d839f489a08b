"""What a flash does to the board: pure decisions from the build and what the board holds.

The new version goes into the inactive slot (never the active one). For each file of the
build: *keep* it if the target slot already holds it with the right SHA-256 (a cut
transfer, a rollback), *copy* it on the board from the active slot if that has it
(nothing over the wire), else *send* it. Files of the target slot that the build does
not have are removed. ``full`` sends everything (a clean re-install, still staged).
The loader files (``boot.py``, ``main.py``) are written only when their hash differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import Build

KEEP, COPY, SEND = "keep", "copy", "send"
MARGIN_BLOCKS = 4  # copy-on-write room LittleFS needs for renames and metadata


@dataclass
class Listing:
    """A slot (or the root) as the board reports it: path -> (size, sha256 hex)."""

    files: dict[str, tuple[int, str]] = field(default_factory=dict)

    def sha(self, path: str) -> str | None:
        got = self.files.get(path)
        return got[1] if got else None


@dataclass
class Plan:
    target: str  # the slot written ("a" / "b")
    active: str | None  # the slot running now (None: nothing installed)
    actions: dict[str, str] = field(default_factory=dict)  # path -> keep/copy/send
    remove: list[str] = field(default_factory=list)  # stale files in the target slot
    loader: list[str] = field(default_factory=list)  # loader files to write
    up_to_date: bool = False  # the active slot is this very build, confirmed

    def paths(self, action: str) -> list[str]:
        return sorted(p for p, a in self.actions.items() if a == action)

    def send_bytes(self, build: Build) -> int:
        return sum(build.files[p].size for p in self.paths(SEND)) + sum(
            build.loader[p].size for p in self.loader)


def other(slot: str | None) -> str:
    return "b" if slot == "a" else "a"


def make_plan(build: Build, state: dict | None, slots: dict[str, Listing], root: Listing,
              *, full: bool = False) -> Plan:  # fmt: skip
    """``state``: the board's /fw/state (None: no slot installed); ``slots``: the
    listings of /fw/a and /fw/b; ``root``: the loader files at the root."""
    active = state.get("active") if state else None
    target = other(active)
    plan = Plan(target, active)
    tgt = slots.get(target, Listing())
    act = slots.get(active, Listing()) if active else Listing()
    for path, entry in build.files.items():
        if full:
            plan.actions[path] = SEND
        elif tgt.sha(path) == entry.sha256:
            plan.actions[path] = KEEP
        elif act.sha(path) == entry.sha256:
            plan.actions[path] = COPY
        else:
            plan.actions[path] = SEND
    plan.remove = sorted(p for p in tgt.files if p not in build.files and p != "manifest.json")
    plan.loader = [p for p in build.loader
                   if full or root.sha(p) != build.loader[p].sha256]  # fmt: skip
    if (state and not full and not plan.loader and not state.get("trial")
            and state.get("version") == build.label
            and all(act.sha(p) == e.sha256 for p, e in build.files.items())):
        plan.up_to_date = True  # fmt: skip
    return plan


def blocks(size: int, block: int) -> int:
    """LittleFS blocks a file of ``size`` bytes takes (at least one)."""
    return max(1, -(-size // block))


def space_needed(build: Build, plan: Plan, slots: dict[str, Listing],
                 block: int) -> tuple[int, int]:  # fmt: skip
    """``(blocks needed, blocks freed)`` by this plan on a filesystem of ``block``-byte
    blocks: the written files and their directories, a margin for copy-on-write; the
    target slot's files that are replaced or removed are freed."""
    written = [p for p, a in plan.actions.items() if a != KEEP]
    need = sum(blocks(build.files[p].size, block) for p in written)
    need += blocks(len(build.manifest_bytes()), block)
    dirs = {p.rsplit("/", 1)[0] for p in build.files if "/" in p}
    need += 2 * (len(dirs) + 1) + MARGIN_BLOCKS  # a metadata pair per directory
    need += sum(blocks(build.loader[p].size, block) for p in plan.loader)  # tmp copies
    tgt = slots.get(plan.target, Listing())
    freed = sum(blocks(size, block) for p, (size, _) in tgt.files.items()
                if p in plan.remove or plan.actions.get(p, KEEP) != KEEP
                or p == "manifest.json")  # fmt: skip
    return need, freed
