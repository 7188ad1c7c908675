"""The package's own rules, checked on its source (docs/architecture.md): imports point
down the picture, no module imports another's private name, every public name has a
docstring."""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import polyrelu

PACKAGE = Path(polyrelu.__file__).parent
TOP_LEVEL = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
SUBPACKAGES = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
#: What each subpackage may import besides the top-level modules (architecture.md's table).
MAY_IMPORT = {
    "network": set(),
    "geometry": set(),
    "regions": {"geometry", "network"},
    "analysis": {"certify", "regions", "planar", "geometry", "network"},
    "planar": {"regions", "geometry", "network"},
    "certify": {"regions", "geometry", "network"},
    "verification": {"certify", "regions", "geometry", "network"},
    "topology": {"regions", "geometry"},
    "cli": SUBPACKAGES - {"cli"},
}


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path):
    """(module imported, names taken) for each relative import of polyrelu in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    here = path.relative_to(PACKAGE).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[:len(here) - node.level])
            target = base + (node.module.split(".") if node.module else [])
            yield target, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("polyrelu"):
            yield node.module.split(".")[1:], [alias.name for alias in node.names]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_and_take_no_private_names(path):
    here = path.relative_to(PACKAGE).parts
    for target, names in _imports(path):
        if target and target[0] in SUBPACKAGES and len(here) > 1 and target[0] != here[0]:
            assert target[0] in MAY_IMPORT[here[0]], f"{here[0]}/ imports {target[0]}/"
        if len(here) == 1 and here[0] != "__init__.py" and target:
            assert target[0] not in SUBPACKAGES or here[0] == "__main__.py", \
                f"top-level module {here[0]} imports {target[0]}/"
        foreign = target != list(path.relative_to(PACKAGE).with_suffix("").parts)
        private = [name for name in names if name.startswith("_") and name != "__version__"]
        assert not (foreign and private), f"imports private {private} from {'.'.join(target)}"


def _public_objects():
    for info in pkgutil.walk_packages(polyrelu.__path__, "polyrelu."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            yield f"{info.name}.{name}", getattr(module, name)


def test_every_module_says_what_it_exports():
    for info in pkgutil.walk_packages(polyrelu.__path__, "polyrelu."):
        if not info.name.endswith("__main__"):
            assert hasattr(importlib.import_module(info.name), "__all__"), info.name


def test_every_public_function_class_and_method_has_a_docstring():
    undocumented = []
    for name, obj in _public_objects():
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            undocumented.append(name)
        if inspect.isclass(obj):
            undocumented += [f"{name}.{key}" for key, member in vars(obj).items()
                             if not key.startswith("_")
                             and (inspect.isfunction(member) or isinstance(member, property))
                             and not (member.__doc__ or "").strip()]
    assert not undocumented
