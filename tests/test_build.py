"""BUILD must describe the real tree: every .py in a target, every target file real.

Bazel cannot run offline here, so this test parses BUILD (Starlark is Python syntax)
and checks it against the files on disk.
"""

from __future__ import annotations

import ast
import glob
import os

from tests_support import PROJECT_ROOT

RULES = {"py_library", "py_binary", "py_test"}


def _targets() -> list[dict]:
    with open(os.path.join(PROJECT_ROOT, "BUILD"), encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename="BUILD")
    targets = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in RULES:
            kw = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            kw["rule"] = node.func.id
            targets.append(kw)
    return targets


def test_every_python_file_is_in_a_target():
    listed = {src for t in _targets() for src in t.get("srcs", [])}
    on_disk = set()
    for top in ("xplore_tf", "tools", "serving", "tests"):
        for path in glob.glob(os.path.join(PROJECT_ROOT, top, "**", "*.py"), recursive=True):
            on_disk.add(os.path.relpath(path, PROJECT_ROOT).replace(os.sep, "/"))
    missing = sorted(on_disk - listed)
    assert not missing, f"python files in no BUILD target: {missing}"


def test_every_target_file_exists_and_names_are_unique():
    targets = _targets()
    names = [t["name"] for t in targets]
    assert len(names) == len(set(names)), "duplicate target names"
    for t in targets:
        for src in t.get("srcs", []) + ([t["main"]] if "main" in t else []):
            assert os.path.isfile(os.path.join(PROJECT_ROOT, src)), f"{t['name']}: {src} missing"
        for dep in t.get("deps", []):
            if dep.startswith(":"):
                assert dep[1:] in names, f"{t['name']}: unknown dep {dep}"


def test_each_test_file_is_its_own_py_test():
    tests = [t for t in _targets() if t["rule"] == "py_test"]
    test_files = sorted(
        os.path.relpath(p, PROJECT_ROOT).replace(os.sep, "/")
        for p in glob.glob(os.path.join(PROJECT_ROOT, "tests", "**", "test_*.py"), recursive=True)
    )
    assert sorted(t["main"] for t in tests) == test_files
