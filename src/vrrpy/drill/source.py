"""The user's configuration as the drill reads it: a vrrpyd TOML file, or a keepalived.conf.

The drill takes what the user runs in production, so it accepts both files a
user may have. TOML is tried first: a keepalived.conf is never valid TOML (its
blocks are ``name { ... }``), while a vrrpyd file always is, so the order
decides without guessing. A keepalived.conf goes through vrrpy's importer
(:mod:`vrrpy.keepalived.importer`, ``convert(parse_file(path))``), looked up at
run time: the drill says plainly when this installation has no importer
rather than failing with an import error.

Either way the result is checked by vrrpyd's own loader
(:func:`vrrpy.daemon.config.parse_config`), so the drill never builds a lab
from a file vrrpyd would refuse.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from vrrpy.daemon.config import ConfigFileError, DaemonConfig, parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = ["IMPORTER", "DrillError", "UserConfig", "read_config"]

IMPORTER = "vrrpy.keepalived.importer"
"""The module that turns a keepalived.conf into a vrrpyd document."""


class DrillError(Exception):
    """Something the user can fix (a file, an option, a missing tool); the message says what."""


@dataclass(frozen=True)
class UserConfig:
    """One configuration file of the user's, read and checked.

    ``document`` is the vrrpyd document as written (or as imported from
    keepalived): the drill reads from it what the checked ``config`` does not
    keep (the keys a lab drops, the tables as the user wrote them).
    """

    path: str
    document: Mapping[str, Any]
    config: DaemonConfig
    origin: str
    import_report: tuple[str, ...] = field(default=())


def read_config(path: str) -> UserConfig:
    """Read ``path`` as vrrpyd TOML, else as a keepalived.conf through the importer.

    Raises :class:`DrillError` with a message fit for the terminal.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DrillError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DrillError(f"{path}: not UTF-8 text ({exc})") from exc
    try:
        document: Mapping[str, Any] = tomllib.loads(text)
        origin = "vrrpyd TOML"
        report: tuple[str, ...] = ()
    except tomllib.TOMLDecodeError as toml_error:
        document, report = _import_keepalived(path, toml_error)
        origin = f"keepalived.conf, converted by {IMPORTER}"
    try:
        config = parse_config(tomli_w.dumps(dict(document)), path)
    except ConfigFileError as exc:
        raise DrillError(str(exc)) from None
    return UserConfig(path, document, config, origin, report)


def _import_keepalived(
    path: str, toml_error: Exception
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """``path`` through the keepalived importer; its document and its report lines."""
    if importlib.util.find_spec(IMPORTER) is None:
        raise DrillError(
            f"{path}: not a vrrpyd TOML file ({toml_error}); if it is a keepalived.conf, "
            f"this installation has no keepalived importer ({IMPORTER}) yet: convert it "
            "with `vrrpctl import-keepalived` where available and drill the TOML it writes"
        )
    importer: Any = importlib.import_module(IMPORTER)
    keepalived: Any = importlib.import_module("vrrpy.keepalived")
    try:
        result = importer.convert(keepalived.parse_file(path))
    except keepalived.KeepalivedParseError as exc:
        raise DrillError(
            f"{path}: neither vrrpyd TOML ({toml_error}) nor keepalived.conf: {exc}"
        ) from None
    document = getattr(result, "document", None)
    if not isinstance(document, Mapping):
        raise DrillError(f"{path}: the keepalived importer returned no vrrpyd document")
    lines: list[str] = []
    for attribute in ("problems", "report", "notes"):
        value = getattr(result, attribute, None)
        if isinstance(value, (list, tuple)):
            lines.extend(str(item) for item in value)
    return document, tuple(lines)
