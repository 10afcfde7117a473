"""Rules for Python builtins: numbers, containers and iteration helpers.

In: nothing. Out: registered reverse rules for ``abs``, ``min``, ``max``,
``sum``, ``pow``, ``float``, ``complex``, ``divmod``, ``list``, ``tuple``,
``dict``, ``zip``, ``enumerate``, ``reversed``, ``map``, ``filter``,
``sorted``, ``copy.copy``/``copy.deepcopy``, methods of ``list`` and
``dict``, and constants (``len``, ``isinstance``, ``range``, ...).
Iteration helpers return lists (what a ``for`` loop needs) whose pullbacks
map per-element cotangents back to their sources.
"""

import builtins
import collections
import copy
import functools
import itertools
import operator
import random
import time

from .. import tangents
from ..reverse import runtime, shadow
from ..tangents import batch_of
from .registry import REGISTRY, attr_rule, method_rule, nondiff, nondiff_method, rrule

_add = tangents.add
_SCALAR = {float, int, bool}

nondiff(len, isinstance, issubclass, type, id, hash, range, repr, str, bool, int, callable, hasattr,
        print, any, all, format, ord, chr, bin, hex, oct, vars, dir, slice, object,
        set, frozenset, input, open, time.time, time.perf_counter, time.monotonic, time.process_time,
        random.random, random.seed, random.gauss, random.uniform, random.randint, random.choice,
        random.shuffle, random.normalvariate, random.sample, NotImplementedError, ValueError,
        TypeError, RuntimeError, KeyError, IndexError, ZeroDivisionError, ArithmeticError,
        AssertionError, Exception, StopIteration)


@rrule(iter)
def iter_rule(iterable):
    """``iter(xs)`` gives the list of elements (what a ``for`` loop walks over), so the
    elements' cotangents can be routed back; ``next()`` on it is not supported."""
    items, pb = runtime.iterate(iterable, deposit=False)
    out = list(items)

    def iter_pullback(g):
        if g is None or pb is None:
            return (None,)
        return (pb(list(tangents._items(g, len(out)))),)
    return out, iter_pullback


@rrule(round)
def round_rule(x, *ndigits):
    user = _python_protocol(x, "__round__", *ndigits)
    if user is not None:
        return user
    return round(x, *ndigits), None   # piecewise constant


@rrule(setattr)
def setattr_rule(obj, name, value):
    from ..reverse.ops import setattr_op
    _, pb = setattr_op(obj, name, value)
    if pb is None:
        return None, None
    return None, (lambda g: pb(None))   # the object changes in place; its cotangent is in the shadow


@rrule(next)
def next_rule(iterator, *default):
    if type(iterator) is list:   # what iter() and generator expressions become inside morula
        from ..errors import UnsupportedOperationError
        raise UnsupportedOperationError(
            "next() on an iterator or generator is not supported inside a differentiated function "
            "(morula turns them into lists): index the list instead (xs[0]), or loop over it.")
    out = next(iterator, *default)
    if runtime.is_constant(out):
        return out, None
    from ..errors import UnsupportedOperationError
    raise UnsupportedOperationError(
        "next() on an iterator of floating-point values is not differentiable; loop over a list instead.")


def _python_protocol(x, dunder, *args):
    """``abs(obj)``, ``float(obj)``, ``round(obj)``, ``pow(obj, n)``: a class's own Python method
    is differentiated through (like its operators)."""
    from ..reverse.ops import _python_dunder
    method = _python_dunder(type(x), dunder)
    if method is None:
        return None
    out, pb = runtime._call_python(method, (x,) + args, None, self_seeded=True)
    if pb is None:
        return out, None

    def protocol_pullback(g):
        return tuple(pb(g)[1:])
    return out, shadow.keep_must_run(pb, protocol_pullback, out)


@rrule(abs)
def abs_rule(x):
    user = _python_protocol(x, "__abs__")
    if user is not None:
        return user
    out = abs(x)
    if type(x) in _SCALAR:
        def scalar_abs_pullback(g):
            return (g * ((x > 0) - (x < 0)),)
        return out, scalar_abs_pullback
    if type(x) is complex:
        def complex_abs_pullback(g):
            return (g * x / out if out else 0j,)
        return out, complex_abs_pullback
    import numpy as np
    return REGISTRY.functions[np.absolute](x)


@rrule(pow)
def pow_rule(a, b, *mod):
    if mod:
        return pow(a, b, *mod), None
    from ..reverse.ops import OPS
    return OPS["pow"](a, b)   # the operator: honours __pow__/__rpow__ written in Python


@rrule(divmod)
def divmod_rule(a, b):
    q, r = divmod(a, b)

    def divmod_pullback(g):
        gr = tangents._items(g, 2)[1]
        if gr is None:
            return None, None
        return gr, -gr * q
    return (q, r), divmod_pullback


def _convert(kind):
    def convert_rule(x=0):
        user = _python_protocol(x, f"__{kind.__name__}__")
        if user is not None:
            return user
        out = kind(x)
        tx = type(x)

        def convert_pullback(g):
            if tx in _SCALAR or tx is complex:
                return (g if kind is complex or tx is not complex else complex(g),)
            dtype = getattr(x, "dtype", None)
            if dtype is not None:
                import numpy as np
                value = g.real if dtype.kind != "c" and isinstance(g, complex) else g
                n = batch_of(value)
                if n is not None:   # a batch of cotangents (see morula.tangents.BATCH)
                    shape = np.shape(x)
                    return (np.full((n,) + shape, np.reshape(value, (n,) + (1,) * len(shape)), dtype=dtype),)
                return (np.full_like(x, value),)
            return (g,)
        return out, convert_pullback
    return convert_rule


rrule(float)(_convert(float))


@rrule(complex)
def complex_rule(real=0, imag=None):
    out = complex(real) if imag is None else complex(real, imag)
    convert = _convert(complex)

    def complex_pullback(g):
        g = complex(g)
        if imag is None:
            if type(real) in _SCALAR:
                return (g.real,)   # a real input gets the real part (dL/dx)
            return convert(real)[1](g)
        # z = x + i y: the convention's cotangent is dL/dx + i dL/dy
        return g.real, g.imag
    return out, complex_pullback


@attr_rule(complex, "real")
def complex_real_rule(z):
    return z.real, (lambda g: (complex(g),))


@attr_rule(complex, "imag")
def complex_imag_rule(z):
    return z.imag, (lambda g: (1j * g,))


@method_rule(complex, "conjugate")
def complex_conjugate_rule(z):
    return z.conjugate(), (lambda g: (complex(g).conjugate(),))


@method_rule(float, "conjugate")
def float_conjugate_rule(x):
    return x, (lambda g: (g,))


def _winner_rule(pick):
    def extremum_rule(*args, **keywords):
        key, default = keywords.get("key"), keywords.get("default")
        items = list(args[0]) if len(args) == 1 else list(args)
        if not items:
            if default is None:
                raise ValueError(f"{pick.__name__}() arg is an empty sequence")
            return default, None
        keys, effects = _called_for_effects(key, items)
        keyed = items if key is None else keys
        index = pick(range(len(items)), key=keyed.__getitem__)
        out = items[index]
        single = len(args) == 1
        seq = args[0]

        def extremum_pullback(g):
            d_key, d_items = _run_effects(effects, len(items))
            d_items[index] = _add(d_items[index], g)
            by_keyword = ({"key": d_key},) if keywords else ()
            if single:
                if isinstance(seq, (list, tuple)):
                    return (type(seq)(d_items) if type(seq) in (list, tuple) else tuple(d_items),) + by_keyword
                _, pb = runtime.iterate(seq, deposit=False)
                return (pb(d_items) if pb is not None else None,) + by_keyword
            return tuple(d_items) + by_keyword
        return shadow.with_effects(out, extremum_pullback, args, [pb for _, pb in effects])
    extremum_rule.keyword_cotangents = True
    return extremum_rule


rrule(max)(_winner_rule(max))
rrule(min)(_winner_rule(min))


@rrule(sum)
def sum_rule(iterable, *rest, **keywords):
    start = rest[0] if rest else keywords.get("start", 0)
    items, iter_pb = runtime.iterate(iterable, deposit=False)
    items = list(items)
    out = builtins.sum(items, start)

    def sum_pullback(g):
        cts = [tangents.unbroadcast(g, v) if hasattr(g, "shape") or type(v) not in _SCALAR else g
               for v in items]
        d_iterable = iter_pb(cts) if iter_pb is not None else None
        d_start = tangents.unbroadcast(g, start) if not isinstance(start, int) else None
        if keywords:
            return d_iterable, {"start": d_start}
        if not rest:
            return (d_iterable,)
        return d_iterable, d_start
    return out, sum_pullback


def _sequence_of(kind):
    def sequence_rule(iterable=()):
        items, iter_pb = runtime.iterate(iterable, deposit=False)
        out = kind(items)

        def sequence_pullback(g):
            if g is None or iter_pb is None:
                return (None,)
            return (iter_pb(list(tangents._items(g, len(out)))),)
        return out, sequence_pullback
    return sequence_rule


rrule(list)(_sequence_of(list))
rrule(tuple)(_sequence_of(tuple))


def dict_rule(*args, **kwargs):
    out = dict(*args, **kwargs)
    source = args[0] if args else None
    source_keys = list(source) if isinstance(source, dict) else None   # as they are now: the
    pairs_pb = None                                                    # source may lose keys later
    if source is not None and not isinstance(source, dict):
        pairs, pairs_pb = runtime.iterate(source, deposit=False)
        pairs = list(pairs)

    def dict_pullback(g):
        g = g or {}
        kw = ({k: g.get(k) for k in kwargs},) if kwargs else ()
        if source is None:
            return kw
        if isinstance(source, dict):
            return ({k: g.get(k) for k in source_keys if k not in kwargs},) + kw
        cts = [(None, g.get(k)) if k not in kwargs else None for k, _ in pairs]
        return ((pairs_pb(cts) if pairs_pb is not None else None),) + kw
    return out, dict_pullback


dict_rule.keyword_cotangents = True
rrule(dict)(dict_rule)


@rrule(zip)
def zip_rule(*seqs, strict=False):
    materialized = [runtime.iterate(s, deposit=False) for s in seqs]
    columns = [list(items) for items, _ in materialized]
    out = list(zip(*columns, strict=strict)) if strict else list(zip(*columns))
    n = len(out)

    def zip_pullback(g):
        rows = list(g or ())
        cts = []
        for j, (items, pb) in enumerate(materialized):
            column = [tangents._items(r, len(seqs))[j] if r is not None else None for r in rows]
            column += [None] * (len(items) - len(column))
            cts.append(pb(column) if pb is not None and any(c is not None for c in column) else None)
        return tuple(cts)
    return out, zip_pullback


@rrule(enumerate)
def enumerate_rule(iterable, *rest, **keywords):
    nargs = 1 + len(rest)
    start = rest[0] if rest else keywords.get("start", 0)
    items, pb = runtime.iterate(iterable, deposit=False)
    items = list(items)
    out = list(enumerate(items, start))

    def enumerate_pullback(g):
        rows = list(g or ())
        column = [tangents._items(r, 2)[1] if r is not None else None for r in rows]
        column += [None] * (len(items) - len(column))
        return (pb(column) if pb is not None else None), None
    if nargs == 1:
        return out, lambda g: enumerate_pullback(g)[:1]
    return out, enumerate_pullback


@rrule(reversed)
def reversed_rule(seq):
    items, pb = runtime.iterate(seq, deposit=False)
    items = list(items)
    n = len(items)
    out = items[::-1]

    def reversed_pullback(g):
        rows = list(g or ()) + [None] * (n - len(g or ()))
        return (pb(rows[::-1]) if pb is not None else None),
    return out, reversed_pullback


@rrule(map)
def map_rule(fn, *seqs):
    materialized = [runtime.iterate(s, deposit=False) for s in seqs]
    columns = [list(items) for items, _ in materialized]
    results, pullbacks = [], []
    for args in zip(*columns):
        out, pb = runtime.call(fn, *args)
        results.append(out)
        pullbacks.append(pb)

    def map_pullback(g):
        rows = list(g or ()) + [None] * (len(results) - len(g or ()))
        d_fn = None
        column_cts = [[None] * len(c) for c in columns]
        for i in range(len(results) - 1, -1, -1):   # reverse order: the calls may write in place
            gi, pb = rows[i], pullbacks[i]
            if pb is None or gi is None and not shadow.must_run(pb):
                continue
            cts = pb(gi)
            d_fn = _add(d_fn, cts[0])
            for j, c in enumerate(cts[1:]):
                column_cts[j][i] = c
        return (d_fn,) + tuple(pb(c) if pb is not None else None
                               for (_, pb), c in zip(materialized, column_cts))
    return shadow.with_effects(results, map_pullback, (fn,) + seqs, pullbacks)


@rrule(filter)
def filter_rule(fn, seq):
    items, pb = runtime.iterate(seq, deposit=False)
    items = list(items)
    tests, effects = _called_for_effects(fn, items)
    keep = [i for i, v in enumerate(items) if (tests[i] if fn is not None else v)]
    out = [items[i] for i in keep]

    def filter_pullback(g):
        d_fn, ct = _run_effects(effects, len(items))
        for i, c in zip(keep, list(g or ())):
            ct[i] = _add(ct[i], c)
        return d_fn, (pb(ct) if pb is not None else None)
    return shadow.with_effects(out, filter_pullback, (fn, seq), [p for _, p in effects])


def _called_for_effects(fn, items):
    """``fn(v)`` for each item, through the runtime: a result only steers (a filter test, a sort
    key), but the call may write in place. Returns the results and the pullbacks that must run."""
    if fn is None:
        return None, []
    results, effects = [], []
    for i, v in enumerate(items):
        out, pb = runtime.call(fn, v)
        results.append(out)
        if shadow.must_run(pb):
            effects.append((i, pb))
    return results, effects


def _run_effects(effects, n):
    """Run the pullbacks of the callback calls that wrote, latest first. Returns the callback's
    cotangent (what it closes over) and the cotangents of the ``n`` items it was called with."""
    d_fn, d_items = None, [None] * n
    for i, pb in reversed(effects):
        cts = pb(None)
        d_fn = _add(d_fn, cts[0])
        d_items[i] = _add(d_items[i], cts[1])
    return d_fn, d_items


@rrule(sorted)
def sorted_rule(iterable, **keywords):
    key, reverse = keywords.get("key"), keywords.get("reverse", False)
    items, pb = runtime.iterate(iterable, deposit=False)
    items = list(items)
    keys, effects = _called_for_effects(key, items)
    keyed = items if key is None else keys
    order = sorted(range(len(items)), key=keyed.__getitem__, reverse=reverse)
    out = [items[i] for i in order]

    def sorted_pullback(g):
        d_key, ct = _run_effects(effects, len(items))
        rows = list(g or ()) + [None] * (len(items) - len(g or ()))
        for position, i in enumerate(order):
            ct[i] = _add(ct[i], rows[position])
        return (pb(ct) if pb is not None else None,) + (({"key": d_key},) if keywords else ())
    return shadow.with_effects(out, sorted_pullback, (iterable,), [p for _, p in effects])


sorted_rule.keyword_cotangents = True


def _passthrough(fn):
    def copy_rule(x, *rest):
        def copy_pullback(g):
            return (g,) + (None,) * len(rest)
        return fn(x, *rest), copy_pullback
    return copy_rule


rrule(copy.copy)(_passthrough(copy.copy))
rrule(copy.deepcopy)(_passthrough(copy.deepcopy))


@rrule(getattr)
def getattr_rule(obj, name, *default):
    from ..reverse.ops import getattr_op
    if default and not hasattr(obj, name):
        return default[0], (lambda g: (None, None, g))
    out, pb = getattr_op(obj, name)
    if pb is None:
        return out, None
    return out, (lambda g: pb(g) + (None,) * len(default))


# Rules marked ``keyword_cotangents`` receive keyword arguments as such; when called with
# keywords their pullback returns the positional cotangents followed by one dict for the keywords.

# --------------------------------------------------------------------------- list and dict methods

# Mutating list methods: the list's cotangent lives in its shadow (by identity, see
# reverse/shadow.py); the reverse of each method edits the shadow at the positions the
# forward call recorded. ``seed`` is a local cotangent of the list after the call.

@method_rule(list, "append", mutating=True)
def list_append_method(lst, value):
    from ..reverse.ops import list_append
    _, pb = list_append(lst, value)

    def list_append_method_pullback(g, seed):
        return pb(seed)
    return None, list_append_method_pullback


@method_rule(list, "extend", mutating=True)
def list_extend_method(lst, values):
    n = len(lst)
    items, pb = runtime.iterate(values, deposit=False)
    items = list(items)
    lst.extend(items)

    def list_extend_pullback(g, seed):
        shadow.deposit(lst, seed)
        tail = shadow.list_truncate(lst, n)
        tail += [None] * (len(items) - len(tail))
        for i, v in enumerate(items):
            if shadow.kind(v) is not None:
                tail[i] = None
        return None, (pb(tail) if pb is not None and any(c is not None for c in tail) else None)
    return None, list_extend_pullback


@method_rule(list, "insert", mutating=True)
def list_insert_method(lst, index, value):
    n = len(lst)
    position = max(0, min(n, index if index >= 0 else n + index))
    lst.insert(index, value)

    def list_insert_pullback(g, seed):
        shadow.deposit(lst, seed)
        dvalue = shadow.list_delete(lst, position)
        return None, None, (None if shadow.kind(value) is not None else dvalue)
    return None, list_insert_pullback


@method_rule(list, "pop", mutating=True)
def list_pop_method(lst, *index):
    n = len(lst)
    i = index[0] if index else -1
    position = i if i >= 0 else n + i
    out = lst.pop(i)

    def list_pop_pullback(g, seed):
        shadow.deposit(lst, seed)
        if shadow.kind(out) is not None:
            shadow.deposit(out, g)
            g = None
        shadow.list_insert(lst, position, g)
        return (None,) + (None,) * len(index)
    return out, list_pop_pullback


@method_rule(list, "copy")
def list_copy_method(lst):
    return lst.copy(), (lambda g: (g,))


@method_rule(list, "reverse", mutating=True)
def list_reverse_method(lst):
    n = len(lst)
    lst.reverse()

    def list_reverse_pullback(g, seed):
        shadow.deposit(lst, seed)
        shadow.list_permute(lst, list(range(n - 1, -1, -1)), n)
        return (None,)
    return None, list_reverse_pullback


@method_rule(list, "sort", mutating=True)
def list_sort_method(lst, **keywords):
    key, reverse = keywords.get("key"), keywords.get("reverse", False)
    before = list(lst)
    keys, effects = _called_for_effects(key, before)
    keyed = lst if key is None else keys
    order = sorted(range(len(lst)), key=keyed.__getitem__, reverse=reverse)
    lst[:] = [lst[i] for i in order]

    def list_sort_pullback(g, seed):
        shadow.deposit(lst, seed)
        shadow.list_permute(lst, order, len(order))
        d_key, d_items = _run_effects(effects, len(before))
        shadow.deposit_items(lst, enumerate(d_items), before)
        return (None,) + (({"key": d_key},) if keywords else ())
    return None, list_sort_pullback


list_sort_method.keyword_cotangents = True


@method_rule(list, "clear", mutating=True)
def list_clear_method(lst):
    lst.clear()

    def list_clear_pullback(g, seed):
        # nothing read after the clear can reach the old items: their cotangents start empty
        shadow.list_truncate(lst, 0)
        return (None,)
    return None, list_clear_pullback


@method_rule(list, "remove", mutating=True)
def list_remove_method(lst, value):
    position = lst.index(value)
    del lst[position]

    def list_remove_pullback(g, seed):
        shadow.deposit(lst, seed)
        shadow.list_insert(lst, position, None)
        return None, None
    return None, list_remove_pullback


nondiff_method(list, "index", "count")


@method_rule(dict, "get")
def dict_get_method(d, key, *default):
    present = key in d
    out = d.get(key, *default)

    def dict_get_pullback(g):
        if present:
            # a mutable value (or a tuple holding arrays) keeps its own shadow: it may be written
            # in place after it was put in the dict
            shadow.deposit_items(d, [(key, g)], {key: out})
            return (None, None) + (None,) * len(default)
        return (None, None) + (g,) * len(default)
    return out, dict_get_pullback


def _dict_view(kind):
    def dict_view_rule(d):
        keys = list(d)
        if kind == "keys":
            return keys, None
        if kind == "values":
            out = [d[k] for k in keys]

            def dict_values_pullback(g):
                return ({k: c for k, c in zip(keys, g) if c is not None},)
            return out, dict_values_pullback
        out = [(k, d[k]) for k in keys]

        def dict_items_pullback(g):
            return ({k: tangents._items(c, 2)[1] for k, c in zip(keys, g) if c is not None},)
        return out, dict_items_pullback
    return dict_view_rule


for _kind in ("keys", "values", "items"):
    method_rule(dict, _kind)(_dict_view(_kind))


@method_rule(dict, "copy")
def dict_copy_method(d):
    return d.copy(), (lambda g: (g,))


@method_rule(dict, "update", mutating=True)
def dict_update_method(d, *other_arg, **kwargs):
    other = dict(other_arg[0]) if other_arg else {}
    d.update(other, **kwargs)

    given = bool(other_arg)

    def dict_update_pullback(g, seed):
        shadow.deposit(d, seed)
        d_kw = {k: shadow.item_take(d, k) for k in kwargs}   # keywords win over the mapping
        d_other = {k: shadow.item_take(d, k) for k in other if k not in kwargs}
        d_other = {k: v for k, v in d_other.items() if v is not None} or None
        return ((None, d_other) if given else (None,)) + ((d_kw,) if kwargs else ())
    return None, dict_update_pullback


dict_update_method.keyword_cotangents = True


@method_rule(dict, "pop", mutating=True)
def dict_pop_method(d, key, *default):
    present = key in d
    out = d.pop(key, *default)

    def dict_pop_pullback(g, seed):
        shadow.deposit(d, seed)
        if present:
            if shadow.kind(out) is not None:
                shadow.deposit(out, g)
            else:
                shadow.item_deposit(d, key, g)
            return (None, None) + (None,) * len(default)
        return (None, None) + (g,) * len(default)
    return out, dict_pop_pullback


@method_rule(dict, "setdefault", mutating=True)
def dict_setdefault_method(d, key, default=None):
    present = key in d
    out = d.setdefault(key, default)

    def dict_setdefault_pullback(g, seed):
        shadow.deposit(d, seed)
        if shadow.kind(out) is not None:
            shadow.deposit(out, g)
            g = None
        if present:
            shadow.item_deposit(d, key, g)
            return None, None, None
        return None, None, _add(shadow.item_take(d, key), g)
    return out, dict_setdefault_pullback


nondiff_method(str, "format", "join", "upper", "lower", "strip", "split", "replace", "startswith",
               "endswith")


def partial_rule(func, *args, **keywords):
    out = functools.partial(func, *args, **keywords)

    def partial_pullback(g):
        fields = g.fields if isinstance(g, tangents.ObjectCotangent) else {}
        d_args = tangents._items(fields.get("args"), len(args))
        cts = (fields.get("func"),) + tuple(d_args)
        return cts + (fields.get("keywords") or {},) if keywords else cts
    return out, partial_pullback


# out= given to functools.partial is stored for the later call, not written now
partial_rule.keeps_out = True


partial_rule.keyword_cotangents = True
rrule(functools.partial)(partial_rule)


@rrule(super)
def super_rule(*args):
    return super(*args), (lambda g: (None,) * (len(args) - 1) + (g,))


sum_rule.keyword_cotangents = True


# --------------------------------------------------------------------------- functools, itertools

@rrule(functools.reduce)
def reduce_rule(fn, iterable, *initial):
    items, items_pb = runtime.iterate(iterable, deposit=False)
    items = list(items)
    if initial:
        acc, rest = initial[0], items
    else:
        acc, rest = items[0], items[1:]
    pullbacks = []
    for item in rest:
        acc, pb = runtime.call(fn, acc, item)
        pullbacks.append(pb)

    def reduce_pullback(g):
        d_fn, d_items = None, [None] * len(items)
        offset = 0 if initial else 1
        for k in range(len(pullbacks) - 1, -1, -1):
            pb = pullbacks[k]
            if pb is None or g is None and not shadow.must_run(pb):
                g = None
                continue
            d_f, g, d_item = pb(g)
            d_fn = _add(d_fn, d_f)
            d_items[k + offset] = d_item
        if not initial:
            d_items[0] = g
            g = None
        d_iterable = items_pb(d_items) if items_pb is not None else None
        return (d_fn, d_iterable) + ((g,) if initial else ())
    return shadow.with_effects(acc, reduce_pullback, (fn, iterable) + initial, pullbacks)


def _index_tuples_rule(combinator):
    def combinatorial_rule(iterable, *args, **kwargs):
        items, items_pb = runtime.iterate(iterable, deposit=False)
        items = list(items)
        positions = list(combinator(range(len(items)), *args, **kwargs))
        out = [tuple(items[i] for i in p) for p in positions]

        def combinatorial_pullback(g):
            d_items = [None] * len(items)
            for p, c in zip(positions, g or ()):
                for i, ci in zip(p, tangents._items(c, len(p))):
                    d_items[i] = _add(d_items[i], ci)
            return ((items_pb(d_items) if items_pb is not None else None),) + (None,) * len(args)
        return out, combinatorial_pullback
    return combinatorial_rule


for _comb in (itertools.combinations, itertools.permutations, itertools.combinations_with_replacement):
    rrule(_comb)(_index_tuples_rule(_comb))


@rrule(itertools.product)
def product_rule(*iterables, repeat=1):
    materialized = [runtime.iterate(it, deposit=False) for it in iterables] * repeat
    columns = [list(items) for items, _ in materialized]
    positions = list(itertools.product(*[range(len(c)) for c in columns]))
    out = [tuple(columns[j][i] for j, i in enumerate(p)) for p in positions]

    def product_pullback(g):
        d_columns = [[None] * len(c) for c in columns]
        for p, c in zip(positions, g or ()):
            for j, (i, ci) in enumerate(zip(p, tangents._items(c, len(p)))):
                d_columns[j][i] = _add(d_columns[j][i], ci)
        n = len(iterables)
        cts = []
        for j in range(n):   # with repeat, each iterable appears repeat times
            merged = [None] * len(columns[j])
            for r in range(repeat):
                for i, c in enumerate(d_columns[j + r * n]):
                    merged[i] = _add(merged[i], c)
            pb = materialized[j][1]
            cts.append(pb(merged) if pb is not None else None)
        return tuple(cts)
    return out, product_pullback


@rrule(itertools.accumulate)
def accumulate_rule(iterable, func=None, *, initial=None):
    items, items_pb = runtime.iterate(iterable, deposit=False)
    items = list(items)
    fn = operator.add if func is None else func
    out, pullbacks = [], []
    acc = initial
    for k, item in enumerate(items):
        if acc is None and k == 0:
            acc = item
            pullbacks.append(None)
        else:
            acc, pb = runtime.call(fn, acc, item)
            pullbacks.append(pb)
        out.append(acc)
    if initial is not None:
        out.insert(0, initial)

    def accumulate_pullback(g):
        rows = list(tangents._items(g, len(out)))
        if initial is not None:
            rows = rows[1:]
        d_items = [None] * len(items)
        carry = None
        for k in range(len(items) - 1, -1, -1):
            carry = _add(carry, rows[k])
            pb = pullbacks[k]
            if pb is None:   # the first item started the running value
                d_items[k] = carry
                carry = None
                continue
            if carry is None and not shadow.must_run(pb):
                continue
            _, carry, d_items[k] = pb(carry)
        d_iterable = items_pb(d_items) if items_pb is not None else None
        return (d_iterable,) + ((None,) if func is not None else ())
    return shadow.with_effects(out, accumulate_pullback,
                               (iterable,) + ((func,) if func is not None else ()), pullbacks)


# --------------------------------------------------------------------------- dict-like classes

def _dict_like_rule(cls):
    def dict_like_rule(*args, **kwargs):
        factory = ()
        if cls is collections.defaultdict:
            factory, args = args[:1], args[1:]
        out, pb = dict_rule(*args, **kwargs)
        result = cls(*factory, out) if factory or cls is not dict else cls(out)

        def dict_like_pullback(g):
            cts = pb(dict(g) if g else {})
            return (None,) * len(factory) + tuple(cts)
        return result, dict_like_pullback
    dict_like_rule.keyword_cotangents = True
    return dict_like_rule


rrule(collections.OrderedDict)(_dict_like_rule(collections.OrderedDict))
rrule(collections.defaultdict)(_dict_like_rule(collections.defaultdict))
