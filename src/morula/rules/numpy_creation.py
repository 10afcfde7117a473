"""Reverse rules for building NumPy arrays.

In: nothing (importing registers the rules). Out: rules for ``np.array``,
``asarray``, ``asanyarray``, ``ascontiguousarray`` (of arrays, numbers and
nested lists/tuples of them), ``full``, ``full_like`` (the fill value is
differentiable) and ``linspace`` (start and stop are differentiable); and
``meshgrid`` (``indexing`` 'xy'/'ij', ``sparse``, ``copy``), ``vander``; and
``nondiff`` declarations for the constant constructors (``zeros``, ``ones``,
``empty``, ``*_like``, ``arange``, ``eye``, ``identity``, ...).

The cotangent of a nested list/tuple has the same structure: a list stays a
list, a tuple a tuple, a Python float gets a Python float, an array an array
of its own shape and dtype, an integer ``None``.
"""

import numpy as np

from morula.errors import UnsupportedOperationError
from morula.tangents import materialize

from morula.rules.numpy_vspace import (
    as_array,
    batch_of,
    conj,
    cotangent,
    inexact,
    numpy_rule,
    shape_of,
    structure_cotangent,
    sum_to_shape,
)
from morula.rules.registry import REGISTRY, nondiff


def _array_cotangent(dy, obj):
    """The cotangent of the ``object`` argument of ``np.array``-like constructors."""
    if not inexact(obj):
        return None
    shape = shape_of(obj)
    g = dy
    if tuple(getattr(g, "shape", ())) != tuple(shape):
        g = np.reshape(g, shape)  # ndmin added leading size-1 dimensions
    if isinstance(obj, (list, tuple)):
        return structure_cotangent(g, obj)
    return cotangent(g, obj)


def _array_rule_for(fn):
    def array_rule(obj, dtype=None, *args, **kwargs):
        y = fn(obj, dtype, *args, **kwargs)
        if getattr(y, "dtype", None) == object and inexact(obj):
            raise UnsupportedOperationError(
                "morula cannot differentiate NumPy arrays of dtype=object (their arithmetic runs "
                "element by element in Python objects NumPy does not describe). Fix: use a float "
                "dtype, or a Python list.")
        if not inexact(y) or not inexact(obj):
            return y, None

        def array_pullback(dy):
            return (_array_cotangent(dy, obj),)

        array_pullback.__name__ = f"{fn.__name__}_pullback"
        return y, array_pullback

    array_rule.__name__ = f"{fn.__name__}_rule"
    return numpy_rule(fn)(array_rule)


array_rule = _array_rule_for(np.array)
asarray_rule = _array_rule_for(np.asarray)
asanyarray_rule = _array_rule_for(np.asanyarray)
ascontiguousarray_rule = _array_rule_for(np.ascontiguousarray)
asfortranarray_rule = _array_rule_for(np.asfortranarray)


# -- constants filled with a differentiable value -------------------------------------------


@numpy_rule(np.full)
def full_rule(shape, fill_value, dtype=None, order="C", **kwargs):
    y = np.full(shape, fill_value, dtype, order, **kwargs)
    if not inexact(y) or not inexact(fill_value):
        return y, None

    def full_pullback(dy):
        return None, cotangent(dy, fill_value)

    return y, full_pullback


@numpy_rule(np.full_like)
def full_like_rule(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kwargs):
    y = np.full_like(a, fill_value, dtype, order, subok, shape, **kwargs)
    if not inexact(y) or not inexact(fill_value):
        return y, None

    def full_like_pullback(dy):
        return None, cotangent(dy, fill_value)

    return y, full_like_pullback


# -- linspace -----------------------------------------------------------------------------------


@numpy_rule(np.linspace)
def linspace_rule(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, **kwargs):
    """``start + t * (stop - start)`` with ``t = i / div``: linear in ``start`` and ``stop``."""
    y = np.linspace(start, stop, num, endpoint, retstep, dtype, axis, **kwargs)
    samples = y[0] if retstep else y
    if not inexact(samples) or not (inexact(start) or inexact(stop)):
        return y, None
    num = int(num)
    div = (num - 1) if endpoint else num

    def linspace_pullback(dy):
        dsamples, dstep = (dy[0], dy[1]) if retstep else (dy, None)
        d_start = d_stop = None
        if dsamples is not None:
            g = np.moveaxis(dsamples, axis, 0)
            like = {"like": g} if hasattr(g, "__array_function__") else {}
            t = np.arange(num, dtype=np.float64, **like)
            if div > 0:
                t = t / div
            else:
                t = t * 0
            t = np.reshape(t, (num,) + (1,) * (g.ndim - 1))
            d_start = np.sum(g * (1 - t), axis=0)
            d_stop = np.sum(g * t, axis=0)
        if dstep is not None and div > 0:
            d_start = -dstep / div if d_start is None else d_start - dstep / div
            d_stop = dstep / div if d_stop is None else d_stop + dstep / div
        full_shape = np.broadcast_shapes(shape_of(start), shape_of(stop))
        out = []
        for value, d in ((start, d_start), (stop, d_stop)):
            if d is None or not inexact(value):
                out.append(None)
            else:
                d = sum_to_shape(np.reshape(d, full_shape), full_shape)
                out.append(cotangent(d, value))
        return tuple(out)

    return y, linspace_pullback


# -- meshgrid / vander ---------------------------------------------------------------------------


@numpy_rule(np.meshgrid)
def meshgrid_rule(*xi, copy=True, sparse=False, indexing="xy"):
    """Output ``i`` repeats the (flattened) ``xi[i]`` along every other axis: its cotangent is
    summed over those axes. With ``indexing='xy'`` the first two axes are swapped."""
    y = np.meshgrid(*xi, copy=copy, sparse=sparse, indexing=indexing)
    if not any(inexact(x) for x in xi):
        return y, None
    ndim = len(xi)

    def varying_axis(i):
        if indexing == "xy" and ndim > 1 and i < 2:
            return 1 - i
        return i

    def meshgrid_pullback(dys):
        cts = []
        for i, (d, x) in enumerate(zip(dys, xi)):
            if d is None or not inexact(x):
                cts.append(None)
                continue
            ax = varying_axis(i)
            others = tuple(k for k in range(ndim) if k != ax)
            g = np.sum(d, axis=others) if others else d
            cts.append(cotangent(np.reshape(g, np.shape(x)), x))
        return tuple(cts)

    return y, meshgrid_pullback


@numpy_rule(np.vander)
def vander_rule(x, N=None, increasing=False):
    """Column ``p`` (increasing order) is ``x**p``; its derivative ``p x**(p-1)`` is read off the
    Vandermonde matrix with one column fewer (no ``0 * x**-1`` at ``x = 0``)."""
    y = np.vander(x, N, increasing)
    u = as_array(x)
    if not inexact(u) or not inexact(y):
        return y, None
    cols = y.shape[1]

    def vander_pullback(dy):
        d = dy if increasing else dy[:, ::-1]  # increasing powers
        if cols <= 1:
            return (cotangent(np.zeros_like(u) * 0, x),)
        lower = np.vander(u, cols - 1, increasing=True)  # x**0 .. x**(cols-2)
        powers = np.arange(1, cols)
        g = np.sum(d[:, 1:] * conj(lower * powers), axis=1)
        return (cotangent(g, x),)

    return y, vander_pullback


# -- constant constructors -----------------------------------------------------------------------

nondiff(
    np.zeros, np.ones, np.empty, np.zeros_like, np.ones_like, np.empty_like,
    np.arange, np.eye, np.identity, np.tri, np.indices,
)  # fmt: skip


# -- Python values out of arrays, NumPy scalars from numbers ------------------------------------

def _item_rule(x, *index):
    out = x.item(*index)

    def item_pullback(dy):
        n = batch_of(dy)
        dtype = x.dtype if x.dtype.kind in "fc" else np.float64
        g = np.zeros(np.shape(x) if n is None else (n,) + np.shape(x), dtype=dtype)
        batch = () if n is None else (slice(None),)
        if index:
            where = index if len(index) > 1 else np.unravel_index(index[0], x.shape) if x.ndim != 1 else (index[0],)
            g[batch + tuple(where)] = dy
        else:
            g[...] = dy if n is None else np.reshape(dy, (n,) + (1,) * np.ndim(x))
        return (g,) + (None,) * len(index)

    if not np.issubdtype(np.asarray(x).dtype, np.inexact):
        return out, None
    return out, item_pullback


def _tolist_rule(x):
    out = x.tolist()
    if not np.issubdtype(np.asarray(x).dtype, np.inexact):
        return out, None

    def tolist_pullback(dy):
        dy = materialize(dy, out)   # the unread entries' None become zeros
        return (np.asarray(dy, dtype=x.dtype).reshape(np.shape(x)),)
    return out, tolist_pullback


for _cls in (np.ndarray, np.generic):
    REGISTRY.add_method(_cls, "item", _item_rule)
    REGISTRY.add_method(_cls, "tolist", _tolist_rule)


def _scalar_type_rule(kind):
    def scalar_type_rule(x=0):
        out = kind(x)
        if not np.issubdtype(kind, np.inexact):
            return out, None
        tx = type(x)

        def scalar_type_pullback(dy):
            n = batch_of(dy)
            if tx is float or tx is int or tx is bool:
                return (float(np.real(dy)) if n is None else np.real(dy),)
            if tx is complex:
                return (complex(dy) if n is None else dy.astype(complex),)
            dtype = getattr(x, "dtype", None)
            if dtype is None:
                return (dy,)
            value = dy if dtype.kind == "c" else np.real(dy)
            shape = np.shape(x)
            if n is not None:
                shape, value = (n,) + shape, np.reshape(value, (n,) + (1,) * len(shape))
            return (np.full(shape, value, dtype=dtype if dtype.kind in "fc" else np.float64),)
        return out, scalar_type_pullback
    return scalar_type_rule


for _kind in (np.float64, np.float32, np.float16, np.complex128, np.complex64, np.longdouble):
    REGISTRY.add_function(_kind, _scalar_type_rule(_kind))
for _kind in (np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.intp):
    REGISTRY.add_function(_kind, _scalar_type_rule(_kind))
