"""Lower a Python function's AST into the core form (``core.py``).

In: a ``SourceInfo`` (function node, file) and the function object (for its
closure variable names). Out: a ``core.Function``.

What happens here: exits become flags (``exits.py``); nested expressions are
flattened into one call-like statement per value; operators become runtime
ops (``a + b`` -> ``add``, ``x[i]`` -> ``getitem``, ``o.a`` -> ``getattr``,
``x[i] = v`` -> ``setitem`` rebinding ``x``, ``x += v`` -> ``iadd``);
``and``/``or``/ternaries become ``if``; comprehensions and generator
expressions become loops that build a list/dict; tuple unpacking becomes
indexing. Branch tests, comparisons and index expressions stay Python
expressions: they carry no derivative.
"""

import ast
import itertools

from ..errors import UnsupportedSyntaxError
from . import core
from .exits import ExitLowering

_BINOPS = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
    ast.Mod: "mod", ast.Pow: "pow", ast.MatMult: "matmul", ast.BitAnd: "and_", ast.BitOr: "or_",
    ast.BitXor: "xor", ast.LShift: "lshift", ast.RShift: "rshift",
}
_INPLACE = {
    ast.Add: "iadd", ast.Sub: "isub", ast.Mult: "imul", ast.Div: "itruediv", ast.FloorDiv: "ifloordiv",
    ast.Mod: "imod", ast.Pow: "ipow", ast.MatMult: "imatmul", ast.BitAnd: "iand", ast.BitOr: "ior",
    ast.BitXor: "ixor", ast.LShift: "ilshift", ast.RShift: "irshift",
}
_UNARY = {ast.USub: "neg", ast.UAdd: "pos", ast.Invert: "invert"}
# Calls that are statements of their own and only report: run them as written.
_REPORTING_CALLS = {"print"}
# Methods that change their receiver; when the receiver is an attribute or an item
# (self.items.append(v)) the new value is written back so its cotangent flows.
MUTATING_METHODS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault",
                    "sort", "reverse", "fill", "popitem", "add", "discard", "__setitem__"}


def normalize(info, fn):
    node = info.node
    lowering = ExitLowering()
    if isinstance(node, ast.Lambda):
        body = [ast.Return(value=node.body, lineno=node.lineno, col_offset=node.col_offset,
                           end_lineno=node.end_lineno, end_col_offset=node.end_col_offset)]
        name = "lambda"
    else:
        body = [s for s in node.body]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str) and len(body) > 1:
            body = body[1:]  # docstring
        name = node.name
    body = lowering.lower_function(body)
    params = _param_names(node.args)
    freevars = tuple(fn.__code__.co_freevars)
    local_names = set(params) | _assigned_names(body) | lowering.flags
    n = Normalizer(info.filename, local_names, freevars)
    n.flags = lowering.flags - {"_ret"}
    n.uses_super = "__class__" in freevars
    n.first_arg = params[0] if params else None
    ir_body = n.block(body)
    function = core.Function(name=name, args=node.args, params=params, body=ir_body,
                             locals=n.locals, freevars=freevars, filename=info.filename,
                             first_line=node.lineno, source=info)
    function.mutated_params = _mutated_params(ir_body, params)
    return function


def _mutated_params(body, params):
    """Parameters whose argument object the function changes in place: [(index, name, line)].

    A parameter rebound by an ordinary assignment anywhere (``u = u.copy()``) is taken to
    refer to a new object from then on and is not reported.
    """
    writes, rebound = {}, set()

    def visit(stmts):
        for s in stmts:
            t = type(s)
            if t is core.Op and s.op in core.MUTATING_OPS and isinstance(s.args[0], core.Name) \
                    and s.args[0].id == s.target:
                writes.setdefault(s.target, s.line)
            elif t is core.Method and s.name in MUTATING_METHODS and isinstance(s.obj, core.Name):
                writes.setdefault(s.obj.id, s.line)
            elif getattr(s, "target", None) is not None and t is not core.For:
                rebound.add(s.target)
            elif t is core.Unpack:
                rebound.update(s.targets)
            for block in ("body", "orelse"):
                visit(getattr(s, block, None) or [])

    visit(body)
    return [(i, p, writes[p]) for i, p in enumerate(params) if p in writes and p not in rebound]


def _param_names(args):
    names = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg:
        names.append(args.vararg.arg)
    names += [a.arg for a in args.kwonlyargs]
    if args.kwarg:
        names.append(args.kwarg.arg)
    return names


def _assigned_names(body):
    names = set()
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return names


def _names_in_nested_functions(node):
    names = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.Lambda, ast.FunctionDef)):
            names |= {m.id for m in ast.walk(n) if isinstance(m, ast.Name)}
    return names


def _loaded_names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        new = self.mapping.get(node.id)
        if new is None:
            return node
        return ast.copy_location(ast.Name(new, node.ctx), node)


class Normalizer:
    def __init__(self, filename, local_names, freevars):
        self.filename = filename
        self.locals = set(local_names)
        self.freevars = freevars
        self._ids = itertools.count(1)
        self.temps = set()
        self.uses_super = False
        self.first_arg = None
        self.flags = set()

    def tmp(self, stem="t"):
        # never a name the function already uses: generated code (forward code of forward code,
        # reverse code of forward code) has locals named like our temporaries
        name = f"_{stem}{next(self._ids)}"
        while name in self.locals or name in self.freevars:
            name = f"_{stem}{next(self._ids)}"
        self.locals.add(name)
        self.temps.add(name)
        return name

    # -- statements ------------------------------------------------------------
    def block(self, stmts):
        out = []
        for s in stmts:
            self.stmt(s, out)
        return out

    def stmt(self, s, out):
        line = getattr(s, "lineno", 0)
        kind = type(s)
        if kind is ast.Assign:
            value = self.expr(s.value, out)
            if len(s.targets) > 1 and isinstance(value, core.Name) and value.id in self.temps:
                keep = self.tmp("v")
                out.append(core.Assign(keep, value, line))
                value = core.Name(keep)
            for target in s.targets:
                self.store(target, value, out, line)
        elif kind is ast.AnnAssign:
            if s.value is not None:
                self.store(s.target, self.expr(s.value, out), out, line)
        elif kind is ast.AugAssign:
            self.aug_assign(s, out, line)
        elif kind is ast.Expr:
            self.expr_stmt(s, out, line)
        elif kind is ast.Return:
            value = self.expr(s.value, out) if s.value is not None else core.Const(None)
            out.append(core.Return(value, line))
        elif kind is ast.If:
            out.append(core.If(self.test(self.evaluated_test(s.test, out)), self.block(s.body),
                               self.block(s.orelse), line))
        elif kind is ast.While:
            self.while_loop(s, out, line)
        elif kind is ast.For:
            self.for_loop(s, out, line)
        elif kind is ast.With:
            items = s.items
            if len(items) == 1 and isinstance(items[0].optional_vars, ast.Name):
                items = self.entered(items[0], out, line)
            out.append(core.With(items, self.block(s.body), line))
            for item in s.items:
                if item.optional_vars is not None:
                    self.locals |= _assigned_names([item.optional_vars])
        elif kind is ast.FunctionDef:
            self.hoist_defaults(s.args, out)
            out.append(core.Def(s.name, s, self.captured(s), line))
        elif kind is ast.Delete:
            for target in s.targets:
                if isinstance(target, ast.Subscript):
                    container = self.expr(target.value, out)
                    self.write_back(target.value, core.Op(None, "delitem", [container, self.index(target.slice, out)], line), out, line)
                else:
                    out.append(core.Passthrough(ast.Delete(targets=[target], lineno=line, col_offset=0), line))
        elif kind in (ast.Pass,):
            pass
        else:  # Assert, Raise, Import, ImportFrom and other reporting statements
            out.append(core.Passthrough(s, line))

    def test(self, e):
        return self._super_fix(e)

    def entered(self, item, out, line):
        """``with make(x) as h:`` where ``make`` is the user's own class with its own
        ``__enter__``: ``m = make(x); h = m.__enter__()`` are differentiated, then
        ``with Entered(m):``, whose end calls ``m.__exit__`` (``frontend.entered``). Any other
        manager (files, locks, library classes, ``contextlib.contextmanager`` generators) runs as
        written, as before -- and if the value it hands out holds floats while the expression
        reads local floats, that value is refused rather than silently made a constant."""
        # the code generators' placeholders give these synthesized nodes the statement's line
        def helper(name, *args):
            module = ast.Call(func=ast.Name("__import__", ast.Load()),
                              args=[ast.Constant("morula.frontend.entered")],
                              keywords=[ast.keyword("fromlist", ast.List([ast.Constant(name)], ast.Load()))])
            return ast.Call(func=ast.Attribute(value=module, attr=name, ctx=ast.Load()),
                            args=list(args), keywords=[])

        ctx, target = item.context_expr, item.optional_vars.id
        manager = self.tmp("cm")
        sources = sorted({n.id for n in ast.walk(ctx) if isinstance(n, ast.Name)
                          and (n.id in self.locals or n.id in self.freevars) and n.id != target})
        read_as_written = [
            core.Native(manager, _copy(ctx), line),
            core.Native(target, helper("plain_enter", ast.Name(manager, ast.Load()),
                                       ast.Tuple([ast.Name(n, ast.Load()) for n in sources], ast.Load())), line)]
        if isinstance(ctx, ast.Call) and _is_dotted_name(ctx.func) and not any(
                isinstance(a, ast.Starred) for a in ctx.args) and all(k.arg for k in ctx.keywords):
            differentiated = []
            made = self.expr(ctx, differentiated)
            if isinstance(made, core.Name):
                differentiated.append(core.Assign(manager, made, line))
                differentiated.append(core.Method(target, core.Name(manager), "__enter__", [], [], line, True))
                out.append(core.If(helper("user_manager_class", _copy(ctx.func)),
                                   differentiated, read_as_written, line))
                return [ast.withitem(context_expr=helper("Entered", ast.Name(manager, ast.Load())))]
        out.extend(read_as_written)
        return [ast.withitem(context_expr=helper("Entered", ast.Name(manager, ast.Load())))]

    def expr_stmt(self, s, out, line):
        value = s.value
        if isinstance(value, ast.Constant):
            return
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
                and value.func.id in _REPORTING_CALLS and value.func.id not in self.locals:
            out.append(core.Passthrough(s, line))
            return
        if isinstance(value, ast.Call):
            self.call(value, out, target=None)
            return
        self.expr(value, out)

    def aug_assign(self, s, out, line):
        opname = _INPLACE[type(s.op)]
        target = s.target
        if isinstance(target, ast.Name):
            current = core.Name(target.id)
            value = self.expr(s.value, out)
            out.append(core.Op(target.id, opname, [current, value], line))
            return
        # x[i] += v  ->  t = x[i]; t = iadd(t, v); x[i] = t   (NumPy's own semantics), with the
        # container and the index evaluated once, as Python does (k(i) in y[k(i)] += v, a
        # property in b.p[0] += v)
        if not isinstance(target, (ast.Subscript, ast.Attribute)):
            loaded = self.expr(_as_load(target), out)
            value = self.expr(s.value, out)
            t = self.tmp()
            out.append(core.Op(t, opname, [loaded, value], line))
            self.store(target, core.Name(t), out, line)
            return
        loaded, put_back = self.load_target(target, out, line)
        value = self.expr(s.value, out)
        t = self.tmp()
        out.append(core.Op(t, opname, [loaded, value], line))
        put_back(core.Name(t), out, False)

    def load_target(self, node, out, line):
        """Read an assignment target, evaluating each container and index in its chain once.
        Returns ``(atom, put_back)``; ``put_back(value, out, write_back)`` stores ``value`` where
        ``node`` lives and writes the changed containers back up the chain with the atoms already
        computed (no second call of ``k`` in ``rows[k()][1] += v``)."""
        if isinstance(node, ast.Name):
            return core.Name(node.id), None
        if not isinstance(node, (ast.Subscript, ast.Attribute)):
            return self.expr(node, out), None
        container, put_container = self.load_target(node.value, out, line)
        if isinstance(node, ast.Subscript):
            key = self.index(node.slice, out)
            atom = self.emit_op("getitem", [container, key], out, line)
        else:
            key = core.Const(node.attr)
            atom = self.emit_op("getattr", [container, key], out, line)

        def put_back(value, out, write_back):
            if isinstance(node, ast.Subscript):
                op = core.Op(None, "setitem", [container, key, value], line)
            else:
                op = core.Op(None, "setattr_back" if write_back else "setattr", [container, key, value], line)
            if isinstance(node.value, ast.Name):
                self.write_back(node.value, op, out, line)
                return
            op.target = self.tmp()
            out.append(op)
            if put_container is not None:   # else the container is a call's result: nothing to rebind
                put_container(core.Name(op.target), out, True)
        return atom, put_back

    def store(self, target, value, out, line, write_back=False):
        kind = type(target)
        if kind is ast.Name:
            if target.id in self.flags and isinstance(value, core.Const):
                out.append(core.Native(target.id, ast.Constant(value.value), line))
                return
            last = out[-1] if out else None
            if isinstance(value, core.Name) and value.id in self.temps and last is not None \
                    and getattr(last, "target", None) == value.id and not isinstance(last, (core.If, core.Def)):
                last.target = target.id  # y = f(x) computes straight into y
                return
            out.append(core.Assign(target.id, value, line))
            return
        if kind in (ast.Tuple, ast.List) and target.elts and all(isinstance(e, ast.Name) for e in target.elts) \
                and len({e.id for e in target.elts}) == len(target.elts):
            out.append(core.Unpack([e.id for e in target.elts], value, line))
            return
        if kind in (ast.Tuple, ast.List):
            starred = [i for i, e in enumerate(target.elts) if isinstance(e, ast.Starred)]
            n = len(target.elts)
            for i, element in enumerate(target.elts):
                t = self.tmp()
                if isinstance(element, ast.Starred):
                    stop = i - n + 1
                    out.append(core.Op(t, "unpack_rest", [value, core.Const(i), core.Const(stop)], line))
                    self.store(element.value, core.Name(t), out, line)
                    continue
                index = i if not starred or i < starred[0] else i - n
                out.append(core.Op(t, "getitem", [value, core.Const(index)], line))
                self.store(element, core.Name(t), out, line)
            return
        if kind is ast.Attribute:
            obj = self.expr(target.value, out)
            # a write-back puts back the object just changed in place (often the very same one)
            op = core.Op(None, "setattr_back" if write_back else "setattr",
                         [obj, core.Const(target.attr), value], line)
            self.write_back(target.value, op, out, line)
            return
        if kind is ast.Subscript:
            container = self.expr(target.value, out)
            op = core.Op(None, "setitem", [container, self.index(target.slice, out), value], line)
            self.write_back(target.value, op, out, line)
            return
        raise NotImplementedError(ast.dump(target))

    def write_back(self, container_expr, op, out, line):
        """Emit a mutating op on ``container_expr``; rebind it so its cotangent flows to where it lives."""
        if isinstance(container_expr, ast.Name):
            if container_expr.id in self.locals:
                op.target = container_expr.id
            else:
                # a captured or global container: it changes in place (its cotangent is kept by
                # identity); rebinding the name would make it a local of the generated code
                op.target = self.tmp()
            out.append(op)
            return
        t = self.tmp()
        op.target = t
        out.append(op)
        if isinstance(container_expr, (ast.Attribute, ast.Subscript)):
            self.store(container_expr, core.Name(t), out, line, write_back=True)

    def while_loop(self, s, out, line):
        exit_test = getattr(s, "exit_test", None)
        if not _calls_in(s.test):
            out.append(core.While(self.test(s.test), self.block(s.body), line, exit_test))
            return
        # while step(u) > tol: the calls in the test go through the runtime (they may write in
        # place): evaluated before the loop and again at the end of every iteration that did
        # not break, as Python evaluates the test
        t = self.tmp("test")
        out.append(core.Native(t, self.evaluated_test(s.test, out), line))
        body = self.block(s.body)
        again = []
        again.append(core.Native(t, self.evaluated_test(s.test, again), line))
        if exit_test is not None:
            again = [core.If(ast.UnaryOp(ast.Not(), _copy(exit_test)), again, [], line)]
        out.append(core.While(ast.Name(t, ast.Load()), body + again, line, exit_test))

    def evaluated_test(self, test, out):
        """A test with calls in it (``if put(i) > 0``, ``while k < 3 and step() > 0``) is
        computed through the runtime first, short-circuits kept (``and``/``or`` become ifs);
        returns the expression to test."""
        if not _calls_in(test):
            return test
        atom = self.expr(test, out)
        if isinstance(atom, core.Const):
            return ast.Constant(atom.value)
        return ast.Name(atom.id, ast.Load())

    def for_loop(self, s, out, line):
        iterable = self.expr(s.iter, out)
        body = []
        if isinstance(s.target, ast.Name):
            target = s.target.id
        else:
            target = self.tmp("el")
            self.store(s.target, core.Name(target), body, line)
        body += self.block(s.body)
        out.append(core.For(target, iterable, body, line, getattr(s, "exit_test", None)))

    def hoist_defaults(self, args, out):
        """Default values computed from expressions (``def g(t, s=2 * x)``) are computed first,
        as variables, so the cotangent of a default reaches what it was computed from."""
        def hoist(default):
            if default is None or isinstance(default, (ast.Constant, ast.Name)):
                return default
            atom = self.expr(default, out)
            if isinstance(atom, core.Const):
                return ast.Constant(atom.value)
            return ast.copy_location(ast.Name(atom.id, ast.Load()), default)
        args.defaults = [hoist(d) for d in args.defaults]
        args.kw_defaults = [hoist(d) for d in args.kw_defaults]

    def captured(self, node):
        inner_params = set()
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            inner_params = set(_param_names(node.args))
        inner_assigned = _assigned_names(node.body if isinstance(node.body, list) else [node.body])
        names = _loaded_names(node) - inner_params - inner_assigned
        return sorted(n for n in names if n in self.locals or n in self.freevars)

    # -- expressions -------------------------------------------------------------
    def atom(self, value, out):
        return value

    def expr(self, e, out):
        kind = type(e)
        line = getattr(e, "lineno", 0)
        if kind is ast.Name:
            return core.Name(e.id)
        if kind is ast.Constant:
            return core.Const(e.value)
        if kind is ast.BinOp:
            a = self.expr(e.left, out)
            b = self.expr(e.right, out)
            return self.emit_op(_BINOPS[type(e.op)], [a, b], out, line)
        if kind is ast.UnaryOp:
            if isinstance(e.op, ast.Not):
                return self.native(e, out)
            return self.emit_op(_UNARY[type(e.op)], [self.expr(e.operand, out)], out, line)
        if kind is ast.Call:
            return self.call(e, out, target=self.tmp())
        if kind is ast.Attribute:
            obj = self.expr(e.value, out)
            return self.emit_op("getattr", [obj, core.Const(e.attr)], out, line)
        if kind is ast.Subscript:
            obj = self.expr(e.value, out)
            return self.emit_op("getitem", [obj, self.index(e.slice, out)], out, line)
        if kind in (ast.Tuple, ast.List, ast.Set):
            return self.display(e, out, line)
        if kind is ast.Dict:
            return self.dict_display(e, out, line)
        if kind is ast.IfExp:
            t = self.tmp()
            body, orelse = [], []
            self._assign_expr(t, e.body, body)
            self._assign_expr(t, e.orelse, orelse)
            out.append(core.If(self.test(e.test), body, orelse, line))
            return core.Name(t)
        if kind is ast.BoolOp:
            return self.bool_op(e, out, line)
        if kind in (ast.ListComp, ast.GeneratorExp, ast.SetComp):
            return self.comprehension(e, out, line)
        if kind is ast.DictComp:
            return self.comprehension(e, out, line, is_dict=True)
        if kind is ast.Lambda:
            e = _copy(e)
            self.hoist_defaults(e.args, out)
            t = self.tmp("lambda")
            out.append(core.Def(t, e, self.captured(e), line))
            return core.Name(t)
        # Compare, JoinedStr, Slice and other expressions that carry no derivative.
        return self.native(e, out)

    def native(self, e, out):
        e = self.hoist_calls(e, out)
        t = self.tmp()
        out.append(core.Native(t, self._super_fix(e), getattr(e, "lineno", 0)))
        return core.Name(t)

    def hoist_calls(self, e, out):
        """An expression run as written (a comparison, an index, an ``if`` test) may still call
        functions that write in place (``if put(i) > 0``): those calls go through the runtime
        first, in evaluation order, and the expression uses their results. Calls that are only
        evaluated conditionally (inside ``and``/``or``, ``a if c else b``, later operands of a
        chained comparison, lambdas, comprehensions) stay where they are."""
        if not _calls_in(e):
            return e
        normalizer = self

        class Hoist(ast.NodeTransformer):
            def visit_Call(self, node):
                if isinstance(node.func, ast.Name) and node.func.id == "super":
                    return node
                atom = normalizer.expr(node, out)
                if isinstance(atom, core.Const):
                    return ast.copy_location(ast.Constant(atom.value), node)
                return ast.copy_location(ast.Name(atom.id, ast.Load()), node)

            def visit_Compare(self, node):
                node.left = self.visit(node.left)
                node.comparators[0] = self.visit(node.comparators[0])
                return node

            def keep(self, node):
                return node

            visit_BoolOp = visit_IfExp = visit_Lambda = visit_ListComp = visit_SetComp = keep
            visit_DictComp = visit_GeneratorExp = visit_NamedExpr = keep

        return Hoist().visit(_copy(e))

    def _assign_expr(self, target, e, out):
        value = self.expr(e, out)
        out.append(core.Assign(target, value, getattr(e, "lineno", 0)))

    def emit_op(self, op, args, out, line):
        t = self.tmp()
        out.append(core.Op(t, op, args, line))
        return core.Name(t)

    def index(self, e, out):
        """Index expressions carry no derivative: evaluate them as written."""
        if isinstance(e, ast.Constant):
            return core.Const(e.value)
        if isinstance(e, ast.Name):
            return core.Name(e.id)
        return self.native(e, out)

    def bool_op(self, e, out, line):
        # a and b  ->  t = a; if t: t = b      a or b  ->  t = a; if not t: t = b
        t = self.tmp()
        self._assign_expr(t, e.values[0], out)
        for value in e.values[1:]:
            body = []
            self._assign_expr(t, value, body)
            test = ast.Name(t, ast.Load())
            if isinstance(e.op, ast.Or):
                test = ast.UnaryOp(op=ast.Not(), operand=test)
            out.append(core.If(test, body, [], line))
            out = body
        return core.Name(t)

    def display(self, e, out, line):
        kind = {ast.Tuple: "tuple", ast.List: "list", ast.Set: "set"}[type(e)]
        if any(isinstance(x, ast.Starred) for x in e.elts):
            parts, spec = [], []
            for x in e.elts:
                if isinstance(x, ast.Starred):
                    parts.append(self.expr(x.value, out))
                    spec.append(True)
                else:
                    parts.append(self.expr(x, out))
                    spec.append(False)
            return self.emit_op(f"{kind}_star", [core.Const(tuple(spec))] + parts, out, line)
        return self.emit_op(kind, [self.expr(x, out) for x in e.elts], out, line)

    def dict_display(self, e, out, line):
        if any(k is None for k in e.keys):  # {**a, 'k': v}
            parts = []
            for k, v in zip(e.keys, e.values):
                parts.append(core.Const(None) if k is None else self.index(k, out))
                parts.append(self.expr(v, out))
            return self.emit_op("dict_merge", parts, out, line)
        args = []
        for k, v in zip(e.keys, e.values):
            args.append(self.index(k, out))
            args.append(self.expr(v, out))
        return self.emit_op("dict", args, out, line)

    def comprehension(self, e, out, line, is_dict=False):
        result = self.tmp("comp")
        out.append(core.Op(result, "dict" if is_dict else "list", [], line))
        mapping = {}
        captured_inside = _names_in_nested_functions(e)
        for gen in e.generators:
            for name in _assigned_names([gen.target]):
                if name in captured_inside:
                    # a lambda/def in the comprehension captures it: keep the name (the closure
                    # is transformed from the original source, which uses it)
                    if name in self.locals:
                        raise UnsupportedSyntaxError(
                            f"a comprehension variable {name!r} captured by a lambda", self.filename,
                            e.lineno, e.col_offset,
                            f"{name!r} is also a variable of the function: rename one of them.")
                    mapping[name] = name
                    self.locals.add(name)
                else:
                    mapping[name] = self.tmp("c")
        rename = _Rename({k: v for k, v in mapping.items() if k != v})

        def renamed(node):
            return rename.visit(_copy(node))

        def build(generators, sink):
            if not generators:
                if is_dict:
                    key = self.index(renamed(e.key), sink)
                    value = self.expr(renamed(e.value), sink)
                    sink.append(core.Op(result, "setitem", [core.Name(result), key, value], line))
                else:
                    value = self.expr(renamed(e.elt), sink)
                    sink.append(core.Op(result, "list_append", [core.Name(result), value], line))
                return
            gen = generators[0]
            iterable = self.expr(renamed(gen.iter) if gen is not e.generators[0] else gen.iter, sink)
            body = []
            target = renamed(gen.target)
            if isinstance(target, ast.Name):
                loop_var = target.id
            else:
                loop_var = self.tmp("el")
                self.store(_as_store(target), core.Name(loop_var), body, line)
            inner = body
            for cond in gen.ifs:
                nested = []
                inner.append(core.If(self.test(renamed(cond)), nested, [], line))
                inner = nested
            build(generators[1:], inner)
            sink.append(core.For(loop_var, iterable, body, line))

        build(e.generators, out)
        if isinstance(e, ast.SetComp):
            t = self.tmp()
            out.append(core.Call(t, core.Name("set"), [core.Name(result)], [], line, local=False))
            return core.Name(t)
        return core.Name(result)

    def call(self, e, out, target):
        line = e.lineno
        func = e.func
        starred = any(isinstance(a, ast.Starred) for a in e.args) or any(k.arg is None for k in e.keywords)
        if isinstance(func, ast.Name) and func.id == "super" and not e.args and self.uses_super:
            func_atom = core.Name("super")
            args = [core.Name("__class__"), core.Name(self.first_arg)]
            out.append(core.Call(target, func_atom, args, [], line, local=False))
            return core.Name(target) if target else None
        if isinstance(func, ast.Attribute) and self.uses_super and isinstance(func.value, ast.Call) \
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "super" \
                and not func.value.args and self.first_arg:
            node = core.Method(target, core.Name(self.first_arg), func.attr, [], [], line, True, via_super=True)
            self._fill_arguments(node, e, starred, out)
            out.append(node)
            return core.Name(target) if target else None
        if isinstance(func, ast.Attribute):
            obj = self.expr(func.value, out)
            local = isinstance(obj, core.Name) and (obj.id in self.locals or obj.id in self.freevars)
            node = core.Method(target, obj, func.attr, [], [], line, local)
            self._fill_arguments(node, e, starred, out)
            if target is None and func.attr in MUTATING_METHODS \
                    and isinstance(func.value, (ast.Attribute, ast.Subscript)):
                # self.items.append(v): rebind the receiver and write it back
                t = self.tmp()
                node.target = None
                node.obj = obj
                out.append(node)
                out.append(core.Assign(t, obj, line))
                self.store(_as_store(func.value), core.Name(t), out, line, write_back=True)
                return None
            out.append(node)
            return core.Name(target) if target else None
        if isinstance(func, ast.Name):
            func_atom = core.Name(func.id)
            local = func.id in self.locals or func.id in self.freevars
        else:
            func_atom = self.expr(func, out)
            local = True
        node = core.Call(target, func_atom, [], [], line, local)
        self._fill_arguments(node, e, starred, out)
        out.append(node)
        return core.Name(target) if target else None

    def _fill_arguments(self, node, e, starred, out):
        line = e.lineno
        if not starred:
            node.args = [self.expr(a, out) for a in e.args]
            node.kwargs = [(k.arg, self.expr(k.value, out)) for k in e.keywords]
            return
        parts, spec = [], []
        for a in e.args:
            if isinstance(a, ast.Starred):
                parts.append(self.expr(a.value, out))
                spec.append(True)
            else:
                parts.append(self.expr(a, out))
                spec.append(False)
        node.argtuple = self.emit_op("tuple_star", [core.Const(tuple(spec))] + parts, out, line)
        kw_parts = []
        for k in e.keywords:
            kw_parts.append(core.Const(k.arg))
            kw_parts.append(self.expr(k.value, out))
        node.kwdict = self.emit_op("dict_merge", kw_parts, out, line)

    def _super_fix(self, e):
        if not self.uses_super:
            return e
        first = self.first_arg

        class Fix(ast.NodeTransformer):
            def visit_Call(self, node):
                self.generic_visit(node)
                if isinstance(node.func, ast.Name) and node.func.id == "super" and not node.args:
                    node.args = [ast.Name("__class__", ast.Load()), ast.Name(first, ast.Load())]
                return node

        return Fix().visit(_copy(e))


def _calls_in(e):
    return any(isinstance(n, ast.Call) for n in ast.walk(e))


def _copy(node):
    import copy
    return copy.deepcopy(node)


def _as_load(target):
    node = _copy(target)
    for n in ast.walk(node):
        if hasattr(n, "ctx"):
            n.ctx = ast.Load()
    return node


def _as_store(target):
    node = _copy(target)
    if hasattr(node, "ctx"):
        node.ctx = ast.Store()
    if isinstance(node, (ast.Tuple, ast.List)):
        node.elts = [_as_store(e) for e in node.elts]
    return node


def _is_dotted_name(node):
    """``Name`` or ``a.b.c`` of names (evaluating it twice has no effect)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)
