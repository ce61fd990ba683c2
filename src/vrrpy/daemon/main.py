"""``vrrpyd``: run the VRRP instances of a TOML file in the foreground.

    vrrpyd -c /etc/vrrpyd.toml           run; log every transition with its reason
    vrrpyd --check -c /etc/vrrpyd.toml   validate; print each error with its key; exit 1 if any

Signals: SIGTERM / SIGINT stop (a Master sends priority 0 and withdraws its
addresses first); SIGHUP reloads the file (unchanged instances keep their
state, added ones start, removed ones stop as on SIGTERM; a file with errors is
refused and the running set is kept); SIGUSR1 rewrites the state file now.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vrrpy.daemon.config import (
    ConfigFileError,
    ConfigIssue,
    DaemonConfig,
    check_ownership,
    load_config,
)

logger = logging.getLogger("vrrpyd")


class StateFile:
    """The JSON state file, rewritten atomically (temporary file, then rename).

    Writes are coalesced: a transition asks for a write, and the file is
    rewritten once, 10 ms later, with the state at that moment, by a worker
    thread. A burst of transitions (hundreds of instances electing at once)
    costs one write per 10 ms instead of one per transition, and the event
    loop never stops to serialise JSON while adverts are due.
    """

    DELAY = 0.01

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.path = Path(path)
        self.loop = loop
        self._pending = False
        self._dirty: Callable[[], dict[str, dict[str, object]]] | None = None
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None

    def request(self, snapshot: Callable[[], dict[str, dict[str, object]]]) -> None:
        """Rewrite the file soon with what ``snapshot()`` returns then."""
        if self.loop is None:
            self.write(snapshot())
            return
        if self._pending:
            self._dirty = snapshot  # taken when the current write cycle ends
            return
        self._pending = True
        self.loop.call_later(self.DELAY, self._flush, snapshot)

    def _flush(self, snapshot: Callable[[], dict[str, dict[str, object]]]) -> None:
        if self._closed:
            self._pending = False
            return  # the final state was written by whoever closed us
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrrpyd-state")
        started = time.monotonic()
        state = snapshot()
        self._pool.submit(self.write, state)
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

    def write(self, instances: dict[str, dict[str, object]]) -> None:
        """Replace the file with the given state of every instance, now."""
        document = {"instances": instances, "pid": os.getpid()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=1, default=str)
                handle.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _print_issues(issues: list[ConfigIssue], source: str) -> None:
    for issue in issues:
        print(f"{source}: {issue.key}: {issue.message}", file=sys.stderr)


def _ownership_issues(config: DaemonConfig) -> list[ConfigIssue]:
    """Priority-255 instances whose addresses are not on their interface (needs netlink)."""
    owners = [spec for spec in config.instances if spec.priority == 255]
    if not owners:
        return []
    from vrrpy.net.addresses import Netlink

    issues: list[ConfigIssue] = []
    netlink = Netlink()
    try:
        for spec in owners:
            try:
                present = set(netlink.addresses(netlink.index(spec.interface)))
            except KeyError:
                issues.append(
                    ConfigIssue(
                        f"instance[{spec.name}].interface", f"no interface {spec.interface}"
                    )
                )
                continue
            issues.extend(check_ownership(spec, present))
    finally:
        netlink.close()
    return issues


def _enter_netns(name: str | None) -> None:
    if name:
        from pyroute2 import netns  # type: ignore[import-untyped]

        netns.setns(name)


async def _serve(config: DaemonConfig, path: str) -> int:
    from vrrpy.runtime import Runtime

    loop = asyncio.get_running_loop()
    state = StateFile(config.global_.state_file, loop)
    runtime: Runtime | None = None

    def save(*_: Any) -> None:
        if runtime is not None:
            state.request(runtime.status)

    runtime = Runtime(loop, on_transition=save)
    stopping = asyncio.Event()
    starting = True

    def reload() -> None:
        assert runtime is not None
        try:
            fresh = load_config(path)
        except ConfigFileError as exc:
            for issue in exc.errors:
                logger.error("reload refused: %s: %s", issue.key, issue.message)
            return
        except OSError as exc:
            logger.error("reload refused: %s", exc)
            return
        try:
            added, removed, restarted = runtime.reload(fresh.instances)
        except Exception:
            logger.exception("reload failed")
            return
        logger.info(
            "reloaded %s: added %s, removed %s, restarted %s, %d unchanged",
            path,
            added or "none",
            removed or "none",
            restarted or "none",
            len(runtime.instances) - len(added) - len(restarted),
        )
        save()

    def hangup() -> None:
        if starting:
            logger.warning("SIGHUP while starting: ignored, send it again when started")
        else:
            reload()

    # Signals are handled before the first instance starts: a starting daemon that
    # is stopped must still resign properly, and SIGUSR1 must never kill it.
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, hangup)
    loop.add_signal_handler(signal.SIGUSR1, save)
    try:
        await runtime.start_async(config.instances)
        starting = False
        save()
        logger.info("vrrpyd started: %d instance(s) from %s", len(runtime.instances), path)
        await stopping.wait()
    finally:
        logger.info("vrrpyd stopping")
        final: dict[str, dict[str, object]] = {}
        with runtime.batch():
            for name in list(runtime.instances):
                final[name] = runtime.remove(name)
        runtime.stop()
        state.close()
        state.write(final)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vrrpyd`` console script."""
    parser = argparse.ArgumentParser(prog="vrrpyd", description="VRRP daemon (vrrpy).")
    parser.add_argument("-c", "--config", required=True, help="TOML configuration file")
    parser.add_argument("--check", action="store_true", help="validate the file and exit")
    parser.add_argument("--log-level", help="override [global] log_level")
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
    if args.check:
        print(f"{args.config}: OK ({len(config.instances)} instance(s))")
        return 0
    try:
        return asyncio.run(_serve(config, args.config))
    except (RuntimeError, OSError) as exc:
        logger.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
