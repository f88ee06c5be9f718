"""The layers stay true: every import in the product points down, and no package imports a sibling.

Layers, top to bottom (a module may import its own package and any lower layer):

    pipeline.py          the command line
    entry points: demo.py, report.py, add_password.py, commands (one module per subcommand)
    reporting            the offline report, given a pipeline spec
    pipelines            declarations: which pools, observers, handlers, tables
    handlers             the pedestrian pipeline's pure decisions
    aggregation          crowd-kit wrappers shared by every pipeline
    engine               cursors, journal, checkpoint, executor, tick loop, money, status snapshot
    status, toloka_client, file_store, tables, emulator   adapters and servers, independent of each other
    common               the error tree, secrets, INI readers

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = ("pipeline", "demo", "report", "add_password")
RANKS = {
    "pipeline": 8,
    **{name: 7 for name in ENTRY if name != "pipeline"},
    "commands": 7,
    "reporting": 6,
    "pipelines": 5,
    "handlers": 4,
    "aggregation": 3,
    "engine": 2,
    "status": 1, "toloka_client": 1, "file_store": 1, "tables": 1, "emulator": 1,
    "common": 0,
}


def product_modules() -> dict[str, Path]:
    modules = {name: REPO / f"{name}.py" for name in ENTRY}
    for package in RANKS:
        if package in ENTRY:
            continue
        for path in sorted((REPO / package).rglob("*.py")):
            modules[".".join(path.relative_to(REPO).with_suffix("").parts)] = path
    return modules


def imports_of(path: Path) -> set[str]:
    """Top-level names of the project's packages that ``path`` imports (anywhere in the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(RANKS)


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for module, path in product_modules().items():
        own = module.split(".")[0]
        for target in sorted(imports_of(path) - {own}):
            if RANKS[target] >= RANKS[own]:
                wrong.append(f"{module} imports {target} ({own} is layer {RANKS[own]}, {target} {RANKS[target]})")
    assert wrong == [], "imports against the layers:\n" + "\n".join(wrong)


def test_the_engine_imports_no_pipeline_and_no_handler() -> None:
    for module, path in product_modules().items():
        if module.startswith("engine."):
            assert not imports_of(path) & {"pipelines", "handlers", "aggregation", "reporting"}, module


def test_the_checker_sees_a_wrong_edge(tmp_path: Path) -> None:
    """The scan is not vacuous: an upward import, even inside a function, is found."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from pipelines.pedestrian import PEDESTRIAN\n    import handlers.flow\n")
    assert imports_of(sample) == {"pipelines", "handlers"}
    assert len(product_modules()) > 80
