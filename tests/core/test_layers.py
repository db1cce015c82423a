"""Packages import only from the layers below them (DESIGN.md section 2, docs/architecture.md).

Every import form counts: `import app.x`, `from app import x`, `from app.x import y`, aliases,
relative imports (resolved against the importing module's package, as Python does), imports
under `if TYPE_CHECKING:` or inside a function, and `importlib.import_module("app.x")` with a
literal name. ruff bans relative imports as well (TID252), so they stay rare; they are resolved
here all the same, so that the layers hold even where that rule is silenced.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# Bottom up. A package may import from its own layer's package and any lower layer. A package
# listed here need not exist (`migrations` is moving out of app/ to the top level).
LAYERS: list[set[str]] = [
    {"core"},
    {"auth"},
    {"customers", "skills"},
    {"agents", "queues"},
    {"interactions"},
    {"tickets"},
    {"routing"},
    {"ivr", "channels", "desk", "supervisor", "workforce"},
    {"models", "demo"},
    {"main", "migrations"},
    {"cli"},
]
LAYER_OF = {package: index for index, layer in enumerate(LAYERS) for package in layer}


def module_name(path: Path) -> str:
    """The dotted name Python gives the module at `path` (app/routing/__init__.py: app.routing)."""
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module name `source` (the text of `module`) imports, relative ones made absolute.

    `from a import b` yields `a.b`: `b` may be a module or a name defined in `a`, and only the
    package it lies in matters here."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute_base(node, module, is_package=is_package)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
            if any(alias.name == "*" for alias in node.names):
                found.add(base)
        elif isinstance(node, ast.Call) and (name := _imported_by_call(node)) is not None:
            found.add(name)
    return found


def _absolute_base(node: ast.ImportFrom, module: str, *, is_package: bool) -> str:
    """The module a `from ... import` reads from; `from .. import x` in app.routing.matcher is
    `from app import x`, as in Python (a package's `__init__` is its own level-1 package)."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 >= len(package):
        raise ValueError(f"{module}: a relative import beyond the top-level package")
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imported_by_call(node: ast.Call) -> str | None:
    """The literal name given to `importlib.import_module(...)` or `__import__(...)`."""
    function = node.func
    called = (
        function.attr
        if isinstance(function, ast.Attribute)
        else function.id
        if isinstance(function, ast.Name)
        else None
    )
    if called not in {"import_module", "__import__"} or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def app_packages(modules: set[str]) -> set[str]:
    """The packages of app/ among `modules`: `app.routing.matcher` is `routing`."""
    return {name.split(".")[1] for name in modules if name.startswith("app.")}


def layer_violations(modules: Iterable[tuple[str, str, bool]]) -> list[str]:
    """What breaks the layers among `modules`: (dotted name, source, is a package's __init__)."""
    violations = []
    for module, source, is_package in modules:
        package = module.split(".")[1]
        imported = app_packages(imported_modules(source, module, is_package=is_package))
        for other in sorted(imported - {package}):
            if other not in LAYER_OF:
                violations.append(f"{module} imports app.{other}, which has no layer")
            elif LAYER_OF[other] >= LAYER_OF[package]:
                violations.append(f"{module} imports app.{other}")
    return violations


def _app_modules() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if p.parent != APP or p.stem != "__init__")


def test_every_package_has_a_layer() -> None:
    packages = {module_name(p).split(".")[1] for p in _app_modules()}
    assert packages - set(LAYER_OF) == set()


def test_imports_point_down_the_layers() -> None:
    modules = [(module_name(p), p.read_text(), p.stem == "__init__") for p in _app_modules()]
    assert layer_violations(modules) == []


# One upward import in each form, in a module of interactions (routing is a layer above it).
@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("app.interactions.intake", "import app.routing"),
        ("app.interactions.intake", "import app.routing.matcher as m"),
        ("app.interactions.intake", "from app import routing"),
        ("app.interactions.intake", "from app import core, routing as r"),
        ("app.interactions.intake", "from app.routing import policy"),
        ("app.interactions.intake", "from app.routing.matcher import Matcher"),
        ("app.interactions.intake", "from app.routing.policy import *"),
        ("app.interactions.intake", "from ..routing import policy"),
        ("app.interactions.intake", "from .. import routing"),
        ("app.interactions.email.parser", "from ...routing.policy import in_line"),
        ("app.interactions", "from ..routing import policy"),  # in the package's __init__
        ("app.interactions.intake", "if TYPE_CHECKING:\n    from app.routing import policy"),
        ("app.interactions.intake", "def f():\n    import app.routing.policy"),
        ("app.interactions.intake", "import importlib\nimportlib.import_module('app.routing')"),
        (
            "app.interactions.intake",
            "from importlib import import_module\nimport_module('app.routing')",
        ),
        ("app.interactions.intake", "__import__('app.routing.policy')"),
    ],
)
def test_an_upward_import_in_any_form_is_a_violation(module: str, source: str) -> None:
    is_package = module == "app.interactions"
    assert layer_violations([(module, source, is_package)]) == [f"{module} imports app.routing"]


def test_downward_imports_and_imports_of_other_code_are_no_violation() -> None:
    source = (
        "import asyncpg\nfrom sqlalchemy import text\nimport app\n"
        "from . import lifecycle\nfrom .. import customers\nfrom app.core import db\n"
    )
    assert layer_violations([("app.interactions.service", source, False)]) == []


def test_an_import_of_a_package_with_no_layer_is_a_violation() -> None:
    assert layer_violations([("app.routing.matcher", "from app import billing", False)]) == [
        "app.routing.matcher imports app.billing, which has no layer"
    ]


def test_relative_imports_resolve_against_the_module_s_package() -> None:
    intake = "app.interactions.intake"
    assert imported_modules("from . import lifecycle", intake) == {"app.interactions.lifecycle"}
    assert imported_modules("from .lifecycle import IllegalTransition", intake) == {
        "app.interactions.lifecycle.IllegalTransition"
    }
    # In a package's __init__, `.` is the package itself.
    assert imported_modules("from . import intake", "app.interactions", is_package=True) == {
        "app.interactions.intake"
    }
    # In a module at the top of app/, `.` is app.
    assert imported_modules("from . import routing", "app.models") == {"app.routing"}
    with pytest.raises(ValueError, match="beyond the top-level package"):
        imported_modules("from ... import routing", "app.interactions.intake")


def test_a_module_s_name_is_the_one_python_gives_it() -> None:
    assert module_name(APP / "routing" / "matcher.py") == "app.routing.matcher"
    assert module_name(APP / "routing" / "__init__.py") == "app.routing"
    assert module_name(APP / "main.py") == "app.main"
