"""Find the source of a function object.

In: a Python function (def, nested def, lambda, method; from a file, or from
a REPL/notebook cell whose text ``linecache`` holds). Out: a ``SourceInfo``
with the ``ast.FunctionDef``/``ast.Lambda`` node (absolute line numbers of the
file), the file name and the file's lines.

The whole file is parsed once and cached, so line numbers in generated code
are the user's own and nested functions are found by position.
"""

import ast
import copy
import linecache
from dataclasses import dataclass

from ..errors import MorulaError


class SourceNotFoundError(MorulaError):
    pass


@dataclass
class SourceInfo:
    node: ast.AST          # ast.FunctionDef or ast.Lambda
    filename: str
    lines: list            # the file's lines (with newlines)

    def line(self, lineno):
        if 1 <= lineno <= len(self.lines):
            return self.lines[lineno - 1].rstrip("\n")
        return ""


_trees = {}  # filename -> (lines tuple id, tree)


def _parse_file(filename, code):
    lines = linecache.getlines(filename)
    if not lines:
        linecache.checkcache(filename)
        lines = linecache.getlines(filename)
    if not lines:
        raise SourceNotFoundError(
            f"morula cannot find the source of {code.co_name!r} (file {filename!r}). "
            "morula transforms source code: define the function in a file, a notebook "
            "cell or a REPL that records its input, or register a rule with @morula.rrule."
        )
    key = (len(lines), hash(tuple(lines)))
    cached = _trees.get(filename)
    if cached is not None and cached[0] == key:
        return lines, cached[1]
    tree = ast.parse("".join(lines), filename)
    _trees[filename] = (key, tree)
    return lines, tree


def function_source(fn):
    code = fn.__code__
    filename = code.co_filename
    lines, tree = _parse_file(filename, code)
    node = _find(tree, code)
    if node is None:
        raise SourceNotFoundError(
            f"{filename}:{code.co_firstlineno}: morula cannot locate the definition of "
            f"{code.co_name!r} in its source file (was the file edited after it was imported?). "
            "Reload the module, or register a rule with @morula.rrule."
        )
    # each transform lowers its own copy (lowering rewrites nodes, e.g. default expressions)
    return SourceInfo(copy.deepcopy(node), filename, lines)


def _find(tree, code):
    first = code.co_firstlineno
    name = code.co_name
    if name == "<lambda>":
        candidates = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and n.lineno == first]
        if len(candidates) > 1:
            candidates = _disambiguate_lambdas(candidates, code)
        return candidates[0] if candidates else None
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name:
            start = n.decorator_list[0].lineno if n.decorator_list else n.lineno
            if first in (start, n.lineno):
                return n
    return None


def _disambiguate_lambdas(candidates, code):
    argnames = tuple(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    same_args = [n for n in candidates
                 if tuple(a.arg for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs) == argnames]
    if len(same_args) <= 1:
        return same_args or candidates
    positions = getattr(code, "co_positions", None)
    if positions is not None:
        cols = [p[2] for p in positions() if p[0] == code.co_firstlineno and p[2] is not None
                and p[3] is not None and p[3] > p[2]]
        if cols:
            col = min(cols)
            inside = [n for n in same_args
                      if n.body.col_offset <= col and (n.end_col_offset or 10**9) >= col]
            if inside:
                return [max(inside, key=lambda n: n.body.col_offset)]
    # Same line, same arguments, no positions: compare compiled bytecode.
    for n in same_args:
        try:
            compiled = compile(ast.Expression(n), code.co_filename, "eval")
        except SyntaxError:
            continue
        for const in compiled.co_consts:
            if hasattr(const, "co_code") and const.co_code == code.co_code and const.co_names == code.co_names:
                return [n]
    return same_args
