"""`collect verify` as users run it: exit 0 intact, 1 checksum problem, 2 not a bundle; never a traceback."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from collector import layout
from collector.bundle.package import BundleWriter, FinalBundle
from collector.steps import StepResult, StepStatus

COLLECT = Path(sys.prefix) / "bin" / "collect"
NAME = "apigee-diag-org-env-proxy-20261127T100000Z"


def _collect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COLLECT), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def bundle(tmp_path: Path) -> FinalBundle:
    writer = BundleWriter(tmp_path, NAME)
    writer.write_text(layout.SUMMARY, "# summary\n")
    writer.write_text(layout.REQUEST_COMMAND, "curl https://h/x\n")
    return writer.finalize(steps=[StepResult("mp1", "connect", StepStatus.OK)], keep_directory=True)


def _assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_intact_bundle_exits_0(bundle: FinalBundle) -> None:
    for target in (bundle.archive, bundle.directory):
        result = _collect("verify", str(target))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("OK: 2 files match the manifest")
        _assert_clean(result)


def test_changed_file_exits_1_and_names_it(bundle: FinalBundle) -> None:
    assert bundle.directory is not None
    (bundle.directory / layout.REQUEST_COMMAND).write_text("curl https://evil/\n")
    (bundle.directory / layout.SUMMARY).unlink()
    result = _collect("verify", str(bundle.directory))
    assert result.returncode == 1
    assert f"{layout.REQUEST_COMMAND}: changed" in result.stderr
    assert f"{layout.SUMMARY}: missing" in result.stderr
    assert "FAILED: 2 problem(s)" in result.stderr
    _assert_clean(result)


@pytest.mark.parametrize("kind", ["absent", "text-file", "empty-dir", "unsafe-tar"])
def test_not_a_bundle_exits_2(tmp_path: Path, bundle: FinalBundle, kind: str) -> None:
    target = tmp_path / kind
    if kind == "text-file":
        target.write_text("hello\n")
    elif kind == "empty-dir":
        target.mkdir()
    elif kind == "unsafe-tar":
        target = tmp_path / "unsafe.tar.gz"
        with tarfile.open(target, "w:gz") as tar:
            tar.add(bundle.directory, arcname=NAME)  # type: ignore[arg-type]
            tar.add(bundle.directory / layout.SUMMARY, arcname=f"{NAME}/../../escape")  # type: ignore[operator]
    result = _collect("verify", str(target))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"collect: {target}")
    _assert_clean(result)


def test_help_documents_the_exit_codes() -> None:
    result = _collect("verify", "--help")
    assert result.returncode == 0
    for line in (
        "0  every file matches",
        "1  a file is changed, missing or not listed",
        "2  BUNDLE is not a bundle",
    ):
        assert line in result.stdout
