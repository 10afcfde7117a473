"""Reverse-mode code generation.

In: a ``core.Function``. Out: ``Generated``: Python source text of a factory
whose inner function ``<name>__fwd`` has the user's signature and returns
``(out, back)``, where ``back(dout, seed=None)`` returns
``(parameter_cotangents, closure_cotangents)``. Also the map from generated
line to the user's line, and the placeholders that stand for user
expressions kept verbatim (tests, index expressions, nested defs).

The forward sweep turns every core statement into a runtime call returning a
pullback. Outside loops pullbacks live in local variables; inside loops they,
branch decisions and trip counts go on a per-call tape (a list) that the
backward sweep pops in exactly the reverse order. The backward sweep walks the
statements in reverse; adjoints of variables are locals named ``_d_<name>``.
"""

import ast
from dataclasses import dataclass, field

from ..frontend import core

HELPERS = ("_mo_items", "_mo_take", "_mo_F", "_mo_Shadow", "_mo_unpacked", "_mo_call", "_mo_callk", "_mo_callv", "_mo_callg", "_mo_callgk", "_mo_callgv",
           "_mo_meth", "_mo_methk", "_mo_methv", "_mo_methg", "_mo_methgk", "_mo_methgv",
           "_mo_iter", "_mo_add", "_mo_watch", "_mo_flush")


@dataclass
class Generated:
    name: str
    text: str
    line_map: dict                       # generated line -> user line
    placeholders: dict                   # placeholder name -> ast node to splice in
    op_names: set = field(default_factory=set)
    bound: dict = field(default_factory=dict)    # factory parameter -> value (see core.Function.bound)


_SCALAR_OPS = {"add", "sub", "mul", "truediv", "neg", "pow"}
_SUPPRESSED = ("the context manager of this `with` suppressed an exception, so the block stopped "
               "part-way; reverse mode cannot differentiate a block that ended early. Let the "
               "exception propagate (or test for its cause before the block), or use forward mode "
               "(mo.jvp / mo.jacfwd), which follows the block as it ran.")


class _Emitter:
    def __init__(self):
        self.lines = []      # (indent, text, user_line)

    def emit(self, indent, text, line):
        self.lines.append((indent, text, line))

    def render(self):
        """``(source text, {generated line number: user line})``."""
        text_lines, line_map = [], {}
        for i, (indent, text, line) in enumerate(self.lines, start=1):
            text_lines.append("    " * indent + text)
            line_map[i] = line
        return "\n".join(text_lines) + "\n", line_map


class CodegenBase:
    """What both modes' code generators share: user expressions kept as AST placeholders
    (spliced back in when the text is parsed) and atoms spelled as Python source."""

    def placeholder(self, node, kind, line=None):
        if line is not None:
            _locate_missing(node, line)
        name = f"__mo_{kind}{len(self.placeholders)}__"
        self.placeholders[name] = node
        return name

    def atom(self, a):
        if isinstance(a, core.Name):
            return a.id
        return repr(a.value) if not isinstance(a.value, float) or a.value == a.value else "float('nan')"


class ReverseCodegen(CodegenBase):
    def __init__(self, fn: core.Function):
        self.fn = fn
        self.counter = 0
        self.placeholders = {}
        self.op_names = set()
        self.constants = _constant_names(fn)
        self.active = self._active_names(fn) - self.constants
        self.closures = self._closures(fn.body)   # Def target -> names it captures
        # variables of this frame that closures made here read: Python closures read a variable's
        # cell when they run, so the cotangent of each call (however the closure got there) is
        # kept on the cell and goes to the binding the call saw (flushed where it is rebound)
        self.watched = {n for s in walk_statements(fn.body) if type(s) is core.Def
                        for n in s.captured if n in self.active and n not in fn.freevars}

    # -- names -----------------------------------------------------------------
    def _active_names(self, fn):
        native_targets, other_targets = set(), set(fn.params)

        def visit(stmts):
            for s in stmts:
                t = type(s)
                if t is core.Native:
                    native_targets.add(s.target)
                elif hasattr(s, "target") and s.target is not None and t is not core.For:
                    other_targets.add(s.target)
                if t is core.For:
                    other_targets.add(s.target)
                if t is core.Unpack:
                    other_targets.update(s.targets)
                for block in ("body", "orelse"):
                    if hasattr(s, block):
                        visit(getattr(s, block))
                if t is core.Def:
                    other_targets.add(s.target)

        visit(fn.body)
        return (other_targets | set(fn.freevars) | (fn.locals - native_targets)) - {"__class__"}

    def _closures(self, stmts):
        found = {s.target: [n for n in s.captured if n in self.active]
                 for s in walk_statements(stmts) if type(s) is core.Def}
        # g = lambda ...: the name the closure is called by (bound once) distributes its
        # cotangent at the call too, like the def's own name
        counts, aliases = binding_counts_and_aliases(stmts)
        for alias, name in aliases.items():
            if name in found and counts.get(alias) == 1 and alias not in found and alias not in self.fn.params:
                found[alias] = found[name]
        return found

    def fresh(self, stem):
        self.counter += 1
        return f"{stem}{self.counter}"

    def is_active(self, atom):
        return isinstance(atom, core.Name) and atom.id in self.active

    def acc(self, out, indent, atom, ct, line):
        """Emit: adjoint of ``atom`` += ``ct`` (skipping constants and inactive names)."""
        if not self.is_active(atom):
            return
        if atom.id in self.closures:
            return self._closure_acc(out, indent, atom.id, ct, line)
        d = f"_d_{atom.id}"
        out.emit(indent, f"if {ct} is not None: {d} = {ct} if {d} is None else {_sum(d, ct)}", line)

    # -- top level -------------------------------------------------------------
    def generate(self):
        fn = self.fn
        fwd, bwd = _Emitter(), _Emitter()
        ret = fn.body[-1]
        assert isinstance(ret, core.Return)
        uses_tape = _has_loop(fn.body)
        self.block(fn.body[:-1], fwd, bwd, 2, 2, in_loop=False)

        top = _Emitter()
        params = ", ".join(_signature(fn.args))
        line0 = fn.first_line
        ops = tuple(f"_mo_op_{name}" for name in sorted(self.op_names))
        top.emit(0, f"def __mo_factory__({', '.join(HELPERS + ops + tuple(fn.bound) + tuple(fn.freevars))}):", line0)
        top.emit(1, f"def {_fwd_name(fn.name)}({params}):", line0)
        if uses_tape:
            top.emit(2, "_mo_tape = []; _mo_push = _mo_tape.append", line0)
        for name in sorted(self.watched):
            top.emit(2, f"_mo_cell_{name} = None", line0)
        body = _Emitter()
        body.lines = top.lines + fwd.lines
        # backward
        body.emit(2, "def _mo_back(_mo_dout, _mo_seed=None):", ret.line)
        if uses_tape:
            body.emit(3, "_mo_pop = reversed(_mo_tape).__next__  # the tape is read, not consumed", ret.line)
        adjoints = sorted(self.active)
        for i in range(0, len(adjoints), 8):
            chunk = adjoints[i:i + 8]
            body.emit(3, " = ".join(f"_d_{n}" for n in chunk) + " = None", ret.line)
        if fn.params:
            body.emit(3, "if _mo_seed is not None:", ret.line)
            body.emit(4, ", ".join(f"_d_{p}" for p in fn.params) + ", = _mo_seed", ret.line)
        self.acc(body, 3, ret.value, "_mo_dout", ret.line)
        # the reversed statements were collected innermost-last; bwd holds them in reverse order
        for indent, text, line in bwd.lines:
            body.emit(indent + 1, text, line)
        if fn.args.kwarg is not None and fn.args.kwarg.arg in self.active:
            # **kwargs is a dict Python builds for this call: its shadow cotangent goes back here
            kw = fn.args.kwarg.arg
            body.emit(3, f"_d_{kw} = _mo_take({kw}, _d_{kw})", ret.line)
        for p in fn.params:
            self._flush(body, 3, p, ret.line)
        param_cts = "".join(f"_d_{p}, " for p in fn.params)
        closure = "{" + ", ".join(f"{n!r}: _d_{n}" for n in fn.freevars if n in self.active) + "}" \
            if any(n in self.active for n in fn.freevars) else "None"
        body.emit(3, f"return ({param_cts}), {closure}", ret.line)
        body.emit(2, f"return {self.atom(ret.value)}, _mo_back", ret.line)
        body.emit(1, f"return {_fwd_name(fn.name)}", ret.line)
        text, line_map = body.render()
        return Generated(fn.name, text, line_map, self.placeholders, self.op_names, dict(fn.bound))

    # -- statements --------------------------------------------------------------
    def block(self, stmts, fwd, bwd, fi, bi, in_loop):
        """Emit forward code for ``stmts`` at indent ``fi`` and their reverse at indent ``bi``.

        The reverse of a block is the reverse of its statements in reverse order, so each
        statement's reverse is generated into its own emitter and prepended.
        """
        reversed_parts = []
        i = 0
        while i < len(stmts):
            part = _Emitter()
            # runs pay off where code repeats; elsewhere they would only double the code to compile
            run = self._float_run(stmts, i) if in_loop else None
            if run:
                self._run_of_floats(run, fwd, part, fi, bi, in_loop)
                i += len(run)
            else:
                s = stmts[i]
                getattr(self, "stmt_" + type(s).__name__)(s, fwd, part, fi, bi, in_loop)
                i += 1
            reversed_parts.append(part)
        for part in reversed(reversed_parts):
            bwd.lines.extend(part.lines)

    # -- runs of float arithmetic ---------------------------------------------------
    def _run_member(self, s):
        """'constant' (arithmetic on literal-only numbers), 'float' (inline float arithmetic with a
        real result for real operands), or None: cannot join a run."""
        if type(s) is not core.Op or s.target is None or s.op not in _SCALAR_OPS:
            return None
        if all(self._constant(a) for a in s.args):
            return "constant"
        if self._scalar_guard(s) is None:
            return None
        if s.op == "pow":
            c = s.args[1].value
            if not (float(c).is_integer() and c >= 1):
                return None   # x ** 0.5 of a negative float is complex: per-op checks
        return "float"

    def _float_run(self, stmts, i):
        """The consecutive statements from ``i`` that form one run of float arithmetic (at least
        two float ops), or []. No op writes a name an earlier op of the run (or itself) read, so
        the values the reverse needs can be saved once, at the end of the run."""
        run, read, written, floats = [], set(), set(), 0
        for s in stmts[i:]:
            kind = self._run_member(s)
            if kind is None:
                break
            names = {a.id for a in s.args if isinstance(a, core.Name)}
            if s.target in read or s.target in names or (kind == "constant" and s.target in written):
                break
            read |= names
            written.add(s.target)
            run.append(s)
            floats += kind == "float"
        return run if floats >= 2 else []

    def _run_of_floats(self, run, fwd, bwd, fi, bi, in_loop):
        """One type test for the whole run: when every number entering it is a float, the ops
        run as plain arithmetic and one tape slot holds every value their reverse needs; else
        each op takes its own path, as outside a run."""
        constants = [s for s in run if all(self._constant(a) for a in s.args)]
        ops = [s for s in run if not all(self._constant(a) for a in s.args)]
        line = ops[0].line
        for s in constants:   # literal-only: moved ahead of the test (nothing in the run changes them)
            fwd.emit(fi, f"{s.target} = {_scalar_expression(s.op, [self.atom(a) for a in s.args])}", s.line)
        produced, entering, saved = set(), [], []
        for s in ops:
            for a in s.args:
                if isinstance(a, core.Name) and a.id not in produced and a.id not in entering:
                    entering.append(a.id)
            for a in _saved_operands(s):
                if isinstance(a, core.Name) and a.id not in saved:
                    saved.append(a.id)
            produced.add(s.target)
        slot = "_mo_pb" if in_loop else self.fresh("_mo_run")
        fwd.emit(fi, "if " + " and ".join(f"type({n}) in _mo_F" for n in entering) + ":", line)
        for s in ops:
            fwd.emit(fi + 1, f"{s.target} = {_scalar_expression(s.op, [self.atom(a) for a in s.args])}", s.line)
        record = "(" + "".join(f"{n}, " for n in saved) + ")"
        fwd.emit(fi + 1, f"_mo_push({record})" if in_loop else f"{slot} = {record}", line)
        fwd.emit(fi, "else:", line)
        one_by_one = _Emitter()
        for s in ops:
            self.op_names.add(s.op)
            part = _Emitter()
            self._scalar_op(s, self._scalar_guard(s), fwd, part, fi + 1, bi + 1, in_loop)
            one_by_one.lines[:0] = part.lines
        fwd.emit(fi + 1, "_mo_push(False)" if in_loop else f"{slot} = False", line)
        # reverse: the slot was recorded last, so it is read first
        self._load(bwd, bi, slot, in_loop, line)
        bwd.emit(bi, f"if {slot} is not False:", line)
        at = {n: f"_mo_v{k}" for k, n in enumerate(saved)}
        if saved:
            bwd.emit(bi + 1, f"{self._unpack(list(at.values()))} = {slot}", line)
        body = _Emitter()
        for s in reversed(ops):
            g = self._take(body, bi + 1, s.target, s.line)
            if g == "None":
                continue
            values = [at.get(a.id) if isinstance(a, core.Name) else self.atom(a) for a in s.args]
            inner = _Emitter()
            self._scalar_adjoints(inner, bi + 2, s, g, values[0], values[-1])
            if inner.lines:
                body.emit(bi + 1, f"if {g} is not None:", s.line)
                body.lines.extend(inner.lines)
        bwd.lines.extend(body.lines or [(bi + 1, "pass", line)])
        bwd.emit(bi, "else:", line)
        bwd.lines.extend(one_by_one.lines or [(bi + 1, "pass", line)])
        for s in reversed(constants):
            self._take(bwd, bi, s.target, s.line)

    def _pb(self, in_loop):
        return "_mo_pb" if in_loop else self.fresh("_mo_pb")

    def _record(self, fwd, indent, name, in_loop, line):
        if in_loop:
            fwd.emit(indent, f"_mo_push({name})", line)

    def _load(self, bwd, indent, name, in_loop, line):
        if in_loop:
            bwd.emit(indent, f"{name} = _mo_pop()", line)

    def _take(self, bwd, indent, target, line):
        """Emit ``_mo_g = adjoint(target); adjoint(target) = None``; returns the name holding it."""
        if target is None or target not in self.active:
            return "None"
        self._flush(bwd, indent, target, line)
        bwd.emit(indent, f"_mo_g = _d_{target}; _d_{target} = None", line)
        return "_mo_g"

    def _flush(self, bwd, indent, name, line):
        """At the reverse of a binding of ``name``: the cotangents of closure calls that read
        this binding (kept on the variable's cell) join its adjoint."""
        if name in self.watched:
            bwd.emit(indent, f"if _mo_cell_{name} is not None: _d_{name} = _mo_flush(_mo_cell_{name}, _d_{name})", line)

    def _unpack(self, names):
        return ", ".join(names) + ("," if len(names) == 1 else "")

    def _scalar_guard(self, s):
        """For arithmetic on Python floats: the run-time test that selects inline code, or None."""
        if s.op not in _SCALAR_OPS or s.target is None:
            return None
        for a in s.args:
            if isinstance(a, core.Const) and type(a.value) not in (int, float):
                return None
        if s.op == "pow":
            base, exponent = s.args
            if not isinstance(exponent, core.Const) or not isinstance(base, core.Name):
                return None
        names = []
        for a in s.args:
            if isinstance(a, core.Name) and a.id not in names:
                names.append(a.id)
        if not names:
            return None
        guard = " and ".join(f"type({n}) in _mo_F" for n in names)
        if s.op == "pow" and s.args[1].value < 1:
            guard += f" and {s.args[0].id} != 0.0"
        return guard

    def _constant(self, atom):
        if isinstance(atom, core.Const):
            return type(atom.value) in (int, float)
        return atom.id in self.constants

    def _fast_acc(self, out, indent, atom, expr, line, negate=False):
        if not self.is_active(atom):
            return
        d = f"_d_{atom.id}"
        if negate:
            out.emit(indent, f"{d} = -({expr}) if {d} is None else {d} - ({expr})", line)
        else:
            out.emit(indent, f"{d} = {expr} if {d} is None else {d} + {expr}", line)

    def _scalar_op(self, s, guard, fwd, bwd, fi, bi, in_loop):
        """Inline float arithmetic: the tape slot holds a tuple of the values the reverse needs
        (an empty tuple when none) instead of a pullback; anything else takes the general op."""
        pb = self._pb(in_loop)
        a = [self.atom(x) for x in s.args]
        op = s.op
        expr = _scalar_expression(op, a)
        saved = {"mul": f"({a[0]}, {a[-1]})", "truediv": f"({a[0]}, {a[-1]})",
                 "pow": f"({a[0]},)"}.get(op, "()")
        fwd.emit(fi, f"if {guard}:", s.line)
        # operands are saved before the assignment: the target may be one of them
        fwd.emit(fi + 1, f"_mo_push({saved})" if in_loop else f"{pb} = {saved}", s.line)
        fwd.emit(fi + 1, f"{s.target} = {expr}", s.line)
        fwd.emit(fi, "else:", s.line)
        fwd.emit(fi + 1, f"{s.target}, {pb} = _mo_op_{op}({', '.join(a)})", s.line)
        self._record(fwd, fi + 1, pb, in_loop, s.line)
        self._load(bwd, bi, pb, in_loop, s.line)
        g = self._take(bwd, bi, s.target, s.line)
        if g == "None":
            return
        bwd.emit(bi, f"if type({pb}) is tuple:", s.line)
        bwd.emit(bi + 1, f"if {g} is not None:", s.line)
        inner = _Emitter()
        k = bi + 2
        if op in ("mul", "truediv"):
            inner.emit(k, f"_mo_x, _mo_y = {pb}", s.line)
        elif op == "pow" and s.args[1].value != 0:
            inner.emit(k, f"_mo_x, = {pb}", s.line)
        self._scalar_adjoints(inner, k, s, g, "_mo_x", "_mo_y")
        bwd.lines.extend(inner.lines or [(k, "pass", s.line)])
        bwd.emit(bi, f"elif {self._runs(g, pb)}:", s.line)
        self._general_reverse(s, bwd, bi + 1, pb, g)

    def _scalar_adjoints(self, out, k, s, g, x_value, y_value):
        """Emit the operands' adjoint updates of float op ``s`` for output adjoint ``g``, the
        operands' forward values being ``x_value`` and ``y_value`` (saved values or literals)."""
        x, y, op = s.args[0], s.args[-1], s.op
        if op == "add":
            self._fast_acc(out, k, x, g, s.line)
            self._fast_acc(out, k, y, g, s.line)
        elif op == "sub":
            self._fast_acc(out, k, x, g, s.line)
            self._fast_acc(out, k, y, g, s.line, negate=True)
        elif op == "neg":
            self._fast_acc(out, k, x, g, s.line, negate=True)
        elif op == "mul":
            self._fast_acc(out, k, x, f"{g} * {y_value}", s.line)
            self._fast_acc(out, k, y, f"{g} * {x_value}", s.line)
        elif op == "truediv":
            self._fast_acc(out, k, x, f"{g} / {y_value}", s.line)
            self._fast_acc(out, k, y, f"{g} * {x_value} / ({y_value} * {y_value})", s.line, negate=True)
        elif op == "pow":
            c = y.value
            if c != 0:
                term = {1: g, 2: f"{g} * 2.0 * {x_value}"}.get(c, f"{g} * {c!r} * {x_value} ** {c - 1!r}")
                self._fast_acc(out, k, x, term, s.line)

    def _tuple_display(self, s, fwd, bwd, fi, bi):
        """``t = (a, b, ...)`` is built as written; its reverse splits the tuple's cotangent."""
        items = ", ".join(self.atom(a) for a in s.args)
        fwd.emit(fi, f"{s.target} = ({items}{',' if len(s.args) == 1 else ''})", s.line)
        g = self._take(bwd, bi, s.target, s.line)
        active = [(i, a) for i, a in enumerate(s.args) if self.is_active(a)]
        if g == "None" or not active:
            return
        bwd.emit(bi, f"if {g} is not None:", s.line)
        n = len(s.args)
        bwd.emit(bi + 1, f"_mo_cs = {g} if type({g}) is tuple and len({g}) == {n} else _mo_items({g}, {n})",
                 s.line)
        for i, a in active:
            self.acc(bwd, bi + 1, a, f"_mo_cs[{i}]", s.line)

    def _closure_acc(self, out, indent, name, ct, line):
        """The cotangent of a closure that was just used: its captured variables' parts go to
        those variables now (a closure reads them when it runs, not when it was defined); what
        is left (cotangents of default values) waits for the ``def`` in ``_d_<name>``.

        The temporaries are fresh per use: a captured variable may itself be a closure, whose
        cotangent is distributed inside this one's (nested names must not clobber ours)."""
        d = f"_d_{name}"
        captured = self.closures[name]
        cl, rest, cv = self.fresh("_mo_cl"), self.fresh("_mo_rest"), self.fresh("_mo_cv")
        out.emit(indent, f"if type({ct}) is dict:", line)
        out.emit(indent + 1, f"{cl} = {ct}", line)
        if name in captured:
            out.emit(indent + 1, f"{rest} = {{k: v for k, v in {cl}.items() if k.startswith('__default__')}}", line)
            out.emit(indent + 1, f"while {cl} is not None:", line)
            k = indent + 2
        else:
            out.emit(indent + 1, f"{rest} = {{k: v for k, v in {cl}.items() if k not in {tuple(captured)!r}}}", line)
            k = indent + 1
        for var in captured:
            if var == name:
                continue
            out.emit(k, f"{cv} = {cl}.get({var!r})", line)
            self.acc(out, k, core.Name(var), cv, line)
        if name in captured:
            out.emit(k, f"{cl} = {cl}.get({name!r})", line)
        out.emit(indent + 1, f"if {rest}: {d} = {rest} if {d} is None else _mo_add({d}, {rest})", line)
        out.emit(indent, f"elif {ct} is not None: {d} = {ct} if {d} is None else {_sum(d, ct)}", line)

    def _runs(self, g, pb):
        """When a pullback must run: a nonzero cotangent, or array cotangents that may sit in
        the shadow memory only (``ShadowPullback``)."""
        if g == "None":
            return f"type({pb}) is _mo_Shadow"
        return f"{pb} is not None and ({g} is not None or type({pb}) is _mo_Shadow)"

    def _general_reverse(self, s, bwd, indent, pb, g):
        cts = [f"_mo_c{i}" if self.is_active(a) else "_" for i, a in enumerate(s.args)]
        if all(c == "_" for c in cts):
            bwd.emit(indent, f"{pb}({g})", s.line)
            return
        bwd.emit(indent, f"{self._unpack(cts)} = {pb}({g})", s.line)
        for c, a in zip(cts, s.args):
            if c != "_":
                self.acc(bwd, indent, a, c, s.line)

    def stmt_Op(self, s, fwd, bwd, fi, bi, in_loop):
        if s.op == "tuple" and s.target is not None:
            return self._tuple_display(s, fwd, bwd, fi, bi)
        if s.op in _SCALAR_OPS and s.target is not None and all(self._constant(a) for a in s.args):
            # arithmetic on numbers that no input reaches (h / 6.0 with h = 0.01): plain Python,
            # nothing on the tape; the reverse only ends the target's adjoint here
            fwd.emit(fi, f"{s.target} = {_scalar_expression(s.op, [self.atom(a) for a in s.args])}", s.line)
            self._take(bwd, bi, s.target, s.line)
            return
        self.op_names.add(s.op)
        guard = self._scalar_guard(s)
        if guard is not None:
            return self._scalar_op(s, guard, fwd, bwd, fi, bi, in_loop)
        pb = self._pb(in_loop)
        target = s.target if s.target is not None else "_"
        args = ", ".join(self.atom(a) for a in s.args)
        fwd.emit(fi, f"{target}, {pb} = _mo_op_{s.op}({args})", s.line)
        self._record(fwd, fi, pb, in_loop, s.line)
        self._load(bwd, bi, pb, in_loop, s.line)
        g = self._take(bwd, bi, s.target, s.line)
        mutating = s.op in core.MUTATING_OPS
        cts = [f"_mo_c{i}" if self.is_active(a) else "_" for i, a in enumerate(s.args)]
        if not mutating and g == "None" and all(c == "_" for c in cts):
            return
        condition = f"{pb} is not None" if mutating else self._runs(g, pb)
        bwd.emit(bi, f"if {condition}:", s.line)
        if all(c == "_" for c in cts):
            bwd.emit(bi + 1, f"{pb}({g})", s.line)
            return
        bwd.emit(bi + 1, f"{self._unpack(cts)} = {pb}({g})", s.line)
        for c, a in zip(cts, s.args):
            if c != "_":
                self.acc(bwd, bi + 1, a, c, s.line)

    def _call_parts(self, s):
        """Runtime helper suffix and the argument atoms whose cotangents come back, in order."""
        if s.argtuple is not None:
            return "v", [s.argtuple, s.kwdict], f"{self.atom(s.argtuple)}, {self.atom(s.kwdict)}"
        atoms = list(s.args) + [a for _, a in s.kwargs]
        text = ", ".join(self.atom(a) for a in atoms)
        if s.kwargs:
            names = tuple(k for k, _ in s.kwargs)
            return "k", atoms, f"{names!r}, {text}" if text else repr(names)
        return "", atoms, text

    def stmt_Call(self, s, fwd, bwd, fi, bi, in_loop):
        pb = self._pb(in_loop)
        suffix, atoms, text = self._call_parts(s)
        helper = f"_mo_call{'' if s.local else 'g'}{suffix}"
        target = s.target if s.target is not None else "_"
        sep = ", " if text else ""
        fwd.emit(fi, f"{target}, {pb} = {helper}({self.atom(s.func)}{sep}{text})", s.line)
        self._record(fwd, fi, pb, in_loop, s.line)
        self._load(bwd, bi, pb, in_loop, s.line)
        g = self._take(bwd, bi, s.target, s.line)
        if s.local and self.is_active(s.func):
            # the callee is a local value (closure, callable object): it may change itself, so
            # its cotangent after the call is handed in and the one before comes back
            cts = [f"_mo_c{i}" if self.is_active(a) else "_" for i, a in enumerate(atoms)]
            d_f = f"_d_{s.func.id}"
            bwd.emit(bi, f"if {pb} is not None:", s.line)
            bwd.emit(bi + 1, f"{self._unpack(['_mo_self'] + cts)} = {pb}({g}, {d_f})", s.line)
            if s.func.id in self.closures:
                bwd.emit(bi + 1, f"{d_f} = None", s.line)
                self._closure_acc(bwd, bi + 1, s.func.id, "_mo_self", s.line)
            else:
                bwd.emit(bi + 1, f"{d_f} = _mo_self", s.line)
            for c, a in zip(cts, atoms):
                if c != "_":
                    self.acc(bwd, bi + 1, a, c, s.line)
            return
        receivers = ([s.func] if s.local else []) + atoms
        cts = [f"_mo_c{i}" if self.is_active(a) else "_" for i, a in enumerate(receivers)]
        if all(c == "_" for c in cts):
            return
        bwd.emit(bi, f"if {self._runs(g, pb)}:", s.line)
        if all(c == "_" for c in cts):
            bwd.emit(bi + 1, "pass", s.line)
            return
        bwd.emit(bi + 1, f"{self._unpack(cts)} = {pb}({g})", s.line)
        for c, a in zip(cts, receivers):
            if c != "_":
                self.acc(bwd, bi + 1, a, c, s.line)

    def stmt_Method(self, s, fwd, bwd, fi, bi, in_loop):
        pb = self._pb(in_loop)
        suffix, atoms, text = self._call_parts(s)
        local = s.local and self.is_active(s.obj)
        helper = f"_mo_meth{'' if local else 'g'}{suffix}"
        target = s.target if s.target is not None else "_"
        sep = ", " if text else ""
        name = f"(__class__, {s.name!r})" if s.via_super else repr(s.name)
        fwd.emit(fi, f"{target}, {pb} = {helper}({self.atom(s.obj)}, {name}{sep}{text})", s.line)
        self._record(fwd, fi, pb, in_loop, s.line)
        self._load(bwd, bi, pb, in_loop, s.line)
        g = self._take(bwd, bi, s.target, s.line)
        cts = [f"_mo_c{i}" if self.is_active(a) else "_" for i, a in enumerate(atoms)]
        if local:
            d_obj = f"_d_{s.obj.id}"
            bwd.emit(bi, f"if {pb} is not None:", s.line)
            names = [f"_mo_self"] + cts
            bwd.emit(bi + 1, f"{self._unpack(names)} = {pb}({g}, {d_obj})", s.line)
            bwd.emit(bi + 1, f"{d_obj} = _mo_self", s.line)
            for c, a in zip(cts, atoms):
                if c != "_":
                    self.acc(bwd, bi + 1, a, c, s.line)
            return
        if all(c == "_" for c in cts):
            return
        bwd.emit(bi, f"if {self._runs(g, pb)}:", s.line)
        bwd.emit(bi + 1, f"{self._unpack(cts)} = {pb}({g})", s.line)
        for c, a in zip(cts, atoms):
            if c != "_":
                self.acc(bwd, bi + 1, a, c, s.line)

    def stmt_ScalarCall(self, s, fwd, bwd, fi, bi, in_loop):
        """``y = f(x)`` inline for a float ``x`` (see reverse/scalar_calls.py): the tape slot holds
        ``(x, y)``; anything else takes the ordinary call, whose slot holds its pullback."""
        pb = self._pb(in_loop)
        x = self.atom(s.arg)
        call = s.call
        fwd.emit(fi, f"if {s.callee} is {s.function} and type({x}) in _mo_F:", s.line)
        fwd.emit(fi + 1, f"_mo_y = {s.function}({x})", s.line)
        fwd.emit(fi + 1, f"_mo_push(({x}, _mo_y))" if in_loop else f"{pb} = ({x}, _mo_y)", s.line)
        fwd.emit(fi + 1, f"{s.target} = _mo_y", s.line)
        fwd.emit(fi, "else:", s.line)
        if type(call) is core.Method:
            general = f"_mo_methg({self.atom(call.obj)}, {call.name!r}, {x})"
        else:
            general = f"_mo_callg({self.atom(call.func)}, {x})"
        fwd.emit(fi + 1, f"{s.target}, {pb} = {general}", s.line)
        self._record(fwd, fi + 1, pb, in_loop, s.line)
        self._load(bwd, bi, pb, in_loop, s.line)
        g = self._take(bwd, bi, s.target, s.line)
        if g == "None" or not self.is_active(s.arg):
            # nothing to pass back, but a general pullback may still have to run (arrays)
            bwd.emit(bi, f"if type({pb}) is not tuple and {pb} is not None and type({pb}) is _mo_Shadow:", s.line)
            bwd.emit(bi + 1, f"{pb}({g})", s.line)
            return
        bwd.emit(bi, f"if type({pb}) is tuple:", s.line)
        bwd.emit(bi + 1, f"if {g} is not None:", s.line)
        bwd.emit(bi + 2, f"_mo_x, _mo_y = {pb}", s.line)
        self._fast_acc(bwd, bi + 2, s.arg, f"{g} * {s.derivative}(_mo_x, _mo_y)", s.line)
        bwd.emit(bi, f"elif {self._runs(g, pb)}:", s.line)
        bwd.emit(bi + 1, f"_mo_c0, = {pb}({g})", s.line)
        self.acc(bwd, bi + 1, s.arg, "_mo_c0", s.line)

    def stmt_Assign(self, s, fwd, bwd, fi, bi, in_loop):
        fwd.emit(fi, f"{s.target} = {self.atom(s.value)}", s.line)
        if isinstance(s.value, core.Name) and s.value.id == s.target:
            return
        g = self._take(bwd, bi, s.target, s.line)
        if g != "None":
            self.acc(bwd, bi, s.value, g, s.line)

    def stmt_Unpack(self, s, fwd, bwd, fi, bi, in_loop):
        value = self.atom(s.value)
        saved = self._pb(in_loop)
        fwd.emit(fi, f"{saved} = {value}", s.line)
        self._record(fwd, fi, saved, in_loop, s.line)
        fwd.emit(fi, f"{', '.join(s.targets)}, = {saved}", s.line)
        self._load(bwd, bi, saved, in_loop, s.line)
        for t in s.targets:
            self._flush(bwd, bi, t, s.line)
        adjoints = [f"_d_{t}" if t in self.active else "None" for t in s.targets]
        if not self.is_active(s.value) or all(a == "None" for a in adjoints):
            for a in adjoints:
                if a != "None":
                    bwd.emit(bi, f"{a} = None", s.line)
            return
        cts = ", ".join(adjoints) + ("," if len(adjoints) == 1 else "")
        bwd.emit(bi, f"if {' or '.join(a + ' is not None' for a in adjoints if a != 'None')}:", s.line)
        bwd.emit(bi + 1, f"_mo_c0 = ({cts}) if type({saved}) is tuple else _mo_unpacked({saved}, ({cts}))", s.line)
        self.acc(bwd, bi + 1, s.value, "_mo_c0", s.line)
        bwd.emit(bi + 1, " = ".join(a for a in adjoints if a != "None") + " = None", s.line)

    def stmt_Native(self, s, fwd, bwd, fi, bi, in_loop):
        fwd.emit(fi, f"{s.target} = {self.placeholder(s.expr, 'expr', s.line)}", s.line)
        if s.target in self.active:
            self._flush(bwd, bi, s.target, s.line)
            bwd.emit(bi, f"_d_{s.target} = None", s.line)

    def stmt_Passthrough(self, s, fwd, bwd, fi, bi, in_loop):
        fwd.emit(fi, self.placeholder(s.stmt, "stmt", s.line), s.line)

    def stmt_If(self, s, fwd, bwd, fi, bi, in_loop):
        flag = None if in_loop else self.fresh("_mo_b")
        fwd.emit(fi, f"if {self.placeholder(s.test, 'expr', s.line)}:", s.line)
        then_b, else_b = _Emitter(), _Emitter()
        self.block(s.body, fwd, then_b, fi + 1, bi + 1, in_loop)
        fwd.emit(fi + 1, "_mo_push(True)" if in_loop else f"{flag} = True", s.line)
        fwd.emit(fi, "else:", s.line)
        self.block(s.orelse, fwd, else_b, fi + 1, bi + 1, in_loop)
        fwd.emit(fi + 1, "_mo_push(False)" if in_loop else f"{flag} = False", s.line)
        bwd.emit(bi, "if _mo_pop():" if in_loop else f"if {flag}:", s.line)
        bwd.lines.extend(then_b.lines or [(bi + 1, "pass", s.line)])
        if else_b.lines:
            bwd.emit(bi, "else:", s.line)
            bwd.lines.extend(else_b.lines)

    def stmt_For(self, s, fwd, bwd, fi, bi, in_loop):
        k = self.fresh("")
        seq, pbseq, n, dseq = f"_mo_seq{k}", f"_mo_pbseq{k}", f"_mo_n{k}", f"_mo_dseq{k}"
        fwd.emit(fi, f"{seq}, {pbseq} = _mo_iter({self.atom(s.iter)})", s.line)
        fwd.emit(fi, f"{n} = 0", s.line)
        fwd.emit(fi, f"for {s.target} in {seq}:", s.line)
        fwd.emit(fi + 1, f"{n} += 1", s.line)
        body_b = _Emitter()
        self.block(s.body, fwd, body_b, fi + 1, bi + 1, True)
        if s.exit_test is not None:
            fwd.emit(fi + 1, f"if {self.placeholder(s.exit_test, 'expr', s.line)}: break", s.line)
        if in_loop:
            fwd.emit(fi, f"_mo_push({pbseq}); _mo_push({n})", s.line)
            bwd.emit(bi, f"{n} = _mo_pop(); {pbseq} = _mo_pop()", s.line)
        track = s.target in self.active
        if track:
            bwd.emit(bi, f"{dseq} = [None] * {n}", s.line)
        bwd.emit(bi, f"for _mo_k{k} in range({n} - 1, -1, -1):", s.line)
        bwd.lines.extend(body_b.lines or [(bi + 1, "pass", s.line)])
        if track:
            self._flush(bwd, bi + 1, s.target, s.line)
            bwd.emit(bi + 1, f"{dseq}[_mo_k{k}] = _d_{s.target}; _d_{s.target} = None", s.line)
            if self.is_active(s.iter):
                bwd.emit(bi, f"if {pbseq} is not None:", s.line)
                bwd.emit(bi + 1, f"_mo_c0 = {pbseq}({dseq})", s.line)
                self.acc(bwd, bi + 1, s.iter, "_mo_c0", s.line)

    def stmt_While(self, s, fwd, bwd, fi, bi, in_loop):
        n = self.fresh("_mo_n")
        fwd.emit(fi, f"{n} = 0", s.line)
        fwd.emit(fi, f"while {self.placeholder(s.test, 'expr', s.line)}:", s.line)
        fwd.emit(fi + 1, f"{n} += 1", s.line)
        body_b = _Emitter()
        self.block(s.body, fwd, body_b, fi + 1, bi + 1, True)
        if s.exit_test is not None:
            fwd.emit(fi + 1, f"if {self.placeholder(s.exit_test, 'expr', s.line)}: break", s.line)
        if in_loop:
            fwd.emit(fi, f"_mo_push({n})", s.line)
            bwd.emit(bi, f"{n} = _mo_pop()", s.line)
        bwd.emit(bi, f"for _ in range({n}):", s.line)
        bwd.lines.extend(body_b.lines or [(bi + 1, "pass", s.line)])

    def stmt_With(self, s, fwd, bwd, fi, bi, in_loop):
        # a manager that suppresses an exception ends the block part-way, past statements whose
        # reverse the sweep would still run: refused, loudly (forward mode follows it as it is)
        done = self.fresh("_mo_w")
        fwd.emit(fi, f"{done} = False", s.line)
        with_node = ast.With(items=s.items, body=[ast.Pass()])
        fwd.emit(fi, f"with {self.placeholder(with_node, 'with', s.line)}:", s.line)
        body_f = _Emitter()
        self.block(s.body, body_f, bwd, fi + 1, bi, in_loop)
        fwd.lines.extend(body_f.lines)
        fwd.emit(fi + 1, f"{done} = True", s.line)
        fwd.emit(fi, f"if not {done}: raise __import__('morula.errors', fromlist=['errors'])"
                     f".UnsupportedOperationError({_SUPPRESSED!r})", s.line)

    def stmt_Def(self, s, fwd, bwd, fi, bi, in_loop):
        if isinstance(s.node, ast.Lambda):
            fwd.emit(fi, f"{s.target} = {self.placeholder(s.node, 'expr')}", s.line)
        else:
            fwd.emit(fi, self.placeholder(s.node, "stmt"), s.line)
        cells = [n for n in s.captured if n in self.watched]
        if cells:
            fwd.emit(fi, f"{self._unpack([f'_mo_cell_{n}' for n in cells])} = _mo_watch({s.target}, {tuple(cells)!r})", s.line)
        g = self._take(bwd, bi, s.target, s.line)
        captured = [n for n in s.captured if n in self.active]
        defaults = [(p, d) for p, d in _default_names(s.node.args) if d in self.active]
        if g == "None" or not (captured or defaults):
            return
        if defaults:
            # default values taken from local variables (lambda v=x: ...): the callee reports
            # the cotangent of each default it used under "__default__<parameter>"
            bwd.emit(bi, f"if {g} is not None:", s.line)
            for param, name in defaults:
                bwd.emit(bi + 1, f"_mo_c0 = {g}.get('__default__{param}')", s.line)
                self.acc(bwd, bi + 1, core.Name(name), "_mo_c0", s.line)
            captured = [n for n in captured if n not in {d for _, d in defaults} or n in _free_names(s.node)]
            if not captured:
                return
        if s.target in captured:
            # a recursive function captures itself: its closure cotangent nests one level per
            # recursive call ({'x': ..., 'f': {'x': ..., 'f': ...}}); walk down the nesting
            others = [n for n in captured if n != s.target]
            bwd.emit(bi, f"_mo_gd = {g}", s.line)
            bwd.emit(bi, "while _mo_gd is not None:", s.line)
            for name in others:
                bwd.emit(bi + 1, f"_mo_c0 = _mo_gd.get({name!r})", s.line)
                self.acc(bwd, bi + 1, core.Name(name), "_mo_c0", s.line)
            bwd.emit(bi + 1, f"_mo_gd = _mo_gd.get({s.target!r})", s.line)
            return
        bwd.emit(bi, f"if {g} is not None:", s.line)
        for name in captured:
            bwd.emit(bi + 1, f"_mo_c0 = {g}.get({name!r})", s.line)
            self.acc(bwd, bi + 1, core.Name(name), "_mo_c0", s.line)


def _scalar_expression(op, a):
    return {"add": f"{a[0]} + {a[-1]}", "sub": f"{a[0]} - {a[-1]}", "mul": f"{a[0]} * {a[-1]}",
            "truediv": f"{a[0]} / {a[-1]}", "neg": f"-{a[0]}", "pow": f"{a[0]} ** {a[-1]}"}[op]


def _saved_operands(s):
    """The operands whose values the reverse of float op ``s`` reads."""
    if s.op in ("mul", "truediv"):
        return s.args
    if s.op == "pow":
        return s.args[:1]
    return []


def _constant_names(fn):
    """Locals that only ever hold numbers computed from literals (``h = 0.01``, ``c = h / 6.0``):
    every binding is a number literal, another such name, or arithmetic on such operands. No
    input reaches them and Python numbers cannot be changed in place, so they need no adjoint."""
    bindings = {}
    for s in walk_statements(fn.body):
        for name in _bound_by(s):
            bindings.setdefault(name, []).append(s)
    candidates = set(bindings) - set(fn.params) - set(fn.freevars)

    def constant_atom(a):
        return type(a.value) in (int, float) if isinstance(a, core.Const) else a.id in candidates

    changed = True
    while changed:
        changed = False
        for name in list(candidates):
            for s in bindings[name]:
                t = type(s)
                if t is core.Assign and constant_atom(s.value):
                    continue
                if t is core.Op and s.op in _SCALAR_OPS and all(constant_atom(a) for a in s.args):
                    continue
                candidates.discard(name)
                changed = True
                break
    return candidates


def _bound_by(s):
    """Every name statement ``s`` binds or changes (not those of its nested blocks)."""
    target = getattr(s, "target", None)
    names = [target] if isinstance(target, str) else []
    if type(s) is core.Op and s.op in core.MUTATING_OPS and s.args and isinstance(s.args[0], core.Name):
        names.append(s.args[0].id)   # rebound in place
    kept = s.items if type(s) is core.With else [s.stmt] if type(s) is core.Passthrough else ()
    for node in kept:   # `with ... as name`, an import, ...: bound by Python as written
        names += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    return names + list(getattr(s, "targets", None) or ())


def _default_names(args):
    """(parameter, variable) for parameter defaults that are plain variable names."""
    positional = args.posonlyargs + args.args
    pairs = []
    for param, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        if isinstance(default, ast.Name):
            pairs.append((param.arg, default.id))
    for param, default in zip(args.kwonlyargs, args.kw_defaults):
        if isinstance(default, ast.Name):
            pairs.append((param.arg, default.id))
    return pairs


def _free_names(node):
    """Names the body of a def/lambda reads (not its defaults)."""
    body = node.body if isinstance(node.body, list) else [node.body]
    return {n.id for b in body for n in ast.walk(b) if isinstance(n, ast.Name)}


def _locate_missing(node, line):
    """Synthesized nodes (from lowering) get the statement's line; the user's keep theirs."""
    for n in ast.walk(node):
        if "lineno" in n._attributes and not hasattr(n, "lineno"):
            n.lineno = n.end_lineno = line
            n.col_offset = n.end_col_offset = 0


def walk_statements(stmts):
    """Every core statement in ``stmts``, nested blocks (body/orelse) included, in order."""
    for s in stmts:
        yield s
        for block in ("body", "orelse"):
            yield from walk_statements(getattr(s, block, None) or [])


def binding_counts_and_aliases(stmts):
    """``(counts, aliases)``: how many statements bind each name, and ``alias -> name`` for
    every plain ``alias = name`` assignment (the last one wins)."""
    counts, aliases = {}, {}
    for s in walk_statements(stmts):
        target = getattr(s, "target", None)
        if isinstance(target, str):
            counts[target] = counts.get(target, 0) + 1
        for name in getattr(s, "targets", None) or ():
            counts[name] = counts.get(name, 0) + 1
        if type(s) is core.Assign and isinstance(s.value, core.Name):
            aliases[s.target] = s.value.id
    return counts, aliases


def _has_loop(stmts):
    for s in stmts:
        if isinstance(s, (core.For, core.While)):
            return True
        for block in ("body", "orelse"):
            if _has_loop(getattr(s, block, []) or []):
                return True
    return False


def _fwd_name(name):
    return f"{name if name.isidentifier() else 'lambda'}__fwd"


def _signature(args):
    parts = []
    for a in args.posonlyargs:
        parts.append(a.arg)
    if args.posonlyargs:
        parts.append("/")
    parts += [a.arg for a in args.args]
    if args.vararg:
        parts.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        parts.append("*")
    parts += [a.arg for a in args.kwonlyargs]
    if args.kwarg:
        parts.append("**" + args.kwarg.arg)
    return parts


def _sum(d, ct):
    """``d + ct`` for cotangents: inline for two floats (the scalar hot path), else ``add``."""
    return f"({d} + {ct} if type({d}) is float and type({ct}) is float else _mo_add({d}, {ct}))"
