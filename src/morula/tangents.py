"""Tangent and cotangent values: the zero, addition, broadcasting, and the API boundary.

In: cotangents produced by pullbacks (``None`` is the structural zero, numbers,
arrays, tuples/lists/dicts of cotangents, ``ObjectCotangent`` for objects).
Out: sums of them (``add``), cotangents reduced to an operand's shape
(``unbroadcast``), and at the API boundary real values that mirror the primal
(``materialize``: zeros instead of ``None``, same container types, same
dtypes). Array libraries plug in through ``register_vspace``; this module
knows nothing about any of them.
"""

import dataclasses
import threading
import types

_NOT_OBJECTS = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType)

_INEXACT_SCALARS = (float, complex)
_vspaces = []  # (predicate, zeros_like, is_inexact)


class _BatchState(threading.local):
    size = None   # while a batched backward sweep runs: how many cotangents travel at once


BATCH = _BatchState()
"""``BATCH.size`` is None, except inside a batched backward sweep (``jacobian`` vectorised over
output cotangents), where every array cotangent carries a leading axis of that length and
pullbacks that know it (see ``shadow.batch_capable``) work on all the cotangents at once."""


def batch_of(ct):
    """In a batched backward sweep: how many cotangents ``ct`` holds along its leading axis; None
    outside one, and for a plain (unbatched) zero such as ``0.0``."""
    n = BATCH.size
    if n is None or not getattr(ct, "ndim", 0):
        return None
    return n


class CannotBatch(Exception):
    """Raised inside a batched backward sweep by code that cannot work on a batch of cotangents;
    the caller falls back to one sweep per cotangent."""


class ObjectCotangent:
    """The cotangent of an object: one cotangent per attribute, read by attribute access."""

    __slots__ = ("fields",)

    def __init__(self, fields=None):
        object.__setattr__(self, "fields", dict(fields or {}))

    def __getattr__(self, name):
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self.fields[name] = value

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"ObjectCotangent({inner})"

    def __eq__(self, other):
        return isinstance(other, ObjectCotangent) and self.fields == other.fields

    __hash__ = None


def register_vspace(predicate, zeros_like, is_inexact):
    """Teach the boundary about an array type: how to build zeros and whether it holds floats."""
    _vspaces.append((predicate, zeros_like, is_inexact))


def add(a, b):
    """Sum of two cotangents of the same primal; ``None`` is zero. Never mutates its inputs."""
    if a is None:
        return b
    if b is None:
        return a
    ta = type(a)
    if ta is tuple or ta is list:
        if type(b) is ObjectCotangent:  # NamedTuple reached by index and by attribute
            return add(b, a)
        n = max(len(a), len(b))
        return ta(add(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(n))
    if ta is dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = add(out.get(k), v)
        return out
    if ta is ObjectCotangent:
        if type(b) is ObjectCotangent:
            out = dict(a.fields)
            for k, v in b.fields.items():
                out[k] = add(out.get(k), v)
            return ObjectCotangent(out)
        if type(b) is tuple:  # NamedTuple: fields in order
            return ObjectCotangent({**a.fields, "__items__": add(a.fields.get("__items__"), b)})
        raise TypeError(f"cannot add object cotangent and {type(b).__name__}")
    return a + b


NOT_FLOATS = set()   # array types whose 0-d values cannot become a float (registered by rules)


def unbroadcast(g, x):
    """Reduce cotangent ``g`` to the shape (and floating dtype) of operand ``x``.

    ``x`` is the primal operand: a Python number, a NumPy-like array or scalar.
    """
    if g is None:
        return None
    if type(g) is type(x) and BATCH.size is None and getattr(g, "shape", 0) == getattr(x, "shape", 1) \
            and getattr(g, "dtype", 0) == getattr(x, "dtype", 1):
        return g   # the common case: a cotangent already shaped and typed like its operand
    gshape = getattr(g, "shape", None)
    xshape = getattr(x, "shape", None)
    if gshape and BATCH.size is not None:
        return _unbroadcast_batch(g, x, gshape, xshape)
    if xshape is None:  # Python number
        tx = type(x)
        if tx is int or tx is bool:
            return None   # integer inputs get no gradient
        if gshape:  # a scalar broadcast against an array
            g = g.sum()
        if tx is float:
            if type(g) is complex or _is_complex(g):
                g = g.real
            if type(g) in NOT_FLOATS:   # a 0-d array that carries more than a number (tangents)
                return g
            return float(g)
        if tx is complex:
            return complex(g)
        return g
    if gshape != xshape:
        if gshape is None:
            g = g + 0 * x  # scalar cotangent for an array operand: broadcast up
        else:
            extra = len(gshape) - len(xshape)
            if extra > 0:
                g = g.sum(axis=tuple(range(extra)))
            axes = tuple(i for i, n in enumerate(xshape) if n == 1 and g.shape[i] != 1)
            if axes:
                g = g.sum(axis=axes, keepdims=True)
            if g.shape != xshape:
                g = g.reshape(xshape)
    return match_dtype(g, x)


def _unbroadcast_batch(g, x, gshape, xshape):
    """``unbroadcast`` for a batch of cotangents: axis 0 of ``g`` is the batch and stays."""
    if xshape is None:
        tx = type(x)
        if tx is int or tx is bool:
            return None
        if tx is not float and tx is not complex:
            raise CannotBatch(f"a cotangent for a {tx.__name__}")
        if len(gshape) > 1:
            g = g.sum(axis=tuple(range(1, len(gshape))))
        if tx is float and _is_complex(g):
            g = g.real
        return g
    xshape = tuple(xshape)
    if tuple(gshape[1:]) != xshape:
        extra = len(gshape) - 1 - len(xshape)
        if extra > 0:
            g = g.sum(axis=tuple(range(1, extra + 1)))
        elif extra < 0:
            g = g.reshape((gshape[0],) + (1,) * -extra + tuple(gshape[1:]))
        axes = tuple(i + 1 for i, n in enumerate(xshape) if n == 1 and g.shape[i + 1] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        if tuple(g.shape[1:]) != xshape:
            g = g + 0 * x   # a cotangent smaller than its operand: broadcast up
    return match_dtype(g, x)


def _is_complex(g):
    kind = getattr(getattr(g, "dtype", None), "kind", None)
    return kind == "c"


def match_dtype(g, x):
    """Cast cotangent ``g`` to the floating dtype of primal ``x`` (float32 stays float32; real stays real)."""
    xd = getattr(x, "dtype", None)
    gd = getattr(g, "dtype", None)
    if xd is None or gd is None or xd == gd:
        return g
    if xd.kind == "f":
        if gd.kind == "c":
            g = g.real
        return g.astype(xd) if hasattr(g, "astype") else g
    if xd.kind == "c" and gd.kind in "fc":
        return g.astype(xd) if hasattr(g, "astype") else g
    return g


def is_inexact(x):
    """Does ``x`` hold a floating-point or complex value (anywhere inside it)?"""
    tx = type(x)
    if tx is float or tx is complex:
        return True
    if tx is int or tx is bool or tx is str or x is None:
        return False
    if tx is tuple or tx is list:
        return any(is_inexact(v) for v in x)
    if tx is dict:
        return any(is_inexact(v) for v in x.values())
    for predicate, _, inexact in _vspaces:
        if predicate(x):
            return inexact(x)
    if isinstance(x, (tuple, list)):
        return any(is_inexact(v) for v in x)
    return False


def _holds_floats(value, depth=0):
    """Could ``value`` hold a floating-point number, looking through containers and objects?"""
    if is_inexact(value):
        return True
    if depth > 4 or isinstance(value, _NOT_OBJECTS):
        return False
    if isinstance(value, (list, tuple)):
        return any(_holds_floats(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_holds_floats(v, depth + 1) for v in value.values())
    fields = getattr(value, "__dict__", None)
    if type(fields) is dict:
        return any(_holds_floats(v, depth + 1) for v in fields.values())
    return False


def zeros_like(x):
    """A real zero with the structure of primal ``x``."""
    tx = type(x)
    if tx is float:
        return 0.0
    if tx is complex:
        return 0j
    if tx is int or tx is bool:
        return 0.0
    for predicate, zeros, _ in _vspaces:
        if predicate(x):
            return zeros(x)
    return materialize(None, x)


def materialize(ct, x, leaf=None):
    """Turn internal cotangent ``ct`` of primal ``x`` into the value the API returns.

    ``leaf(x, ct)``, if given, adds what is kept outside ``ct`` for ``x`` (the shadow memory
    of arrays) and is applied at every value of the structure."""
    if leaf is not None:
        ct = leaf(x, ct)
    tx = type(x)
    if ct is None:
        if tx in (float, complex, int, bool):
            return zeros_like(x)
        for predicate, zeros, _ in _vspaces:
            if predicate(x):
                return zeros(x)
    if tx is float:
        if type(ct) in NOT_FLOATS:
            return ct
        return float(ct) if not isinstance(ct, complex) else ct
    if tx is tuple or tx is list:
        items = _items(ct, len(x))
        return tx(materialize(c, v, leaf) for c, v in zip(items, x))
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple
        items = _items(ct, len(x), fields=x._fields)
        return tx(*(materialize(c, v, leaf) for c, v in zip(items, x)))
    if isinstance(x, (tuple, list)):
        items = _items(ct, len(x))
        return [materialize(c, v, leaf) for c, v in zip(items, x)]
    if tx is dict:
        ct = ct or {}
        return {k: materialize(ct.get(k), v, leaf) for k, v in x.items()}
    if isinstance(x, dict):
        ct = ct or {}
        return tx((k, materialize(ct.get(k), v, leaf)) for k, v in x.items())
    if ct is None and (tx is str or x is None):
        return None
    for predicate, zeros, _ in _vspaces:   # array types (Dask, CuPy): before "any object"
        if predicate(x):
            if ct is None:
                return zeros(x)
            if type(ct) is not tx and getattr(x, "ndim", None) == 0 and getattr(ct, "ndim", None) == 0 \
                    and not hasattr(tx, "__array_function__"):
                return tx(ct)   # a NumPy scalar (not a 0-d array) gets a NumPy scalar of its own type
            return ct
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        fields = ct.fields if isinstance(ct, ObjectCotangent) else {}
        out = object.__new__(tx)
        for f in dataclasses.fields(x):
            object.__setattr__(out, f.name, materialize(fields.get(f.name), getattr(x, f.name), leaf))
        return out
    if hasattr(x, "__dict__") and not isinstance(x, _NOT_OBJECTS):
        fields = ct.fields if isinstance(ct, ObjectCotangent) else {}
        out = ObjectCotangent()
        for name, value in vars(x).items():
            if name in fields or _holds_floats(value):
                out.fields[name] = materialize(fields.get(name), value, leaf)
        return out
    if ct is None:
        return None
    return ct


def from_user(ct, primal, where="cotangent", of="the output"):
    """Check a cotangent given by the user against primal output ``primal`` and bring it to the
    internal form: objects (dataclasses, plain classes) become ``ObjectCotangent``; array and
    number shapes must match the output's exactly (no silent broadcasting)."""
    if ct is None:
        return None
    tp = type(primal)
    if isinstance(primal, (tuple, list)):
        if isinstance(ct, ObjectCotangent):
            return ct
        if not isinstance(ct, (tuple, list)) or len(ct) != len(primal):
            raise ValueError(f"{where} must be a sequence of {len(primal)} items like {of} "
                             f"(a {tp.__name__}), got {_describe(ct)}")
        items = [from_user(c, v, f"{where}[{i}]", of) for i, (c, v) in enumerate(zip(ct, primal))]
        return list(items) if type(ct) is list else tuple(items)
    if isinstance(primal, dict):
        if not isinstance(ct, dict):
            raise ValueError(f"{where} must be a dict like {of}, got {_describe(ct)}")
        unknown = [k for k in ct if k not in primal]
        if unknown:
            raise ValueError(f"{where} has keys {of} lacks: {unknown!r}")
        return {k: from_user(c, primal[k], f"{where}[{k!r}]", of) for k, c in ct.items()}
    if _is_object(primal):
        if isinstance(ct, ObjectCotangent):
            fields = ct.fields
        elif _is_object(ct):
            fields = vars(ct)
        else:
            raise ValueError(f"{where} must be an object like {of} (a {tp.__name__}, or a "
                             f"morula.ObjectCotangent), got {_describe(ct)}")
        return ObjectCotangent({k: from_user(c, getattr(primal, k, None), f"{where}.{k}", of)
                                for k, c in fields.items()})
    primal_shape = getattr(primal, "shape", ())
    ct_shape = getattr(ct, "shape", ())
    if tuple(ct_shape) != tuple(primal_shape) and primal is not None:
        raise ValueError(f"{where} has shape {tuple(ct_shape)} but {of} it belongs to has "
                         f"shape {tuple(primal_shape)}; pass one of that shape")
    return ct


def _is_object(x):
    return (hasattr(x, "__dict__") and not isinstance(x, _NOT_OBJECTS)
            and not any(predicate(x) for predicate, _, _ in _vspaces))


def _describe(x):
    shape = getattr(x, "shape", None)
    return f"a {type(x).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def _items(ct, n, fields=None):
    if ct is None:
        return [None] * n
    if isinstance(ct, ObjectCotangent):
        by_index = list(_items(ct.fields.get("__items__"), n))
        if fields:
            for i, name in enumerate(fields):
                by_index[i] = add(by_index[i], ct.fields.get(name))
        return by_index
    items = list(ct)
    if len(items) >= n:
        return items[:n]
    return items + [None] * (n - len(items))
