"""tools.long_functions: lengths counted by hand, the limit and its reasons."""

from __future__ import annotations

import os

from tests_support import PROJECT_ROOT

from tools import long_functions

SOURCE = """
def short():
    return 1


class Box:
    @staticmethod
    def method(x):
        def inner():
            return x

        return inner


# long: a table that reads best in one piece
def explained():
    a = 1
    b = 2
    return a + b


def unexplained():
    a = 1
    b = 2
    return a + b
"""


def test_lengths_names_and_reasons(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    found = {f.name: f for f in long_functions.functions(str(path))}
    assert {name: f.length for name, f in found.items()} == {
        "short": 2,
        "Box.method": 5,
        "Box.method.inner": 2,
        "explained": 4,
        "unexplained": 4,
    }
    assert found["explained"].reason.startswith("# long: a table")
    bad = long_functions.over_limit(list(found.values()), limit=3)
    assert [f.name for f in bad] == ["Box.method", "unexplained"]


def test_the_library_has_no_function_over_80_lines_without_a_reason(capsys):
    status = long_functions.main([os.path.join(PROJECT_ROOT, "xplore_tf"), "--top=5"])
    assert status == 0, capsys.readouterr().out
