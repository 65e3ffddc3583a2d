"""The library's import graph: no cycles, and no module imports another module's private names.

The graph is built from the source with ``ast`` (every ``import`` and ``from``
anywhere in a module, including inside functions), so a cycle hidden behind a
function-level import is found too. A package importing its own submodules
(its public face) is not counted as an edge, as in
``/work/shared/tools/import_cycles.py``. Importing a package-private *module*
(``from . import _checks``) is allowed; importing a private *name* from
another module (``from .forward import _bcast``) is not.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ddlearn"


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root``."""
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = (root.name, *p.relative_to(root).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(mod: str, path: Path, mods: dict[str, Path]):
    """Yield ``(target_module, imported_name_or_None, lineno)`` for each import in ``mod`` that stays inside the package."""
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")  # import a.b.c imports a, a.b and a.b.c
                for k in range(1, len(parts) + 1):
                    if ".".join(parts[:k]) in mods:
                        yield ".".join(parts[:k]), None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base not in mods:
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in mods:
                    yield sub, None, node.lineno          # a submodule
                else:
                    yield base, a.name, node.lineno       # a name defined in module `base`


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a package's edges to its own submodules left out)."""
    mods = modules(root)
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for target, _, _ in _imports(m, p, mods):
            if target != m and not target.startswith(m + "."):
                graph[m].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if not state.get(v):
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = 2
        return None

    for m in sorted(graph):
        if not state.get(m):
            found = visit(m)
            if found:
                return found
    return None


def private_imports(root: Path) -> list[str]:
    """``"module:line imports _name from other"`` for each private name taken from another module."""
    mods = modules(root)
    bad = []
    for m, p in mods.items():
        for target, name, line in _imports(m, p, mods):
            if name and name.startswith("_") and not name.startswith("__") and target != m:
                bad.append(f"{m}:{line} imports {name} from {target}")
    return bad


# --------------------------------------------------------------------------- the checks themselves can fail
@pytest.fixture()
def toy_package(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from . import a\n",
        "_checks.py": "def ok(): pass\n",
        "a.py": "from . import _checks\nfrom .b import helper\n",
        "b.py": "def helper():\n    from .sub import c\n    return c\n",
        "sub/__init__.py": "from . import c\n",
        "sub/c.py": "import toy.a\nfrom ..b import _hidden\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    return pkg


def test_graph_sees_imports_inside_functions_and_absolute_ones(toy_package):
    g = import_graph(toy_package)
    assert g["toy.a"] == {"toy._checks", "toy.b"}
    assert g["toy.b"] == {"toy.sub.c"}          # found inside a function
    assert g["toy.sub.c"] == {"toy", "toy.a", "toy.b"}
    assert g["toy"] == set() and g["toy.sub"] == set()  # a package's own face is not an edge


def test_a_cycle_is_found_and_named(toy_package):
    cycle = find_cycle(import_graph(toy_package))
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"toy.a", "toy.b", "toy.sub.c"} <= set(cycle)
    (toy_package / "b.py").write_text("def helper():\n    return 1\n")
    assert find_cycle(import_graph(toy_package)) is None


def test_a_private_name_is_found_but_a_private_module_is_allowed(toy_package):
    assert private_imports(toy_package) == ["toy.sub.c:2 imports _hidden from toy.b"]


# --------------------------------------------------------------------------- the library
def test_ddlearn_has_no_import_cycle():
    cycle = find_cycle(import_graph(ROOT))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_another_modules_private_names():
    bad = private_imports(ROOT)
    assert not bad, "private names imported across modules:\n  " + "\n  ".join(bad)


def test_recipes_import_only_the_recipe_module():
    """Recipe modules are plain data: importing evals, metrics or samplers from them makes cycles."""
    g = import_graph(ROOT)
    for m in (m for m in g if m.startswith("ddlearn.recipes.")):
        assert g[m] <= {"ddlearn.recipe", "ddlearn._checks"} | {x for x in g if x.startswith("ddlearn.recipes")}, (m, g[m])
