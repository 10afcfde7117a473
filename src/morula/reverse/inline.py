"""Inline small helper functions into the reverse-mode code of their callers.

In: a caller's core form and its function object. Out: the same core form, where each call of
a small module-level Python function (same module, positional arguments) has become

    if <name> is <the function seen when compiling> and <name>.__code__ is <its code>:
        <the callee's statements, its variables renamed apart>
    else:
        <the original call>

plus ``bound``: the objects the guards compare against (the generated factory binds them).

Why: a call of a Python function from differentiated code costs a dispatch, a fresh closure per
call with a cell per saved value, and a backward frame; a scalar loop calling a three-line helper
(an ODE right-hand side, a model equation) spends most of its time there. Inlined, the helper's
arithmetic takes the generated code's inline float paths like the caller's own.

Why it is exact: the inlined statements are the callee's own statements, run in the same order
on the same objects, so the reverse sweep differentiates exactly what the call would have run.
Only callees where a call boundary changes nothing are inlined: no rule registered for them, no
closure, no defaults used, no in-place writes, no nested defs, same globals (the body's global
names then mean the same thing in the caller) and none of its global names is a caller local.
The guard sends a rebound name, or a function whose code was replaced, down the ordinary call.
A rule registered later changes the rules version, which recompiles the caller.
"""

import ast
import copy
import threading
import types

from ..frontend import core
from .codegen import _bound_by, walk_statements

MAX_STATEMENTS = 60          # larger callees stay calls (code size, compile time)
_ALLOWED = (core.Op, core.Call, core.Method, core.Assign, core.Unpack, core.Native, core.If, core.For,
            core.While, core.Passthrough)
_PLAIN_PASSTHROUGH = (ast.Expr, ast.Assert, ast.Raise, ast.Pass)
_SCOPE_NAMES = {"locals", "vars", "globals", "eval", "exec", "super", "__class__", "dir"}
_MARKERS = ("__morula_constant__", "__morula_api__", "__morula_jvp__")
_ATOM_FIELDS = ("func", "obj", "value", "iter", "argtuple", "kwdict")
_AST_FIELDS = ("expr", "test", "exit_test", "stmt")

_callee_cache = {}    # id(code) -> (code, core form or None)
_lock = threading.Lock()


def inline_calls(caller_core, caller_fn):
    """Rewrite ``caller_core.body`` in place; returns ``{guard name: object}`` to bind."""
    caller_names = set(caller_core.params) | set(caller_core.locals) | set(caller_core.freevars)
    state = _State(caller_fn, caller_names, caller_core.body)
    caller_core.body = state.block(caller_core.body)
    return state.bound


class _State:
    def __init__(self, caller_fn, caller_names, caller_body):
        self.caller_fn = caller_fn
        self.caller_body = caller_body
        self.caller_names = caller_names
        self.bound = {}
        self.count = 0

    def block(self, stmts):
        out = []
        skip = False
        for i, s in enumerate(stmts):
            if skip:
                skip = False
                continue
            t = type(s)
            if t is core.Call:
                after = stmts[i + 1] if i + 1 < len(stmts) else None
                unpack = after if type(after) is core.Unpack and _only_unpacked(s.target, after, self.caller_body) else None
                replacement, skip = self.inlined(s, unpack)
                out.append(replacement if replacement is not None else s)
                continue
            if t is core.If:
                s.body, s.orelse = self.block(s.body), self.block(s.orelse)
            elif t in (core.For, core.While, core.With):
                s.body = self.block(s.body)
            out.append(s)
        return out

    def inlined(self, call, unpack=None):
        """``(guarded copy replacing call, whether it also replaces unpack)``; ``(None, False)``
        when ``call`` stays a call. ``unpack``: the next statement, unpacking the call's result."""
        if call.local or call.kwargs or call.argtuple is not None or not isinstance(call.func, core.Name):
            return None, False
        name = call.func.id
        if name in self.caller_names:
            return None, False
        callee = self.caller_fn.__globals__.get(name)
        if not _inlinable_function(callee, self.caller_fn, len(call.args)):
            return None, False
        callee_core = _callee_core(callee)
        if callee_core is None:
            return None, False
        own = set(callee_core.params) | set(callee_core.locals) | _bound_names(callee_core.body)
        if (_read_names(callee_core.body) - own) & self.caller_names:
            return None, False   # a global the callee reads is a local of the caller
        self.count += 1
        k = self.count
        renames = {n: f"_i{k}_{n}" for n in own}
        if set(renames.values()) & self.caller_names:
            return None, False
        rebound = _bound_names(callee_core.body)
        body = []
        for p, a in zip(callee_core.params, call.args):
            if isinstance(a, core.Name) and p not in rebound:
                renames[p] = a.id   # read the caller's variable: nothing binds it inside the copy
            else:
                body.append(core.Assign(renames[p], a, call.line))
        statements, ret = callee_core.body[:-1], callee_core.body[-1]
        parts = _returned_tuple(statements, ret, unpack)
        if parts is not None:
            values = [_renamed_atom(v, renames) for v in parts]
            if set(unpack.targets) & {v.id for v in values if isinstance(v, core.Name)}:
                parts = None   # a, b = f(b, a)-like swaps: keep the tuple (parallel assignment)
        if parts is not None:
            # ``a, b = f(...)`` where f ends ``return p, q``: bind a and b directly (no tuple
            # built and unpacked, nor its cotangent built and split)
            body += [_renamed(s, renames) for s in statements[:-1]]
            body += [core.Assign(t, v, unpack.line) for t, v in zip(unpack.targets, values)]
            orelse = [call, unpack]
        else:
            body += [_renamed(s, renames) for s in statements]
            if call.target is not None:
                body.append(core.Assign(call.target, _renamed_atom(ret.value, renames), ret.line))
            orelse = [call]
        function_guard, code_guard = f"_mo_inline{k}", f"_mo_inline{k}_code"
        self.bound[function_guard] = callee
        self.bound[code_guard] = callee.__code__
        guarded = core.If(_guard(name, function_guard, code_guard, call.line), body, orelse, call.line)
        return guarded, parts is not None


def _only_unpacked(target, unpack, caller_body):
    """Is the call's result ``target`` read by ``unpack`` and by nothing else in the caller?"""
    if target is None or unpack.value != core.Name(target):
        return False
    return sum(1 for s in walk_statements(caller_body) if target in _read_names([s], nested=False)) == 1


def _returned_tuple(statements, ret, unpack):
    """The atoms of ``return p, q`` (the callee's last statement builds the tuple it returns,
    nothing else reads it, and ``unpack`` takes as many names), else None."""
    if unpack is None or not statements:
        return None
    last = statements[-1]
    if not (type(last) is core.Op and last.op == "tuple" and last.target is not None
            and ret.value == core.Name(last.target) and len(last.args) == len(unpack.targets)):
        return None
    if any(last.target in _read_names([s], nested=False) for s in statements):
        return None
    return list(last.args)


def _inlinable_function(f, caller_fn, nargs):
    if type(f) is not types.FunctionType or f is caller_fn:
        return False
    code = f.__code__
    if (f.__closure__ or code.co_flags & 0x2C or code.co_kwonlyargcount or code.co_posonlyargcount
            or code.co_argcount != nargs or code is caller_fn.__code__):
        return False   # closures, *args/**kwargs, generators, defaults used, recursion
    if f.__globals__ is not caller_fn.__globals__ or code.co_filename != caller_fn.__code__.co_filename:
        return False
    module = getattr(f, "__module__", None) or ""
    if module == "morula" or module.startswith("morula."):
        return False
    if any(key in f.__dict__ for key in _MARKERS) or getattr(f, "__wrapped__", None) is not None:
        return False   # nondiff wrappers, derivative functions, decorated functions: keep the call
    from ..forward.derived import FRULES
    from .runtime import _lookup
    return _lookup(f) is None and FRULES.get(f) is None


def _callee_core(f):
    """The callee's core form when it qualifies for inlining, else None (cached per code)."""
    code = f.__code__
    hit = _callee_cache.get(id(code))
    if hit is not None and hit[0] is code:
        return hit[1]
    with _lock:
        core_fn = _readable_core(f)
        if core_fn is not None and not _simple_body(core_fn):
            core_fn = None
        _callee_cache[id(code)] = (code, core_fn)
    return core_fn


def _readable_core(f):
    from ..frontend import fence
    from ..frontend.normalize import normalize
    from ..frontend.source import function_source
    try:
        info = function_source(f)
        fence.check(info.node, info.filename, info.lines)
        return normalize(info, f)
    except Exception:   # unreadable or unsupported: the ordinary call reports it with context
        return None


def _simple_body(core_fn):
    if core_fn.freevars or core_fn.mutated_params:
        return False
    body = core_fn.body
    statements = list(walk_statements(body[:-1]))
    if len(statements) > MAX_STATEMENTS or any(type(s) is core.Return for s in statements):
        return False
    for s in statements:
        if not isinstance(s, _ALLOWED):
            return False
        if type(s) is core.Op and s.op in core.MUTATING_OPS:
            return False
        if type(s) is core.Passthrough and not isinstance(s.stmt, _PLAIN_PASSTHROUGH):
            return False
        for name in _AST_FIELDS:
            node = getattr(s, name, None)
            if isinstance(node, ast.AST) and not _plain_expression(node):
                return False
    return not (_read_names(body) & _SCOPE_NAMES)


def _plain_expression(node):
    """No construct that binds names in a scope of its own or looks at scopes."""
    for n in ast.walk(node):
        if isinstance(n, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                          ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom, ast.ListComp,
                          ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)):
            return False
    return True


def _bound_names(stmts):
    return {name for s in walk_statements(stmts) for name in _bound_by(s)}


def _read_names(stmts, nested=True):
    """Names read by ``stmts`` (with their nested blocks unless ``nested`` is false)."""
    names = set()

    def atoms(value):
        if isinstance(value, core.Name):
            names.add(value.id)
        elif isinstance(value, (list, tuple)):
            for v in value:
                atoms(v)
    for s in (walk_statements(stmts) if nested else stmts):
        for field in ("args", "kwargs") + _ATOM_FIELDS:
            atoms(getattr(s, field, None))
        for field in _AST_FIELDS:
            node = getattr(s, field, None)
            if isinstance(node, ast.AST):
                names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    return names


def _renamed_atom(value, renames):
    if isinstance(value, core.Name):
        return core.Name(renames.get(value.id, value.id))
    if isinstance(value, list):
        return [_renamed_atom(v, renames) for v in value]
    if isinstance(value, tuple):
        return tuple(_renamed_atom(v, renames) for v in value)
    return value


class _RenameNames(ast.NodeTransformer):
    def __init__(self, renames):
        self.renames = renames

    def visit_Name(self, node):
        node.id = self.renames.get(node.id, node.id)
        return node


def _renamed(s, renames):
    s = copy.copy(s)
    for field in ("args", "kwargs") + _ATOM_FIELDS:
        if hasattr(s, field):
            setattr(s, field, _renamed_atom(getattr(s, field), renames))
    for field in _AST_FIELDS:
        node = getattr(s, field, None)
        if isinstance(node, ast.AST):
            setattr(s, field, _RenameNames(renames).visit(copy.deepcopy(node)))
    target = getattr(s, "target", None)
    if isinstance(target, str):
        s.target = renames.get(target, target)
    if getattr(s, "targets", None):
        s.targets = [renames.get(t, t) for t in s.targets]
    for block in ("body", "orelse"):
        if getattr(s, block, None):
            setattr(s, block, [_renamed(b, renames) for b in getattr(s, block)])
    return s


def _guard(name, function_guard, code_guard, line):
    def at(node):
        node.lineno = node.end_lineno = line
        node.col_offset = node.end_col_offset = 0
        return node
    same_function = at(ast.Compare(at(ast.Name(name, ast.Load())), [ast.Is()],
                                   [at(ast.Name(function_guard, ast.Load()))]))
    same_code = at(ast.Compare(at(ast.Attribute(at(ast.Name(name, ast.Load())), "__code__", ast.Load())),
                               [ast.Is()], [at(ast.Name(code_guard, ast.Load()))]))
    return at(ast.BoolOp(ast.And(), [same_function, same_code]))
