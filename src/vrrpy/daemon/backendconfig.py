"""vrrpyd's backend keys: keepalived's notify scripts, ucarp's up/down scripts, ``[[backend]]``.

A keepalived user moves their ``vrrp_instance`` notify lines over as they
are, and the scripts see the same arguments (docs/backends.md):

```toml
[global]
notify_fifo = "/run/vrrpyd.fifo"        # keepalived: global_defs { notify_fifo ... }

[[instance]]
name = "VI_1"
notify_master = "/etc/vrrpy/to-master.sh"   # keepalived's keys, same meaning
notify_backup = "/etc/vrrpy/to-backup.sh"
notify = "/etc/vrrpy/notify.sh"             # gets TYPE NAME STATE PRIORITY appended
script_timeout = 30                         # seconds; the script's process group is killed then
up_script = "/etc/vrrpy/vip-up.sh"          # ucarp --upscript: SCRIPT IFACE VIP [XPARAM]
down_script = "/etc/vrrpy/vip-down.sh"      # ucarp --downscript
backends = ["audit"]                        # [[backend]] tables, in this order

[[backend]]
name = "audit"
type = "python"                             # "module:attribute": a Backend class or factory
object = "mysite.hooks:Audit"
timeout = 5
params = { path = "/var/log/vrrp-audit" }   # keyword arguments for it
thread = true                               # default: runs on its own loop in a thread
```

Order of an instance's backends: its ``backends`` in the order listed, then
its IPVS pool if it has ``[[virtual_server]]`` tables (:mod:`vrrpy.daemon.lvs`
puts it there), then its notify scripts, then its ucarp scripts, then the
global ``notify_fifo``.
Becoming Master the pipeline runs them in this order (after every
``prepare``: DRBD is Primary and mounted before any of them), leaving Master
in reverse: ``notify_backup`` stops the service before DRBD unmounts and
demotes.

What the loader produces: ``DaemonConfig.instance_backends``, per instance
name, a tuple of :class:`BackendSpec` (what to build, not built: building
imports user code and opens FIFOs, which is the daemon's job at start, not
``--check``'s). :func:`build_backends` builds them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "BACKEND_TYPES",
    "GLOBAL_KEYS",
    "GROUP_KEYS",
    "INSTANCE_KEYS",
    "BackendSpec",
    "build_backends",
    "group_backend_specs",
    "instance_backend_specs",
    "parse_backend_table",
]

NOTIFY_KEYS: Final = (
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "notify_master_rx_lower_pri",
)
UCARP_KEYS: Final = ("up_script", "down_script")
UCARP_EXTRA: Final = "xparam"
"""ucarp's ``--xparam``: appended to the up / down scripts' arguments when set."""
INSTANCE_KEYS: Final = (*NOTIFY_KEYS, *UCARP_KEYS, UCARP_EXTRA, "script_timeout", "backends")
"""The ``[[instance]]`` keys of this module."""
GROUP_KEYS: Final = (
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "script_timeout",
)
"""A ``[[sync_group]]``'s keys of this module: keepalived's ``vrrp_sync_group`` notify
lines, run once per group transition with ``GROUP NAME STATE 0``."""
GLOBAL_KEYS: Final = ("notify_fifo", "notify_fifo_script", "notify_priority_changes")
"""The ``[global]`` keys of this module."""
BACKEND_TYPES: Final = ("python", "drbd", "script")
"""What a ``[[backend]]`` table may build."""
BACKEND_KEYS: Final = (
    "name",
    "type",
    "object",
    "timeout",
    "params",
    "fault_on_failure",
    "thread",
)
DRBD_KEYS: Final = (
    "resource",
    "drbdadm",
    "config",
    "mountpoint",
    "device",
    "fstype",
    "options",
    "allow_standalone",
    "check_interval",
    "peer_wait",
)
"""A ``type = "drbd"`` table's own keys (docs/drbd.md)."""
SCRIPT_COMMANDS: Final = ("check", "prepare", "master", "backup", "fault", "stop", "notify")
SCRIPT_KEYS: Final = (*SCRIPT_COMMANDS, "check_interval", "shell")
"""A ``type = "script"`` table's own keys (docs/backends.md, "Script backends")."""
_OBJECT_RE: Final = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_TIMEOUT: Final = 30.0

Issue = Callable[[str, str], None]
"""Reports a problem: (key relative to the table, message)."""


@dataclass(frozen=True)
class BackendSpec:
    """One backend of an instance, as configured (built by :func:`build_backends`)."""

    name: str
    type: str
    """``notify`` (keepalived's scripts), ``ucarp``, ``fifo``, or a ``[[backend]]`` type."""
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    fault_on_failure: bool = False
    """A failure on the way to Master takes the node out of Master (docs/backends.md)."""


def _string(table: Mapping[str, Any], key: str, issue: Issue) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        issue(key, f"must be a command line (a non-empty string), got {value!r}")
        return None
    return value


def _timeout(table: Mapping[str, Any], key: str, issue: Issue) -> float:
    value = table.get(key, DEFAULT_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        issue(key, f"must be a number of seconds, got {value!r}")
        return DEFAULT_TIMEOUT
    if not 0.01 <= value <= 86400:
        issue(key, f"must be 0.01..86400 seconds, got {value}")
        return DEFAULT_TIMEOUT
    return float(value)


def parse_backend_table(table: Mapping[str, Any], issue: Issue) -> BackendSpec | None:
    """One ``[[backend]]`` table, or None (each problem reported with its key)."""
    if table.get("type") == "drbd":
        known: tuple[str, ...] = ("name", "type", "timeout", "fault_on_failure", *DRBD_KEYS)
    elif table.get("type") == "script":
        known = ("name", "type", "timeout", "fault_on_failure", *SCRIPT_KEYS)
    else:
        known = BACKEND_KEYS
    for key in table:
        if key not in known:
            issue(key, f"unknown key; this [[backend]] has {', '.join(known)}")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        issue("name", f"must be 1-64 letters, digits, '_', '.' or '-', got {name!r}")
        name = None
    kind = table.get("type")
    if kind not in BACKEND_TYPES:
        issue("type", f"must be one of {', '.join(BACKEND_TYPES)}, got {kind!r}")
        kind = None
    params = table.get("params", {})
    if not isinstance(params, Mapping):
        issue("params", f"must be a table of keyword arguments, got {params!r}")
        params = {}
    timeout = _timeout(table, "timeout", issue)
    fault_on_failure = table.get("fault_on_failure", False)
    if not isinstance(fault_on_failure, bool):
        issue("fault_on_failure", f"must be true or false, got {fault_on_failure!r}")
        fault_on_failure = False
    obj = table.get("object")
    if kind == "python" and (not isinstance(obj, str) or not _OBJECT_RE.fullmatch(obj)):
        issue("object", f"must name a Python object as 'module:attribute', got {obj!r}")
        return None
    if kind == "drbd":
        drbd: dict[str, Any] = {}
        resource = table.get("resource")
        if not isinstance(resource, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", resource):
            issue("resource", f"must name a DRBD resource, got {resource!r}")
        else:
            drbd["resource"] = resource
        for key in ("drbdadm", "config", "mountpoint", "device", "fstype", "options"):
            value = table.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                issue(key, f"must be a non-empty string, got {value!r}")
            elif key in ("config", "mountpoint", "device") and not value.startswith("/"):
                issue(key, f"must be an absolute path, got {value!r}")
            else:
                drbd[key] = value
        for key in ("device", "fstype", "options"):
            if key in drbd and "mountpoint" not in drbd:
                issue(key, "needs mountpoint (where to mount the filesystem)")
        standalone = table.get("allow_standalone", False)
        if not isinstance(standalone, bool):
            issue("allow_standalone", f"must be true or false, got {standalone!r}")
        else:
            drbd["allow_standalone"] = standalone
        for key, low, high in (("check_interval", 0.0, 3600.0), ("peer_wait", 0.0, timeout)):
            value = table.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                issue(key, f"must be a number of seconds, got {value!r}")
            elif not low <= value <= high:
                what = "at most the backend's timeout" if key == "peer_wait" else "0 is off"
                issue(key, f"must be {low:g}..{high:g} seconds ({what}), got {value}")
            else:
                drbd[key] = float(value)
        if name is None or "resource" not in drbd:
            return None
        return BackendSpec(name, kind, drbd, timeout, fault_on_failure)
    if kind == "script":
        return _script_table(table, name, timeout, fault_on_failure, issue)
    if name is None or kind is None:
        return None
    thread = table.get("thread", True)
    if not isinstance(thread, bool):
        issue("thread", f"must be true or false, got {thread!r}")
        thread = True
    params = {"object": obj, "params": dict(params), "thread": thread}
    return BackendSpec(name, kind, params, timeout, fault_on_failure)


def _script_table(
    table: Mapping[str, Any],
    name: str | None,
    timeout: float,
    fault_on_failure: bool,
    issue: Issue,
) -> BackendSpec | None:
    """A ``type = "script"`` table: command lines for check, prepare and each state."""
    params: dict[str, Any] = {}
    for key in SCRIPT_COMMANDS:
        value = _string(table, key, issue)
        if value is not None:
            params[key] = value
    if not any(key in params for key in SCRIPT_COMMANDS):
        issue("type", f"a script backend needs at least one of {', '.join(SCRIPT_COMMANDS)}")
    interval = table.get("check_interval", 5.0 if "check" in params else 0.0)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        issue("check_interval", f"must be a number of seconds, got {interval!r}")
    elif "check" in params and not 0.01 <= interval <= 86400:
        issue("check_interval", f"must be 0.01..86400 seconds with a check, got {interval}")
    elif "check" not in params and "check_interval" in table:
        issue("check_interval", "needs check (the command to run)")
    else:
        params["check_interval"] = float(interval)
    shell = table.get("shell", False)
    if not isinstance(shell, bool):
        issue("shell", f"must be true or false, got {shell!r}")
    else:
        params["shell"] = shell
    if name is None:
        return None
    return BackendSpec(name, "script", params, timeout, fault_on_failure)


def instance_backend_specs(
    table: Mapping[str, Any],
    defined: Mapping[str, BackendSpec],
    global_table: Mapping[str, Any],
    issue: Issue,
) -> tuple[BackendSpec, ...]:
    """An ``[[instance]]``'s backends, in their order (see the module)."""
    specs: list[BackendSpec] = []
    timeout = _timeout(table, "script_timeout", issue)
    names = table.get("backends", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        issue("backends", f"must be a list of [[backend]] names, got {names!r}")
        names = []
    for index, name in enumerate(names):
        if name not in defined:
            known = ", ".join(sorted(defined)) or "none: the file has no [[backend]]"
            issue(f"backends[{index}]", f"no [[backend]] named {name!r} (there are: {known})")
        elif names.index(name) != index:
            issue(f"backends[{index}]", f"{name!r} is listed twice")
        else:
            specs.append(defined[name])
    notify = {key: _string(table, key, issue) for key in NOTIFY_KEYS}
    if any(notify.values()):
        scripts = {k: v for k, v in notify.items() if v is not None}
        specs.append(BackendSpec("notify", "notify", scripts, timeout))
    ucarp = {key: _string(table, key, issue) for key in UCARP_KEYS}
    xparam = table.get(UCARP_EXTRA)
    if xparam is not None and not isinstance(xparam, str):
        issue(UCARP_EXTRA, f"must be a string (one argument), got {xparam!r}")
        xparam = None
    if any(ucarp.values()):
        updown = {"up": ucarp["up_script"], "down": ucarp["down_script"], "extra": xparam}
        specs.append(BackendSpec("ucarp", "ucarp", updown, timeout))
    elif xparam is not None:
        issue(UCARP_EXTRA, "needs up_script or down_script (it is their extra argument)")
    fifo = global_table.get("notify_fifo")
    if isinstance(fifo, str) and fifo:
        fifo_params: dict[str, Any] = {
            "path": fifo,
            "script": global_table.get("notify_fifo_script"),
            "priority_changes": global_table.get("notify_priority_changes") is True,
        }
        specs.append(BackendSpec("notify_fifo", "fifo", fifo_params, timeout))
    return tuple(specs)


def group_backend_specs(table: Mapping[str, Any], issue: Issue) -> tuple[BackendSpec, ...]:
    """A ``[[sync_group]]``'s notify scripts (run for the group's own transitions)."""
    timeout = _timeout(table, "script_timeout", issue)
    notify = {key: _string(table, key, issue) for key in GROUP_KEYS if key != "script_timeout"}
    scripts = {k: v for k, v in notify.items() if v is not None}
    return (BackendSpec("notify", "notify", scripts, timeout),) if scripts else ()


def check_global(table: Mapping[str, Any], issue: Issue) -> None:
    """The ``[global]`` keys of this module."""
    fifo = table.get("notify_fifo")
    if fifo is not None and (not isinstance(fifo, str) or not fifo.startswith("/")):
        issue("notify_fifo", f"must be an absolute path, got {fifo!r}")
    _string(table, "notify_fifo_script", issue)
    if table.get("notify_fifo_script") is not None and fifo is None:
        issue("notify_fifo_script", "needs notify_fifo (the FIFO the script reads)")
    changes = table.get("notify_priority_changes")
    if changes is not None and not isinstance(changes, bool):
        issue("notify_priority_changes", f"must be true or false, got {changes!r}")


def build_backends(specs: tuple[BackendSpec, ...], shared: dict[str, Any]) -> list[Any]:
    """The backend objects for one instance's specs. ``shared`` holds what instances
    share (the one notify FIFO); pass the same dict for every instance.

    Raises ``ValueError`` naming the backend when user code cannot be imported or
    does not make a backend.
    """
    from vrrpy.backends.base import Backend

    built: list[Any] = []
    for spec in specs:
        params = dict(spec.params)
        if spec.type == "notify":
            from vrrpy.backends.notify import NotifyScripts

            built.append(NotifyScripts(timeout=spec.timeout, **params))
        elif spec.type == "ucarp":
            from vrrpy.backends.ucarp import UcarpScripts

            built.append(UcarpScripts(timeout=spec.timeout, **params))
        elif spec.type == "fifo":
            from vrrpy.backends.fifo import NotifyFifo

            fifo = shared.get("fifo")
            if fifo is None:
                fifo = shared["fifo"] = NotifyFifo(
                    params["path"],
                    script=params.get("script"),
                    priority_changes=bool(params.get("priority_changes")),
                )
            built.append(fifo.attach())
        elif spec.type == "drbd":
            from vrrpy.backends.drbd import DrbdBackend, Mount

            mount = None
            if "mountpoint" in params:
                mount = Mount(
                    params.pop("mountpoint"),
                    device=params.pop("device", None),
                    fstype=params.pop("fstype", None),
                    options=params.pop("options", None),
                )
            built.append(
                DrbdBackend(
                    params.pop("resource"),
                    mount=mount,
                    timeout=spec.timeout,
                    name=spec.name,
                    **params,
                )
            )
        elif spec.type == "script":
            from vrrpy.backends.script import ScriptBackend

            built.append(ScriptBackend(spec.name, timeout=spec.timeout, **params))
        elif spec.type == "python":
            module_name, _, attribute = str(params["object"]).partition(":")
            try:
                target: Any = importlib.import_module(module_name)
                for part in attribute.split("."):
                    target = getattr(target, part)
            except (ImportError, AttributeError) as exc:
                raise ValueError(
                    f"backend {spec.name}: cannot load {params['object']}: {exc}"
                ) from exc
            obj = target(**params["params"]) if callable(target) else target
            if not isinstance(obj, Backend) and not (
                hasattr(obj, "prepare") and hasattr(obj, "transition")
            ):
                raise ValueError(
                    f"backend {spec.name}: {params['object']} made {obj!r}, not a backend "
                    "(it needs prepare and transition: subclass vrrpy.backends.Backend)"
                )
            if getattr(obj, "name", "backend") == "backend":
                obj.name = spec.name
            obj.timeout = spec.timeout
            if params.get("thread", True):
                from vrrpy.backends.offloop import OffLoop

                obj = OffLoop(obj)
            built.append(obj)
        else:  # pragma: no cover - the loader admits no other type
            raise ValueError(f"backend {spec.name}: unknown type {spec.type}")
        if spec.fault_on_failure:
            built[-1].fault_on_failure = True
    return built
