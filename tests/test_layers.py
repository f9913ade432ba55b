"""The architecture holds: the protocol and behaviour core never does I/O (STYLE.md section 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fleetsim"
SANS_IO = [
    *sorted((PACKAGE / "ocpp").glob("*.py")),
    *sorted((PACKAGE / "charger").glob("*.py")),
    *sorted((PACKAGE / "behaviour").glob("*.py")),
    PACKAGE / "metrics.py",
    PACKAGE / "units.py",
    PACKAGE / "report" / "_merge.py",
    PACKAGE / "csms" / "handlers.py",
    PACKAGE / "csms" / "v201.py",
    PACKAGE / "csms" / "commands.py",
    PACKAGE / "workers" / "live.py",
]
FORBIDDEN = {"trio", "trio_websocket", "wsproto", "socket", "ssl", "asyncio", "time",
             "subprocess", "fleetsim.transport", "fleetsim.fleet"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_modules_do_no_io(path: Path) -> None:
    bad = {name for name in _imports(path)
           if name in FORBIDDEN or name.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_cli_uses_only_the_public_api() -> None:
    internal = {name for name in _imports(PACKAGE / "cli.py")
                if name.startswith("fleetsim.")}
    assert not internal, f"cli.py reaches past the API: {sorted(internal)}"
