"""Imports flow one way: the library never imports the client or the tools, and its bottom
layer (`xplore_tf/common/`) imports nothing of xplore_tf above it."""

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
