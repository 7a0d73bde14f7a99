"""The layers point one way (docs/architecture.md): a check of every import in the repository.

``gardien/`` is the base and imports nothing above it; ``exporter/`` and ``failover_hook/`` are
built on it and never import each other; ``gardien_lab/`` sits on top and nothing but the tests and
the benchmarks imports it. Every module is parsed with :mod:`ast`, so an import counts wherever it
is written: at the top, inside a function, under ``if TYPE_CHECKING:``, as
``importlib.import_module("...")`` or ``__import__("...")`` with a literal name, or as a string
naming a module of the repository (``"exporter.command"``: how a table of modules to import by name
spells an import).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("gardien", "exporter", "failover_hook", "gardien_lab")
FORBIDDEN: dict[str, frozenset[str]] = {
    "gardien": frozenset({"exporter", "failover_hook", "gardien_lab"}),
    "exporter": frozenset({"failover_hook", "gardien_lab"}),
    "failover_hook": frozenset({"exporter", "gardien_lab"}),
    "gardien_lab": frozenset(),
}
"""Top-level package -> the packages its modules may not import."""
FREE = ("tests", "benchmarks")
"""Top-level folders that may import every layer, the lab included."""
OUTSIDE_THE_LAYERS = frozenset({"gardien_lab"})
"""What any other module of the repository (scripts, examples...) may not import."""
IMPORT_FUNCTIONS = frozenset({"import_module", "__import__"})
SKIPPED_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def top_folder(path: str) -> str:
    return path.split("/", 1)[0] if "/" in path else ""


def module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module an ``ImportFrom`` names, relative imports resolved against ``importer``."""
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    if not is_package:
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def names_a_repository_module(text: str, root: Path) -> bool:
    """``"exporter.command"`` or ``"exporter.command.register"``: a dotted name starting with a
    module of the repository's layers (a bare ``"exporter"`` is a word, e.g. a command's name)."""
    parts = text.split(".")
    if len(parts) < 2 or parts[0] not in LAYERS or not all(p.isidentifier() for p in parts):
        return False
    module = root.joinpath(*parts[:2])
    return module.with_suffix(".py").is_file() or (module / "__init__.py").is_file()


def imported_modules(
    tree: ast.AST, importer: str, is_package: bool, root: Path
) -> Iterator[tuple[int, str]]:
    """(line, module) for every import the module's code spells, wherever it is written."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, absolute(node, importer, is_package)
        elif isinstance(node, ast.Call):
            function = node.func
            name = (
                function.attr
                if isinstance(function, ast.Attribute)
                else getattr(function, "id", "")
            )
            first = node.args[0] if node.args else None
            if (
                name in IMPORT_FUNCTIONS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and names_a_repository_module(node.value, root)
        ):
            yield node.lineno, node.value


def check_source(source: str, path: str, root: Path = REPO) -> list[Violation]:
    """The layer violations of one module, ``path`` being its place relative to the repository."""
    top = top_folder(path)
    if top in FREE:
        return []
    forbidden = FORBIDDEN.get(top, OUTSIDE_THE_LAYERS)
    importer = module_name(path)
    is_package = path.endswith("__init__.py")
    found = []
    for line, module in imported_modules(ast.parse(source, path), importer, is_package, root):
        if module.split(".")[0] in forbidden:
            found.append(Violation(path, line, importer, module))
    return sorted(set(found), key=lambda v: (v.path, v.line, v.imported))


def python_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        folders = path.relative_to(root).parts[:-1]
        if not any(
            f.startswith(".") or f in SKIPPED_DIRS or f.endswith(".egg-info") for f in folders
        ):
            yield path


def check_repository(root: Path = REPO) -> list[Violation]:
    found = []
    for path in python_files(root):
        relative = path.relative_to(root).as_posix()
        found.extend(check_source(path.read_text(), relative, root))
    return found


def test_the_layers_point_one_way() -> None:
    checked = [p.relative_to(REPO).parts[0] for p in python_files(REPO)]
    assert {"gardien", "exporter", "failover_hook", "gardien_lab"} <= set(checked)

    violations = check_repository()

    assert not violations, "imports against the layers (docs/architecture.md):\n" + "\n".join(
        map(str, violations)
    )


@pytest.mark.parametrize(
    ("path", "source", "imported"),
    [
        ("gardien/config/model.py", "import exporter.probes\n", "exporter.probes"),
        ("gardien/config/model.py", "from exporter.probes import registry\n", "exporter.probes"),
        ("gardien/x.py", "def f():\n    from failover_hook import journal\n", "failover_hook"),
        (
            "gardien/x.py",
            "import typing\nif typing.TYPE_CHECKING:\n    import gardien_lab.topology\n",
            "gardien_lab.topology",
        ),
        (
            "gardien/x.py",
            "import importlib\nimportlib.import_module('exporter.command')\n",
            "exporter.command",
        ),
        (
            "gardien/x.py",
            "from importlib import import_module\nimport_module('gardien_lab')\n",
            "gardien_lab",
        ),
        ("gardien/x.py", "__import__('failover_hook.cli')\n", "failover_hook.cli"),
        (
            "gardien/cli.py",
            "COMMANDS = ('gardien.commands.check_config', 'exporter.command')\n",
            "exporter.command",
        ),
        (
            "exporter/collectors/vip.py",
            "from failover_hook.resources import vip\n",
            "failover_hook.resources",
        ),
        ("exporter/x.py", "import gardien_lab\n", "gardien_lab"),
        (
            "failover_hook/daemon.py",
            "from exporter.collectors.network import NetworkCollector\n",
            "exporter.collectors.network",
        ),
        ("failover_hook/x.py", "from gardien_lab import faults\n", "gardien_lab"),
        ("scripts/tool.py", "import gardien_lab.command\n", "gardien_lab.command"),
        ("setup.py", "from gardien_lab import topology\n", "gardien_lab"),
    ],
)
def test_the_check_names_the_file_and_line_of_a_violation(
    path: str, source: str, imported: str
) -> None:
    violations = check_source(source, path)

    assert [v.imported for v in violations] == [imported]
    assert str(violations[0]).startswith(f"{path}:{violations[0].line}: ")
    assert violations[0].line == next(
        number
        for number, text in enumerate(source.splitlines(), 1)
        if imported.rsplit(".", maxsplit=1)[-1] in text
    )


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("gardien/x.py", "from gardien.probes import registry\nimport gardien.node.mounts\n"),
        ("gardien/probes/x.py", "from . import base\nfrom ..polling import wait_for\n"),
        (
            "exporter/x.py",
            "from gardien.config import parse_config\nfrom .collectors import base\n",
        ),
        ("failover_hook/x.py", "import gardien.node.holding\nfrom .resources import volume\n"),
        (
            "gardien_lab/x.py",
            "import exporter.command\nfrom failover_hook.agent import LocalAgent\n",
        ),
        ("tests/lab/test_x.py", "import gardien_lab.topology\nimport exporter, failover_hook\n"),
        ("benchmarks/lab.py", "from gardien_lab import scenario\n"),
        ("gardien/cli.py", "DAEMONS = {'exporter': 1, 'hook': 2}\nHELP = 'the exporter.'\n"),
        ("gardien/x.py", "import gardien_labs_elsewhere\nimport exporters\n"),
    ],
)
def test_the_check_lets_the_layers_import_downwards(path: str, source: str) -> None:
    assert check_source(source, path) == []
