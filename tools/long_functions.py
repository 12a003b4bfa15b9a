"""The longest functions of a package, and whether any is over the limit without a reason.

    python -m tools.long_functions                # xplore_tf's 20 longest, limit 80 lines
    python -m tools.long_functions --top=50 --limit=60 xplore_tf tools

A function's length counts every line from its `def` (decorators excluded) to its last
line, docstring and comments included. One over `--limit` passes only when the line just
above its `def` (or its first decorator) is a comment starting `# long:` that says why.
Exit status 1 when any function is over the limit without one.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import sys

REASON = "# long:"


@dataclasses.dataclass(frozen=True)
class Function:
    path: str
    line: int  # of the `def`
    name: str  # Class.method for methods
    length: int  # lines
    reason: str  # the `# long:` comment above it, or ""


def functions(path: str) -> list[Function]:
    """Every function and method of one Python file, nested ones included."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    lines = source.splitlines()
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                top = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                above = lines[top - 2].strip() if top >= 2 else ""
                reason = above if above.startswith(REASON) else ""
                length = child.end_lineno - child.lineno + 1
                found.append(Function(path, child.lineno, prefix + child.name, length, reason))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source, filename=path), "")
    return found


def scan(roots: list[str]) -> list[Function]:
    """The functions of every .py file below `roots`, longest first."""
    found = []
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in sorted(names):
                if name.endswith(".py"):
                    found.extend(functions(os.path.join(folder, name)))
    return sorted(found, key=lambda f: (-f.length, f.path, f.line))


def over_limit(found: list[Function], limit: int) -> list[Function]:
    """The functions longer than `limit` lines without a `# long:` reason."""
    return [f for f in found if f.length > limit and not f.reason]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", default=["xplore_tf"], help="folders to scan")
    parser.add_argument("--top", type=int, default=20, help="how many of the longest to list")
    parser.add_argument("--limit", type=int, default=80, help="the most lines without a reason")
    args = parser.parse_args(argv)
    found = scan(args.roots)
    for f in found[: args.top]:
        note = f"  {f.reason}" if f.reason else ""
        print(f"{f.length:5d}  {f.path}:{f.line}  {f.name}{note}")
    bad = over_limit(found, args.limit)
    total = len(found)
    print(f"{total} functions; {sum(f.length > args.limit for f in found)} over {args.limit} lines")
    for f in bad:
        print(f"over {args.limit} lines without a '{REASON}' comment: {f.path}:{f.line} {f.name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
