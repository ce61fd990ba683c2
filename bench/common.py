"""What every benchmark prints about what it measured."""

from __future__ import annotations

import subprocess
from pathlib import Path


def source_revision() -> str:
    """The vrrpy checkout being measured (git commit, "+dirty" with local edits), if known."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty=+dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
