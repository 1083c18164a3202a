"""The layout rules of docs/architecture.md, checked on the code itself."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import dskit
from dskit import config

PACKAGE = Path(dskit.__file__).parent
ROOT = PACKAGE.parent

#: Layer of each module (prefix match, longest first): module-level imports point down or sideways.
LAYERS = {
    "dskit.errors": 0, "dskit.config": 0, "dskit.language": 0, "dskit.reasoning": 0,
    "dskit.sysinfo": 0,
    "dskit.display": 1, "dskit.confidence_view": 1, "dskit.documents": 1, "dskit.weights": 1,
    "dskit.evals.grading": 1, "dskit.evals.benchmarks": 1, "dskit.evals.statistics": 1,
    "dskit.evals.results": 1, "dskit.evals.anatomy": 1, "dskit.evals.confidence": 1,
    "dskit.evals.prose": 0,
    "dskit.tools": 1, "dskit.mcp_tools": 1, "dskit.structured": 1,
    "dskit.backends.base": 2, "dskit.backends.chat_template": 2, "dskit.backends.grammar": 2,
    "dskit.recommendations": 2, "dskit.evals.prompts": 2,
    "dskit.backends": 3, "dskit.embeddings": 3, "dskit.reply": 3,
    "dskit.client": 4,
    "dskit.conversation": 5,
    "dskit.evals": 6, "dskit.kb": 6, "dskit.models": 6, "dskit.checkup": 6,
    "dskit.widgets": 7, "dskit.cli": 7, "dskit.serve": 7, "dskit.__main__": 7,
}


def submodules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(dskit.__path__, "dskit."))


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def test_every_submodule_is_reachable_as_a_module():
    names = submodules()
    assert len(names) > 40
    for name in names:
        assert isinstance(importlib.import_module(name), ModuleType), name
        # The attribute path must give the module too: no function shadows a module's name.
        attr = functools.reduce(getattr, name.split(".")[1:], dskit)
        assert isinstance(attr, ModuleType), f"dskit.{name.split('.', 1)[1]} is {attr!r}"


def test_every_module_has_a_layer():
    missing = [n for n in submodules() if not any(n == p or n.startswith(p + ".") for p in LAYERS)]
    assert missing == []


def _module_imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported dskit module, line) for each module-level import outside TYPE_CHECKING."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                targets = [node.module or ""]
            found += [(t, node.lineno) for t in targets if t.startswith("dskit")]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("dskit")]
    return found


def test_module_level_imports_point_down_the_layers():
    wrong = []
    for name in submodules():
        path = Path(inspect.getfile(importlib.import_module(name)))
        for target, line in _module_imports(path, name):
            if target in ("dskit", "dskit.__version__"):
                wrong.append(f"{name}:{line} imports the top-level package")
            elif layer(target) > layer(name):
                wrong.append(f"{name}:{line} imports {target} (layer {layer(target)} > "
                             f"{layer(name)})")
    assert wrong == []


def test_only_config_reads_the_environment():
    readers = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*")
                     if p.suffix in (".py", ".ipynb") and "os.environ" in p.read_text("utf-8"))
    assert readers == ["dskit/config.py"]


def test_every_exception_is_defined_in_errors():
    allowed = {"dskit.errors", "dskit.serve.errors"}
    misplaced = []
    for name in submodules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__.startswith("dskit") \
                    and cls.__module__ not in allowed:
                misplaced.append(f"{cls.__module__}.{cls.__qualname__}")
    assert sorted(set(misplaced)) == []


def test_every_public_error_is_in_the_hierarchy_drawing():
    drawing = dskit.errors.__doc__ or ""
    public = [n for n, c in inspect.getmembers(dskit.errors, inspect.isclass)
              if issubclass(c, Exception) and c.__module__ == "dskit.errors"]
    assert public and all(n in drawing for n in public)


def test_readme_lists_exactly_the_variables_config_reads():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.M)
    assert sorted(table) == sorted(config.VARIABLES)
    source = (PACKAGE / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"((?:DSKIT|OLLAMA|OPENAI|DEEPSEEK)_[A-Z_]+)"', source))
    assert read == set(config.VARIABLES)


def test_public_api_is_explicit():
    for name in dskit.__all__:
        assert getattr(dskit, name) is not None, name
    assert callable(dskit.compare) and callable(dskit.compare.summary)
    assert inspect.signature(dskit.compare).parameters["models"]


BACKEND_NAMES = {"embedded", "ollama", "openai"}


def _sources() -> list[tuple[str, Path, ast.Module]]:
    out = []
    for name in submodules():
        path = Path(inspect.getfile(importlib.import_module(name)))
        out.append((name, path, ast.parse(path.read_text(encoding="utf-8"))))
    return out


def name_branches(module: str, tree: ast.Module) -> list[str]:
    """`x.name == "ollama"` (or !=, in) outside backends/: the seam's side door."""
    if module.startswith("dskit.backends"):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) \
                and node.left.attr == "name":
            for comp in node.comparators:
                values = [comp] if isinstance(comp, ast.Constant) else \
                    list(comp.elts) if isinstance(comp, (ast.Tuple, ast.List, ast.Set)) else []
                if any(isinstance(v, ast.Constant) and v.value in BACKEND_NAMES for v in values):
                    found.append(f"{module}:{node.lineno}")
    return found


def _private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, variables, attributes of self."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def private_reaches(sources: list[tuple[str, Path, ast.Module]]) -> list[str]:
    """A private name of one dskit module used in another (`obj._x`, `from m import _x`)."""
    defined = {module: _private_names(tree) for module, _, tree in sources}
    found = []
    for module, _, tree in sources:
        own = defined[module]
        others = set().union(*(names for m, names in defined.items() if m != module))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and node.attr not in own \
                    and node.attr in others:
                found.append(f"{module}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "")
                                                       .startswith("dskit")):
                found += [f"{module}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_nothing_above_the_seam_branches_on_a_backend_name():
    assert [hit for m, _, tree in _sources() for hit in name_branches(m, tree)] == []


def test_no_module_reaches_into_another_modules_private_members():
    assert private_reaches(_sources()) == []


def test_the_rules_catch_a_deliberately_wrong_module():
    """The checks above, on code written to break each rule."""
    wrong = ast.parse(textwrap.dedent("""
        from dskit.backends.ollama import _MALFORMED

        def f(client):
            if client.backend.name == "ollama":
                return client.backend._call(lambda: 1)
            return client.backend.name in ("embedded", "x")
    """))
    assert name_branches("dskit.evals.fake", wrong) == ["dskit.evals.fake:5",
                                                        "dskit.evals.fake:7"]
    reaches = private_reaches([*_sources(), ("dskit.evals.fake", Path("fake.py"), wrong)])
    assert [r for r in reaches if r.startswith("dskit.evals.fake")] == [
        "dskit.evals.fake:2 imports _MALFORMED", "dskit.evals.fake:6 ._call"]
    source = "from ..widgets.base import StatusLine\n"  # a layer-6 module importing layer 7
    path = Path("/tmp") / "dskit_wrong_import.py"
    path.write_text(source, encoding="utf-8")
    try:
        [(target, _)] = _module_imports(path, "dskit.evals.fake")
        assert target == "dskit.widgets.base" and layer(target) > layer("dskit.evals.fake")
    finally:
        path.unlink()


def test_modules_import_each_other_in_one_direction():
    """No cycle among module-level imports (the chat modules once imported each other)."""
    graph: dict[str, set[str]] = {}
    for name in submodules():
        path = Path(inspect.getfile(importlib.import_module(name)))
        graph[name] = {t for t, _ in _module_imports(path, name) if t in sys.modules
                       and t != name and not name.startswith(t + ".")}
    seen: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in graph.get(node, ()):
            if seen.get(nxt) == 1:
                return [*stack, node, nxt]
            if nxt not in seen and (cycle := visit(nxt, [*stack, node])):
                return cycle
        seen[node] = 2
        return None

    cycles = [c for n in graph if n not in seen and (c := visit(n, []))]
    assert cycles == []
