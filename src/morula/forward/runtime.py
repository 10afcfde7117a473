"""The forward-mode runtime: what generated tangent code calls.

In: a call, method call, operator or loop of the user's function, with its
arguments' tangents, and the evaluation's tangent memory ``T``
(``forward.table``). Out: ``(value, tangent)``.

Dispatch of a call, in order (as in reverse mode): a forward rule (declared
with ``frule``, or derived from the reverse rule of the same function, see
``forward.derived``) -> a Python function, method, class or callable object,
transformed and run -> a call whose result holds no floats (a constant) ->
``MissingRuleError``.

Tangents of mutable values (arrays, lists, dicts, objects) are read from and
written to ``T`` by identity; the tangent locals of generated code only carry
immutable values' tangents (floats, complex numbers, tuples).
"""

import functools
import types

from .. import tangents as _tangents
from ..errors import MissingRuleError, UnsupportedOperationError
from ..reverse import runtime as _rev
from ..rules.registry import REGISTRY
from . import transform
from .derived import FRULES as _FRULES
from .derived import frule_for as _frule_for
from .table import ARRAY_MEMORY, TangentTable

_FunctionType = types.FunctionType
_MethodType = types.MethodType
_functions = REGISTRY.functions
_IMMUTABLE = {float, int, bool, complex, str, bytes, type(None), range, slice}
_NUMBERS = {float, int, complex}
_JVP_ATTR = transform.ATTR
FAST_FLOATS = _rev.FAST_FLOATS
_user_site = _rev.user_site


# --------------------------------------------------------------------------- tangents by identity

def tangent_of(T, x, tx):
    """The tangent of value ``x`` whose local tangent is ``tx``."""
    t = type(x)
    if t in _IMMUTABLE or t is tuple:
        return tx
    memory = ARRAY_MEMORY.get(t)
    if memory is not None:
        return T.array(x, memory)
    if t is list or t is dict or isinstance(x, (list, dict)) or _is_object(x):
        return T.container(x)
    return tx


def stored(value, tvalue):
    """What a container keeps as an item's tangent: a mutable item's tangent lives in the table
    under its own identity (never read from the container), so only immutable items' are kept."""
    t = type(value)
    if t in _IMMUTABLE or t is tuple or ARRAY_MEMORY.get(t) is None and not isinstance(value, (list, dict)) \
            and not _is_object(value):
        return tvalue
    return None


def store_item(items, key, value, tvalue):
    """Keep an item's tangent in its container's tangent (``stored``). A mutable item's slot is
    left as it is: its tangent is read by identity, and leaving the slot alone keeps the code an
    outer transform differentiates free of overwrites of tangent arrays."""
    kept = stored(value, tvalue)
    if type(items) is not dict:
        items[key] = kept
    elif kept is not None or (key in items and items[key] is not None and stored_is_immutable(items[key])):
        items[key] = kept


def stored_is_immutable(t):
    """Is ``t`` (a kept tangent) the tangent of an immutable item (not an array's or container's)?"""
    return ARRAY_MEMORY.get(type(t)) is None and not isinstance(t, (list, dict))


def resolve(T, x, tx):
    """The tangent of ``x`` with the items of lists/tuples/dicts resolved by identity (for rules)."""
    t = type(x)
    if t is list:
        items = T.container(x)
        out = [resolve(T, v, items[i] if items is not None and i < len(items) else None) for i, v in enumerate(x)]
        return out if any(o is not None for o in out) else None
    if t is tuple:
        items = tx if tx is not None else (None,) * len(x)
        if isinstance(items, _tangents.ObjectCotangent):
            items = tuple(items.fields.values())
        out = tuple(resolve(T, v, c) for v, c in zip(x, items))
        return out if any(o is not None for o in out) else None
    if t is dict:
        items = T.container(x) or {}
        out = {k: resolve(T, v, items.get(k)) for k, v in x.items()}
        return out if any(o is not None for o in out.values()) else None
    return tangent_of(T, x, tx)


def _items(t, n):
    """The ``n`` item tangents of a tuple's tangent ``t`` (``None``: all zero), as a list."""
    if t is None:
        return [None] * n
    if isinstance(t, _tangents.ObjectCotangent):
        t = list(t.fields.values())
    items = list(t)
    return items + [None] * (n - len(items))


def _is_object(x):
    return hasattr(x, "__dict__") and not isinstance(x, _NOT_OBJECTS)


_NOT_OBJECTS = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType,
                functools.partial)


def record(T, out, tout):
    """After a call: a fresh mutable result's tangent goes into ``T``; returns the tangent to
    hand on (for mutable values, what ``T`` holds)."""
    t = type(out)
    if t in _IMMUTABLE:
        return tout if t is float or t is complex else (tout if tout is not None and t is not int and t is not bool else None)
    if isinstance(out, tuple):
        if tout is None:
            return None
        items = tout.fields.values() if isinstance(tout, _tangents.ObjectCotangent) else tout
        return tuple(record(T, v, c) for v, c in zip(out, items))
    memory = ARRAY_MEMORY.get(t)
    if memory is not None:
        if tout is not None and not T.has_array(out, memory):
            T.set_array(out, tout, memory)
        return T.array(out, memory)
    if t is list or t is dict or isinstance(out, (list, dict)):
        if T.container(out) is None and tout is not None:
            T.set_container(out, _internal_items(T, out, tout))
        return T.container(out)
    if _is_object(out):
        if tout is not None and T.container(out) is None:
            fields = tout.fields if isinstance(tout, _tangents.ObjectCotangent) else tout
            if isinstance(fields, dict):
                T.set_container(out, dict(fields))
        return T.container(out)
    return tout


def _internal_items(T, out, tout):
    """A container tangent as stored: mutable items' tangents go to ``T`` under their own identity."""
    if isinstance(out, list):
        items = list(tout) + [None] * (len(out) - len(tout))
        for i, v in enumerate(out):
            if items[i] is not None and type(v) not in _IMMUTABLE and type(v) is not tuple:
                record(T, v, items[i])
        return items
    items = dict(tout)
    for k in out:   # (not out.items(): out may be an OrderedDict)
        v = out[k]
        if items.get(k) is not None and type(v) not in _IMMUTABLE and type(v) is not tuple:
            record(T, v, items[k])
    return items


def seed(T, x, tx):
    """Put the user's tangent ``tx`` (internal form, ``tangents.from_user``) of input ``x`` into ``T``;
    returns the local tangent."""
    if tx is None:
        return None
    t = type(x)
    if t is list:
        items = _tangents._items(tx, len(x))
        T.set_container(x, [seed(T, v, c) for v, c in zip(x, items)])
        return T.container(x)
    if t is dict:
        T.set_container(x, {k: seed(T, v, tx.get(k)) for k, v in x.items()})
        return T.container(x)
    if isinstance(x, tuple):
        items = _tangents._items(tx, len(x), fields=getattr(x, "_fields", None))
        return tuple(seed(T, v, c) for v, c in zip(x, items))
    memory = ARRAY_MEMORY.get(t)
    if memory is not None:
        T.set_array(x, tx, memory, borrowed=True)
        return T.array(x, memory)
    if _is_object(x):
        fields = tx.fields if isinstance(tx, _tangents.ObjectCotangent) else dict(tx)
        T.set_container(x, {k: seed(T, getattr(x, k, None), c) for k, c in fields.items()})
        return T.container(x)
    return tx


def extract(T, out, tout):
    """The tangent of output ``out`` in the form the API returns (mirrors the output; zeros, not None)."""
    def leaf(x, ct):
        t = type(x)
        memory = ARRAY_MEMORY.get(t)
        if memory is not None:
            return T.array_to_return(x, memory)
        if t is list or t is dict:
            return T.container(x)
        if _is_object(x) and t not in _IMMUTABLE and not isinstance(x, tuple):
            fields = T.container(x)
            return _tangents.ObjectCotangent(fields) if fields else None
        return ct
    return _tangents.materialize(tout, out, leaf)


# --------------------------------------------------------------------------- calls

def call(T, f, tf, args, targs):
    target = fast_target(f, args)
    if target is not None:
        return target[0](T, dict(zip(target[1], targs)), None, *args)
    return dispatch(T, f, args, targs, None, None)


def fast_target(f, args):
    """The scalar hot path: ``(jvp function, parameter names)`` for a plain Python function already
    transformed, called positionally with numbers (no rule, closure, defaults or identity-kept
    values); None otherwise. (Inside an outer transform this is always None: see ``nested``.)"""
    if type(f) is not _FunctionType or f.__closure__ is not None:
        return None
    cached = f.__dict__.get(_JVP_ATTR)
    if cached is None or cached[0] != REGISTRY.version or cached[2] is not f.__code__ \
            or cached[1] is None:
        return None   # not transformed yet, or library code morula cannot read
    names, vararg, kwonly, kwarg = cached[3]
    if vararg is not None or kwarg is not None or len(args) != len(names) or f in _functions \
            or not _all_numbers(args):
        return None
    return cached[1], names


def _all_numbers(values):
    for v in values:
        if type(v) not in _NUMBERS:
            return False
    return True


def callk(T, f, tf, names, values, tvalues):
    n = len(values) - len(names)
    return dispatch(T, f, values[:n], tvalues[:n], dict(zip(names, values[n:])), dict(zip(names, tvalues[n:])))


def callv(T, f, tf, argtuple, targtuple, kwdict, tkwdict):
    args = tuple(argtuple)
    targs = _star_tangents(T, argtuple, targtuple)
    tk = T.container(kwdict) if type(kwdict) is dict else None
    return dispatch(T, f, args, targs, kwdict or None, dict(tk) if tk else ({} if kwdict else None))


def _star_tangents(T, seq, tseq):
    if type(seq) is tuple:
        return tuple(tseq) if tseq is not None else (None,) * len(seq)
    if type(seq) is list:
        items = T.container(seq)
        return tuple(items) if items is not None else (None,) * len(seq)
    values, tans = _elements(T, seq, tseq)
    return tuple(tans)


def lookup(f):
    """``(reverse rule, forward rule)`` registered for callable ``f`` (``None`` when unhashable);
    rules of optional libraries the program has imported since are registered on a miss."""
    try:
        rule, forward = _functions.get(f), _FRULES.get(f)
    except TypeError:
        return None, None
    if rule is None and forward is None and _rev._PENDING and _rev._load_pending_rules():
        rule, forward = _functions.get(f), _FRULES.get(f)
    return rule, forward


def dispatch(T, f, args, targs, kwargs, tkwargs):
    targs = tuple(resolve(T, a, ta) for a, ta in zip(args, targs))
    if tkwargs:
        tkwargs = {k: resolve(T, kwargs[k], tk) for k, tk in tkwargs.items()}
    rule, forward = lookup(f)
    if forward is not None and not (kwargs and "out" in kwargs):
        if getattr(forward, "keyword_tangents", False):
            out, tout = forward(T, args, targs, kwargs or {}, tkwargs or {})
        else:
            out, tout = forward(T, args, targs, kwargs or {})
        return out, record(T, out, tout)
    if rule is not None:
        out, tout = _apply_rule(T, f, rule, args, targs, kwargs, tkwargs)
        return out, record(T, out, tout)
    tf = type(f)
    if tf is _FunctionType:
        out, tout = call_python(T, f, args, targs, kwargs, tkwargs)
        return out, record(T, out, tout)
    if tf is _MethodType:
        return dispatch(T, f.__func__, (f.__self__,) + tuple(args),
                        (tangent_of(T, f.__self__, None),) + tuple(targs), kwargs, tkwargs)
    if isinstance(f, type):
        return construct(T, f, args, targs, kwargs, tkwargs)
    if tf is functools.partial:
        stored = T.container(f)
        pt = stored or {}
        pfunc, bound, keywords = partial_parts(f)
        pargs = tuple(bound) + tuple(args)
        ptargs = tuple(pt.get("args") or (None,) * len(bound)) + tuple(targs)
        kw = dict(keywords)
        tkw = dict(pt.get("keywords") or {})
        if kwargs:
            kw.update(kwargs)
            tkw.update(tkwargs or {})
        return dispatch(T, pfunc, pargs, ptargs, kw or None, tkw or None)
    custom = getattr(tf, "__morula_jvp__", None)
    if custom is not None:
        out, tout = custom(f, T, args, targs, kwargs, tkwargs)
        return out, record(T, out, tout)
    call_method = getattr(tf, "__call__", None)
    if type(call_method) is _FunctionType:
        return dispatch(T, call_method, (f,) + tuple(args), (tangent_of(T, f, None),) + tuple(targs),
                        kwargs, tkwargs)
    inner = getattr(f, "__wrapped__", None) or getattr(f, "py_func", None)
    if callable(inner) and inner is not f:
        return dispatch(T, inner, args, targs, kwargs, tkwargs)
    owner = getattr(f, "__self__", None)
    if tf is types.BuiltinMethodType and owner is not None and type(owner) is not types.ModuleType \
            and not isinstance(owner, type):
        return method(T, owner, None, f.__name__, args, targs, kwargs, tkwargs)
    return _opaque(f, args, kwargs)


def _opaque(f, args, kwargs):
    out = f(*args, **kwargs) if kwargs else f(*args)
    if _rev.is_constant(out):
        return out, None
    raise MissingRuleError(f, _user_site())


def _apply_rule(T, f, rule, args, targs, kwargs, tkwargs):
    frule = getattr(rule, "__frule__", None)
    if kwargs and "out" in kwargs and kwargs["out"] is not None:
        return _with_out(T, f, args, targs, kwargs, tkwargs)
    if getattr(frule, "keyword_tangents", False):
        return frule(T, args, targs, kwargs or {}, tkwargs or {})
    if tkwargs and any(t is not None for t in tkwargs.values()):
        # keyword arguments naming positional parameters carry tangents: bind them to positions
        args2, static, positions = REGISTRY.bind_keywords(rule, tuple(args), kwargs)
        targs2 = list(targs) + [None] * (len(args2) - len(targs))
        for name, index in positions.items():
            targs2[index] = tkwargs.get(name)
        leftover = [k for k in static if tkwargs.get(k) is not None]
        if leftover:
            raise UnsupportedOperationError(
                f"{_user_site() or ''}: forward mode: the keyword argument(s) {leftover} of "
                f"{getattr(f, '__name__', f)!r} carry a derivative but the rule treats them as static")
        args, targs, kwargs = args2, tuple(targs2), static
    if frule is None:
        frule = _frule_for(rule, f)
    return frule(T, args, targs, kwargs or {})


def _with_out(T, f, args, targs, kwargs, tkwargs):
    """``f(..., out=y)``: compute, then write into ``y`` (and its tangent)."""
    kwargs = dict(kwargs)
    target = kwargs.pop("out")
    if tkwargs:
        tkwargs = {k: v for k, v in tkwargs.items() if k != "out"}
    if type(target) is tuple and len(target) == 1:
        target = target[0]
    value, tvalue = dispatch(T, f, args, targs, kwargs or None, tkwargs or None)
    memory = ARRAY_MEMORY[type(target)]
    if tvalue is None and not T.has_array(target, memory):
        memory.assign(target, value)
        return target, None
    tt = T.array_for_write(target, memory)
    memory.assign(target, value)
    if tt is not None:
        memory.assign(tt, tvalue if tvalue is not None else 0)
    return target, T.array(target, memory)


def callcl(T, f, tcl, args, targs):
    """A call of a closure defined in the calling function, with its captured variables' tangents
    as they are at the call."""
    if type(f) is not _FunctionType:
        return dispatch(T, f, args, targs, None, None)
    targs = tuple(resolve(T, a, ta) for a, ta in zip(args, targs))
    out, tout = call_python(T, f, args, targs, None, None, tcl)
    return out, record(T, out, tout)


def call_python(T, f, args, targs, kwargs, tkwargs, closure_tangents=None):
    if is_constant_wrapper(f):
        return (f(*args, **kwargs) if kwargs else f(*args)), None   # a nondiff rule's wrapper
    api = api_of(f)
    if api is not None and api is not True:
        # a derivative taken inside the function being differentiated: its nested implementation
        return dispatch(T, api, args, targs, kwargs, tkwargs)
    if f.__module__ in _rev._MORULA_INTERNALS:
        return _opaque(f, args, kwargs)
    jvp_fn, layout = transform.jvp_of(f)
    if jvp_fn is None:
        return _opaque(f, args, kwargs)   # library code morula cannot read: a constant or an error
    tp = _bind(layout, args, targs, kwargs, tkwargs)
    tcl = closure_tangents
    if tcl is None or f.__defaults__ or f.__kwdefaults__:
        entry = T.closures.get(id(f))
        if entry is not None and entry[0] is f:
            registered = entry[1]()
            if tcl is None:
                tcl = registered
            if f.__defaults__ or f.__kwdefaults__:
                _default_tangents(layout, tp, registered, len(args), kwargs)
    if kwargs:
        return jvp_fn(T, tp, tcl, *args, **kwargs)
    return jvp_fn(T, tp, tcl, *args)


def is_constant_wrapper(f):
    return bool(f.__dict__.get("__morula_constant__"))


def api_of(f):
    """The nested implementation of a derivative function made by the API (``morula.nested``)."""
    return f.__dict__.get("__morula_api__")


def _default_tangents(layout, tp, tcl, nargs, kwargs):
    names, vararg, kwonly, kwarg = layout
    for i, name in enumerate(names):
        if i >= nargs and not (kwargs and name in kwargs):
            t = tcl.get("__default__" + name)
            if t is not None:
                tp[name] = t
    for name in kwonly:
        if not (kwargs and name in kwargs):
            t = tcl.get("__default__" + name)
            if t is not None:
                tp[name] = t


def _bind(layout, args, targs, kwargs, tkwargs):
    names, vararg, kwonly, kwarg = layout
    tp = {}
    n = len(names)
    for name, ta in zip(names, targs):
        if ta is not None:
            tp[name] = ta
    if vararg is not None:
        extra = tuple(targs[n:])
        tp[vararg] = extra if any(t is not None for t in extra) else None
    if tkwargs:
        rest = {}
        for k, tk in tkwargs.items():
            if k in names or k in kwonly:
                if tk is not None:
                    tp[k] = tk
            else:
                rest[k] = tk
        if kwarg is not None and rest:
            tp[kwarg] = rest
    return tp


def closure(T, fn, getter):
    """A closure made by generated code: ``getter()`` gives its captured variables' tangents."""
    T.closures[id(fn)] = (fn, getter)


def construct(T, cls, args, targs, kwargs, tkwargs):
    """``cls(...)``: a Python ``__init__`` is run transformed; dataclasses and NamedTuples map
    their fields; other classes must have a rule."""
    import dataclasses
    init = _rev._class_attr(cls, "__init__")
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        out = cls(*args, **(kwargs or {}))
        t = [None] * len(out)
        for i, ta in enumerate(targs):
            t[i] = ta
        for k, tk in (tkwargs or {}).items():
            t[cls._fields.index(k)] = tk
        return out, tuple(t) if any(x is not None for x in t) else None
    if dataclasses.is_dataclass(cls) and (type(init) is not _FunctionType or _no_source(init)):
        out = cls(*args, **(kwargs or {}))
        fields = [f.name for f in dataclasses.fields(cls) if f.init]
        t = {}
        for name, ta in zip(fields, targs):
            if ta is not None:
                t[name] = ta
        for k, tk in (tkwargs or {}).items():
            if tk is not None:
                t[k] = tk
        if t:
            T.set_container(out, {k: v for k, v in t.items()})
        return out, T.container(out)
    if (issubclass(cls, list) or issubclass(cls, dict)) and type(init) is not _FunctionType:
        # a list/dict subclass without a Python __init__: built from its argument's items
        out = cls(*args, **(kwargs or {}))
        if issubclass(cls, list):
            items = _elements(T, args[0], targs[0])[1] if args else []
            T.set_container(out, list(items))
        else:
            src = dict(targs[0] or {}) if args and isinstance(args[0], dict) else {}
            src.update({k: v for k, v in (tkwargs or {}).items() if v is not None})
            T.set_container(out, {k: src.get(k) for k in out})
        return out, T.container(out)
    if type(init) is _FunctionType:
        new = _rev._class_attr(cls, "__new__")
        obj = object.__new__(cls) if new is object.__new__ else cls.__new__(cls, *args, **(kwargs or {}))
        T.set_container(obj, {})
        call_python(T, init, (obj,) + tuple(args), (T.container(obj),) + tuple(targs), kwargs, tkwargs)
        return obj, T.container(obj)
    return _opaque(cls, args, kwargs)


def partial_parts(p):
    """``(p.func, p.args, p.keywords)`` of a ``functools.partial``."""
    return p.func, p.args, p.keywords


def super_function(cls, obj, name):
    """``super(cls, obj).name`` as (function, whether ``obj`` is its first argument)."""
    attr = getattr(super(cls, obj), name)
    if type(attr) is _MethodType and attr.__self__ is obj:
        return attr.__func__, True
    return attr, False


def is_library_function(f):
    return _rev._is_library_code(f.__code__)


def _no_source(fn):
    import linecache
    return not linecache.getlines(fn.__code__.co_filename)


# --------------------------------------------------------------------------- methods

def meth(T, obj, tobj, name, args, targs):
    return method(T, obj, tobj, name, args, targs, None, None)


def methk(T, obj, tobj, name, names, values, tvalues):
    n = len(values) - len(names)
    return method(T, obj, tobj, name, values[:n], tvalues[:n], dict(zip(names, values[n:])),
                  dict(zip(names, tvalues[n:])))


def methv(T, obj, tobj, name, argtuple, targtuple, kwdict, tkwdict):
    targs = _star_tangents(T, argtuple, targtuple)
    tk = T.container(kwdict) if type(kwdict) is dict else None
    return method(T, obj, tobj, name, tuple(argtuple), targs, kwdict or None,
                  dict(tk) if tk else ({} if kwdict else None))


def method(T, obj, tobj, name, args, targs, kwargs, tkwargs):
    tobj = tangent_of(T, obj, tobj)
    if type(name) is tuple:   # super().name(...)
        cls, name = name
        func, bound = super_function(cls, obj, name)
        if bound:
            return dispatch(T, func, (obj,) + tuple(args), (tobj,) + tuple(targs), kwargs, tkwargs)
        return dispatch(T, func, args, targs, kwargs, tkwargs)
    t = type(obj)
    if name in ("_make", "_replace") and hasattr(obj, "_fields") and \
            (isinstance(obj, tuple) or (isinstance(obj, type) and issubclass(obj, tuple))):
        return _namedtuple_method(T, obj, tobj, name, args, targs, kwargs, tkwargs)
    if t is types.ModuleType or isinstance(obj, type):
        return dispatch(T, getattr(obj, name), args, targs, kwargs, tkwargs)
    found = REGISTRY.method_rule(t, name)
    if found is None and isinstance(obj, dict) and t is not dict and name in _DICT_METHODS \
            and getattr(t, name, None) is not None and _is_builtin_method(obj, name):
        found = REGISTRY.method_rule(dict, name)   # OrderedDict.items and friends: dict's rules
    if found is None and REGISTRY.array_method_fallback is not None and t is not REGISTRY.array_method_fallback \
            and (hasattr(t, "__array_function__") or issubclass(t, REGISTRY.array_scalar_types)):
        found = REGISTRY.method_rule(REGISTRY.array_method_fallback, name)
    if found is not None:
        rule, mutating = found
        frule = getattr(rule, "__frule__", None)
        if frule is None:
            if mutating:
                raise UnsupportedOperationError(
                    f"{_user_site() or ''}: forward mode has no rule for the in-place method "
                    f"{t.__name__}.{name} yet; register one with morula.frule")
            from .derived import frule_for
            frule = frule_for(rule)
        targs = tuple(tangent_of(T, a, ta) for a, ta in zip(args, targs))
        if getattr(frule, "keyword_tangents", False):
            tkw = {k: resolve(T, kwargs[k], t) for k, t in (tkwargs or {}).items()}
            out, tout = frule(T, (obj,) + tuple(args), (tobj,) + targs, kwargs or {}, tkw)
        elif tkwargs and any(v is not None for v in tkwargs.values()):
            args2, static, positions = REGISTRY.bind_keywords(rule, (obj,) + tuple(args), kwargs)
            targs2 = [tobj] + list(targs) + [None] * (len(args2) - 1 - len(targs))
            for k, index in positions.items():
                targs2[index] = tangent_of(T, kwargs[k], tkwargs.get(k))
            out, tout = frule(T, args2, tuple(targs2), static)
        else:
            out, tout = frule(T, (obj,) + tuple(args), (tobj,) + targs, kwargs or {})
        return out, record(T, out, tout)
    attr = _rev._class_attr(t, name)
    if type(attr) is _FunctionType:
        return dispatch(T, attr, (obj,) + tuple(args), (tobj,) + tuple(targs), kwargs, tkwargs)
    if isinstance(attr, (staticmethod, classmethod)):
        return dispatch(T, getattr(obj, name), args, targs, kwargs, tkwargs)
    if name in _ITEM_PROTOCOL and not kwargs:
        from . import ops
        op = ops.OPS[_ITEM_PROTOCOL[name]]
        flat = [obj, tobj]
        for a, ta in zip(args, targs):
            flat += [a, ta]
        out, tout = op(T, *flat)
        return (None, None) if name != "__getitem__" else (out, tout)
    bound = getattr(obj, name)
    if type(bound) is _FunctionType or (type(bound) is _MethodType and type(bound.__func__) is _FunctionType) \
            or not isinstance(bound, (types.BuiltinMethodType, types.MethodWrapperType)):
        return dispatch(T, bound, args, targs, kwargs, tkwargs)
    before = _mutation_probe(obj)
    out = bound(*args, **kwargs) if kwargs else bound(*args)
    if (name in _rev._KNOWN_MUTATORS or before != _mutation_probe(obj)) and not _rev.is_constant(obj):
        raise UnsupportedOperationError(
            f"{_user_site() or ''}: forward mode cannot follow {t.__name__}.{name}, which changes "
            "its object in place; register a forward rule with morula.frule")
    if _rev.is_constant(out):
        return out, None
    raise MissingRuleError(bound, _user_site())


_DICT_METHODS = {"items", "keys", "values", "get", "pop", "setdefault", "update", "copy"}


def _is_builtin_method(obj, name):
    return isinstance(getattr(obj, name), (types.BuiltinMethodType, types.MethodWrapperType))


_ITEM_PROTOCOL = {"__setitem__": "setitem", "__getitem__": "getitem", "__delitem__": "delitem"}


def _mutation_probe(obj):
    """Something that changes when a builtin method changes ``obj`` in place (lengths, array bytes)."""
    if isinstance(obj, (list, dict, set)):
        return len(obj), [id(v) for v in (obj.values() if isinstance(obj, dict) else obj)] if len(obj) < 64 else None
    from .derived import _fingerprints
    return _fingerprints((obj,))[0]


def _namedtuple_method(T, obj, tobj, name, args, targs, kwargs, tkwargs):
    if name == "_make":
        values, tans = _elements(T, args[0], targs[0])
        out = obj._make(values)
        return out, tuple(tans) if any(t is not None for t in tans) else None
    out = obj._replace(**(kwargs or {}))
    items = _items(tobj, len(obj))
    for k in kwargs or {}:
        items[obj._fields.index(k)] = tangent_of(T, kwargs[k], (tkwargs or {}).get(k))
    return out, tuple(items) if any(t is not None for t in items) else None


# --------------------------------------------------------------------------- loops and unpacking

def _elements(T, xs, txs):
    """The items of ``xs`` as a list and their tangents (a list of the same length)."""
    t = type(xs)
    if t is range or t is str or t is bytes:
        return list(xs), [None] * len(xs)
    if t is list or (isinstance(xs, list) and _rev._class_attr(t, "__iter__") is list.__iter__):
        items = T.container(xs)
        values = list(xs)
        tans = [tangent_of(T, v, c) for v, c in zip(values, items)] if items is not None \
            else [tangent_of(T, v, None) for v in values]
        return values, tans
    if isinstance(xs, tuple):
        values = list(xs)
        tt = _items(txs, len(values))
        return values, [tangent_of(T, v, c) for v, c in zip(values, tt)]
    if isinstance(xs, dict) and _rev._class_attr(t, "__iter__") is dict.__iter__:
        return list(xs), [None] * len(xs)
    memory = ARRAY_MEMORY.get(t)
    if memory is not None:
        values = list(xs)
        tx = T.array(xs, memory)
        if tx is None:
            return values, [tangent_of(T, v, None) for v in values]
        return values, [tangent_of(T, v, tx[i]) for i, v in enumerate(values)]
    special = ITERATION.get(t)
    if special is not None:
        return special(T, xs, txs)
    user_iter = _rev._class_attr(t, "__iter__")
    if type(user_iter) is _FunctionType and not is_library_function(user_iter):
        items, titems = call_python(T, user_iter, (xs,), (tangent_of(T, xs, txs),), None, None)
        titems = record(T, items, titems)
        return _elements(T, items, titems)
    values = list(xs)
    if _rev.is_constant(values):
        return values, [None] * len(values)
    raise MissingRuleError(iter, _user_site())


ITERATION = {}   # type -> (T, xs, txs) -> (values, tangents): iterators made by rules (zip objects...)


def iterate(T, xs, txs):
    t = type(xs)
    if t is list or (isinstance(xs, list) and _rev._class_attr(t, "__iter__") is list.__iter__):
        # a list may grow while it is walked: read it live, as Python does
        i = 0
        while i < len(xs):
            items = T.container(xs)
            v = xs[i]
            yield v, tangent_of(T, v, items[i] if items is not None and i < len(items) else None)
            i += 1
        return
    values, tans = _elements(T, xs, txs)
    yield from zip(values, tans)


def unpack(T, value, tvalue, n):
    if type(value) is tuple and len(value) == n and _all_numbers(value):
        return value, (tuple(tvalue) if tvalue is not None else (None,) * n)
    values, tans = _elements(T, value, tvalue)
    if len(values) != n:
        raise ValueError(f"not enough values to unpack (expected {n}, got {len(values)})" if len(values) < n
                         else f"too many values to unpack (expected {n})")
    return tuple(values), tuple(tans)


def helper_values(op_names):
    """Values of the names generated code uses (``__MOFO__`` is the codegen's helper prefix)."""
    from . import ops
    values = {"__MOFO__call": call, "__MOFO__callk": callk, "__MOFO__callv": callv,
              "__MOFO__meth": meth, "__MOFO__methk": methk, "__MOFO__methv": methv,
              "__MOFO__iter": iterate, "__MOFO__unpack": unpack, "__MOFO__closure": closure,
              "__MOFO__F": FAST_FLOATS, "__MOFO__callcl": callcl}
    for name in op_names:
        values[f"__MOFO__op_{name}"] = ops.OPS[name]
    return values


def new_table():
    return TangentTable()
