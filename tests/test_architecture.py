"""The layers of the package, checked from its source.

* ``format/`` (the bytes, the schema, the type table, the records) imports nothing of
  the package but ``errors`` and ``format/`` itself;
* ``numerics/`` (the math on arrays and records) imports only ``errors``, ``format/``
  and ``numerics/``;
* ``verify`` checks bytes with the format's decoders: it stays below the domain too;
* no module below the domain (``model``, ``state``, ``operators``, ``signatures``,
  ``variables``) imports it;
* no module touches a private attribute that another module defines;
* only the command line prints or exits.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tflite_weights"
MODULES = {p.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", "."): p
           for p in PACKAGE.rglob("*.py")}
DOMAIN = {"tflite_weights.model", "tflite_weights.state", "tflite_weights.operators",
          "tflite_weights.signatures", "tflite_weights.variables"}
#: module (prefix) -> the package modules (prefixes) it may import
BELOW = {
    "tflite_weights.format": ("tflite_weights.errors", "tflite_weights.format"),
    "tflite_weights.numerics": ("tflite_weights.errors", "tflite_weights.format",
                                "tflite_weights.numerics"),
    "tflite_weights.verify": ("tflite_weights.errors", "tflite_weights.format",
                              "tflite_weights.numerics"),
    "tflite_weights.errors": (),
}


def _package_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if MODULES[name].name != "__init__.py" else name


def imports_of(name: str) -> "set[str]":
    """The package modules ``name`` imports (at any depth of its code)."""
    tree = ast.parse(MODULES[name].read_text())
    base = _package_of(name)
    if MODULES[name].name == "__init__.py":
        base = name.rsplit(".", 1)[0] if name.endswith(".__init__") else name
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                anchor = ".".join(parts[:len(parts) - node.level + 1])
                mod = f"{anchor}.{node.module}" if node.module else anchor
            else:
                mod = node.module or ""
            if mod.startswith("tflite_weights"):
                if node.module:  # "from . import x" imports x, not the package itself
                    out.add(mod)
                for alias in node.names:  # "from . import x" names a module
                    if f"{mod}.{alias.name}" in MODULES or \
                            f"{mod}.{alias.name}.__init__" in MODULES:
                        out.add(f"{mod}.{alias.name}")
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tflite_weights"))
    return out


def _layer(name: str):
    for prefix, allowed in BELOW.items():
        if name == prefix or name.startswith(prefix + "."):
            return prefix, allowed
    return None, None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _layer(n)[0]))
def test_lower_layers_import_only_what_lies_below_them(name):
    _, allowed = _layer(name)
    bad = {m for m in imports_of(name)
           if not any(m == a or m.startswith(a + ".") for a in allowed)}
    assert bad == set(), f"{name} imports {sorted(bad)}"


def test_the_layer_table_covers_the_lower_modules():
    lower = {n for n in MODULES if _layer(n)[0]}
    assert "tflite_weights.format.records" in lower and "tflite_weights.numerics.values" in lower
    assert not lower & DOMAIN


def _private_names_defined(tree: ast.AST) -> "set[str]":
    """Private (single underscore) attribute names a module defines: methods, class
    attributes, slots, and attributes assigned on ``self``."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            out.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.Assign):
                    for t in item.targets:
                        if isinstance(t, ast.Name):
                            out.add(t.id)
                            if t.id == "__slots__" and isinstance(item.value, (ast.Tuple, ast.List)):
                                out.update(e.value for e in item.value.elts
                                           if isinstance(e, ast.Constant))
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    out.add(item.target.id)
    return {n for n in out if n.startswith("_") and not n.startswith("__")}


def test_no_module_touches_a_private_attribute_of_another():
    """``x._name`` may name only what the module itself defines: reaching into another
    module's internals (a Model's state, a Tensor's table) is what records and public
    members are for."""
    trees = {n: ast.parse(p.read_text()) for n, p in MODULES.items()}
    own = {n: _private_names_defined(t) for n, t in trees.items()}
    elsewhere = {}
    for n, names in own.items():
        for name in names:
            elsewhere.setdefault(name, set()).add(n)
    bad = []
    for n, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    not node.attr.startswith("__"):
                if node.attr in own[n]:
                    continue
                owners = elsewhere.get(node.attr, set()) - {n}
                if owners:
                    bad.append(f"{n}:{node.lineno} .{node.attr} (defined in "
                               f"{', '.join(sorted(owners))})")
    assert bad == []


def test_module_private_names_are_not_imported_across_modules():
    bad = []
    for n, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                    "", "tflite_weights") or (isinstance(node, ast.ImportFrom) and node.level):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        bad.append(f"{n}:{node.lineno} imports {alias.name}")
    assert bad == []


def test_only_the_command_line_prints_or_exits():
    bad = []
    for n, p in MODULES.items():
        if n in ("tflite_weights.cli", "tflite_weights.__main__",
                 "tflite_weights._interpreter_dump"):
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else (
                    f"{getattr(f.value, 'id', '')}.{f.attr}" if isinstance(f, ast.Attribute)
                    else "")
                if name in ("print", "exit", "sys.exit", "os._exit", "quit") or \
                        name.startswith(("sys.stdout", "sys.stderr")):
                    bad.append(f"{n}:{node.lineno} {name}()")
    assert bad == []


def test_the_package_imports_without_cycles():
    graph = {n: {m for m in imports_of(n) if m in MODULES or m + ".__init__" in MODULES}
             for n in MODULES}
    state: dict = {}

    def visit(n, path):
        if state.get(n) == "done":
            return
        if state.get(n) == "open":
            raise AssertionError(" -> ".join(path + [n]))
        state[n] = "open"
        for m in graph.get(n, ()):
            visit(m if m in MODULES else m + ".__init__", path + [n])
        state[n] = "done"

    for n in sorted(graph):
        visit(n, [])
