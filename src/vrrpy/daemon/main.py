"""``vrrpyd``: run the VRRP instances of a TOML file in the foreground.

    vrrpyd -c /etc/vrrpyd.toml           run; log every transition with its reason
    vrrpyd --check -c /etc/vrrpyd.toml   validate; print each error with its key; exit 1 if any
    vrrpyd --version

Both check the file, then each instance's interface (and a priority-255
instance's addresses) in the network namespace the daemon runs in, and print
each problem as ``FILE: KEY: what is wrong``; an instance that still cannot
start (:class:`~vrrpy.runtime.errors.InstanceStartError`) is reported the same
way. Before the first thread is started, the event loop's thread is made
real-time and the memory locked (``[global] realtime_priority``,
``lock_memory``, ``rlimit_rttime``: :mod:`vrrpy.runtime.realtime`).

Signals: SIGTERM / SIGINT stop (a Master sends priority 0 and withdraws its
addresses first); SIGHUP reloads the file (unchanged instances keep their
state, added ones start, removed ones stop as on SIGTERM; a file with errors is
refused and the running set is kept); SIGUSR1 rewrites the state file now.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vrrpy
from vrrpy.daemon.backendconfig import build_backends
from vrrpy.daemon.config import (
    ConfigFileError,
    ConfigIssue,
    DaemonConfig,
    check_ownership,
    check_tracking,
    load_config,
)
from vrrpy.daemon.control import start_control, transition_event
from vrrpy.observe.control import ControlServer, EventFeed
from vrrpy.runtime import realtime
from vrrpy.runtime.errors import InstanceStartError
from vrrpy.runtime.gate import LoopGate

if TYPE_CHECKING:
    from vrrpy.daemon.lvs import Lvs
    from vrrpy.observe.server import MetricsServer
    from vrrpy.runtime.runtime import Runtime
    from vrrpy.track import Tracking, TrackingChange

logger = logging.getLogger("vrrpyd")

Status = dict[str, dict[str, object]]


class StateFile:
    """The JSON state file, rewritten atomically (temporary file, then rename).

    Writes are coalesced: a transition asks for a write, and the file is
    rewritten once, 10 ms later, with the state at that moment, by a worker
    thread. A burst of transitions (hundreds of instances electing at once)
    costs one write per 10 ms instead of one per transition, and the event
    loop never stops to serialise JSON while adverts are due. The worker runs
    one real-time priority below the loop when the loop is real-time
    (:func:`vrrpy.runtime.realtime.worker_initializer`): it holds the GIL while
    it encodes, and an ordinary thread preempted there would hold up the loop.

    A write that fails in the worker (directory not writable, disk full) would
    vanish with its future; instead each failure is counted (``errors``),
    logged (the first at once, then at most one line per
    :data:`ERROR_LOG_INTERVAL` seconds with the number since), and the count
    is in every later file as ``state_file_errors``, so whoever reads the file
    after it recovers learns that it was stale for a while; the recovery is
    logged too. ``extra()`` adds top-level keys to each document (the
    real-time status).
    """

    DELAY = 0.01
    ERROR_LOG_INTERVAL = 60.0

    def __init__(
        self,
        path: str,
        loop: asyncio.AbstractEventLoop | None = None,
        extra: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.loop = loop
        self.extra = extra
        self.errors = 0
        """Writes that failed since start."""
        self._pending = False
        self._dirty: Callable[[], Status] | None = None
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        self._failing_since = 0  # errors when the current run of failures began, if failing
        self._failing = False
        self._last_logged = -math.inf
        self._unlogged = 0

    def request(self, snapshot: Callable[[], Status]) -> None:
        """Rewrite the file soon with what ``snapshot()`` returns then."""
        if self.loop is None:
            self.save(snapshot())
            return
        if self._pending:
            self._dirty = snapshot  # taken when the current write cycle ends
            return
        self._pending = True
        self.loop.call_later(self.DELAY, self._flush, snapshot)

    def _flush(self, snapshot: Callable[[], Status]) -> None:
        if self._closed:
            self._pending = False
            return  # the final state was written by whoever closed us
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="vrrpyd-state",
                initializer=realtime.worker_initializer,
            )
        started = time.monotonic()
        state = snapshot()
        extra = self.extra() if self.extra is not None else {}
        self._pool.submit(self.save, state, extra)
        # Taking the snapshot runs on the event loop: keep it to a tenth of the loop's
        # time however many instances there are, by waiting ten times as long as it
        # took before the next one may be taken.
        assert self.loop is not None
        self.loop.call_later(max(0.0, 9 * (time.monotonic() - started)), self._reopen)

    def _reopen(self) -> None:
        self._pending = False
        again, self._dirty = self._dirty, None
        if again is not None:
            self.request(again)

    def close(self) -> None:
        """Finish pending writes; later requests are ignored (the caller writes the last state)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def save(self, instances: Status, extra: dict[str, object] | None = None) -> bool:
        """:meth:`write`, with a failure counted and logged instead of raised; True if written."""
        if extra is None:
            extra = self.extra() if self.extra is not None else {}
        try:
            self.write(instances, extra)
        except Exception as exc:
            self._failed(exc)
            return False
        if self._failing:
            self._failing = False
            logger.warning(
                "state file %s written again, after %d failed write(s)",
                self.path,
                self.errors - self._failing_since,
            )
        return True

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        if not self._failing:
            self._failing = True
            self._failing_since = self.errors - 1
        now = time.monotonic()
        if now - self._last_logged < self.ERROR_LOG_INTERVAL:
            self._unlogged += 1
            return
        since = f" ({self._unlogged} more since the last message)" if self._unlogged else ""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
        logger.error(
            "cannot write the state file %s: %s%s; %d failed write(s) so far, "
            "next message in %g s at the earliest",
            self.path,
            reason,
            since,
            self.errors,
            self.ERROR_LOG_INTERVAL,
        )
        self._last_logged = now
        self._unlogged = 0

    def write(self, instances: Status, extra: dict[str, object] | None = None) -> None:
        """Replace the file with the given state of every instance, now (raises on failure)."""
        document: dict[str, object] = {"instances": instances, "pid": os.getpid()}
        document.update(extra or {})
        document["state_file_errors"] = self.errors
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(render_state(document))
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


class RawJSON:
    """A JSON text made elsewhere (the health agent's status line), written into the
    state file as it is: decoding and encoding it again would cost the GIL tens of
    milliseconds for nothing."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def render_state(document: dict[str, object]) -> str:
    """The state document as JSON text: one line per instance, one per other top-level key.

    Python's JSON encoder is written in C only without ``indent``; indented,
    2,000 instances took the pure-Python encoder about 200 ms, holding the GIL
    against the protocol loop. Each instance is encoded compactly by the C
    encoder on a line of its own: as fast, and still readable with ``grep``.
    """
    encode = json.JSONEncoder(default=str, separators=(", ", ": ")).encode
    parts: list[str] = []
    for key, value in document.items():
        if isinstance(value, RawJSON):
            parts.append(f" {encode(key)}: {value.data.decode('utf-8', 'replace')}")
        elif key == "instances" and isinstance(value, dict):
            inner = ",\n".join(f"  {encode(name)}: {encode(item)}" for name, item in value.items())
            parts.append(f" {encode(key)}: {{\n{inner}\n }}" if inner else f" {encode(key)}: {{}}")
        else:
            parts.append(f" {encode(key)}: {encode(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _print_issues(issues: list[ConfigIssue], source: str) -> None:
    for issue in issues:
        print(f"{source}: {issue.key}: {issue.message}", file=sys.stderr)


def _ownership_issues(config: DaemonConfig) -> list[ConfigIssue]:
    """What the host says about the file: missing interfaces, priority-255 addresses not owned.

    One netlink pass over every instance, in the network namespace we run in
    (after ``[global] netns`` was entered): an interface that does not exist
    here is reported under the key that names it, as a configuration mistake,
    rather than as a traceback when the instance starts.
    """
    from vrrpy.net.addresses import Netlink

    where = (
        f"in network namespace {config.global_.netns}"
        if config.global_.netns
        else "in this network namespace"
    )
    issues: list[ConfigIssue] = []
    netlink = Netlink()
    try:
        indexes: dict[str, int | None] = {}
        for spec in config.instances:
            if spec.interface not in indexes:
                try:
                    indexes[spec.interface] = netlink.index(spec.interface)
                except KeyError:
                    indexes[spec.interface] = None
            index = indexes[spec.interface]
            if index is None:
                issues.append(
                    ConfigIssue(
                        f"instance[{spec.name}].interface",
                        f"no interface {spec.interface} {where} (ip link shows what there is)",
                    )
                )
            elif spec.priority == 255:
                issues.extend(check_ownership(spec, set(netlink.addresses(index))))

        def exists(ifname: str) -> bool:
            try:
                netlink.index(ifname)
            except KeyError:
                return False
            return True

        # The instances' own interfaces were reported above; the tracked ones here.
        issues.extend(check_tracking(config, exists, where))
    finally:
        netlink.close()
    return issues


def _enter_netns(name: str | None) -> None:
    if name:
        from pyroute2 import netns  # type: ignore[import-untyped]

        netns.setns(name)


async def _serve(
    config: DaemonConfig,
    path: str,
    backends: dict[str, list[Any]] | None = None,
    group_backends: dict[str, list[Any]] | None = None,
    lvs: Lvs | None = None,
    gate: LoopGate | None = None,
) -> int:
    from vrrpy.runtime.runtime import Runtime

    loop = asyncio.get_running_loop()
    # The loop's default executor (membarrier waits, reload parsing) under the same
    # policy as the runtime's own workers: asyncio's would start plain threads.
    loop.set_default_executor(
        ThreadPoolExecutor(
            thread_name_prefix="vrrpyd-worker", initializer=realtime.worker_initializer
        )
    )
    rt = realtime.current()
    if rt is not None:
        rt.attach(loop)

    def relaxed() -> contextlib.AbstractContextManager[None]:
        return rt.relaxed() if rt is not None else contextlib.nullcontext()

    def extra(pause: Callable[[], None] | None = None) -> dict[str, object]:
        out: dict[str, object] = {"realtime": rt.status()} if rt is not None else {}
        if runtime is not None and runtime.sync_groups:
            out["sync_groups"] = runtime.group_status()
        if tracking is not None:
            out["tracking"] = tracking.status(pause)  # pause: from the control thread
        if lvs is not None:
            out["health_agent"] = lvs.summary()
            checks = lvs.raw_checks()
            if checks is not None:
                out["health_checks"] = RawJSON(checks)  # encoded by the agent, copied as is
        return out

    tracking: Tracking | None = None
    state = StateFile(config.global_.state_file, loop, extra)
    runtime: Runtime | None = None

    def save(*_: Any) -> None:
        # While instances start, their INIT -> BACKUP transitions come by the
        # thousand: one document is written when the start is over, not dozens of
        # snapshots of a half-started daemon, each taken on the loop.
        if runtime is not None and not starting:
            state.request(runtime.status)

    control_path = config.global_.control_path
    feed = EventFeed() if control_path else None

    def transitioned(runner: Any, transition: Any) -> None:
        save()
        if feed is not None:
            feed.publish(transition_event(runner, transition))

    starting = True
    runtime = Runtime(loop, on_transition=transitioned)
    runtime.set_sync_groups({group.name: tuple(group.members) for group in config.sync_groups})
    for name, objects in (backends or {}).items():
        runtime.set_backends(name, objects)
    for name, objects in (group_backends or {}).items():
        runtime.set_group_backends(name, objects)
    tracking = _start_tracking(config, runtime, loop, save)
    if lvs is not None:
        lvs.start(loop, save)  # the real servers' checks, feeding the IPVS backends
    stopping = asyncio.Event()
    reloading = asyncio.Lock()

    async def reload() -> None:
        assert runtime is not None
        async with reloading:
            try:
                # Parsing is pure CPU (60 ms for 500 instances): off the loop, which keeps
                # sending adverts meanwhile.
                fresh = await loop.run_in_executor(None, load_config, path)
            except ConfigFileError as exc:
                for issue in exc.errors:
                    logger.error("reload refused: %s: %s", issue.key, issue.message)
                return
            except OSError as exc:
                logger.error("reload refused: %s", exc)
                return
            changed = [
                key
                for key in vars(config.global_)
                if getattr(fresh.global_, key) != getattr(config.global_, key)
            ]
            if changed:
                logger.warning(
                    "reload: [global] %s changed; that takes effect at the next start",
                    ", ".join(changed),
                )
            try:
                with relaxed():
                    added, removed, restarted = runtime.reload(fresh.instances)
            except InstanceStartError as exc:
                logger.error("reload failed: %s", exc)
                return
            except Exception:
                logger.exception("reload failed")
                return
            runtime.set_sync_groups({g.name: tuple(g.members) for g in fresh.sync_groups})
            if (fresh.checks, fresh.instance_tracks) != (config.checks, config.instance_tracks):
                logger.warning(
                    "reload: tracking changed (track_* keys, [[track_*]] / [[ping_group]] "
                    "tables); that takes effect at the next start"
                )
            if fresh.virtual_servers != config.virtual_servers:
                logger.warning(
                    "reload: [[virtual_server]] tables changed; that takes effect at the next start"
                )
            logger.info(
                "reloaded %s: added %s, removed %s, restarted %s, %d unchanged",
                path,
                added or "none",
                removed or "none",
                restarted or "none",
                len(runtime.instances) - len(added) - len(restarted),
            )
            save()

    reloads: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        if starting:
            logger.warning("SIGHUP while starting: ignored, send it again when started")
            return
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    # Signals are handled before the first instance starts: a starting daemon that
    # is stopped must still resign properly, and SIGUSR1 must never kill it.
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, hangup)

    def usr1() -> None:
        save()
        if tracking is not None:
            tracking.request_status()  # the answer rewrites the file with the scripts' runs
        if lvs is not None:
            lvs.request_status()  # likewise, each real server's check history

    loop.add_signal_handler(signal.SIGUSR1, usr1)
    metrics: MetricsServer | None = None
    control: ControlServer | None = None
    try:
        listen = config.global_.metrics_listen
        if listen is not None:
            # Before the first instance: a taken port fails the start, not a scrape later.
            metrics = _start_metrics(listen, runtime, lambda: tracking, state, gate)
        if control_path and feed is not None:
            try:
                control = start_control(
                    control_path,
                    config.global_.control_group,
                    runtime,
                    feed,
                    lambda pause: {k: v for k, v in extra(pause).items() if k != "health_checks"},
                    path,
                    gate,
                )
            except OSError as exc:
                raise OSError(f"control_socket {control_path}: {exc}") from exc
        with relaxed():
            await runtime.start_async(config.instances)
        starting = False
        save()
        logger.info("vrrpyd started: %d instance(s) from %s", len(runtime.instances), path)
        await stopping.wait()
    finally:
        logger.info("vrrpyd stopping")
        for task in list(reloads):
            task.cancel()
        final: Status = {}
        with runtime.batch():
            for name in list(runtime.instances):
                final[name] = runtime.remove(name)
        runtime.stop()
        # The backends' stop steps (a Master's service, DRBD) run within their timeouts.
        await runtime.close_backends()
        if tracking is not None:
            tracking.stop()
        if lvs is not None:
            lvs.stop()
        state.close()
        state.save(final)
        if metrics is not None:
            metrics.stop()
        if control is not None:
            control.stop()
        if feed is not None:
            feed.close()
    return 0


def _start_metrics(
    listen: tuple[str, int],
    runtime: Runtime,
    tracking: Callable[[], Tracking | None],
    state: StateFile,
    gate: LoopGate | None,
) -> MetricsServer:
    """``[global] metrics_listen``: the Prometheus endpoint (:mod:`vrrpy.daemon.metrics`)."""
    from vrrpy.daemon.metrics import start_metrics

    def tracked(pause: Callable[[], None] | None = None) -> dict[str, Any]:
        current = tracking()
        if current is None:
            return {}
        # Fresh details (a script running now, its last run) for the next render: this
        # one shows the answer to the last request.
        current.request_status(notify=False)
        return current.status(pause)

    host, port = listen
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        server = start_metrics(listen, runtime, tracked, lambda: state.errors, gate)
    except OSError as exc:
        raise OSError(f"metrics_listen {where}: {exc.strerror or exc}") from exc
    logger.info("metrics: http://%s/metrics", where)
    return server


def _start_tracking(
    config: DaemonConfig,
    runtime: Runtime,
    loop: asyncio.AbstractEventLoop,
    save: Callable[[], None],
) -> Tracking | None:
    """Start tracking and wire its verdicts to the instances (None: nothing tracked).

    Every change goes to the runtime, which holds it for instances not
    started yet: so what tracking knows before the first instance starts (the
    interfaces, read at once; weight-0 scripts and the like, in FAULT until
    their first verdict: keepalived's "FAULT STATE (init)") makes each
    instance start in the right state, never a Backup that faults a moment
    later.
    """
    tracked = {name: tracks for name, tracks in config.instance_tracks.items() if tracks}
    if not tracked or not config.checks:
        return None
    from vrrpy.track import Tracking

    bases = {spec.name: spec.priority for spec in config.instances}

    def changed(change: TrackingChange) -> None:
        name = change.instance
        for reason in change.faults_raised:
            runtime.fault(name, reason)
        if change.priority is not None and bases.get(name) != 255:
            runtime.set_priority(name, change.priority)
        for reason in change.faults_cleared:
            runtime.recover(name, reason)
        save()

    tracking = Tracking(
        list(config.checks.values()),
        {name: (bases[name], tracks) for name, tracks in tracked.items() if name in bases},
        changed,
        on_status=save,
    )
    for name, model in tracking.instances.items():
        for reason in model.faults.values():
            runtime.fault(name, reason)
        if model.effective_priority != bases[name] and bases[name] != 255:
            runtime.set_priority(name, model.effective_priority)
    tracking.start(loop)
    return tracking


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vrrpyd`` console script."""
    parser = argparse.ArgumentParser(prog="vrrpyd", description="VRRP daemon (vrrpy).")
    parser.add_argument("-c", "--config", required=True, help="TOML configuration file")
    parser.add_argument("--check", action="store_true", help="validate the file and exit")
    parser.add_argument("--log-level", help="override [global] log_level")
    parser.add_argument(
        "--version", action="version", version=f"vrrpyd (vrrpy) {vrrpy.__version__}"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigFileError as exc:
        _print_issues(exc.errors, args.config)
        return 1
    except OSError as exc:
        print(f"{args.config}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    level = (args.log_level or config.global_.log_level).upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s vrrpyd[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    _enter_netns(config.global_.netns)
    issues = _ownership_issues(config)
    if issues:
        _print_issues(issues, args.config)
        return 1
    shared: dict[str, Any] = {}
    backends: dict[str, list[Any]] = {}
    for name, specs in config.instance_backends.items():
        try:
            backends[name] = build_backends(specs, shared)
        except (ValueError, TypeError) as exc:
            _print_issues([ConfigIssue(f"instance[{name}].backends", str(exc))], args.config)
            return 1
    group_backends = {
        name: build_backends(specs, shared)  # scripts only: nothing to import
        for name, specs in config.group_backends.items()
    }
    lvs = None
    if config.virtual_servers:
        from vrrpy.daemon.lvs import Lvs

        lvs = Lvs(config)
        lvs.attach(backends, config)  # after the user's backends, before the notify scripts
    if args.check:
        print(f"{args.config}: OK ({len(config.instances)} instance(s))")
        return 0
    # The runtime's modules are imported first (their CPU time is not the loop's), then
    # the policy is set before the first thread: the runtime's threads are started from
    # this one and take theirs from worker_initializer (SCHED_RESET_ON_FORK: none inherits).
    importlib.import_module("vrrpy.runtime.runtime")
    rt = realtime.apply(config.global_.realtime)
    logger.info("scheduling: %s", rt.describe())
    try:
        # The loop closes its gate while it works: the metrics and control threads wait
        # there rather than take the GIL from it at each of its system calls.
        gate = LoopGate()
        return gate.run(_serve(config, args.config, backends, group_backends, lvs, gate))
    except InstanceStartError as exc:
        _print_issues(
            [ConfigIssue(f"instance[{exc.instance}].{exc.key}", exc.message)], args.config
        )
        return 1
    except (RuntimeError, OSError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        rt.leave()  # tearing down the loop and the interpreter is no real-time work


if __name__ == "__main__":
    sys.exit(main())
