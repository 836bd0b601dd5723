"""The Ansible role's limits are the Python collector's: the role's defaults hold the numbers
of remote/host_steps.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collector.remote import host_steps

DEFAULTS = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "collector" / "defaults" / "main.yml"


@pytest.mark.parametrize(
    "variable, value",
    [
        ("collector_capture_margin_seconds", host_steps.CAPTURE_MARGIN_SECONDS),
        ("collector_capture_megabytes", host_steps.CAPTURE_MEGABYTES),
        ("collector_ring_files", host_steps.RING_FILES),
        ("collector_stop_wait_seconds", host_steps.STOP_WAIT_SECONDS),
        ("collector_settle_rounds", host_steps.SETTLE_ROUNDS),
        ("collector_log_budget_bytes", host_steps.LOG_BUDGET_BYTES),
        ("collector_log_context_lines", host_steps.LOG_CONTEXT_LINES),
    ],
)
def test_role_defaults_are_the_host_step_limits(variable: str, value: int) -> None:
    # Given the role's defaults, When a limit is read, Then it is the one the collector's host steps send.
    defaults = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))
    assert defaults[variable] == value
