"""The package's layout: stages as subpackages, lower layers never importing higher ones, no import cycle.

Walks every `import` and `from ... import` in `pipeline/` (at module level and inside functions alike:
a lazy import is still a dependency) with `ast`, so it checks the source as written, not what one
test run happened to load.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
TOP = "<top>"  # the modules directly in pipeline/
# what each part of the package may import (besides itself); README "Layout of the code"
ALLOWED: dict[str, set[str]] = {
    TOP: set(),
    "manifest": {TOP},
    "api": {TOP},
    "ledger": {TOP, "manifest"},
    "run": {TOP, "manifest", "api", "ledger"},
    "report": {TOP, "manifest", "api", "ledger", "run"},
    "cli": {TOP, "manifest", "api", "ledger", "run", "report", "emulator"},
    "emulator": {TOP, "manifest"},
}
MAX_TOP_MODULES = 8


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (`pipeline.run.poll`), packages as their `__init__`."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package's modules that `name` imports, resolved to modules (`from pipeline.run import x` -> x)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "pipeline" and target != name:
                while target not in known:
                    target = target.rpartition(".")[0]
                yield target


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: set(imported(name, path, set(found))) - {name} for name, path in found.items()}


def part(module: str) -> str:
    """The subpackage a module belongs to, or TOP."""
    if module == "pipeline.__main__":
        return "cli"  # `python -m pipeline` is the command line
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 2 or (len(pieces) == 2 and (PACKAGE / pieces[1]).is_dir()) else TOP


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path `[a, b, ..., a]`, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_between_modules() -> None:
    """No module imports, directly or through others, a module that imports it."""
    assert cycle(graph()) is None


def test_no_import_cycle_between_subpackages() -> None:
    """Subpackages form layers: no two of them import each other, however indirectly."""
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        edges.setdefault(part(module), set()).update(part(t) for t in targets if part(t) != part(module))
    assert cycle(edges) is None


def test_each_part_imports_only_the_layers_below_it() -> None:
    """cli > report > run > ledger, api > manifest > top-level modules; the emulator uses only the parameter table."""
    wrong = sorted(f"{module} imports {target}" for module, targets in graph().items()
                   for target in targets
                   if part(target) != part(module) and part(target) not in ALLOWED[part(module)])
    assert wrong == []


def test_every_part_is_known_and_the_top_level_stays_small() -> None:
    """Each subpackage has its rules here; pipeline/ holds at most 8 modules directly."""
    found = modules()
    assert {part(m) for m in found} == set(ALLOWED)
    top = [m for m in found if part(m) == TOP and m != "pipeline"]
    assert len(top) + 1 <= MAX_TOP_MODULES, top  # + pipeline/__init__.py


@pytest.mark.parametrize("sub", sorted(set(ALLOWED) - {TOP}))
def test_each_subpackage_says_what_it_holds_and_may_import(sub: str) -> None:
    """Each subpackage's __init__ has a docstring naming its modules and imports nothing (no re-exports),
    except the emulator's, whose public names are its API."""
    init = PACKAGE / sub / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    assert doc, f"{init} has no docstring"
    if sub != "emulator":
        assert "May import" in doc
        assert not any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in tree.body), f"{init} re-exports"
    names = {p.stem for p in (PACKAGE / sub).glob("*.py")} - {"__init__"}
    unnamed = sorted(n for n in names if f"`{n}`" not in doc)
    assert unnamed == [], f"{init}'s docstring does not name {unnamed}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The checker itself: a three-module loop is found, a diamond is not a cycle."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None
