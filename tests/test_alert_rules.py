"""deploy/prometheus: the alert rules load, their unit tests pass, and they use only the
names vrrpyd's /metrics renders.

``promtool`` (Debian package ``prometheus``) checks the rules and runs
vrrpy-alerts.test.yml; like every test that needs a tool, it skips without it
on a developer machine and fails when ``CI=true``.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from support import require_tool
from test_metrics import parse, rich_snapshot
from vrrpy.observe.metrics import render

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "vrrpy-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "vrrpy-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "vrrpy-dashboard.json"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULES.parent,
        timeout=120,
    )


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    result = _promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def _metric_names(text: str) -> set[str]:
    """Metric-looking names in PromQL text (keepalived_* and vrrpy_*)."""
    return set(re.findall(r"\b((?:keepalived|vrrpy)_[a-z_]+)\b", text))


def test_rules_and_dashboard_use_only_rendered_names() -> None:
    families = parse(render(rich_snapshot()))
    known = set(families) | {
        f"{name}{suffix}"
        for name, family in families.items()
        if family.type == "histogram"
        for suffix in ("_bucket", "_sum", "_count")
    }
    used = _metric_names(RULES.read_text()) | _metric_names(RULE_TESTS.read_text())
    used |= _metric_names(DASHBOARD.read_text())
    assert used - known == set()


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every panel's query, with Grafana's variables filled in, loads as a recording rule."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 15
    rules = tmp_path / "dashboard-rules.yml"
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for k, expr in enumerate(exprs):
        filled = expr.replace("$__rate_interval", "5m")
        filled = re.sub(r"\$(job|instance|iname)\b", ".*", filled)
        assert "$" not in filled, filled
        lines += [f"      - record: dashboard:query{k}", f"        expr: {json.dumps(filled)}"]
    rules.write_text("\n".join(lines) + "\n")
    result = _promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
