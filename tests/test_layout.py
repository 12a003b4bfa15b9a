"""Imports flow one way: the library never imports the client or the tools, each module
imports only its own layer and those below (LAYERS), and no modules import each other in a
cycle (lazy imports inside functions included)."""

from __future__ import annotations

import ast
import glob
import os

from tests_support import PROJECT_ROOT


def _imports(path: str) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports included)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(PROJECT_ROOT, folder, "**", "*.py"), recursive=True))


def test_the_library_imports_neither_the_client_nor_the_tools():
    wrong = {
        os.path.relpath(path, PROJECT_ROOT): sorted(
            name for name in _imports(path) if name.split(".")[0] in ("serving", "tools")
        )
        for path in _modules("xplore_tf")
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_bottom_layer_imports_nothing_above_it():
    above = {
        os.path.relpath(path, PROJECT_ROOT): sorted(
            name
            for name in _imports(path)
            if name.split(".")[0] == "xplore_tf" and not name.startswith("xplore_tf.common")
        )
        for path in _modules(os.path.join("xplore_tf", "common"))
    }
    assert len(above) >= 5 and {path: names for path, names in above.items() if names} == {}


# The library's layers, bottom first: a module may import its own layer and those below.
# A module belongs to the layer of the longest name here that is a prefix of its own.
LAYERS = (
    (  # owned by the library, used by everything (and by the client: xplore_tf.common)
        "foundation",
        "xplore_tf",
        "xplore_tf.common",
        "xplore_tf.config",
        "xplore_tf.io_utils",
        "xplore_tf.cli",
        "xplore_tf.startup",
        "xplore_tf.hardware",
        "xplore_tf.workdir_lock",
        "xplore_tf.checkpoint_files",
    ),
    (  # images in, networks and losses
        "inputs and models",
        "xplore_tf.data",
        "xplore_tf.prepare_lib",
        "xplore_tf.features",
        "xplore_tf.models",
        "xplore_tf.losses",
        "xplore_tf.optimizers",
        "xplore_tf.edit",
    ),
    ("discovery", "xplore_tf.clustering"),
    (
        "training and export",
        "xplore_tf.checkpoints",
        "xplore_tf.distribute",
        "xplore_tf.train_step",
        "xplore_tf.train_lib",
        "xplore_tf.export_lib",
        "xplore_tf.export_module",
        "xplore_tf.translate_lib",
    ),
    (
        "evaluation and exploration",
        "xplore_tf.evaluation",
        "xplore_tf.explore_lib",
        "xplore_tf.explore_app",
    ),
    (  # the absl binaries, their one flags module, and the TF Serving stand-in
        "binaries",
        "xplore_tf.flags",
        "xplore_tf.prepare",
        "xplore_tf.synthesize",
        "xplore_tf.cluster",
        "xplore_tf.train",
        "xplore_tf.export",
        "xplore_tf.translate",
        "xplore_tf.evaluate",
        "xplore_tf.explore",
        "xplore_tf.testing",
    ),
)


def _module_graph() -> dict[str, set[str]]:
    """Every module of xplore_tf -> the modules of xplore_tf it imports (at any depth)."""
    paths = {}
    for path in _modules("xplore_tf"):
        name = os.path.relpath(path, PROJECT_ROOT)[:-3].replace(os.sep, ".")
        paths[name.removesuffix(".__init__")] = path

    def module_of(imported: str) -> str:
        while imported not in paths and "." in imported:
            imported = imported.rsplit(".", 1)[0]
        return imported

    return {
        name: {module_of(n) for n in _imports(path) if n.startswith("xplore_tf")} - {name}
        for name, path in paths.items()
    }


def _layer(module: str) -> int:
    owners = [
        (len(prefix), index)
        for index, (_, *prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert owners, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return max(owners)[1]


def test_every_module_imports_only_its_layer_and_those_below():
    upward = sorted(
        f"{module} ({LAYERS[_layer(module)][0]}) imports {imported} ({LAYERS[_layer(imported)][0]})"
        for module, imports in _module_graph().items()
        for imported in imports
        if imported != "xplore_tf" and _layer(imported) > _layer(module)
    )
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_modules_import_each_other_in_a_cycle():
    graph = {m: {i for i in imports if i != "xplore_tf"} for m, imports in _module_graph().items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_and_passes_a_chain():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
