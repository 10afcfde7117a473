"""Reject syntax morula cannot differentiate, before anything runs.

In: a function's AST node and file name. Out: nothing, or an
``UnsupportedSyntaxError`` naming file:line:col, the construct, and what to
write instead.
"""

import ast

from ..errors import UnsupportedSyntaxError

_HINTS = {
    ast.Yield: ("generators (`yield`)", "Return a list instead of yielding values."),
    ast.YieldFrom: ("generators (`yield from`)", "Return a list instead of yielding values."),
    ast.Await: ("`await`", "Differentiate a synchronous function."),
    ast.AsyncFunctionDef: ("`async def`", "Differentiate a synchronous function."),
    ast.AsyncFor: ("`async for`", "Use a plain `for` loop."),
    ast.AsyncWith: ("`async with`", "Use a plain `with` block."),
    ast.Global: ("`global` declarations (assignment to module globals)",
                 "Return the value instead of assigning a global, or pass state in and out as arguments."),
    ast.Nonlocal: ("`nonlocal` declarations (assignment to enclosing variables)",
                   "Return the new value from the inner function instead."),
    ast.Try: ("`try`/`except` blocks", "Move the try/except outside the differentiated function, "
              "or test the condition with `if` before the operation."),
    ast.NamedExpr: ("assignment expressions (`:=`)", "Assign the value on its own line first."),
    ast.ClassDef: ("class definitions inside a differentiated function",
                   "Define the class at module level; its methods are differentiated when called."),
}
if hasattr(ast, "TryStar"):
    _HINTS[ast.TryStar] = _HINTS[ast.Try]
if hasattr(ast, "Match"):
    _HINTS[ast.Match] = ("`match` statements", "Use `if`/`elif` chains.")


def check(node, filename, lines=None):
    """Raise ``UnsupportedSyntaxError`` for the first unsupported construct in ``node``."""
    if isinstance(node, ast.AsyncFunctionDef):
        _raise(node, ast.AsyncFunctionDef, filename, lines)
    for child in ast.walk(node):
        kind = type(child)
        if kind in _HINTS and child is not node:
            _raise(child, kind, filename, lines)
        if kind is ast.Starred and not _starred_ok(child, node):
            what, hint = "a starred expression here", "Build the sequence with `+` or `list(...)` first."
            raise UnsupportedSyntaxError(what, filename, child.lineno, child.col_offset, hint,
                                         _text(lines, child.lineno))


def _raise(child, kind, filename, lines):
    what, hint = _HINTS[kind]
    raise UnsupportedSyntaxError(what, filename, child.lineno, child.col_offset, hint,
                                 _text(lines, child.lineno))


def _text(lines, lineno):
    if lines and 1 <= lineno <= len(lines):
        return lines[lineno - 1]
    return None


def _starred_ok(starred, root):
    # Starred is fine in calls, displays and assignment targets; ast.walk has no parents,
    # so find the parent by a second walk (rare construct, cost irrelevant).
    for parent in ast.walk(root):
        for field in ("args", "elts", "targets"):
            children = getattr(parent, field, None)
            if isinstance(children, list) and any(c is starred for c in children):
                return True
        if isinstance(parent, (ast.Assign, ast.For)) and getattr(parent, "target", None) is starred:
            return True
    return False
