"""Lower ``break``, ``continue``, early ``return`` and loop ``else`` into flags.

In: the body of a function (list of ``ast.stmt``). Out: an equivalent body
in which the only ``return`` is the last statement, loops contain no
``break``/``continue`` (a loop whose body sets its break flag is given an
``exit_test`` instead), and statements that may be skipped sit under an
``if not (flags):``. After this, every statement that runs in the forward pass
is reached by structured control flow only, so the reverse pass can replay
branch decisions and trip counts.
"""

import ast
import itertools

RETURN_VALUE = "_ret"
RETURN_FLAG = "_retf"


class ExitLowering:
    def __init__(self):
        self._ids = itertools.count(1)
        self.flags = set()

    def lower_function(self, body):
        last = body[-1] if body else None
        early = any(isinstance(n, ast.Return) for s in body[:-1] for n in _walk_no_scopes(s))
        early = early or (last is not None and not isinstance(last, ast.Return)
                          and any(isinstance(n, ast.Return) for n in _walk_no_scopes(last)))
        if not early:
            body = list(body)
            if not body or not isinstance(body[-1], ast.Return):
                body.append(_at(ast.Return(value=None), body[-1] if body else None))
            return self._lower_loops_only(body)
        self.flags.update({RETURN_VALUE, RETURN_FLAG})
        first = body[0]
        prologue = [_assign(RETURN_VALUE, ast.Constant(None), first), _assign(RETURN_FLAG, ast.Constant(False), first)]
        lowered, _ = self._block(body, loop=None)
        return prologue + lowered + [_at(ast.Return(value=ast.Name(RETURN_VALUE, ast.Load())), body[-1])]

    def _lower_loops_only(self, body):
        out, _ = self._block(body[:-1], loop=None)
        return out + [body[-1]]

    def _block(self, stmts, loop):
        out = []
        flags = set()
        for index, stmt in enumerate(stmts):
            new, stmt_flags = self._stmt(stmt, loop)
            out.extend(new)
            if stmt_flags:
                flags |= stmt_flags
                rest, rest_flags = self._block(stmts[index + 1:], loop)
                flags |= rest_flags
                if rest:
                    out.append(_at(ast.If(test=_not_any(stmt_flags), body=rest, orelse=[]), stmts[index + 1]))
                break
        return out, flags

    def _stmt(self, stmt, loop):
        if isinstance(stmt, ast.Return):
            value = stmt.value if stmt.value is not None else ast.Constant(None)
            return [_assign(RETURN_VALUE, value, stmt), _assign(RETURN_FLAG, ast.Constant(True), stmt)], {RETURN_FLAG}
        if isinstance(stmt, ast.Break):
            return [_assign(loop[0], ast.Constant(True), stmt)], {loop[0]}
        if isinstance(stmt, ast.Continue):
            return [_assign(loop[1], ast.Constant(True), stmt)], {loop[1]}
        if isinstance(stmt, ast.If):
            body, f1 = self._block(stmt.body, loop)
            orelse, f2 = self._block(stmt.orelse, loop)
            return [_at(ast.If(test=stmt.test, body=body or [ast.Pass()], orelse=orelse), stmt)], f1 | f2
        if isinstance(stmt, ast.With):
            body, f = self._block(stmt.body, loop)
            return [_at(ast.With(items=stmt.items, body=body), stmt)], f
        if isinstance(stmt, (ast.For, ast.While)):
            return self._loop(stmt, loop)
        return [stmt], set()

    def _loop(self, stmt, outer):
        n = next(self._ids)
        brk, cont = f"_brk{n}", f"_cont{n}"
        body, flags = self._block(stmt.body, (brk, cont))
        uses_break = brk in flags
        uses_continue = cont in flags
        escaping = flags - {brk, cont}  # a return inside the loop
        pre = []
        if uses_break:
            self.flags.add(brk)
            pre.append(_assign(brk, ast.Constant(False), stmt))
        if uses_continue:
            self.flags.add(cont)
            body = [_assign(cont, ast.Constant(False), stmt)] + body
        exit_flags = ({brk} if uses_break else set()) | escaping
        new = ast.For(target=stmt.target, iter=stmt.iter, body=body or [ast.Pass()], orelse=[]) \
            if isinstance(stmt, ast.For) else ast.While(test=stmt.test, body=body or [ast.Pass()], orelse=[])
        new.exit_test = _any(exit_flags) if exit_flags else None
        out = pre + [_at(new, stmt)]
        if stmt.orelse:
            orelse, else_flags = self._block(stmt.orelse, outer)
            escaping |= else_flags
            if exit_flags:
                out.append(_at(ast.If(test=_not_any(exit_flags), body=orelse, orelse=[]), stmt.orelse[0]))
            else:
                out.extend(orelse)
        return out, escaping


def _walk_no_scopes(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for child in ast.iter_child_nodes(n):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                stack.append(child)


def _at(node, like):
    if like is not None:
        node.lineno = getattr(like, "lineno", 1)
        node.col_offset = getattr(like, "col_offset", 0)
        node.end_lineno = getattr(like, "end_lineno", node.lineno)
        node.end_col_offset = getattr(like, "end_col_offset", 0)
    return node


def _assign(name, value, like):
    return _at(ast.Assign(targets=[ast.Name(name, ast.Store())], value=value), like)


def _any(flags):
    names = [ast.Name(f, ast.Load()) for f in sorted(flags)]
    return names[0] if len(names) == 1 else ast.BoolOp(op=ast.Or(), values=names)


def _not_any(flags):
    return ast.UnaryOp(op=ast.Not(), operand=_any(flags))
