"""Reverse-mode runtime: what generated code calls.

In: a callee and its arguments, at run time. Out: ``(out, pullback)``.
Dispatch for a call: (1) a registered rule; (2) Python code (function,
lambda, closure, bound method, ``__call__``, constructor, operator overloads
written in Python): transform it and recurse; (3) anything else is run, and
its output must be a constant (no floating value in it) or
``MissingRuleError`` is raised. Never a guessed gradient.

Pullback conventions (see codegen): ``_mo_callg``-family pullbacks return one
cotangent per argument; ``_mo_call`` family prepend the callee's cotangent (a
closure's captured variables); method pullbacks take ``(dout, dself_after)``
and return ``(dself_before, *dargs)``.
"""

import collections.abc
import functools
import operator
import sys
import types

from .. import tangents
from . import shadow as _shadow
from .shadow import ARRAY_TYPES, EFFECTS as _EFFECTS, ShadowPullback, involves_arrays, wrap_call, wrap_rule
from ..errors import MissingRuleError, MorulaError, UnsupportedOperationError, describe_callable, user_site
from ..frontend.source import SourceNotFoundError
from ..rules.registry import REGISTRY
from . import transform

_functions = REGISTRY.functions
_FunctionType = types.FunctionType
_MethodType = types.MethodType
_ModuleType = types.ModuleType
_add = tangents.add
_is_constant_cache = {}


# --------------------------------------------------------------------------- helpers

_user_site = user_site   # the user's file:line of the innermost generated frame


_CONSTANT_TYPES = {int, bool, str, bytes, type(None), range, slice, type, _ModuleType,
                   types.BuiltinFunctionType, type(Ellipsis), type(NotImplemented)}


_CONSTANT_CLASSES = []   # classes whose instances never hold a float (registered by rules: np.dtype)


_library_types = {}


def _is_library_type(t):
    """Is class ``t`` defined by an installed package (not the user's code)?"""
    found = _library_types.get(t)
    if found is None:
        module = sys.modules.get(getattr(t, "__module__", "") or "")
        filename = getattr(module, "__file__", None) or ""
        found = _library_types[t] = "site-packages" in filename or "dist-packages" in filename
    return found


def is_constant(value):
    """True when ``value`` certainly holds no floating-point number."""
    t = type(value)
    if t in _CONSTANT_TYPES:
        return True
    for cls in _CONSTANT_CLASSES:
        if isinstance(value, cls):
            return True
    if t is float or t is complex:
        return False
    if t in (tuple, list, set, frozenset):
        return all(is_constant(v) for v in value)
    if t is dict:
        return all(is_constant(v) for v in value.values())
    dtype = getattr(value, "dtype", None)
    if getattr(dtype, "kind", None) == "O" and hasattr(value, "flat"):   # object arrays hold Python values
        return all(is_constant(v) for v in value.flat)
    for predicate, _, inexact in tangents._vspaces:
        if predicate(value):
            return not inexact(value)
    if isinstance(value, (_FunctionType, types.BuiltinMethodType, functools.partial)):
        return True
    if isinstance(value, type):
        return True
    if isinstance(value, (collections.abc.Set, collections.abc.Sequence)) \
            and t.__module__ in ("builtins", "collections", "_collections", "array"):
        return all(is_constant(v) for v in value)   # deque, set, array.array, ...
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(is_constant(v) for v in value)
    if isinstance(value, dict):
        return all(is_constant(v) for v in value.values())
    fields = getattr(value, "__dict__", None)
    if fields is not None and t.__flags__ & (1 << 9):
        # an instance of a Python class: constant when none of its fields holds a float
        return not any(tangents.is_inexact(v) for v in fields.values())
    return False


_library_dirs = None


def _load_pending_rules():
    from ..rules import load_pending
    return load_pending()


_FORWARD_ATTR = transform.ATTR
_REGISTRY = REGISTRY
_PENDING = {}   # set by morula.rules: optional libraries whose rules wait for their import


def _is_library_code(code):
    """Is ``code`` from the standard library or an installed package (not the user's own files)?"""
    global _library_dirs
    if _library_dirs is None:
        import sysconfig
        paths = sysconfig.get_paths()
        _library_dirs = tuple({paths.get("stdlib", ""), paths.get("platstdlib", ""),
                               paths.get("purelib", ""), paths.get("platlib", "")} - {""})
    filename = code.co_filename
    return filename.startswith(_library_dirs) or "site-packages" in filename or "dist-packages" in filename \
        or filename in LIBRARY_FILES


# morula's own modules whose classes are array libraries (their methods run as written, never
# differentiated through): registered by the rules that define them
LIBRARY_FILES = set()


def _prepend_none(pb, n):
    """A rule's pullback, seen from a call site whose callee is a local variable."""
    always = type(pb) is ShadowPullback

    def rule_pullback(g, seed=None):
        if g is None and not always:
            return (seed,) + (None,) * n
        return (seed,) + tuple(pb(g))
    return _shadow.keep_must_run(pb, rule_pullback, None)


def _lookup(f):
    """The rule for ``f``, registering pending optional-library rules on a miss."""
    try:
        rule = _functions.get(f)
    except TypeError:
        return None
    if rule is None and _PENDING and _load_pending_rules():
        rule = _functions.get(f)
    return rule


# --------------------------------------------------------------------------- calls

def callg(f, *args):
    """Call ``f`` (a global/builtin/module function); pullback returns per-argument cotangents."""
    if type(f) is _FunctionType:
        # the common case, kept short: a plain Python function called with positional arguments.
        # A cached forward means no rule existed for f when it was built (and the rules
        # version has not moved since), so the rule lookup can be skipped.
        cached = f.__dict__.get(_FORWARD_ATTR)
        if cached is not None and cached[3] == len(args) and cached[0] == _REGISTRY.version \
                and cached[2] is f.__code__:
            before = _EFFECTS[0]
            out, back = cached[1](*args)
            wrote = _EFFECTS[0] != before

            def global_function_pullback(g):
                return back(g)[0]
            if not wrote and type(out) is not list:
                for a in args:
                    ta = type(a)
                    if ta is not float and ta is not int:
                        break
                else:   # numbers in, no in-place writes: nothing can sit in the shadow
                    to = type(out)
                    if to is float:
                        return out, global_function_pullback
                    if to is tuple:
                        for v in out:
                            tv = type(v)
                            if tv is not float and tv is not int:
                                break
                        else:
                            return out, global_function_pullback
                    if not involves_arrays(out):
                        return out, global_function_pullback
            return wrap_call(out, global_function_pullback, args, wrote)
    try:
        rule = _functions.get(f)
    except TypeError:
        rule = None
    if rule is None:
        rule = _lookup(f)
    if rule is not None:
        out, pb = rule(*args)
        return wrap_rule(out, pb, args)
    out, pb = _dispatch(f, args, None)
    if pb is None:
        return out, None
    return wrap_call(out, _drop_first(pb), args, type(pb) is ShadowPullback)


def call(f, *args):
    """Call a local callee: the pullback also returns the callee's cotangent (first)."""
    rule = _lookup(f)
    if rule is not None:
        out, pb = wrap_rule(*rule(*args), args)
        return out, (None if pb is None else _prepend_none(pb, len(args)))
    return _dispatch(f, args, None)


def _drop_first(pb):
    def call_pullback(g):
        return pb(g)[1:]
    return call_pullback


def callk(f, names, *values):
    return _callk(f, names, values, with_fn=True)


def callgk(f, names, *values):
    return _callk(f, names, values, with_fn=False)


def _callk(f, names, values, with_fn):
    npos = len(values) - len(names)
    args, kwargs = values[:npos], dict(zip(names, values[npos:]))
    rule = _lookup(f)
    if rule is not None:
        out, pb = wrap_rule(*_rule_with_kwargs(rule, args, kwargs, names), values)
        if pb is None:
            return out, None
        return out, (_prepend_none(pb, len(values)) if with_fn else pb)
    out, pb = _dispatch(f, args, kwargs)
    if pb is None:
        return out, None
    if with_fn:
        return out, pb
    return wrap_call(out, _drop_first(pb), values, type(pb) is ShadowPullback)


FAST_FLOATS = {float}   # scalar types the generated inline arithmetic handles (set by rules)
# one-argument functions of a float with a float result whose call generated code may inline:
# fn -> derivative(x, y) (set by rules: the math module's; see reverse/scalar_calls.py)
SCALAR_FUNCTIONS = {}
OUT_HANDLER = []   # [handler] set by array rules: f(..., out=array) as "compute, then write"


def _rule_with_kwargs(rule, args, kwargs, names):
    """Call ``rule`` with keywords; pullback returns cotangents for (args..., kwargs values in ``names`` order)."""
    if OUT_HANDLER and kwargs.get("out") is not None and not getattr(rule, "keeps_out", False):
        if kwargs["out"] is Ellipsis:   # NumPy 2: out=... asks for an array result, writes nothing
            rest = {k: v for k, v in kwargs.items() if k != "out"}
            out, pb = _rule_with_kwargs(rule, args, rest, tuple(n for n in names if n != "out"))
            if pb is None:
                return out, None
            position = names.index("out")

            def ellipsis_out_pullback(g):
                cts = pb(g)
                k = len(args) + position
                return tuple(cts[:k]) + (None,) + tuple(cts[k:])
            return out, ellipsis_out_pullback
        return OUT_HANDLER[0](rule, args, kwargs, names, _rule_with_kwargs)
    if getattr(rule, "keyword_cotangents", False):
        out, pb = rule(*args, **kwargs)
        if pb is None:
            return out, None

        nargs = len(args)

        def dict_keyword_rule_pullback(g):
            cts = pb(g)
            if len(cts) == nargs:   # no keywords were given: no trailing dict of their cotangents
                return tuple(cts)
            by_name = cts[-1] or {}
            return tuple(cts[:-1]) + tuple(by_name.get(n) for n in names)
        return out, _shadow.keep_must_run(pb, dict_keyword_rule_pullback, out)
    aliases = getattr(rule, "keyword_aliases", None)
    if aliases:   # other spellings of positional parameters (np.clip(x, min=lo) is a_min)
        kwargs = {aliases.get(k, k): v for k, v in kwargs.items()}
        names = tuple(aliases.get(n, n) for n in names)
    bound, static, positions = REGISTRY.bind_keywords(rule, args, kwargs)
    out, pb = rule(*bound, **static)
    if pb is None:
        return out, None
    nargs = len(args)

    def keyword_rule_pullback(g):
        cts = pb(g)
        return tuple(cts[:nargs]) + tuple(cts[positions[n]] if n in positions else None for n in names)

    return out, _shadow.keep_must_run(pb, keyword_rule_pullback, out)


def callv(f, argtuple, kwdict):
    return _callv(f, argtuple, kwdict, with_fn=True)


def callgv(f, argtuple, kwdict):
    return _callv(f, argtuple, kwdict, with_fn=False)


def _callv(f, argtuple, kwdict, with_fn):
    names = tuple(kwdict)
    out, pb = _callk(f, names, tuple(argtuple) + tuple(kwdict.values()), with_fn)
    if pb is None:
        return out, None
    n = len(argtuple)
    first = 1 if with_fn else 0
    always = type(pb) is ShadowPullback

    def star_call_pullback(g, seed=None):
        if g is None and seed is None and not always:
            return ((None,) if with_fn else ()) + (None, None)
        cts = pb(g, seed) if with_fn else pb(g)
        head = (cts[0],) if with_fn else ()
        return head + (tuple(cts[first:first + n]), dict(zip(names, cts[first + n:])))

    return out, _shadow.keep_must_run(pb, star_call_pullback, out)


def _dispatch(f, args, kwargs):
    """Python-level callees. Pullback ``(g, seed=None) -> (dcallee, *dargs[, *dkwargs])`` where
    ``seed`` is the callee's cotangent after the call (a callable object may change itself).
    The pullback is a ``ShadowPullback`` (always run) when arrays are involved."""
    tf = type(f)
    n = len(args) + (len(kwargs) if kwargs else 0)
    values = tuple(args) + (tuple(kwargs.values()) if kwargs else ())
    if tf is _FunctionType:
        out, pb = _call_python(f, args, kwargs)
        if pb is None:
            return out, None
        always = type(pb) is ShadowPullback

        def function_call_pullback(g, seed=None):
            if g is None and not always:
                return (seed,) + (None,) * n
            cts = pb(g)
            return (_add(seed, cts[0]),) + tuple(cts[1:])
        return wrap_call(out, function_call_pullback, values, always)
    if tf is _MethodType:
        return _self_call(f.__func__, f.__self__, args, kwargs)
    if isinstance(f, type):
        out, construct_pb = _construct(f, args, kwargs)
        if construct_pb is None:
            return out, None
        out, args_pb = wrap_call(out, lambda g: construct_pb(g)[1:], values,
                                 type(construct_pb) is ShadowPullback)
        always = type(args_pb) is ShadowPullback

        def constructor_call_pullback(g, seed=None):
            if g is None and not always:
                return (None,) * (n + 1)
            return (None,) + tuple(args_pb(g))
        return out, _shadow.keep_must_run(args_pb, constructor_call_pullback, out)
    if tf is functools.partial:
        return _call_partial(f, args, kwargs)
    custom = getattr(tf, "__morula_call__", None)
    if custom is not None:
        return custom(f, args, kwargs)
    call_method = getattr(tf, "__call__", None)
    if type(call_method) is _FunctionType:
        return _self_call(call_method, f, args, kwargs)
    inner = getattr(f, "__wrapped__", None) or getattr(f, "py_func", None)
    if callable(inner) and inner is not f:
        # a compiled or caching wrapper (functools.lru_cache, numba's jit): differentiate the
        # Python function it wraps
        out, pb = _dispatch(inner, args, kwargs)
        return out, pb
    owner = getattr(f, "__self__", None)
    if tf is types.BuiltinMethodType and owner is not None and type(owner) is not _ModuleType \
            and not isinstance(owner, type):
        # a bound method of a builtin object used as a value (map(acc.append, xs)): as acc.append(x)
        out, pb = _resolve_method(owner, f.__name__, args, kwargs or {})
        if pb is None:
            return out, None

        def bound_method_pullback(g, seed=None):
            return pb(g, seed)
        return out, _shadow.keep_must_run(pb, bound_method_pullback, out)
    return _call_opaque(f, args, kwargs)


def _self_call(func, obj, args, kwargs):
    """Call Python ``func(obj, *args)`` where the callee's cotangent is ``obj``'s (bound methods,
    callable objects)."""
    out, pb = _call_python(func, (obj,) + tuple(args), kwargs, self_seeded=True)
    if pb is None:
        return out, None
    nparams = None

    def self_call_pullback(g, seed=None):
        nonlocal nparams
        if seed is None:
            cts = pb(g)
        else:
            if nparams is None:
                nparams = len(_param_layout(func)[4])
            cts = pb(g, (seed,) + (None,) * (nparams - 1))
        return tuple(cts[1:])   # (dself, *dargs): the callee's cotangent is its object's
    values = (obj,) + tuple(args) + (tuple(kwargs.values()) if kwargs else ())
    return wrap_call(out, self_call_pullback, values, type(pb) is ShadowPullback)


def _call_opaque(f, args, kwargs):
    out = f(*args, **kwargs) if kwargs else f(*args)
    if is_constant(out):
        return out, None
    raise MissingRuleError(f, _user_site())


_IMMUTABLE = {float, int, bool, complex, str, bytes, tuple, frozenset, type(None)}
# morula's own machinery is run, never transformed (its results are functions and constants)
# (morula.tangents is ordinary Python that rules' pullbacks call: differentiated when a derivative of
# a derivative runs through those pullbacks)
_MORULA_INTERNALS = {"morula.api", "morula.testing", "morula.reverse.runtime",
                     "morula.reverse.transform"}


def _refuse_argument_writes(f, mutated, args, kwargs, self_seeded):
    """A function that writes into an argument object the caller passed: the caller's later
    reads would not send their gradients back through those writes yet, so refuse loudly."""
    caller = _user_site()
    if caller is None:
        return   # called by the API itself: nobody reads the argument afterwards
    for index, name, line in mutated:
        if index == 0 and self_seeded:
            continue   # a method changing its own object: handled
        if index < len(args):
            value = args[index]
        elif kwargs and name in kwargs:
            value = kwargs[name]
        else:
            continue
        if type(value) in _IMMUTABLE or type(value) in ARRAY_TYPES or _shadow.kind(value) is not None:
            continue   # arrays, lists, dicts, objects: cotangents kept by identity (shadow)
        raise UnsupportedOperationError(
            f"{f.__code__.co_filename}:{line}: {f.__qualname__} writes into its argument "
            f"{name!r} ({type(value).__name__}) in place, called from {_user_site() or 'here'}. "
            "morula cannot yet carry gradients through writes into a caller's object. "
            f"Fix: work on a copy ({name} = {name}.copy()) and return the new value instead.")


def _call_python(f, args, kwargs, seed=None, self_seeded=False):
    """Transform ``f`` and run its forward sweep. Pullback(g, seed) -> (dclosure, *dargs, *dkwargs)."""
    if f.__module__ in _MORULA_INTERNALS:
        out = f(*args, **kwargs) if kwargs else f(*args)
        if is_constant(out):
            return out, None
        raise MissingRuleError(f, _user_site())
    if f.__dict__.get("__morula_constant__"):
        return (f(*args, **kwargs) if kwargs else f(*args)), None   # a nondiff rule's wrapper
    api = f.__dict__.get("__morula_api__")
    if api is not None:
        if api is True:
            raise UnsupportedOperationError(
                f"{_user_site() or ''}: differentiating through {f.__name__} (a vjp pullback made "
                "outside the function) is not supported; call morula.grad/jvp/jacobian/hessian "
                "inside the function instead.")
        # a derivative function made outside (dg = morula.grad(g)) called in differentiated code:
        # its nested implementation (morula.nested) is differentiated instead
        out, pb = _dispatch(api, args, kwargs)
        if pb is None:
            return out, None

        def nested_api_pullback(g, param_seeds=None):
            return (None,) + tuple(pb(g)[1:])
        return out, _shadow.keep_must_run(pb, nested_api_pullback, out)
    if f.__code__.co_filename.startswith("<morula forward code") and \
            any(n.startswith("_fo2_") for n in f.__code__.co_freevars):
        from ..errors import ReverseOverNestedForwardError
        raise ReverseOverNestedForwardError(
            f"{_user_site() or ''}: a derivative of a derivative of a derivative with reverse mode "
            "outermost (e.g. mo.grad or mo.hessian of a function that itself calls mo.grad/mo.jvp) "
            "is not supported yet; take the outer derivative with mo.jvp or mo.jacfwd "
            "(mo.grad, mo.hessian and mo.hvp switch to forward mode by themselves).")
    code = f.__code__
    unreadable = _UNREADABLE.get(id(code))
    if unreadable is not None and unreadable[0] is code and unreadable[1] == REGISTRY.version:
        return _run_unreadable(f, args, kwargs, unreadable[2])
    try:
        forward = transform.forward_of(f)
    except (SourceNotFoundError, MorulaError, SyntaxError) as error:
        if not _is_library_code(code):
            raise
        # remembered, so that a hot loop does not re-parse the library's source on every call
        _UNREADABLE[id(code)] = (code, REGISTRY.version, error)
        return _run_unreadable(f, args, kwargs, error)
    mutated = forward.__morula_compiled__.function.mutated_params
    if mutated:
        _refuse_argument_writes(f, mutated, args, kwargs, self_seeded)
    before = _EFFECTS[0]
    out, back = forward(*args, **kwargs) if kwargs else forward(*args)
    wrote = _EFFECTS[0] != before
    layout = _param_layout(f)
    nargs = len(args)
    names = tuple(kwargs) if kwargs else ()

    defaulted = _defaulted_params(f, layout, nargs, names) if (f.__defaults__ or f.__kwdefaults__) else ()

    watched = f.__dict__.get("__morula_cells__")

    def function_pullback(g, param_seeds=None):
        pcts, ccts = back(g, param_seeds)
        if watched is not None and ccts:
            ccts = _to_cells(f, ccts, watched)
        if defaulted:
            # cotangents of default values: part of the function's own cotangent
            extra = {f"__default__{p}": pcts[i] for p, i in defaulted if pcts[i] is not None}
            if extra:
                ccts = {**(ccts or {}), **extra}
        return (ccts,) + _map_param_cts(layout, pcts, nargs, names)

    values = tuple(args) + (tuple(kwargs.values()) if kwargs else ())
    return wrap_call(out, function_pullback, values, wrote)


_UNREADABLE = {}   # id(code) -> (code, rules version, error): library code morula cannot transform


# --------------------------------------------------------------------------- closure cells
# A closure reads its variables' cells when it runs, not when it was made: a closure made in a
# loop and called after the loop reads the last binding. So the cotangents of a call of a closure
# made by differentiated code go to the cells (kept in the shadow like a one-slot container);
# the defining frame's reverse takes them where it rebinds the variable (``codegen._flush``), i.e.
# into the binding that the call read.

def watch_cells(fn, names):
    """At a ``def``/``lambda`` in generated code: mark ``fn``'s cells for ``names`` (variables of
    the defining frame) and return them, one per name (None where ``fn`` does not read it)."""
    freevars = fn.__code__.co_freevars
    closure = fn.__closure__ or ()
    cells = tuple(closure[freevars.index(n)] if n in freevars else None for n in names)
    fn.__morula_cells__ = tuple(c for c in cells if c is not None)
    return cells


def flush_cell(cell, d):
    """``d`` plus the cotangents that calls left on ``cell`` (taken: they are accounted for)."""
    g = _shadow.item_take(cell, 0)
    if g is None:
        return d
    return g if d is None else _add(d, g)


def _to_cells(f, ccts, watched):
    """Move the cotangents of ``f``'s watched cells out of its closure cotangent ``ccts``."""
    freevars = f.__code__.co_freevars
    closure = f.__closure__ or ()
    rest = {}
    for name, ct in ccts.items():
        if ct is not None and name in freevars:
            cell = closure[freevars.index(name)]
            if any(cell is w for w in watched):
                _shadow.item_deposit(cell, 0, ct)
                continue
        rest[name] = ct
    # never None: the closure's cotangent must still travel back to where it was made, so that
    # the pullbacks on the way (the defining call's, which takes the cells) run
    return rest


def _run_unreadable(f, args, kwargs, error):
    """Library code morula cannot transform: fine if nothing differentiable comes out."""
    out = f(*args, **kwargs) if kwargs else f(*args)
    if is_constant(out):
        return out, None
    raise MissingRuleError(f, _user_site(), reason=str(error)) from error


def _defaulted_params(f, layout, nargs, names):
    """(name, cotangent index) of the parameters this call leaves to their default values."""
    _, npos, _, _, index, _ = layout
    code = f.__code__
    nkw = code.co_kwonlyargcount
    positional = code.co_varnames[nargs:npos]
    keyword_only = code.co_varnames[npos:npos + nkw]
    return tuple((p, index[p]) for p in positional + keyword_only if p not in names)


def _param_layout(f):
    code = f.__code__
    layout = f.__dict__.get("__morula_layout__") if hasattr(f, "__dict__") else None
    if layout is not None and layout[0] is code:
        return layout
    npos = code.co_argcount + code.co_posonlyargcount * 0
    has_var = bool(code.co_flags & 0x04)
    has_varkw = bool(code.co_flags & 0x08)
    nkwonly = code.co_kwonlyargcount
    names = code.co_varnames[: npos + nkwonly + has_var + has_varkw]
    # order of cotangents from back(): positional params, *args, keyword-only, **kwargs
    ordered = list(code.co_varnames[:npos])
    if has_var:
        ordered.append(code.co_varnames[npos + nkwonly])
    ordered += list(code.co_varnames[npos:npos + nkwonly])
    if has_varkw:
        ordered.append(code.co_varnames[npos + nkwonly + has_var])
    index = {name: i for i, name in enumerate(ordered)}
    layout = (code, npos, has_var, has_varkw, index, names)
    try:
        f.__dict__["__morula_layout__"] = layout
    except (AttributeError, TypeError):
        pass
    return layout


def _map_param_cts(layout, pcts, nargs, names):
    _, npos, has_var, has_varkw, index, _ = layout
    if nargs <= npos:
        out = tuple(pcts[:nargs])
    else:
        extra = pcts[npos] if has_var else None
        if extra is None:
            extra = (None,) * (nargs - npos)
        out = tuple(pcts[:npos]) + tuple(extra) + (None,) * (nargs - npos - len(extra))
    if names:
        kw_ct = pcts[-1] if has_varkw else None
        kw = []
        for name in names:
            i = index.get(name)
            if i is not None and not (has_varkw and i == len(pcts) - 1):
                kw.append(pcts[i])
            else:
                kw.append(kw_ct.get(name) if kw_ct else None)
        out = out + tuple(kw)
    return out


def _construct(cls, args, kwargs):
    kwargs = kwargs or {}
    if (issubclass(cls, list) and cls.__init__ is list.__init__) or \
            (issubclass(cls, dict) and cls.__init__ is dict.__init__):
        # a list/dict subclass without its own __init__: built like list(...) / dict(...)
        base = list if issubclass(cls, list) else dict
        rule = _functions[base]
        values = tuple(args) + tuple(kwargs.values())
        if kwargs:
            made, pb = _rule_with_kwargs(rule, args, kwargs, tuple(kwargs))
        else:
            made, pb = rule(*args)
        out = cls(made)
        if pb is None:
            return out, None

        def subclass_constructor_pullback(g):
            g = _add(g, _shadow.take(out))
            if g is None:
                return (None,) * (1 + len(values))
            if base is list:
                g = list(tangents._items(g, len(out)))
            return (None,) + tuple(pb(g))
        return out, subclass_constructor_pullback
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        out = cls(*args, **kwargs)
        return out, _namedtuple_pullback(cls, len(args), tuple(kwargs))
    init = cls.__init__
    if type(init) is _FunctionType and cls.__new__ is object.__new__:
        obj = object.__new__(cls)
        try:
            forward = transform.forward_of(init)
        except (SourceNotFoundError, SyntaxError):
            forward = None
        if forward is None:
            if _is_dataclass(cls):
                out = cls(*args, **kwargs)
                return out, _dataclass_pullback(cls, len(args), tuple(kwargs), out)
            out = cls(*args, **kwargs)
            if is_constant(out) or not _holds_inexact(out):
                return out, None
            raise MissingRuleError(cls, _user_site())
        result, back = forward(obj, *args, **kwargs)
        layout = _param_layout(init)
        nargs = len(args) + 1
        names = tuple(kwargs)
        nparams = len(layout[4])

        def constructor_pullback(g):
            g = _add(g, _shadow.take(obj))   # what reads of the new object left in its shadow
            seed = (g,) + (None,) * (nparams - 1)
            pcts, ccts = back(None, seed)
            return (None,) + _map_param_cts(layout, pcts, nargs, names)[1:]

        return obj, constructor_pullback
    out = cls(*args, **kwargs)
    if is_constant(out) or (cls.__init__ is object.__init__ and not args and not kwargs):
        return out, None
    raise MissingRuleError(cls, _user_site())


def _is_dataclass(cls):
    return hasattr(cls, "__dataclass_fields__")


def _holds_inexact(obj):
    return any(tangents.is_inexact(v) for v in getattr(obj, "__dict__", {}).values())


def _dataclass_pullback(cls, nargs, names, obj):
    import dataclasses
    fields = [f.name for f in dataclasses.fields(cls) if f.init]

    def dataclass_pullback(g):
        g = _add(g, _shadow.take(obj))
        by_name = g.fields if isinstance(g, tangents.ObjectCotangent) else {}
        pos = tuple(by_name.get(fields[i]) if i < len(fields) else None for i in range(nargs))
        return (None,) + pos + tuple(by_name.get(n) for n in names)

    return dataclass_pullback


def _namedtuple_pullback(cls, nargs, names):
    fields = cls._fields

    def namedtuple_pullback(g):
        items = tangents._items(g, len(fields), fields)
        by_name = dict(zip(fields, items))
        return (None,) + tuple(items[:nargs]) + tuple(by_name.get(n) for n in names)

    return namedtuple_pullback


def _call_partial(p, args, kwargs):
    all_args = p.args + tuple(args)
    all_kwargs = {**p.keywords, **(kwargs or {})}
    names = tuple(all_kwargs)
    out, pb = _callk(p.func, names, all_args + tuple(all_kwargs.values()), with_fn=True)
    if pb is None:
        return out, None
    nbound = len(p.args)
    nargs = len(args)
    user_names = tuple(kwargs or ())

    def partial_pullback(g, seed=None):
        if g is None and type(pb) is not ShadowPullback:
            return (seed,) + (None,) * (nargs + len(user_names))
        cts = pb(g)
        d_func, d_all = cts[0], cts[1:]
        d_bound = tuple(d_all[:nbound])
        d_args = tuple(d_all[nbound:nbound + nargs])
        d_kw = dict(zip(names, d_all[len(all_args):]))
        d_partial = tangents.ObjectCotangent({"func": d_func, "args": d_bound,
                                              "keywords": {k: v for k, v in d_kw.items() if k in p.keywords}})
        return (_add(seed, d_partial),) + d_args + tuple(d_kw.get(n) for n in user_names)

    return out, _shadow.keep_must_run(pb, partial_pullback, out)


# --------------------------------------------------------------------------- methods

_class_attrs = {}


def _class_attr(t, name):
    """The attribute ``name`` as stored in the class dictionaries (descriptors not applied)."""
    key = (t, name)
    try:
        return _class_attrs[key]
    except KeyError:
        pass
    found = None
    for base in t.__mro__:
        if name in base.__dict__:
            found = base.__dict__[name]
            break
    _class_attrs[key] = found
    return found


def _namedtuple_method(obj, name, args, kwargs):
    """``point._replace(x=v)`` and ``Point._make(values)`` of NamedTuples."""
    if name == "_make":
        items, items_pb = iterate(args[0], deposit=False)
        items = tuple(items)
        out = obj._make(items)

        def namedtuple_make_pullback(g, seed=None):
            cts = list(tangents._items(g, len(items), obj._fields))
            return (None, items_pb(cts) if items_pb is not None else None)
        return out, namedtuple_make_pullback
    out = obj._replace(**kwargs)
    fields = obj._fields
    names = tuple(kwargs)

    def namedtuple_replace_pullback(g, seed=None):
        cts = tangents._items(g, len(fields), fields)
        by_field = dict(zip(fields, cts))
        d_self = tuple(None if f in kwargs else c for f, c in by_field.items())
        return (_add(seed, d_self),) + tuple(by_field.get(n) for n in names)
    return out, namedtuple_replace_pullback


def _method_with_rule(found, obj, args, kwargs):
    rule, mutating = found
    values = (obj,) + tuple(args) + (tuple(kwargs.values()) if kwargs else ())
    if mutating:
        # in-place methods: pullback(g, seed) -> (dself_before, *dargs[, {keyword: ct}])
        _shadow.activate(obj)
        out, pb = rule(obj, *args, **kwargs) if kwargs else rule(obj, *args)
        if pb is None:
            return out, None
        if kwargs:
            names = tuple(kwargs)
            by_keyword = getattr(rule, "keyword_cotangents", False)

            def mutating_keyword_pullback(g, seed):
                cts = pb(g, seed)
                if by_keyword:
                    return tuple(cts[:-1]) + tuple((cts[-1] or {}).get(n) for n in names)
                return tuple(cts) + (None,) * len(names)
            return wrap_call(out, mutating_keyword_pullback, values)
        return wrap_call(out, pb, values)
    if kwargs:
        out, pb = _rule_with_kwargs(rule, (obj,) + tuple(args), kwargs, tuple(kwargs))
    else:
        out, pb = rule(obj, *args)
    if pb is None:
        return out, None
    out, pb = wrap_rule(out, pb, values)
    always = type(pb) is ShadowPullback
    nargs = len(values) - 1

    def method_rule_pullback(g, seed=None):
        if g is None and not always:
            return (seed,) + (None,) * nargs
        cts = pb(g)
        return (_add(seed, cts[0]),) + tuple(cts[1:])
    return out, _shadow.keep_must_run(pb, method_rule_pullback, out)


def _super_method(obj, cls, name, args, kwargs):
    bound = getattr(super(cls, obj), name)
    if type(bound) is _MethodType and type(bound.__func__) is _FunctionType and bound.__self__ is obj:
        return _method_python(bound.__func__, obj, args, kwargs)
    out = bound(*args, **kwargs) if kwargs else bound(*args)
    if is_constant(out):
        return out, None
    raise MissingRuleError(bound, _user_site())


def _resolve_method(obj, name, args, kwargs):
    """(out, pb) with pb(g, seed) -> (dself, *dargs, *dkwargs)."""
    if type(name) is tuple:   # super().name(...): (defining class, name)
        return _super_method(obj, name[0], name[1], args, kwargs)
    if name in ("_replace", "_make") and (hasattr(obj, "_fields") and isinstance(obj, (tuple, type))):
        return _namedtuple_method(obj, name, args, kwargs or {})
    t = type(obj)
    if name == "__setitem__" and not kwargs:
        from .ops import item_assignment
        if len(args) == 2 and not isinstance(obj, type):   # x.__setitem__(i, v) is x[i] = v
            out, pb = item_assignment(obj, args[0], args[1])
            return wrap_rule(out, pb, (obj,) + tuple(args))
        if len(args) == 3 and isinstance(obj, type) and isinstance(args[0], obj):
            out, pb = item_assignment(*args)   # list.__setitem__(x, i, v)
            if pb is None:
                return out, None
            out, pb = wrap_rule(out, pb, tuple(args))

            def unbound_setitem_pullback(g, seed=None):
                return (seed,) + tuple(pb(g))
            return out, _shadow.keep_must_run(pb, unbound_setitem_pullback, out)
    if t is _ModuleType:
        f = getattr(obj, name)
        out, pb = (_callk(f, tuple(kwargs), tuple(args) + tuple(kwargs.values()), True) if kwargs
                   else call(f, *args))
        if pb is None:
            return out, None

        def module_function_pullback(g, seed=None):
            return (None,) + tuple(pb(g)[1:])
        return out, module_function_pullback
    found = REGISTRY.method_rule(t, name)
    if found is None and REGISTRY.array_method_fallback is not None and (
            hasattr(t, "__array_function__") and _is_library_type(t) or issubclass(t, REGISTRY.array_scalar_types)):
        # another array library (Dask, CuPy) or NumPy's scalars: NumPy's method rules, written
        # with dispatching calls
        found = REGISTRY.method_rule(REGISTRY.array_method_fallback, name)
    if found is not None:
        return _method_with_rule(found, obj, args, kwargs)
    attr = _class_attr(t, name) if not isinstance(obj, type) else None
    if type(attr) is _FunctionType:
        rule = _functions.get(attr)
        if rule is not None:   # @rrule(Class.method): the rule, with self first
            return _method_with_rule((rule, False), obj, args, kwargs)
        return _method_python(attr, obj, args, kwargs)
    if isinstance(obj, type) and args and isinstance(args[0], obj) and \
            REGISTRY.method_rule(type(args[0]), name) is not None:
        # an unbound method of a type with method rules (np.ndarray.sum(x)): x.sum()
        out, pb = _resolve_method(args[0], name, args[1:], kwargs)
        if pb is None:
            return out, None

        def unbound_method_pullback(g, seed=None):
            return (seed,) + tuple(pb(g, None))
        return wrap_call(out, unbound_method_pullback, args, type(pb) is ShadowPullback)
    if isinstance(obj, type) or isinstance(attr, (staticmethod, classmethod)):
        out, pb = _dispatch_any(getattr(obj, name), args, kwargs)
        if pb is None:
            return out, None

        def static_pullback(g, seed=None):
            return (seed,) + tuple(pb(g)[1:])
        return out, static_pullback
    bound = getattr(obj, name)
    if type(bound) is _MethodType and bound.__self__ is obj and type(bound.__func__) is _FunctionType:
        return _method_python(bound.__func__, obj, args, kwargs)
    if callable(bound) and not _is_builtin_method(bound):
        # a function stored on the instance: its cotangent is the object's field
        out, pb = _dispatch_any(bound, args, kwargs)
        if pb is None:
            return out, None

        def stored_function_pullback(g, seed=None):
            cts = pb(g)
            d_self = tangents.ObjectCotangent({name: cts[0]}) if cts[0] is not None else None
            return (_add(seed, d_self),) + tuple(cts[1:])
        return out, stored_function_pullback
    if name in _KNOWN_MUTATORS and not (is_constant(obj) and all(is_constant(a) for a in args)):
        raise UnsupportedOperationError(
            f"{_user_site() or ''}: morula cannot differentiate the in-place method "
            f"{t.__name__}.{name}, which changes its object in a way morula cannot see. "
            f"Write it out of place (e.g. a new array/list), or register a rule with "
            f"morula.rules.registry.method_rule({t.__name__}, {name!r}, mutating=True).")
    out = bound(*args, **kwargs) if kwargs else bound(*args)
    if is_constant(out):
        return out, None
    raise MissingRuleError(bound, _user_site())


_KNOWN_MUTATORS = {"sort", "reverse", "resize", "put", "itemset", "fill", "partition", "setfield",
                   "append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault",
                   "popitem", "add", "discard"}


def _is_builtin_method(bound):
    return isinstance(bound, (types.BuiltinMethodType, types.MethodWrapperType))


def _dispatch_any(f, args, kwargs):
    if kwargs:
        return _callk(f, tuple(kwargs), tuple(args) + tuple(kwargs.values()), True)
    return call(f, *args)


def _method_python(func, obj, args, kwargs):
    out, pb = _call_python(func, (obj,) + tuple(args), kwargs, self_seeded=True)
    if pb is None:
        return out, None

    def method_pullback(g, seed=None):
        if seed is not None:
            layout = _param_layout(func)
            seeds = (seed,) + (None,) * (len(layout[4]) - 1)
            cts = pb(g, seeds)
        else:
            cts = pb(g)
        return tuple(cts[1:])   # (dself, *dargs)
    values = (obj,) + tuple(args) + (tuple(kwargs.values()) if kwargs else ())
    return wrap_call(out, method_pullback, values, type(pb) is ShadowPullback)


def meth(obj, name, *args):
    return _resolve_method(obj, name, args, None)


def methk(obj, name, names, *values):
    npos = len(values) - len(names)
    return _resolve_method(obj, name, values[:npos], dict(zip(names, values[npos:])))


def methv(obj, name, argtuple, kwdict):
    names = tuple(kwdict)
    out, pb = _resolve_method(obj, name, tuple(argtuple), dict(kwdict))
    if pb is None:
        return out, None
    n = len(argtuple)

    def star_method_pullback(g, seed=None):
        cts = pb(g, seed)
        return (cts[0], tuple(cts[1:1 + n]), dict(zip(names, cts[1 + n:])))
    return out, star_method_pullback


def methg(obj, name, *args):
    if type(obj) is _ModuleType:
        return callg(getattr(obj, name), *args)
    out, pb = _resolve_method(obj, name, args, None)
    return _global_method(out, pb, args)


def methgk(obj, name, names, *values):
    if type(obj) is _ModuleType:
        return callgk(getattr(obj, name), names, *values)
    out, pb = methk(obj, name, names, *values)
    return _global_method(out, pb, values)


def methgv(obj, name, argtuple, kwdict):
    if type(obj) is _ModuleType:
        return callgv(getattr(obj, name), argtuple, kwdict)
    out, pb = methv(obj, name, argtuple, kwdict)
    return _global_method(out, pb, (argtuple, kwdict))


def _global_method(out, pb, values):
    """A method of a global object: its own cotangent is dropped (globals are not inputs)."""
    if pb is None:
        return out, None

    def global_object_method_pullback(g):
        return tuple(pb(g, None)[1:])
    return wrap_call(out, global_object_method_pullback, values, type(pb) is ShadowPullback)


# --------------------------------------------------------------------------- iteration

def iterate(xs, deposit=True):
    """Materialize what a ``for`` loop walks over; pullback maps per-element cotangents back.

    For a list, the elements' cotangents go straight into the list's shadow (a ``for`` loop in
    generated code: aliases of the list must see them); rules pass ``deposit=False`` to get the
    list's cotangent back as a value (their wrapper deposits it)."""
    t = type(xs)
    if t is range:
        return xs, None
    if t is not list and isinstance(xs, list) and _class_attr(t, "__iter__") is list.__iter__:
        t = list   # a list subclass iterates as a list
    if t is list and not deposit:
        n = len(xs)

        def list_cotangent_pullback(cts):
            if all(c is None for c in cts):
                return None
            return list(cts) + [None] * (n - len(cts))
        return xs, list_cotangent_pullback
    if t is list:
        def list_iteration_pullback(cts):
            for i, c in enumerate(cts):
                if c is not None:
                    _shadow.item_deposit(xs, i, c)
            return None
        return xs, list_iteration_pullback
    if t is tuple or (isinstance(xs, tuple) and _class_attr(t, "__iter__") is tuple.__iter__):
        n = len(xs)

        def tuple_iteration_pullback(cts):
            if all(c is None for c in cts):
                return None
            return tuple(cts) + (None,) * (n - len(cts))
        return xs, tuple_iteration_pullback
    if t is dict:
        return list(xs), None
    rule = _iteration_rules.get(t)
    if rule is None:
        for base, r in _iteration_rules.items():
            if isinstance(xs, base):
                rule = r
                break
    if rule is not None:
        return rule(xs)
    user_iter = _class_attr(t, "__iter__")
    if type(user_iter) is _FunctionType and not _is_library_code(user_iter.__code__):
        # a Python class's __iter__ (returning a list, or iter(...) of one): differentiate it
        items, pb = _call_python(user_iter, (xs,), None, self_seeded=True)
        seq, seq_pb = iterate(items)

        def user_iteration_pullback(cts):
            d_items = seq_pb(cts) if seq_pb is not None else None
            if pb is not None and (d_items is not None or type(pb) is ShadowPullback):
                return pb(d_items)[1]
            return None
        return seq, user_iteration_pullback
    items = list(xs)
    if is_constant(items):
        return items, None
    raise MissingRuleError(iter, _user_site())


_iteration_rules = {}


def register_iteration(cls, rule):
    """``rule(xs) -> (list_of_elements, pullback(list_of_element_cotangents) -> dxs)``."""
    _iteration_rules[cls] = rule


# --------------------------------------------------------------------------- helper table

def _take_shadow(x, local):
    return _add(local, _shadow.take(x))


def unpacked(value, cts):
    """Cotangent of a non-tuple ``value`` that was unpacked, from its elements' cotangents."""
    t = type(value)
    if t is list:
        for i, c in enumerate(cts):
            if c is not None:
                _shadow.item_deposit(value, i, c)
        return None
    if isinstance(value, tuple):
        return tuple(cts)
    items, pb = iterate(value)
    return pb(list(cts)) if pb is not None else None


def helper_values(op_names):
    from . import ops
    values = {
        "_mo_call": call, "_mo_callk": callk, "_mo_callv": callv,
        "_mo_callg": callg, "_mo_callgk": callgk, "_mo_callgv": callgv,
        "_mo_meth": meth, "_mo_methk": methk, "_mo_methv": methv,
        "_mo_methg": methg, "_mo_methgk": methgk, "_mo_methgv": methgv,
        "_mo_iter": iterate, "_mo_add": _add, "_mo_unpacked": unpacked, "_mo_Shadow": ShadowPullback,
        "_mo_F": FAST_FLOATS, "_mo_take": _take_shadow, "_mo_items": tangents._items,
        "_mo_watch": watch_cells, "_mo_flush": flush_cell,
    }
    for name in op_names:
        values[f"_mo_op_{name}"] = ops.OPS[name]
    return values


# --------------------------------------------------------------------------- undo/redo of mutation

import threading as _threading

_mutation_state = _threading.local()


def record_redo(action):
    """Called by a mutating op's pullback after it undid its write: ``action()`` re-applies it.

    The API replays these after the backward sweep, so objects end in the state the
    forward call left them in.
    """
    stack = getattr(_mutation_state, "stack", None)
    if stack:
        stack[-1].append(action)


_KEEP_BATCH = object()


SWEEP_CONTEXTS = []   # factories of context managers every backward sweep runs in (set by rules)


class backward_scope:
    """Context for one top-level backward sweep: collects and then replays redo actions.
    ``batch``: the sweep pulls back that many cotangents at once (``tangents.BATCH``); by default
    a sweep keeps the batch of the sweep it runs in (a checkpoint's recomputation)."""

    def __init__(self, batch=_KEEP_BATCH):
        self.batch = batch

    def __enter__(self):
        self.contexts = [_shadow.sweep()] + [make() for make in SWEEP_CONTEXTS]
        for context in self.contexts:
            context.__enter__()
        stack = getattr(_mutation_state, "stack", None)
        if stack is None:
            stack = _mutation_state.stack = []
        stack.append([])
        self.outer_batch = tangents.BATCH.size
        if self.batch is not _KEEP_BATCH:
            tangents.BATCH.size = self.batch   # before the store: its buffers follow it
        _shadow.begin()
        return self

    def __exit__(self, *exc):
        try:
            actions = _mutation_state.stack.pop()
            for action in reversed(actions):
                action()
        finally:
            tangents.BATCH.size = self.outer_batch
            _shadow.end()
            for context in reversed(self.contexts):
                context.__exit__(None, None, None)
        return False


# --------------------------------------------------------------------------- garbage collection

import gc as _gc

_gc_lock = _threading.Lock()
_gc_pauses = [0]


class gc_paused:
    """Pause the cyclic garbage collector while a sweep runs.

    A sweep allocates many small objects (pullbacks, tape entries) that stay alive until the
    backward sweep; the collector would rescan all of them repeatedly, making long loops
    quadratic. Reference counting still frees everything; collection resumes afterwards.
    Nested and concurrent pauses are counted."""

    def __enter__(self):
        with _gc_lock:
            if _gc_pauses[0] == 0:
                self.was_enabled = _gc.isenabled()
                _gc_pauses.append(self.was_enabled)
                _gc.disable()
            _gc_pauses[0] += 1
        return self

    def __exit__(self, *exc):
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses.pop():
                _gc.enable()
        return False
