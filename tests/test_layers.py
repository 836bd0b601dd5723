"""The layers of DESIGN.md: tls/ and diagnosis/ never touch the network, imports only go down, no
import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "collector"
FORBIDDEN = {"socket", "ssl", "OpenSSL", "httpx", "fabric", "paramiko", "invoke", "http",
             "urllib.request", "subprocess"}
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


# The layers (DESIGN.md "Layout of the code"): cli -> run -> {remote, edge, diagnosis, bundle} ->
# {tls, layout, steps, errors}. Inside the middle layer imports follow the data flow, edge/ and remote/
# produce, diagnosis/ decides, bundle/ writes: a later stage may use an earlier stage's types, never the
# reverse. A unit imports its own modules and units of a lower rank only.
RANKS: dict[str, int] = {
    "errors": 0, "layout": 0, "steps": 0, "interrupts": 0,
    "tls": 1, "progress": 1, "settings": 1, "inventory": 1,
    "edge": 2, "remote": 2, "probe": 2,
    "diagnosis": 3,
    "bundle": 4,
    "run": 5,
    "cli": 6, "fabric": 6, "entry": 7, "__main__": 8,
}
ALL_MODULES = sorted(ROOT.rglob("*.py"))


def _unit(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("collector", *parts))


def _collector_imports(path: Path, module_level_only: bool) -> set[str]:
    """The collector modules `path` imports (``from collector.x import y`` counts `collector.x.y` when that
    is a module, else `collector.x`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("collector"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("collector"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if _module_file(child) else node.module)
    return {name for name in found if name != "collector"}


def test_every_unit_has_a_rank() -> None:
    units = {_unit(p) for p in ALL_MODULES} - {"__init__"}
    assert units <= set(RANKS), f"give these units a rank in RANKS: {sorted(units - set(RANKS))}"


@pytest.mark.parametrize("module", ALL_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_go_down_the_layers(module: Path) -> None:
    # Given any collector module, When we read all its imports (function-level ones too), Then each names its
    # own unit or a unit of a lower rank.
    unit = _unit(module)
    if unit == "__init__":
        return
    upward = sorted(
        name for name in _collector_imports(module, module_level_only=False)
        if name.split(".")[1] != unit and RANKS.get(name.split(".")[1], 99) >= RANKS[unit]
    )
    assert not upward, f"{module.relative_to(ROOT)} (rank {RANKS[unit]}) imports up or sideways: {upward}"


def test_no_module_level_import_cycles() -> None:
    # Given the graph of module-level imports between collector modules, Then it has no cycle.
    graph = {_dotted(p): {n for n in _collector_imports(p, module_level_only=True) if _module_file(n)}
             for p in ALL_MODULES}
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, set())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "module-level import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
