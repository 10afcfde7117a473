"""Forward-mode (tangent) code generation.

In: a ``core.Function`` (the same core form the reverse transform reads). Out:
``Generated``: the source text of a factory whose inner function
``<name>__jvp(_fo_T, _fo_tp, _fo_tcl, <user signature>)`` returns
``(out, tangent_of_out)``.

- ``_fo_T`` is the tangent memory of this ``jvp`` (``forward.table``): the
  tangents of arrays, lists, dicts and objects live there, by identity, so
  aliases and in-place writes see one tangent;
- ``_fo_tp`` maps parameter names to their tangents, ``_fo_tcl`` the closure
  variables' tangents (``None``: zero);
- every local ``v`` has a tangent local ``_t_v`` (the tangent of an immutable
  value: a float, a complex, a tuple of tangents; for mutable values it is
  only a hint -- the runtime reads the table).

Control flow is the user's own: the generated code branches and loops exactly
as the function does, so tangents need no tape.
"""

import ast

from ..frontend import core
from ..reverse.codegen import (CodegenBase, Generated, _Emitter, _default_names, _signature,
                               binding_counts_and_aliases, walk_statements)

HELPERS = ("__MOFO__call", "__MOFO__callk", "__MOFO__callv", "__MOFO__meth", "__MOFO__methk", "__MOFO__methv",
           "__MOFO__iter", "__MOFO__unpack", "__MOFO__closure", "__MOFO__F", "__MOFO__callcl")

_SCALAR_OPS = {"add", "sub", "mul", "truediv", "neg"}


class ForwardCodegen(CodegenBase):
    def __init__(self, fn: core.Function):
        self.fn = fn
        self.placeholders = {}
        self.op_names = set()
        self.names = self._all_names(fn)
        self.closure_entries = self._closure_entries(fn.body)

    def _all_names(self, fn):
        names = set(fn.params) | set(fn.freevars) | set(fn.locals)

        def visit(stmts):
            for s in stmts:
                target = getattr(s, "target", None)
                if isinstance(target, str):
                    names.add(target)
                if type(s) is core.Unpack:
                    names.update(s.targets)
                for block in ("body", "orelse"):
                    visit(getattr(s, block, None) or [])
        visit(fn.body)
        names.discard("__class__")
        return names

    def _entries_of(self, s):
        """The ``'name': tangent`` entries of a def's captured variables' tangents."""
        return [f"{n!r}: __MOT__{n}" for n in s.captured if n in self.names]

    def _default_entries(self, s):
        """Tangents of default values taken from local variables (``lambda v=x: ...``)."""
        return [f"'__default__{p}': __MOT__{d}" for p, d in _default_names(s.node.args) if d in self.names]

    def _closure_entries(self, stmts):
        """Def target -> its ``_entries_of``, for names bound by one def and nothing else (calls of
        other names take the closure's getter)."""
        found = {s.target: self._entries_of(s) for s in walk_statements(stmts) if type(s) is core.Def}
        counts, aliases = binding_counts_and_aliases(stmts)   # g = lambda ...: called by the alias
        for alias, name in aliases.items():
            if name in found and alias not in found and counts.get(name) == 1:
                found[alias] = found[name]
        return {k: v for k, v in found.items() if counts.get(k) == 1 and k not in self.fn.params}

    def tan(self, a):
        if isinstance(a, core.Name) and a.id in self.names:
            return f"__MOT__{a.id}"
        return "None"

    # -- top level -------------------------------------------------------------
    def generate(self):
        fn = self.fn
        body = _Emitter()
        ret = fn.body[-1]
        assert isinstance(ret, core.Return)
        line0 = fn.first_line
        ops = tuple(f"__MOFO__op_{name}" for name in sorted(self._ops(fn.body)))
        self.op_names = set(self._ops(fn.body))
        body.emit(0, f"def __mo_factory__({', '.join(HELPERS + ops + tuple(fn.bound) + tuple(fn.freevars))}):", line0)
        params = ", ".join(["__MOFO__T", "__MOFO__tp", "__MOFO__tcl"] + _signature(fn.args))
        body.emit(1, f"def {_jvp_name(fn.name)}({params}):", line0)
        others = sorted(self.names - set(fn.params) - set(fn.freevars))
        for i in range(0, len(others), 8):
            body.emit(2, " = ".join(f"__MOT__{n}" for n in others[i:i + 8]) + " = None", line0)
        for p in fn.params:
            body.emit(2, f"__MOT__{p} = __MOFO__tp.get({p!r})", line0)
        if fn.args.kwarg is not None:
            # **kwargs is a dict Python builds for this call: its items' tangents go in the table
            kw = fn.args.kwarg.arg
            body.emit(2, f"__MOFO__T.set_container({kw}, dict(__MOT__{kw} or {{}}))", line0)
        free = [n for n in fn.freevars if n in self.names]
        if free:
            body.emit(2, "__MOFO__cl = __MOFO__tcl or {}", line0)
            for n in free:
                body.emit(2, f"__MOT__{n} = __MOFO__cl.get({n!r})", line0)
        self.block(fn.body[:-1], body, 2)
        body.emit(2, f"return {self.atom(ret.value)}, {self.tan(ret.value)}", ret.line)
        body.emit(1, f"return {_jvp_name(fn.name)}", ret.line)
        text, line_map = body.render()
        text = _level_names(text, self.names | set(fn.freevars))
        return Generated(fn.name, text, line_map, self.placeholders, self.op_names, dict(fn.bound))

    def _ops(self, stmts, found=None):
        found = set() if found is None else found
        for s in stmts:
            if type(s) is core.Op:
                found.add(s.op)
            for block in ("body", "orelse"):
                self._ops(getattr(s, block, None) or [], found)
        return found

    def block(self, stmts, out, indent):
        if not stmts:
            out.emit(indent, "pass", self.fn.first_line)
        for s in stmts:
            getattr(self, "stmt_" + type(s).__name__)(s, out, indent)

    # -- statements --------------------------------------------------------------
    def _targets(self, target):
        if target is None:
            return "_", "_"
        return target, f"__MOT__{target}"

    def stmt_Op(self, s, out, i):
        target, ttarget = self._targets(s.target)
        pairs = ", ".join(f"{self.atom(a)}, {self.tan(a)}" for a in s.args)
        sep = ", " if pairs else ""
        if s.op in _SCALAR_OPS and s.target is not None and self._scalar_inline(s, out, i):
            return
        out.emit(i, f"{target}, {ttarget} = __MOFO__op_{s.op}(__MOFO__T{sep}{pairs})", s.line)

    def _scalar_inline(self, s, out, i):
        """Float arithmetic inline (the scalar hot path); anything else takes the general op."""
        for a in s.args:
            if isinstance(a, core.Const) and type(a.value) not in (int, float):
                return False
        names = sorted({a.id for a in s.args if isinstance(a, core.Name)})
        if not names:
            return False
        a = [self.atom(x) for x in s.args]
        t = [self.tan(x) for x in s.args]
        guard = " and ".join(f"type({n}) in __MOFO__F" for n in names)
        tans = sorted({tt for tt in t if tt != "None"})
        if tans:
            guard += " and " + " and ".join(f"({tt} is None or type({tt}) in __MOFO__F)" for tt in tans)
        op = s.op
        x, y = a[0], a[-1]
        tx, ty = t[0], t[-1]
        if op == "add":
            texpr = _lin([(tx, None), (ty, None)])
            expr = f"{x} + {y}"
        elif op == "sub":
            texpr = _lin([(tx, None), (ty, "-")])
            expr = f"{x} - {y}"
        elif op == "neg":
            texpr = _lin([(tx, "-")])
            expr = f"-{x}"
        elif op == "mul":
            texpr = _lin([(tx, f"* {y}"), (ty, f"* {x}")])
            expr = f"{x} * {y}"
        else:  # truediv
            texpr = _lin([(tx, f"/ {y}"), (ty, f"* {x} / ({y} * {y})", "-")])
            expr = f"{x} / {y}"
        pairs = ", ".join(f"{p}, {q}" for p, q in zip(a, t))
        out.emit(i, f"if {guard}:", s.line)
        # the tangent first: the target may be one of the operands
        out.emit(i + 1, f"__MOT__{s.target} = {texpr}", s.line)
        out.emit(i + 1, f"{s.target} = {expr}", s.line)
        out.emit(i, "else:", s.line)
        out.emit(i + 1, f"{s.target}, __MOT__{s.target} = __MOFO__op_{op}(__MOFO__T, {pairs})", s.line)
        return True

    def _call_parts(self, s):
        if s.argtuple is not None:
            return "v", (f"{self.atom(s.argtuple)}, {self.tan(s.argtuple)}, "
                         f"{self.atom(s.kwdict)}, {self.tan(s.kwdict)}")
        atoms = list(s.args) + [a for _, a in s.kwargs]
        values = "(" + "".join(f"{self.atom(a)}, " for a in atoms) + ")"
        tangents = "(" + "".join(f"{self.tan(a)}, " for a in atoms) + ")"
        if s.kwargs:
            names = tuple(k for k, _ in s.kwargs)
            return "k", f"{names!r}, {values}, {tangents}"
        return "", f"{values}, {tangents}"

    def stmt_Call(self, s, out, i):
        target, ttarget = self._targets(s.target)
        suffix, text = self._call_parts(s)
        entries = self.closure_entries.get(s.func.id) if isinstance(s.func, core.Name) else None
        if entries is not None and suffix == "":
            # a closure defined here and called here: its captured variables' tangents as they are
            # now, passed along (not read back later through the closure's getter)
            tcl = "{" + ", ".join(entries) + "}"
            out.emit(i, f"{target}, {ttarget} = __MOFO__callcl(__MOFO__T, {self.atom(s.func)}, {tcl}, {text})",
                     s.line)
            return
        out.emit(i, f"{target}, {ttarget} = __MOFO__call{suffix}(__MOFO__T, {self.atom(s.func)}, {self.tan(s.func)}, {text})",
                 s.line)

    def stmt_Method(self, s, out, i):
        target, ttarget = self._targets(s.target)
        suffix, text = self._call_parts(s)
        name = f"(__class__, {s.name!r})" if s.via_super else repr(s.name)
        out.emit(i, f"{target}, {ttarget} = __MOFO__meth{suffix}(__MOFO__T, {self.atom(s.obj)}, {self.tan(s.obj)}, "
                    f"{name}, {text})", s.line)

    def stmt_ScalarCall(self, s, out, i):
        """``y = f(x)`` inline for a float ``x`` with a float (or zero) tangent (see
        reverse/scalar_calls.py); the ordinary call otherwise."""
        target, ttarget = self._targets(s.target)
        x, tx = self.atom(s.arg), self.tan(s.arg)
        guard = f"{s.callee} is {s.function} and type({x}) in __MOFO__F"
        if tx != "None":
            guard += f" and ({tx} is None or type({tx}) in __MOFO__F)"
        out.emit(i, f"if {guard}:", s.line)
        out.emit(i + 1, f"__MOFO__y = {s.function}({x})", s.line)
        tangent = "None" if tx == "None" else f"({tx} * {s.derivative}({x}, __MOFO__y) if {tx} is not None else None)"
        out.emit(i + 1, f"{ttarget} = {tangent}; {target} = __MOFO__y", s.line)
        out.emit(i, "else:", s.line)
        getattr(self, "stmt_" + type(s.call).__name__)(s.call, out, i + 1)

    def stmt_Assign(self, s, out, i):
        out.emit(i, f"{s.target} = {self.atom(s.value)}; __MOT__{s.target} = {self.tan(s.value)}", s.line)

    def stmt_Unpack(self, s, out, i):
        n = len(s.targets)
        out.emit(i, f"__MOFO__u = __MOFO__unpack(__MOFO__T, {self.atom(s.value)}, {self.tan(s.value)}, {n})", s.line)
        comma = "," if n == 1 else ""
        out.emit(i, f"{', '.join(s.targets)}{comma} = __MOFO__u[0]", s.line)
        out.emit(i, f"{', '.join('__MOT__' + t for t in s.targets)}{comma} = __MOFO__u[1]", s.line)

    def stmt_Native(self, s, out, i):
        out.emit(i, f"{s.target} = {self.placeholder(s.expr, 'expr', s.line)}; __MOT__{s.target} = None", s.line)

    def stmt_Passthrough(self, s, out, i):
        out.emit(i, self.placeholder(s.stmt, "stmt", s.line), s.line)

    def stmt_If(self, s, out, i):
        out.emit(i, f"if {self.placeholder(s.test, 'expr', s.line)}:", s.line)
        self.block(s.body, out, i + 1)
        if s.orelse:
            out.emit(i, "else:", s.line)
            self.block(s.orelse, out, i + 1)

    def stmt_For(self, s, out, i):
        out.emit(i, f"for {s.target}, __MOT__{s.target} in __MOFO__iter(__MOFO__T, {self.atom(s.iter)}, {self.tan(s.iter)}):",
                 s.line)
        self.block(s.body, out, i + 1)
        if s.exit_test is not None:
            out.emit(i + 1, f"if {self.placeholder(s.exit_test, 'expr', s.line)}: break", s.line)

    def stmt_While(self, s, out, i):
        out.emit(i, f"while {self.placeholder(s.test, 'expr', s.line)}:", s.line)
        self.block(s.body, out, i + 1)
        if s.exit_test is not None:
            out.emit(i + 1, f"if {self.placeholder(s.exit_test, 'expr', s.line)}: break", s.line)

    def stmt_With(self, s, out, i):
        with_node = ast.With(items=s.items, body=[ast.Pass()])
        out.emit(i, f"with {self.placeholder(with_node, 'with', s.line)}:", s.line)
        self.block(s.body, out, i + 1)

    def stmt_Def(self, s, out, i):
        if isinstance(s.node, ast.Lambda):
            out.emit(i, f"{s.target} = {self.placeholder(s.node, 'expr')}", s.line)
        else:
            out.emit(i, self.placeholder(s.node, "stmt"), s.line)
        entries = self._entries_of(s)
        defaults = self._default_entries(s)
        if defaults:
            # defaults are evaluated when the def runs: so are their tangents (the getter's own
            # default argument); captured variables are read when the closure runs
            getter = ("lambda __MOFO__d={" + ", ".join(defaults) + "}: {**__MOFO__d, "
                      + ", ".join(entries) + "}")
        else:
            getter = "lambda: {" + ", ".join(entries) + "}"
        out.emit(i, f"__MOT__{s.target} = None; __MOFO__closure(__MOFO__T, {s.target}, {getter})", s.line)


def _lin(terms):
    """The tangent of a float expression: the sum of ``tangent * factor`` over non-None tangents."""
    parts = []
    for term in terms:
        tan, factor = term[0], term[1]
        negate = factor == "-" or (len(term) > 2 and term[2] == "-")
        if tan == "None":
            continue
        factor = "" if factor in (None, "-") else " " + factor
        parts.append(f"({'-' if negate else ''}{tan}{factor} if {tan} is not None else 0.0)")
    return " + ".join(parts) if parts else "None"


def _level_names(text, names):
    """Forward code of forward code (a derivative of a derivative) must not reuse the names of the
    code it differentiates: its helpers and tangents get a prefix no name of the function has."""
    level = ""
    while any(n.startswith((f"_fo{level}_", f"_t{level}_")) for n in names):
        level = str(int(level or 1) + 1)
    return text.replace("__MOFO__", f"_fo{level}_").replace("__MOT__", f"_t{level}_")


def _jvp_name(name):
    return f"{name if name.isidentifier() else 'lambda'}__jvp"
