"""The layout rules of docs/architecture.md, checked on the code itself."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import re
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
    "dskit.reply": 1, "dskit.display": 1, "dskit.documents": 1, "dskit.weights": 1,
    "dskit.evals.grading": 1, "dskit.evals.benchmarks": 1, "dskit.evals.statistics": 1,
    "dskit.tools": 1, "dskit.structured": 1,
    "dskit.backends.base": 2, "dskit.backends.chat_template": 2, "dskit.backends.grammar": 2,
    "dskit.recommendations": 2, "dskit.evals.prompts": 2,
    "dskit.backends": 3, "dskit.embeddings": 3,
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
