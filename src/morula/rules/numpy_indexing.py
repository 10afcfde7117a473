"""The reverse rule for reading from a NumPy array with ``x[index]``.

In: nothing is registered here (the engine owns ``operator.getitem`` and
imports ``ndarray_getitem`` by name). Out: ``ndarray_getitem(x, index)``
returning ``(x[index], pullback)``; ``pullback(dy)`` returns
``(dense cotangent of x, None)``.

Basic indices (integers, slices, ``None``, ``...``) select each entry at most
once, so the cotangent is written with a plain assignment; boolean masks too.
Integer-array (advanced) indices may repeat entries, so their cotangents are
accumulated with ``np.add.at``.
"""

import numpy as np

from morula.rules.numpy_vspace import inexact, is_complex, real_part, with_dtype_of


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
