"""The package layout stays readable: no import cycle (lazy imports included), no import from a lower layer
up, no module over 400 lines, no function over 60 lines. Read from the source; nothing is imported."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "rootseg"
#: packages from the bottom up: a module may import its own package, its layer and the layers below
LAYERS = [
    {"io"},
    {"synthetic", "config"},
    {"sources"},
    {"tiling", "models", "prompts", "metrics", "measure", "figures", "baselines", "study"},
    {"datamodules"},
    {"tasks"},
    {"inference"},
    {"evaluation"},
    {"export", "callbacks", "annotate"},
    {"cli"},
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # docstring not counted


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for imported in names:
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
    return targets


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) == 2 and parts[1] in {"train", "eval", "predict", "report", "export", "check"}:
        return len(LAYERS) - 1  # `python -m rootseg.<command>` shims stand with the commands
    if parts[-1] == "__main__":  # `python -m rootseg.<package>` (measure, study, annotate, export): shims
        return len(LAYERS) - 1
    for index, packages in enumerate(LAYERS):
        if len(parts) > 1 and parts[1] in packages:
            return index
    return None


def test_every_package_has_a_layer():
    modules = _modules()
    unplaced = sorted(m for m in modules if m != "rootseg" and _layer(m) is None and m.count(".") > 1)
    assert not unplaced, f"add their packages to LAYERS: {unplaced}"


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_no_import_from_a_lower_layer_up():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        here = _layer(name)
        for target in _imports(name, path, modules):
            there = _layer(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports from a lower layer up:\n" + "\n".join(sorted(upward))


def test_modules_and_functions_stay_short():
    long_modules, long_functions = [], []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{name} ({text.count(chr(10))} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # the docstring
                    length -= first.end_lineno - first.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name} ({length} lines)")
    assert not long_modules, f"modules over {MAX_MODULE_LINES} lines: {long_modules}"
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"


def test_the_checker_finds_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The walker itself works: a planted cycle and an upward import are found."""
    package = tmp_path / "rootseg"
    for folder in ("io", "tasks"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "io" / "a.py").write_text("def f():\n    from rootseg.tasks.b import g\n")  # lazy, upward
    (package / "tasks" / "b.py").write_text("from rootseg.io.a import f\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    modules = _modules()
    assert _imports("rootseg.io.a", modules["rootseg.io.a"], modules) == {"rootseg.tasks.b"}
    try:
        test_no_import_cycle()
    except AssertionError as error:
        assert "rootseg.io.a" in str(error) and "rootseg.tasks.b" in str(error)
    else:
        raise AssertionError("the planted cycle was not found")
    try:
        test_no_import_from_a_lower_layer_up()
    except AssertionError as error:
        assert "rootseg.io.a -> rootseg.tasks.b" in str(error)
    else:
        raise AssertionError("the upward import was not found")


def test_package_command_shims_stand_with_the_commands():
    """`python -m rootseg.measure` runs rootseg/measure/__main__.py, which imports the command (cli): a shim, not
    part of the measure layer; the study package stands beside measure."""
    assert _layer("rootseg.measure.__main__") == _layer("rootseg.cli.measure") == len(LAYERS) - 1
    assert _layer("rootseg.study.tables") == _layer("rootseg.measure.traits")
    assert {"rootseg.measure.__main__", "rootseg.study.__main__"} <= set(_modules())


def test_main_modules_are_command_shims():
    """`python -m rootseg.annotate` runs rootseg/annotate/__main__.py, which may import the cli; the rest of
    the package may not."""
    cli = len(LAYERS) - 1
    assert _layer("rootseg.annotate.__main__") == cli
    assert _layer("rootseg.annotate.server") == _layer("rootseg.export.run") < cli


def test_benchmarks_import_nothing_from_tests():
    """Tests may import the benchmarks' modules (the bad-input corpus); benchmarks never import tests' modules
    nor put tests/ on their path (running the suite, as benchmarks/mutation.py does, is fine)."""
    test_modules = {path.stem for path in (REPO / "tests").rglob("*.py")} | {"tests"}
    found = []
    for path in sorted((REPO / "benchmarks").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            found += [f"{path.name}: imports {name}" for name in names if name.split(".")[0] in test_modules]
            if isinstance(node, ast.Call) and "sys.path" in ast.unparse(node.func) and "tests" in ast.unparse(node):
                found.append(f"{path.name}: puts the tests folder on sys.path (line {node.lineno})")
    assert not found, "\n".join(found)
