"""Forward rules for Python's operators, ``math`` and builtins (lists, dicts, iteration helpers).

In: nothing (importing attaches forward rules to the reverse rules of the same
functions, see ``forward.derived``). Out: forward rules
``(T, args, tangents, kwargs) -> (out, tangent)``. The ``math`` functions get
theirs from the same ``derivative(x, y)`` declarations as their reverse rules.

Tangents of lists and dicts passed in are the resolved item tangents (``None``
for zero); results that are lists/dicts return their item tangents and the
runtime records them by identity.
"""

import builtins
import copy
import functools
import itertools
import math
import operator

from ..forward import runtime as fr
from ..forward.derived import FRULES, attach
from ..forward.derived import tangent_sum as _sum
from . import python_math
from .registry import REGISTRY

_SEQ = (list, tuple, str)


def _on(fn):
    """Attach the decorated forward rule to ``fn``'s reverse rule (or register it for ``fn``)."""
    def register(forward):
        rule = REGISTRY.functions.get(fn)
        if rule is not None:
            attach(rule, forward)
        else:
            FRULES[fn] = forward
        return forward
    return register


def _on_method(cls, name):
    def register(forward):
        rule = REGISTRY.methods.get((cls, name))
        if rule is not None:
            attach(rule, forward)
        return forward
    return register


# --------------------------------------------------------------------------- operators

def _seq_tangent(x, tx):
    if isinstance(x, str):
        return []
    return list(tx) if tx is not None else [None] * len(x)


@_on(operator.add)
def add_frule(T, args, targs, kwargs):
    a, b = args
    ta, tb = targs
    out = a + b
    if type(a) in _SEQ and type(b) in _SEQ:
        items = _seq_tangent(a, ta) + _seq_tangent(b, tb)
        if type(out) is tuple:
            return out, tuple(items) if any(i is not None for i in items) else None
        return out, items
    return out, _sum(ta, tb)


@_on(operator.sub)
def sub_frule(T, args, targs, kwargs):
    (a, b), (ta, tb) = args, targs
    return a - b, _sum(ta, -tb if tb is not None else None)


@_on(operator.neg)
def neg_frule(T, args, targs, kwargs):
    return -args[0], (-targs[0] if targs[0] is not None else None)


@_on(operator.pos)
def pos_frule(T, args, targs, kwargs):
    return +args[0], targs[0]


@_on(operator.mul)
def mul_frule(T, args, targs, kwargs):
    (a, b), (ta, tb) = args, targs
    out = a * b
    if type(a) in _SEQ or type(b) in _SEQ:
        seq, tseq, times = (a, ta, b) if type(a) in _SEQ else (b, tb, a)
        items = _seq_tangent(seq, tseq) * max(times, 0)
        if type(out) is tuple:
            return out, tuple(items) if any(i is not None for i in items) else None
        return out, items
    return out, _sum(ta * b if ta is not None else None, a * tb if tb is not None else None)


@_on(operator.truediv)
def truediv_frule(T, args, targs, kwargs):
    (a, b), (ta, tb) = args, targs
    out = a / b
    return out, _sum(ta / b if ta is not None else None, -(tb * out) / b if tb is not None else None)


@_on(operator.floordiv)
def floordiv_frule(T, args, targs, kwargs):
    return args[0] // args[1], None


@_on(operator.mod)
def mod_frule(T, args, targs, kwargs):
    (a, b), (ta, tb) = args, targs
    out = a % b
    if isinstance(a, (str, bytes)):
        return out, None   # "%.2f" % x: formatting
    # a mod b = a - b * floor(a / b): slope 1 in a, -floor(a / b) in b
    return out, _sum(ta, -tb * ((a - out) / b) if tb is not None else None)


def _log(x):
    if type(x) in (float, int):
        return math.log(x) if x > 0 else (0.0 if x == 0 else math.nan)
    import numpy as np
    return np.log(np.where(x > 0, x, 1)) if np.isrealobj(x) else np.log(x)


@_on(operator.pow)
def pow_frule(T, args, targs, kwargs):
    a, b = args[0], args[1]
    ta, tb = targs[0], targs[1]
    out = a ** b if len(args) == 2 else pow(a, b, args[2])
    da = None
    if ta is not None:
        if type(b) is int and b == 0:
            da = None
        elif type(b) in (int, float) and b == 1:
            da = ta
        elif type(a) in (int, float) and type(b) in (int, float) and a == 0 and b < 1:
            da = ta * b * math.inf if ta != 0 else 0.0
        else:
            da = ta * (b * a ** (b - 1))
    db = None
    if tb is not None and type(b) is not int:
        db = tb * (out * _log(a))
    return out, _sum(da, db)


@_on(operator.matmul)
def matmul_frule(T, args, targs, kwargs):
    (a, b), (ta, tb) = args, targs
    return a @ b, _sum(ta @ b if ta is not None else None, a @ tb if tb is not None else None)


@_on(operator.or_)
def or_frule(T, args, targs, kwargs):
    (a, b), (ta, tb) = args, targs
    out = a | b
    if type(a) is dict and type(b) is dict:
        t = dict(ta or {})
        t.update({k: v for k, v in (tb or {}).items()})
        for k in b:
            t.setdefault(k, None)
            if not tb or k not in tb:
                t[k] = None
        return out, t
    return out, None


@_on(operator.setitem)
def operator_setitem_frule(T, args, targs, kwargs):
    from ..forward.ops import setitem
    x, index, value = args
    setitem(T, x, targs[0], index, None, value, targs[2])
    return None, None


def _inplace_function(name):
    def inplace_function_frule(T, args, targs, kwargs):
        from ..forward.ops import OPS
        return OPS[name](T, args[0], targs[0], args[1], targs[1])
    inplace_function_frule.__name__ = f"{name}_frule"
    return inplace_function_frule


for _name in ("iadd", "isub", "imul", "itruediv", "ipow", "ior", "imatmul", "ifloordiv", "imod"):
    if hasattr(operator, _name):
        _on(getattr(operator, _name))(_inplace_function(_name))


# --------------------------------------------------------------------------- math

def _attach_scalar(fn, derivative):
    rule = REGISTRY.functions[fn]

    def scalar_frule(T, args, targs, kwargs):
        x, = args
        y = fn(x)
        tx = targs[0]
        if tx is None:
            return y, None
        return y, tx * derivative(x, y)
    scalar_frule.__name__ = f"{fn.__name__}_frule"
    attach(rule, scalar_frule)


for _fn, _d in python_math.DERIVATIVES.items():
    _attach_scalar(_fn, _d)


# --------------------------------------------------------------------------- builtins

def _protocol(T, x, tx, dunder, *rest):
    """``abs(obj)``, ``float(obj)``, ...: a class's own Python method, run in forward mode."""
    from ..reverse.ops import _python_dunder
    method = _python_dunder(type(x), dunder)
    if method is None:
        return None
    return fr.dispatch(T, method, (x,) + tuple(r[0] for r in rest), (tx,) + tuple(r[1] for r in rest),
                       None, None)


@_on(builtins.abs)
def abs_frule(T, args, targs, kwargs):
    x, = args
    found = _protocol(T, x, targs[0], "__abs__")
    if found is not None:
        return found
    out = abs(x)
    tx = targs[0]
    if tx is None:
        return out, None
    if type(x) in (float, int):
        return out, tx * ((x > 0) - (x < 0))
    if type(x) is complex:
        return out, ((x.conjugate() * tx).real / out) if out != 0 else 0.0
    return fr.dispatch(T, _array_abs(), (x,), (tx,), None, None)


def _array_abs():
    import numpy as np
    return np.absolute


@_on(builtins.float)
def float_frule(T, args, targs, kwargs):
    if not args:
        return 0.0, None
    x, = args
    found = _protocol(T, x, targs[0], "__float__")
    if found is not None:
        return found
    out = float(x)
    tx = targs[0]
    if tx is None or isinstance(x, str):
        return out, None
    return out, float(tx.real if isinstance(tx, complex) else tx)


@_on(builtins.complex)
def complex_frule(T, args, targs, kwargs):
    out = complex(*args, **kwargs)
    t = 0j
    any_t = False
    if len(args) > 0 and targs[0] is not None:
        t += targs[0]
        any_t = True
    if len(args) > 1 and targs[1] is not None:
        t += 1j * targs[1]
        any_t = True
    return out, complex(t) if any_t else None


@_on(builtins.sum)
def sum_frule(T, args, targs, kwargs):
    values, tans = fr._elements(T, args[0], targs[0])
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    tstart = targs[1] if len(args) > 1 else None
    out = sum(values, start)
    if isinstance(out, (list, tuple)):
        items = _seq_tangent(start, tstart)
        for v, t in zip(values, tans):
            items += _seq_tangent(v, t)
        return out, (tuple(items) if type(out) is tuple else items)
    return out, _sum(tstart, *tans)


def _pick(fn):
    def extremum_frule(T, args, targs, kwargs):
        key = kwargs.get("key")
        if len(args) == 1:
            values, tans = fr._elements(T, args[0], targs[0])
        else:
            values, tans = list(args), list(targs)
        if not values and "default" in kwargs:
            return kwargs["default"], None
        if key is not None:
            keys = [fr.dispatch(T, key, (v,), (t,), None, None)[0] for v, t in zip(values, tans)]
        else:
            keys = values
        best = 0
        for i in range(1, len(keys)):   # the first of equal extremes, as Python's max/min
            if (keys[i] > keys[best]) if fn is max else (keys[i] < keys[best]):
                best = i
        return values[best], tans[best]
    return extremum_frule


_on(builtins.max)(_pick(max))
_on(builtins.min)(_pick(min))


@_on(builtins.pow)
def builtin_pow_frule(T, args, targs, kwargs):
    found = _protocol(T, args[0], targs[0], "__pow__", *zip(args[1:], targs[1:]))
    if found is not None and found[0] is not NotImplemented:
        return found
    return pow_frule(T, args, targs, kwargs)


@_on(builtins.divmod)
def divmod_frule(T, args, targs, kwargs):
    (a, b), (ta, tb) = args, targs
    q, r = divmod(a, b)
    return (q, r), (None, _sum(ta, -tb * q if tb is not None else None))


@_on(builtins.round)
def round_frule(T, args, targs, kwargs):
    found = _protocol(T, args[0], targs[0], "__round__", *zip(args[1:], targs[1:]))
    if found is not None:
        return found
    return round(*args, **kwargs), None


def _sequence(kind):
    def sequence_frule(T, args, targs, kwargs):
        if not args:
            return kind(), (kind() if kind is list else None)
        values, tans = fr._elements(T, args[0], targs[0])
        out = kind(values)
        if kind is list:
            return out, list(tans)
        return out, tuple(tans) if any(t is not None for t in tans) else None
    return sequence_frule


_on(builtins.list)(_sequence(list))
_on(builtins.tuple)(_sequence(tuple))


def _keyword_tangents(forward):
    forward.keyword_tangents = True
    return forward


def _mapping(kind):
    @_keyword_tangents
    def mapping_frule(T, args, targs, kwargs, tkwargs):
        out, t = _dict_items(T, kind, args, targs, kwargs, tkwargs)
        return out, t
    return mapping_frule


def _dict_items(T, kind, args, targs, kwargs, tkwargs):
    out = kind(*args, **kwargs)
    t = {}
    if args:
        src = args[0]
        if isinstance(src, dict):
            inner = targs[0] or {}
            t.update({k: inner.get(k) for k in src})
        else:
            values, tans = fr._elements(T, src, targs[0])
            for pair, tpair in zip(values, tans):
                k, v = pair
                t[k] = tpair[1] if isinstance(tpair, (tuple, list)) else None
    for k in kwargs:
        t[k] = tkwargs.get(k)
    return out, t


_on(builtins.dict)(_mapping(dict))


@_on(builtins.zip)
def zip_frule(T, args, targs, kwargs):
    columns = [fr._elements(T, a, t) for a, t in zip(args, targs)]
    n = min((len(c[0]) for c in columns), default=0)
    if kwargs.get("strict") and any(len(c[0]) != n for c in columns):
        raise ValueError("zip() arguments have different lengths")
    out = [tuple(c[0][i] for c in columns) for i in range(n)]
    tans = []
    for i in range(n):
        row = tuple(c[1][i] for c in columns)
        tans.append(row if any(r is not None for r in row) else None)
    return out, tans


@_on(builtins.enumerate)
def enumerate_frule(T, args, targs, kwargs):
    values, tans = fr._elements(T, args[0], targs[0])
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    out = [(start + i, v) for i, v in enumerate(values)]
    return out, [(None, t) if t is not None else None for t in tans]


@_on(builtins.reversed)
def reversed_frule(T, args, targs, kwargs):
    values, tans = fr._elements(T, args[0], targs[0])
    return values[::-1], tans[::-1]


@_on(builtins.iter)
def iter_frule(T, args, targs, kwargs):
    values, tans = fr._elements(T, args[0], targs[0])
    return values, tans


@_on(builtins.sorted)
def sorted_frule(T, args, targs, kwargs):
    values, tans = fr._elements(T, args[0], targs[0])
    key = kwargs.get("key")
    if key is not None:
        keys = [fr.dispatch(T, key, (v,), (t,), None, None)[0] for v, t in zip(values, tans)]
    else:
        keys = values
    order = sorted(range(len(values)), key=lambda i: keys[i], reverse=kwargs.get("reverse", False))
    return [values[i] for i in order], [tans[i] for i in order]


@_on(builtins.map)
def map_frule(T, args, targs, kwargs):
    fn = args[0]
    columns = [fr._elements(T, a, t) for a, t in zip(args[1:], targs[1:])]
    n = min((len(c[0]) for c in columns), default=0)
    out, tans = [], []
    for i in range(n):
        v, t = fr.dispatch(T, fn, tuple(c[0][i] for c in columns), tuple(c[1][i] for c in columns), None, None)
        out.append(v)
        tans.append(t)
    return out, tans


@_on(builtins.filter)
def filter_frule(T, args, targs, kwargs):
    fn = args[0]
    values, tans = fr._elements(T, args[1], targs[1])
    out, tout = [], []
    for v, t in zip(values, tans):
        keep = v if fn is None else fr.dispatch(T, fn, (v,), (t,), None, None)[0]
        if keep:
            out.append(v)
            tout.append(t)
    return out, tout


@_on(builtins.next)
def next_frule(T, args, targs, kwargs):
    it = args[0]
    if type(it) is list:   # iter(...) of a list-like made by iter_frule
        if not it:
            if len(args) > 1:
                return args[1], targs[1]
            raise StopIteration
        items = T.list_for_write(it)
        v = it.pop(0)
        return v, items.pop(0) if items else None
    return next(*args), None


@_on(builtins.getattr)
def getattr_frule(T, args, targs, kwargs):
    from ..forward.ops import getattr_op
    obj, name = args[0], args[1]
    if len(args) > 2 and not hasattr(obj, name):
        return args[2], targs[2]
    return getattr_op(T, obj, targs[0], name, None)


@_on(builtins.vars)
def vars_frule(T, args, targs, kwargs):
    from ..forward.ops import attribute_dict
    if not args:
        return vars(), None
    d = vars(args[0])
    return d, attribute_dict(T, args[0], d)


@_on(builtins.setattr)
def setattr_frule(T, args, targs, kwargs):
    from ..forward.ops import setattr_op
    setattr_op(T, args[0], targs[0], args[1], None, args[2], targs[2])
    return None, None


import collections  # noqa: E402

_on(collections.OrderedDict)(_mapping(collections.OrderedDict))


@_keyword_tangents
def defaultdict_frule(T, args, targs, kwargs, tkwargs):
    factory = args[0] if args else None
    rest = args[1:]
    out, t = _dict_items(T, lambda *a, **k: collections.defaultdict(factory, *a, **k), rest, targs[1:],
                         kwargs, tkwargs)
    return out, t


_on(collections.defaultdict)(defaultdict_frule)


@_on(copy.copy)
def copy_frule(T, args, targs, kwargs):
    x, = args
    out = copy.copy(x)
    tx = targs[0]
    if tx is None:
        return out, None
    if type(x) is list:
        return out, list(tx)
    if type(x) is dict:
        return out, dict(tx)
    if fr._is_object(x) and isinstance(tx, dict):
        return out, dict(tx)
    return out, copy.copy(tx)


@_on(copy.deepcopy)
def deepcopy_frule(T, args, targs, kwargs):
    x = args[0]
    out = copy.deepcopy(x)
    tx = fr.extract(T, x, targs[0])
    fr.seed(T, out, _internal(tx, out))
    return out, fr.tangent_of(T, out, _internal(tx, out) if isinstance(out, tuple) else None)


def _internal(t, primal):
    from ..tangents import from_user
    return from_user(t, primal, "tangent")


@_on(functools.partial)
@_keyword_tangents
def partial_frule(T, args, targs, kwargs, tkwargs):
    out = functools.partial(*args, **kwargs)
    T.set_container(out, {"args": tuple(targs[1:]), "keywords": dict(tkwargs)})
    return out, None


@_on(functools.reduce)
def reduce_frule(T, args, targs, kwargs):
    fn = args[0]
    values, tans = fr._elements(T, args[1], targs[1])
    if len(args) > 2:
        acc, tacc = args[2], targs[2]
    else:
        if not values:
            raise TypeError("reduce() of empty iterable with no initial value")
        acc, tacc = values[0], tans[0]
        values, tans = values[1:], tans[1:]
    for v, t in zip(values, tans):
        acc, tacc = fr.dispatch(T, fn, (acc, v), (tacc, t), None, None)
    return acc, tacc


@_on(itertools.accumulate)
def accumulate_frule(T, args, targs, kwargs):
    values, tans = fr._elements(T, args[0], targs[0])
    fn = args[1] if len(args) > 1 else kwargs.get("func") or operator.add
    out, tout = [], []
    if "initial" in kwargs and kwargs["initial"] is not None:
        acc, tacc = kwargs["initial"], None
        out.append(acc)
        tout.append(tacc)
    elif values:
        acc, tacc = values[0], tans[0]
        values, tans = values[1:], tans[1:]
        out.append(acc)
        tout.append(tacc)
    for v, t in zip(values, tans):
        acc, tacc = fr.dispatch(T, fn, (acc, v), (tacc, t), None, None)
        out.append(acc)
        tout.append(tacc)
    return out, tout


def _index_tuples(combinator):
    def combinatorial_frule(T, args, targs, kwargs):
        values, tans = fr._elements(T, args[0], targs[0])
        out, tout = [], []
        for idx in combinator(range(len(values)), *args[1:], **kwargs):
            out.append(tuple(values[i] for i in idx))
            row = tuple(tans[i] for i in idx)
            tout.append(row if any(r is not None for r in row) else None)
        return out, tout
    return combinatorial_frule


for _comb in (itertools.combinations, itertools.combinations_with_replacement, itertools.permutations):
    _on(_comb)(_index_tuples(_comb))


@_on(itertools.product)
def product_frule(T, args, targs, kwargs):
    columns = [fr._elements(T, a, t) for a, t in zip(args, targs)] * kwargs.get("repeat", 1)
    out, tout = [], []
    for idx in itertools.product(*(range(len(c[0])) for c in columns)):
        out.append(tuple(c[0][i] for c, i in zip(columns, idx)))
        row = tuple(c[1][i] for c, i in zip(columns, idx))
        tout.append(row if any(r is not None for r in row) else None)
    return out, tout


# --------------------------------------------------------------------------- list and dict methods

@_on_method(list, "append")
def list_append_frule(T, args, targs, kwargs):
    lst, value = args
    items = T.list_for_write(lst)
    lst.append(value)
    items.append(targs[1])
    return None, None


@_on_method(list, "extend")
def list_extend_frule(T, args, targs, kwargs):
    lst = args[0]
    values, tans = fr._elements(T, args[1], targs[1])
    items = T.list_for_write(lst)
    lst.extend(values)
    items.extend(tans)
    return None, None


@_on_method(list, "insert")
def list_insert_frule(T, args, targs, kwargs):
    lst, index, value = args
    items = T.list_for_write(lst)
    lst.insert(index, value)
    items.insert(index, targs[2])
    return None, None


@_on_method(list, "pop")
def list_pop_frule(T, args, targs, kwargs):
    lst = args[0]
    items = T.list_for_write(lst)
    index = args[1] if len(args) > 1 else -1
    value = lst.pop(index)
    return value, fr.tangent_of(T, value, items.pop(index))


@_on_method(list, "remove")
def list_remove_frule(T, args, targs, kwargs):
    lst, value = args
    items = T.list_for_write(lst)
    index = lst.index(value)
    del lst[index]
    del items[index]
    return None, None


@_on_method(list, "clear")
def list_clear_frule(T, args, targs, kwargs):
    lst = args[0]
    items = T.list_for_write(lst)
    lst.clear()
    items.clear()
    return None, None


@_on_method(list, "reverse")
def list_reverse_frule(T, args, targs, kwargs):
    lst = args[0]
    items = T.list_for_write(lst)
    lst.reverse()
    items.reverse()
    return None, None


@_on_method(list, "sort")
def list_sort_frule(T, args, targs, kwargs):
    lst = args[0]
    items = T.list_for_write(lst)
    values = list(lst)
    tans = [fr.tangent_of(T, v, c) for v, c in zip(values, items)]
    key = kwargs.get("key")
    keys = [fr.dispatch(T, key, (v,), (t,), None, None)[0] for v, t in zip(values, tans)] if key is not None \
        else values
    order = sorted(range(len(values)), key=lambda i: keys[i], reverse=kwargs.get("reverse", False))
    lst[:] = [values[i] for i in order]
    items[:] = [tans[i] for i in order]
    return None, None


@_on_method(list, "copy")
def list_copy_frule(T, args, targs, kwargs):
    return list(args[0]), list(targs[0]) if targs[0] is not None else None


@_on_method(dict, "get")
def dict_get_frule(T, args, targs, kwargs):
    d, key = args[0], args[1]
    if key in d:
        inner = targs[0] or {}
        return d[key], fr.tangent_of(T, d[key], inner.get(key))
    if len(args) > 2:
        return args[2], targs[2]
    return None, None


def _dict_view(kind):
    # written with iteration and indexing only (d may be an OrderedDict, whose own methods an
    # outer transform could not read)
    def dict_view_frule(T, args, targs, kwargs):
        d = args[0]
        inner = targs[0] or {}
        keys = [k for k in d]
        if kind == "keys":
            return keys, None
        values = [d[k] for k in keys]
        tans = [fr.tangent_of(T, v, inner.get(k)) for k, v in zip(keys, values)]
        if kind == "values":
            return values, tans
        return [(k, v) for k, v in zip(keys, values)], [(None, t) if t is not None else None for t in tans]
    return dict_view_frule


for _kind in ("keys", "values", "items"):
    _on_method(dict, _kind)(_dict_view(_kind))


@_on_method(dict, "copy")
def dict_copy_frule(T, args, targs, kwargs):
    return dict(args[0]), dict(targs[0]) if targs[0] is not None else None


@_on_method(dict, "update")
@_keyword_tangents
def dict_update_frule(T, args, targs, kwargs, tkwargs):
    d = args[0]
    items = T.dict_for_write(d)
    if len(args) > 1:
        other, tother = args[1], targs[1]
        if type(other) is dict:
            for k, v in other.items():
                d[k] = v
                items[k] = fr.tangent_of(T, v, (tother or {}).get(k))
        else:
            values, tans = fr._elements(T, other, tother)
            for (k, v), t in zip(values, tans):
                d[k] = v
                items[k] = t[1] if isinstance(t, (tuple, list)) else None
    for k, v in kwargs.items():
        d[k] = v
        items[k] = tkwargs.get(k)
    return None, None


@_on_method(dict, "pop")
def dict_pop_frule(T, args, targs, kwargs):
    d, key = args[0], args[1]
    items = T.dict_for_write(d)
    if key in d:
        value = d.pop(key)
        return value, fr.tangent_of(T, value, items.pop(key, None))
    if len(args) > 2:
        return args[2], targs[2]
    raise KeyError(key)


@_on_method(dict, "setdefault")
def dict_setdefault_frule(T, args, targs, kwargs):
    d, key = args[0], args[1]
    items = T.dict_for_write(d)
    if key not in d:
        d[key] = args[2] if len(args) > 2 else None
        items[key] = targs[2] if len(args) > 2 else None
    return d[key], fr.tangent_of(T, d[key], items.get(key))


@_on_method(float, "conjugate")
def float_conjugate_frule(T, args, targs, kwargs):
    return args[0].conjugate(), targs[0]


@_on_method(complex, "conjugate")
def complex_conjugate_frule(T, args, targs, kwargs):
    return args[0].conjugate(), targs[0].conjugate() if targs[0] is not None else None
