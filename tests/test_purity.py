"""tls/ and diagnosis/ are pure: they, and every collector module they import, never touch the network."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "collector"
FORBIDDEN = {"socket", "ssl", "OpenSSL", "httpx", "fabric", "paramiko", "invoke", "http", "urllib.request", "subprocess"}
PURE_PACKAGES = ("tls", "diagnosis")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _module_file(module: str) -> Path | None:
    rel = Path(*module.split(".")[1:])
    for candidate in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _reachable_imports(start: Path) -> dict[str, Path]:
    """Every import reachable from `start` through collector modules, with the file that makes it."""
    seen: set[Path] = set()
    found: dict[str, Path] = {}
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            found.setdefault(name, path)
            if name.startswith("collector."):
                target = _module_file(name)
                if target:
                    todo.append(target)
    return found


PURE_MODULES = sorted(p for pkg in PURE_PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("module", PURE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_stage_never_imports_network_code(module: Path) -> None:
    # Given a module of a pure stage, When we follow its collector imports, Then none reaches network code.
    bad = {
        name: str(origin.relative_to(ROOT))
        for name, origin in _reachable_imports(module).items()
        if name.split(".")[0] in FORBIDDEN or name in FORBIDDEN
    }
    assert not bad, f"{module.relative_to(ROOT)} reaches network/process code: {bad}"
