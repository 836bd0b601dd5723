"""Session fixtures for the lab: one PKI and a cache of running labs shared by every test that needs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.lab.lab import Lab, LabSpec, start_lab
from tests.lab.pki import LabPki, create_pki

LabFactory = Callable[..., Lab]


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    """The lab PKI (CAs, backend and client certificates, Java keystores), generated once per session."""
    return create_pki(tmp_path_factory.mktemp("lab-pki"))


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory, lab_pki: LabPki) -> Iterator[LabFactory]:
    """A function `(scenario, backend="java", tls_version="1.2", message_processors=2, **spec) -> Lab`.

    Labs are started on first request and shared for the whole session (one per distinct spec); every lab is
    stopped when the session ends. Extra keywords are LabSpec fields (ssh_hosts, emulator, target_style).
    Tests must not stop a shared lab or change its keystore/backend; they may send requests and read its files.
    """
    labs: dict[tuple[Any, ...], Lab] = {}

    def get_lab(scenario: str, backend: str = "java", tls_version: str = "1.2", message_processors: int = 2,
                **options: Any) -> Lab:
        key = (scenario, backend, tls_version, message_processors, tuple(sorted(options.items())))
        if key not in labs:
            name = f"lab-{scenario}-{backend}-tls{tls_version}-{message_processors}mp"
            spec = LabSpec(scenario=scenario, backend=backend, tls_version=tls_version,
                           message_processors=message_processors, directory=tmp_path_factory.mktemp(name),
                           pki_directory=lab_pki.directory, **options)
            labs[key] = start_lab(spec)
        return labs[key]

    yield get_lab
    for lab in labs.values():
        lab.stop()

