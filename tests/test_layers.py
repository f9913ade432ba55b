"""The architecture holds (STYLE.md section 1, issue 13): the protocol and behaviour core never
does I/O, the report is plain data above the metrics, and the CSMS is free of the charger.

The rules hold for what a module imports transitively, read from the source (imports under
`if TYPE_CHECKING:` excepted). A subpackage's `__init__.py` counts, since importing a module
runs it; the root `fleetsim/__init__.py`, the public API that gathers everything, does not.
"""

from __future__ import annotations

import ast
import functools
import importlib
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fleetsim"
SANS_IO = [
    *sorted((PACKAGE / "ocpp").glob("*.py")),
    *sorted((PACKAGE / "charger").glob("*.py")),
    *sorted((PACKAGE / "behaviour").glob("*.py")),
    PACKAGE / "metrics.py",
    PACKAGE / "units.py",
    PACKAGE / "csms" / "answers_16.py",
    PACKAGE / "csms" / "answers_201.py",
    PACKAGE / "csms" / "commands_16.py",
    PACKAGE / "csms" / "commands_201.py",
    PACKAGE / "csms" / "deck.py",
    PACKAGE / "csms" / "config.py",
    PACKAGE / "workers" / "live.py",
]
IO = {"trio", "trio_websocket", "wsproto", "socket", "ssl", "asyncio", "time", "subprocess",
      "fleetsim.transport", "fleetsim.fleet"}
REPORT = sorted((PACKAGE / "report").glob("*.py"))
NOT_IN_THE_REPORT = {"trio", "trio_websocket", "wsproto", "ssl", "fleetsim.transport",
                     "fleetsim.fleet"}
CSMS = sorted((PACKAGE / "csms").glob("*.py"))
NOT_IN_THE_CSMS = {"fleetsim.charger", "fleetsim.config", "fleetsim.fleet", "fleetsim.report"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _path(module: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _direct(path: Path) -> set[str]:
    """What the module imports, a `from X import Y` of a submodule Y as `X.Y` too."""
    names: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text())]
    while todo:
        node = todo.pop()
        if _type_checking(node):
            continue
        todo.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if _path(f"{node.module}.{alias.name}") is not None)
    return names


@functools.cache
def _transitive(module: str) -> frozenset[str]:
    """Every module importing `module` imports, with the subpackages' `__init__`s."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        for depth in range(2, len(parts)):  # fleetsim.csms for fleetsim.csms.server
            todo.append(".".join(parts[:depth]))
        path = _path(name) if name.startswith("fleetsim.") else None
        if path is not None:
            todo.extend(_direct(path))
    return frozenset(seen - {module})


def _breaks(path: Path, forbidden: set[str]) -> list[str]:
    return sorted(name for name in _transitive(_module(path))
                  if any(name == bad or name.startswith(f"{bad}.") for bad in forbidden))


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_modules_do_no_io(path: Path) -> None:
    bad = _breaks(path, IO)
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", REPORT, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_report_is_data_above_the_metrics(path: Path) -> None:
    bad = _breaks(path, NOT_IN_THE_REPORT)
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", CSMS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_csms_imports_nothing_of_the_charger(path: Path) -> None:
    bad = _breaks(path, NOT_IN_THE_CSMS)
    assert not bad, f"{path.name} imports {bad}"


def test_the_rules_see_through_modules() -> None:
    """A check that only read direct imports would miss these."""
    assert "trio" in _transitive("fleetsim.csms.process")
    assert "fleetsim.charger.core" in _transitive("fleetsim.fleet")
    assert "fleetsim.charger.core" in _transitive("fleetsim.report._build")  # via config


def test_the_cli_uses_only_the_public_api() -> None:
    internal = {name for name in _direct(PACKAGE / "cli.py")
                if name.startswith("fleetsim.")}
    assert not internal, f"cli.py reaches past the API: {sorted(internal)}"


def test_no_name_shadows_a_module() -> None:
    """`fleetsim.X` is the module `fleetsim/X.py` whenever there is one, never a function of
    the API that hides it (as `fleetsim.ramp` and `fleetsim.compare` once did)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py":  # running it is its job
            continue
        module = _module(path)
        importlib.import_module(module)
        parent, _, name = module.rpartition(".")
        if parent:
            assert getattr(sys.modules[parent], name) is sys.modules[module], (
                f"{parent}.{name} is not the module {module}")
