"""Fixtures for edge/ tests: the lab PKI and the management API emulator configured per scenario and style."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.emulator import Emulator, EmulatorConfig, start_emulator
from tests.lab.pki import LabPki

ORG, ENV, PROXY, REVISION = "lab-org", "test", "mtls-proxy", "7"
USERNAME, PASSWORD, TOKEN = "ops@example.com", "s3cret-pass", "tok-0123456789"
MESSAGE_PROCESSORS = [
    ("f2e5e34a-5630-43a9-8fef-48a5b9da76d1", "127.0.0.31"),
    ("276bc250-7dd0-46a5-a583-fd11eba786f8", "127.0.0.32"),
]
BACKEND_HOST, BACKEND_PORT = "127.0.0.21", 9443


@pytest.fixture(scope="session")
def pki(lab_pki: LabPki) -> LabPki:
    """The session's lab PKI (tests/conftest.py), so the whole suite generates it once."""
    return lab_pki


@pytest.fixture
def make_config(pki: LabPki, tmp_path: Path) -> Callable[..., EmulatorConfig]:
    """A config for `scenario` (lab PKI names) and `style`; keyword overrides replace any field."""

    def make(scenario: str = "healthy", style: str = "url", **overrides: Any) -> EmulatorConfig:
        config = EmulatorConfig(
            org=ORG,
            env=ENV,
            proxy=PROXY,
            revision=REVISION,
            username=USERNAME,
            password=PASSWORD,
            token=TOKEN,
            message_processors=list(MESSAGE_PROCESSORS),
            backend_host=BACKEND_HOST,
            backend_port=BACKEND_PORT,
            target_style=style,
            keystore="mp-keystore",
            key_alias=pki.key_alias,
            keystore_reference="mp-keystore-ref",
            truststore="mp-truststore",
            truststore_reference="mp-truststore-ref",
            keystore_entries=pki.keystore_entries(scenario),
            truststore_certs=pki.truststore_certs(),
            transactions_file=tmp_path / "transactions.jsonl",
            forbidden_username="viewer@example.com",
        )
        return dataclasses.replace(config, **overrides)

    return make


@pytest.fixture
def emulator(make_config: Callable[..., EmulatorConfig]) -> Iterator[Emulator]:
    with start_emulator(make_config()) as running:
        yield running


def append_transaction(
    config: EmulatorConfig,
    message_id: str,
    *,
    status: int = 503,
    error_cause: str | None = "Received fatal alert: bad_certificate",
    **fields: Any,
) -> None:
    """Write one MP-simulator line, as the lab's MP simulator does for each request it serves."""
    record = {
        "time": int(time.time() * 1000),
        "message_id": message_id,
        "org": config.org,
        "env": config.env,
        "api": config.proxy,
        "rev": config.revision,
        "mp": config.message_processors[0][0],
        "method": "GET",
        "path": f"/{config.proxy}/ping",
        "request_headers": {"Host": "api.lab", "Authorization": "Bearer x"},
        "status": status,
        "error_cause": error_cause,
        "response_body": "{}",
        "backend": f"{config.backend_host}:{config.backend_port}",
    }
    record.update(fields)
    with config.transactions_file.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
