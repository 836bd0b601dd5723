"""Session fixtures for the lab: one PKI and a cache of running labs shared by every test that needs them."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.lab import Lab, LabSpec, start_lab
from tests.lab.pki import LabPki, create_pki

LabFactory = Callable[..., Lab]


def pytest_configure(config: pytest.Config) -> None:
    """Let every `collect` the tests start receive SIGINT as a foreground command does.

    A shell starts a background job (`bash scripts/test.sh &`, a CI step without job control) with SIGINT
    ignored, every child inherits that, and Python installs no KeyboardInterrupt for a signal it was told to
    ignore: the tests that press Ctrl-C on a run would then see it ignored (a run went on through its 60 s
    window and exited 0). Catching SIGINT here is reset to the default at each exec, so the children start as
    they would from a terminal.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    """The lab PKI (CAs, backend and client certificates, Java keystores), generated once per session."""
    return create_pki(tmp_path_factory.mktemp("lab-pki"))


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory, lab_pki: LabPki) -> Iterator[LabFactory]:
    """A function `(scenario, backend="java", tls_version="1.2", message_processors=2, **spec) -> Lab`.

    Labs are started on first request and shared for the whole session (one per distinct spec); every lab is
    stopped (and its directory, outside pytest's basetemp, removed) when the session ends. Extra keywords are
    LabSpec fields (ssh_hosts, emulator, target_style).
    Tests must not stop a shared lab or change its keystore or backend; they may send requests and read its
    files.
    """
    labs: dict[tuple[Any, ...], Lab] = {}
    directories: list[Path] = []

    def get_lab(scenario: str, backend: str = "java", tls_version: str = "1.2", message_processors: int = 2,
                **options: Any) -> Lab:
        key = (scenario, backend, tls_version, message_processors, tuple(sorted(options.items())))
        if key not in labs:
            name = f"lab-{scenario}-{backend}-tls{tls_version}-{message_processors}mp"
            directory = traversable_directory(name)
            directories.append(directory)
            # A link from pytest's temp dir, so a failed run's logs are found beside the other test files.
            (tmp_path_factory.mktemp(name) / "lab").symlink_to(directory)
            spec = LabSpec(scenario=scenario, backend=backend, tls_version=tls_version,
                           message_processors=message_processors, directory=directory,
                           pki_directory=lab_pki.directory, **options)
            labs[key] = start_lab(spec)
        return labs[key]

    yield get_lab
    for lab in labs.values():
        lab.stop()
    if not os.environ.get("APIGEE_LAB_KEEP"):
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


def traversable_directory(name: str) -> Path:
    """A lab directory outside pytest's basetemp.

    The lab's SSH user must traverse to the host roots; pytest (re)creates /tmp/pytest-of-<user> as 0700, also
    while this session runs when another pytest session starts, which would lock that user out mid-session.
    Set APIGEE_LAB_KEEP=1 to keep these directories after the session.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"apigee-collector-{name}-"))
    directory.chmod(0o755)
    return directory

