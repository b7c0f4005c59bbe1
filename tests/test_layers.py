"""The package's layers (DESIGN.md, "Layers"): a module never imports a higher layer.

The layer of a module is that of its folder (the table below, the same as the README's
layout section); the check reads every import statement of every module, at the top or
inside a function, so a lazy import that goes up the layers fails it too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fieldforce

PACKAGE = Path(fieldforce.__file__).parent

#: top-level module or folder -> layer (1 core ... 8 interface)
LAYERS = {
    "version": 1, "units": 1, "errors": 1, "config": 1, "config_files": 1, "neighbors": 1,
    "data": 2, "datasets": 2,
    "descriptors": 3, "electrostatics": 3, "fields": 3,
    "models": 4,
    "training": 5, "reference": 5,
    "simulation": 6, "analysis": 6,
    "pipelines": 7,
    "cli": 8,
}
#: modules whose layer is not their folder's, and why
EXCEPTIONS = {
    # the script that regenerates the shipped dataset labels it with the reference
    # backends: a pipeline that lives beside the data it makes
    "fieldforce.datasets.make_water": 7,
    "fieldforce.datasets.make_metal": 7,
    "fieldforce.datasets.metal_finish": 7,
    "fieldforce.datasets.make_charge_transfer": 7,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    if module in EXCEPTIONS:
        return EXCEPTIONS[module]
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package facade itself
    return LAYERS[parts[1]]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every fieldforce import in the file."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            # "from fieldforce import units" imports a module; else the module itself
            found += [(node.lineno, n if n.rsplit(".", 1)[0] == "fieldforce" else node.module)
                      for n in names]
    return [(line, m) for line, m in found if m == "fieldforce" or m.startswith("fieldforce.")]


def test_every_top_level_module_has_a_layer():
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert names == set(LAYERS), "give every new top-level module a layer in LAYERS"


def test_no_module_imports_a_higher_layer():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        own = layer_of(module)
        if own is None:
            continue
        for line, target in imported_modules(path):
            if target == "fieldforce":
                violations.append(f"{module}:{line} imports the package facade")
                continue
            other = layer_of(target)
            if other is not None and other > own:
                violations.append(f"{module} (layer {own}):{line} imports {target} "
                                  f"(layer {other})")
    assert not violations, "\n".join(violations)
