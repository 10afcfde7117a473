"""Reverse rules for reading entries of NumPy arrays: ``x[index]``, ``np.take``, ``np.take_along_axis``,
``np.compress``, ``np.extract``, ``np.choose``.

In: importing registers ``np.take`` (and ``ndarray.take``), ``np.take_along_axis``,
``np.compress`` (and ``ndarray.compress``), ``np.extract`` and ``np.choose``;
``operator.getitem`` is the engine's, which imports
``ndarray_getitem`` by name. Out: ``ndarray_getitem(x, index)`` returning
``(x[index], pullback)``; ``pullback(dy)`` returns ``(dense cotangent of x, None)``.

Basic indices (integers, slices, ``None``, ``...``) select each entry at most
once, so the cotangent is written with a plain assignment; boolean masks too.
Integer-array (advanced) indices may repeat entries, so their cotangents are
accumulated with ``np.add.at``.
"""

import numpy as np

from morula.rules.numpy_vspace import (
    check_no_out,
    cotangent,
    inexact,
    is_complex,
    numpy_method_rule,
    numpy_rule,
    real_part,
    with_dtype_of,
)


def _is_basic_part(i):
    return i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))


def _is_bool_mask(i):
    dtype = getattr(i, "dtype", None)
    return dtype is not None and dtype.kind == "b"


def _no_repeats(index):
    """True when ``x[index]`` selects every entry at most once (plain assignment is enough)."""
    parts = index if type(index) is tuple else (index,)
    for i in parts:
        if _is_basic_part(i) or isinstance(i, bool) or _is_bool_mask(i):
            continue
        return False
    return True


def _zero_cotangent(x):
    if x.dtype.kind in "fc":
        return np.zeros_like(x)
    return np.zeros_like(x, dtype=np.float64)


def ndarray_getitem(x, index):
    """``x[index]`` for a NumPy-like array ``x``, with a pullback that scatters ``dy`` back."""
    y = x[index]
    if not inexact(x):
        return y, None

    def getitem_pullback(dy):
        g = _zero_cotangent(x)
        if not is_complex(x):
            dy = real_part(dy)
        if _no_repeats(index):
            g[index] = dy
        else:
            np.add.at(g, index, dy)
        return with_dtype_of(g, x), None

    return y, getitem_pullback


def _as_array(a):
    if hasattr(a, "shape") and hasattr(a, "ndim"):
        return a
    return np.asarray(a)


@numpy_rule(np.take)
@numpy_method_rule(np.ndarray, "take")
def take_rule(a, indices, axis=None, out=None, mode="raise"):
    check_no_out("np.take", out)
    y = np.take(a, indices, axis=axis, **({} if mode == "raise" else {"mode": mode}))
    x = _as_array(a)
    if not inexact(x):
        return y, None
    n = x.size if axis is None else x.shape[axis]
    idx = np.asarray(indices)
    if mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        idx = np.clip(idx, 0, n - 1)

    def take_pullback(dy):
        g = _zero_cotangent(x)
        dyr = dy if is_complex(x) else real_part(dy)
        if axis is None:
            flat = np.ravel(g)
            np.add.at(flat, idx, dyr)
            g = np.reshape(flat, x.shape)
        else:
            np.add.at(g, (slice(None),) * (axis % x.ndim) + (idx,), dyr)
        return (cotangent(g, a),)

    return y, take_pullback


@numpy_rule(np.take_along_axis)
def take_along_axis_rule(arr, indices, axis=-1):
    y = np.take_along_axis(arr, indices, axis=axis)
    x = _as_array(arr)
    if not inexact(x):
        return y, None

    def take_along_axis_pullback(dy):
        dyr = dy if is_complex(x) else real_part(dy)
        if axis is None:
            flat = np.zeros_like(np.ravel(_zero_cotangent(x)))
            np.add.at(flat, indices, dyr)
            return (cotangent(np.reshape(flat, x.shape), arr),)
        g = _zero_cotangent(x)
        ax = axis % x.ndim
        index = []
        for d in range(x.ndim):
            if d == ax:
                index.append(indices)
            else:
                shape = [1] * x.ndim
                shape[d] = y.shape[d]
                index.append(np.reshape(np.arange(y.shape[d]), shape))
        np.add.at(g, tuple(index), dyr)
        return (cotangent(g, arr),)

    return y, take_along_axis_pullback


# -- compress / extract ---------------------------------------------------------------------------


def _compress_rule(name, condition, a, axis, out):
    check_no_out(name, out)
    y = np.compress(condition, a, axis=axis)
    x = _as_array(a)
    if not inexact(x):
        return y, None
    flat = axis is None
    n = x.size if flat else x.shape[axis]
    cond = np.ravel(np.asarray(condition, dtype=bool))[:n]
    kept = np.flatnonzero(cond)

    def compress_pullback(dy):
        dyr = dy if is_complex(x) else real_part(dy)
        if flat:
            g = np.ravel(_zero_cotangent(x))
            g[kept] = dyr
            g = np.reshape(g, x.shape)
        else:
            g = _zero_cotangent(x)
            g[(slice(None),) * (axis % x.ndim) + (kept,)] = dyr
        return g

    return y, compress_pullback


@numpy_rule(np.compress)
def compress_rule(condition, a, axis=None, out=None):
    y, pb = _compress_rule("np.compress", condition, a, axis, out)
    if pb is None:
        return y, None
    return y, lambda dy: (None, cotangent(pb(dy), a))


@numpy_method_rule(np.ndarray, "compress")
def ndarray_compress_rule(self, condition, axis=None, out=None):
    y, pb = _compress_rule("ndarray.compress", condition, self, axis, out)
    if pb is None:
        return y, None
    return y, lambda dy: (pb(dy), None)


@numpy_rule(np.extract)
def extract_rule(condition, arr):
    """``compress(ravel(condition), ravel(arr))``."""
    y = np.extract(condition, arr)
    x = _as_array(arr)
    if not inexact(x):
        return y, None
    kept = np.flatnonzero(np.ravel(condition))

    def extract_pullback(dy):
        g = np.ravel(_zero_cotangent(x))
        g[kept] = dy if is_complex(x) else real_part(dy)
        return None, cotangent(np.reshape(g, x.shape), arr)

    return y, extract_pullback


# -- choose -------------------------------------------------------------------------------------------


@numpy_rule(np.choose)
def choose_rule(a, choices, out=None, mode="raise"):
    """Each choice gets the cotangent where ``a`` picked it (exact zeros elsewhere), summed back
    over the dimensions it was broadcast along; ``a`` (integers) gets none."""
    check_no_out("np.choose", out)
    y = np.choose(a, choices, mode=mode)
    if not inexact(choices) or not inexact(y):
        return y, None
    n = len(choices)
    index = np.asarray(a)
    if mode == "wrap":
        index = index % n
    elif mode == "clip":
        index = np.clip(index, 0, n - 1)

    def choose_pullback(dy):
        cts = []
        for k in range(n):
            c = choices[k]
            cts.append(cotangent(np.where(index == k, dy, 0), c) if inexact(c) else None)
        if isinstance(choices, list):
            return None, cts
        if isinstance(choices, tuple):
            return None, tuple(cts)
        stacked = np.stack([ct if ct is not None else np.zeros(np.shape(choices)[1:]) for ct in cts])
        return None, cotangent(stacked, choices)

    return y, choose_pullback
