"""A real Linux kernel for tests: boot Debian's user-mode-linux with a script, collect what it says.

The host kernel may lack what a test needs (DRBD, IPVS); Debian's
``user-mode-linux`` package ships a kernel (``linux``, a host program) whose
modules carry both. :class:`Guest` boots it with the host's own filesystem as
its root (hostfs), runs one shell script as root inside it, and returns the
script's output and exit status (:class:`UmlResult`). A guest boots in about
two seconds::

    with Guest(memory="256M") as guest:
        guest.write("disk.sh", "truncate -s 8M $UML_WORK/disk.img")
        result = guest.run('modprobe -d "$MODDIR" drbd && cat /proc/drbd', timeout=30)
        print(result.status, result.output)

What the guest sees:

* ``/`` is the host's filesystem, read-write: whatever the script writes lands
  on the host. Write under ``$UML_WORK`` only (the guest's private directory
  on the host, under ``/var/tmp``; removed when the :class:`Guest` closes).
* ``/proc``, ``/sys``, a devtmpfs on ``/dev`` and fresh tmpfs on ``/run`` and
  ``/tmp`` are the guest's own; nothing the guest reads may live under the
  host's ``/run`` or ``/tmp`` (they are hidden), which is why the work
  directory is under ``/var/tmp``.
* ``modprobe -d "$MODDIR" NAME`` loads the UML kernel's modules (``$MODDIR``
  holds ``lib/modules/$KVER`` pointing at ``/usr/lib/uml/modules/$KVER``).
* ``$VRRPY_PYTHON`` is this interpreter (the host's venv works unchanged:
  same files) and ``PYTHONPATH`` holds the directory vrrpy was imported from,
  so ``"$VRRPY_PYTHON" -m vrrpy.daemon`` runs this checkout.
* no network to the host: build namespaces, veth pairs and dummies inside.
* one CPU; the console ends lines with CR (stripped here).

The guest's script ends with its exit status printed between markers; then
the guest powers itself off. A guest that outlives its ``timeout`` is killed,
with every host process UML made for it, through the process group of the
``linux`` process this module started (its PID): nothing else is touched.
The guest's script runs as root inside whatever user starts ``linux``; its
writes to the host's files are made with that user's rights.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import vrrpy

__all__ = ["Guest", "UmlError", "UmlResult", "kernel_release", "missing", "run"]

KERNEL = "linux"
"""The user-mode-linux kernel, a host executable (Debian package ``user-mode-linux``)."""

MODULES = Path("/usr/lib/uml/modules")
"""Where the package keeps the kernel's modules, one directory per release."""

WORK_PARENT = Path("/var/tmp")
"""Where guests' work directories go: on the host's disk, visible inside the guest."""


class UmlError(RuntimeError):
    """The guest could not be set up or booted (not: its script failed)."""


@dataclass(frozen=True)
class UmlResult:
    """What a guest's script did.

    ``output`` is what the script printed (stdout and stderr, CR stripped);
    ``status`` its exit status, or None if the guest never reported one (it
    timed out, or the kernel died: ``console`` then tells why). ``console`` is
    the whole console, boot messages included. ``seconds`` is wall time from
    starting ``linux`` to its end, boot and power-off included.
    """

    output: str
    status: int | None
    timed_out: bool
    seconds: float
    console: str

    @property
    def ok(self) -> bool:
        return self.status == 0

    def describe(self) -> str:
        """One paragraph for an assertion message: status, then the output."""
        if self.timed_out:
            head = f"the UML guest timed out after {self.seconds:.1f} s"
        elif self.status is None:
            head = "the UML guest ended without its script's status"
        else:
            head = f"the guest's script exited with {self.status} ({self.seconds:.1f} s)"
        body = self.output if self.output.strip() else self.console[-4000:]
        return f"{head}\n{body}"


def kernel_release() -> str:
    """The UML kernel's release (the newest directory under :data:`MODULES`)."""
    try:
        releases = sorted(p.name for p in MODULES.iterdir() if p.is_dir())
    except FileNotFoundError:
        releases = []
    if not releases:
        raise UmlError(f"no UML kernel modules under {MODULES} (install user-mode-linux)")
    return releases[-1]


def missing() -> str | None:
    """Why a guest cannot boot here (what is not installed), or None if it can."""
    if shutil.which(KERNEL) is None:
        return f"{KERNEL!r} not found on PATH (Debian package user-mode-linux)"
    try:
        kernel_release()
    except UmlError as exc:
        return str(exc)
    return None


def _source_root() -> Path:
    """The directory the running vrrpy was imported from (a checkout's ``src``)."""
    return Path(vrrpy.__file__).resolve().parent.parent


class Guest:
    """A work directory for a UML guest and the means to boot it (see the module).

    ``memory`` is the guest's RAM (UML's ``mem=``); ``python`` the interpreter
    the guest's scripts find as ``$VRRPY_PYTHON``; ``env`` extra environment
    for every run. Use as a context manager, or call :meth:`close`: it kills a
    guest still running and removes the work directory.
    """

    def __init__(
        self,
        memory: str = "256M",
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        parent: Path = WORK_PARENT,
    ) -> None:
        if missing() is not None:
            raise UmlError(str(missing()))
        self.memory = memory
        self.python = python
        self.env = dict(env or {})
        self.release = kernel_release()
        self.workdir = Path(tempfile.mkdtemp(prefix="vrrpy-uml.", dir=parent))
        self._process: subprocess.Popen[bytes] | None = None
        moddir = self.workdir / "modules"
        (moddir / "lib" / "modules").mkdir(parents=True)
        # modprobe -d DIR reads DIR/lib/modules/RELEASE/modules.dep, which the package
        # ships with paths relative to that directory: a symlink is all it takes.
        (moddir / "lib" / "modules" / self.release).symlink_to(MODULES / self.release)
        self.moddir = moddir

    def path(self, name: str) -> Path:
        """``name`` inside the work directory (same path on the host and in the guest)."""
        return self.workdir / name

    def write(self, name: str, text: str, mode: int = 0o644) -> Path:
        """Write a file into the work directory (for the guest to read); return its path."""
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)
        return target

    def _init(self, script: Path, token: str, env: Mapping[str, str]) -> Path:
        exports = "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())
        # The guest's /run and /tmp are its own; what it must run from there (a checkout
        # or a tox virtualenv under /tmp, as CI makes them) is mounted back from the host.
        shown = "\n".join(
            f"mkdir -p {shlex.quote(path)} && mount -t hostfs -o {shlex.quote(path)} none "
            f"{shlex.quote(path)}"
            for path in _hidden_paths(env)
        )
        text = f"""#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
{shown}
grep -q '^devtmpfs /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
echo 1 > /proc/sys/kernel/sysrq
{exports}
ip link set lo up
cd "$UML_WORK"
echo "vrrpy-uml-start-{token}"
sh {shlex.quote(str(script))} </dev/null 2>&1
echo "vrrpy-uml-exit-{token}=$?"
sync
echo o > /proc/sysrq-trigger
sleep 30
"""
        init = self.path(f"init-{token}")
        init.write_text(text)
        init.chmod(0o755)
        return init

    def command(self, init: Path, kernel_args: tuple[str, ...] = ()) -> list[str]:
        """The host command that boots the guest with ``init`` as its first process."""
        return [
            KERNEL,
            f"mem={self.memory}",
            "root=/dev/root",
            "rootfstype=hostfs",
            "rootflags=/",
            "rw",
            "quiet",
            f"init={init}",
            "con=null",
            "con0=fd:0,fd:1",
            *kernel_args,
        ]

    def run(
        self,
        script: str,
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        kernel_args: tuple[str, ...] = (),
    ) -> UmlResult:
        """Boot the guest, run ``script`` (sh) in it as root, and return what it did.

        Raises :class:`UmlError` only if ``linux`` cannot start; a failing script,
        a timeout or a kernel that dies are all in the result.
        """
        token = secrets.token_hex(6)
        script_path = self.write(f"script-{token}.sh", script)
        guest_env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "UML_WORK": str(self.workdir),
            "MODDIR": str(self.moddir),
            "KVER": self.release,
            "VRRPY_PYTHON": self.python,
            "PYTHONPATH": str(_source_root()),
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.env,
            **(env or {}),
        }
        init = self._init(script_path, token, guest_env)
        started = time.monotonic()
        try:
            # A session of its own: the process group is the linux process's PID, and
            # every host process UML makes for the guest stays in it.
            self._process = subprocess.Popen(
                self.command(init, kernel_args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.workdir,
            )
        except OSError as exc:
            raise UmlError(f"cannot start {KERNEL}: {exc}") from exc
        timed_out = False
        try:
            raw, _ = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill()
            raw, _ = self._process.communicate()
        finally:
            self._kill()
            self._process = None
        seconds = time.monotonic() - started
        console = raw.decode(errors="replace").replace("\r", "")
        output, status = _between(console, token)
        return UmlResult(output, status, timed_out, seconds, console)

    def _kill(self) -> None:
        """Kill the running guest's process group (its leader is the PID we started)."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def close(self) -> None:
        """Kill a guest still running and remove the work directory."""
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Guest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _hidden_paths(env: Mapping[str, str]) -> list[str]:
    """Host directories under /tmp or /run the guest needs: this interpreter's
    environments and the source tree on PYTHONPATH (the outermost of each)."""
    candidates = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent)]
    candidates += [p for p in env.get("PYTHONPATH", "").split(":") if p]
    shown: list[str] = []
    for candidate in candidates:
        path = Path(candidate)
        if not path.is_absolute() or path.parts[1:2] not in (("tmp",), ("run",)):
            continue
        top = str(Path(*path.parts[:3])) if len(path.parts) > 2 else str(path)
        if top not in shown:
            shown.append(top)
    return shown


def _between(console: str, token: str) -> tuple[str, int | None]:
    """The script's output (between the start and exit markers) and its exit status."""
    start = f"vrrpy-uml-start-{token}\n"
    end = f"vrrpy-uml-exit-{token}="
    begin = console.find(start)
    if begin < 0:
        return "", None
    body = console[begin + len(start) :]
    stop = body.find(end)
    if stop < 0:
        return body, None
    digits = body[stop + len(end) :].split("\n", 1)[0].strip()
    status = int(digits) if digits.isdigit() else None
    return body[:stop], status


def run(script: str, *, memory: str = "256M", timeout: float = 60.0) -> UmlResult:
    """Boot a throwaway guest, run ``script`` in it, clean up: :meth:`Guest.run` in one call."""
    with Guest(memory) as guest:
        return guest.run(script, timeout=timeout)
