"""Fixtures of the lab's own smoke tests: backends shared across the test modules of tests/lab/."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.lab.backends import Backend, start_backend
from tests.lab.pki import LabPki


@pytest.fixture(scope="session")
def backend_factory(tmp_path_factory: pytest.TempPathFactory,
                    lab_pki: LabPki) -> Iterator[Callable[[str, str], Backend]]:
    """`(kind, tls_version) -> Backend`, one running backend per pair for the session."""
    backends: dict[tuple[str, str], Backend] = {}

    def get_backend(kind: str, tls_version: str) -> Backend:
        if (kind, tls_version) not in backends:
            workdir = tmp_path_factory.mktemp(f"backend-{kind}-{tls_version}")
            backends[kind, tls_version] = start_backend(kind, tls_version, lab_pki, workdir=workdir)
        return backends[kind, tls_version]

    yield get_backend
    for backend in backends.values():
        backend.stop()
