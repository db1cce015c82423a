"""Packages import only from the layers below them (DESIGN.md section 2, docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# Bottom up. A package may import from its own layer's package and any lower layer.
LAYERS: list[set[str]] = [
    {"core"},
    {"auth"},
    {"customers", "skills"},
    {"agents", "queues"},
    {"interactions"},
    {"tickets"},
    {"routing"},
    {"ivr", "channels", "desk", "supervisor"},
    {"models", "demo"},
    {"main", "migrations"},
    {"cli"},
]
LAYER_OF = {package: index for index, layer in enumerate(LAYERS) for package in layer}


def _package_of(path: Path) -> str:
    relative = path.relative_to(APP)
    return relative.parts[0].removesuffix(".py")


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "app" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_package_has_a_layer() -> None:
    packages = {
        _package_of(p) for p in APP.rglob("*.py") if p.parent != APP or p.stem != "__init__"
    }
    assert packages - set(LAYER_OF) == set()


def test_imports_point_down_the_layers() -> None:
    violations = []
    for path in sorted(APP.rglob("*.py")):
        if path.parent == APP and path.stem == "__init__":
            continue
        package = _package_of(path)
        for imported in _imported_packages(path):
            if imported != package and LAYER_OF[imported] >= LAYER_OF[package]:
                violations.append(f"{path.relative_to(APP)} imports app.{imported}")
    assert violations == []
