"""The Prometheus alert rules (infra/prometheus/alerts.yml) and their promtool unit tests.

A rule with a typo in its expression loads nowhere and a rule with a wrong threshold or `for`
fires too late or all the time, and neither shows until an incident. So `promtool check rules`
validates the file, `promtool test rules` replays series against it (infra/prometheus/
alerts_test.yml), and this module keeps the two honest: every alert the requirement names exists,
and every alert has a case where it fires and one where it stays quiet. promtool comes with
Debian's prometheus package (`make infra-install`); without it these tests fail, never skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "infra" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO_ROOT / "infra" / "prometheus" / "alerts_test.yml"

# The alerts the requirement names: failure rate per job name, consumer lag per group, dead
# letters growing, embedder circuit open, stuck jobs, a component down, producer errors.
REQUIRED_ALERTS = {
    "JobtrailJobFailureRate",
    "JobtrailConsumerLagHigh",
    "JobtrailDeadLettersGrowing",
    "JobtrailEmbedCircuitOpen",
    "JobtrailJobsStuck",
    "JobtrailComponentDown",
    "JobtrailProduceErrors",
}
SEVERITIES = {"critical", "warning", "info"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    assert executable is not None, (
        "promtool is not installed: run `make infra-install` (Debian's prometheus package)"
    )
    command = [executable, *args]
    return subprocess.run(
        command, check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, f"promtool check rules:\n{result.stdout}{result.stderr}"


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, f"promtool test rules:\n{result.stdout}{result.stderr}"


def test_every_required_alert_is_defined_once_in_the_jobtrail_group() -> None:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert [group["name"] for group in document["groups"]] == ["jobtrail"]
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), f"an alert is defined twice: {sorted(names)}"
    missing = REQUIRED_ALERTS - set(names)
    assert not missing, f"missing: {sorted(missing)}"


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    for rule in rules():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]


def test_every_alert_has_a_firing_case_and_a_quiet_case() -> None:
    tested = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert tested["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tested["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names - firing == set(), f"no case where these fire: {sorted(names - firing)}"
    assert names - quiet == set(), f"no case where these stay quiet: {sorted(names - quiet)}"
