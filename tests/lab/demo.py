"""The lab demo: start a lab, reproduce the 503 through an MP simulator, show the evidence, stop the lab."""

from __future__ import annotations

import httpx

from tests.lab.lab import LabSpec, start_lab


def run_demo(spec: LabSpec) -> int:
    """Run the demo for `spec`; returns the process exit code (0 when the scenario behaved as expected)."""
    with start_lab(spec, echo=print) as lab:
        print(f"\n$ curl -sS -i {lab.reproduction_url}")
        response = httpx.get(lab.reproduction_url, timeout=30)
        message_id = response.headers.get("X-Apigee.Message-ID", "")
        print(f"HTTP/1.1 {response.status_code} {response.reason_phrase}")
        print(f"X-Apigee.Message-ID: {message_id}")
        print(response.text)
        mp = lab.message_processors[0]
        print(f"\n$ grep {message_id} {mp.log_path}")
        for line in mp.log_path.read_text(errors="replace").splitlines():
            if message_id and message_id in line:
                print(line)
        expected = 200 if spec.scenario == "healthy" else 503
        print(f"\nscenario {spec.scenario}: HTTP {response.status_code} (expected {expected})")
        return 0 if response.status_code == expected else 1
