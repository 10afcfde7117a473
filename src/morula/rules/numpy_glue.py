"""How the engine's operators meet NumPy arrays.

In: nothing. Out: registrations with the reverse runtime: NumPy arrays and
scalars take the registered ``operator`` rules directly; ``x[i]`` reads,
``x[i] = v`` writes (with undo, so earlier pullbacks see the values they
read) and ``for row in x`` iteration of ``ndarray``.
"""

import numpy as np

from ..reverse import ops
from ..reverse.runtime import record_redo
from ..tangents import unbroadcast
from .numpy_indexing import ndarray_getitem

for _t in (np.ndarray, np.float64, np.float32, np.float16, np.complex128, np.complex64,
           np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.longdouble):
    ops.register_plain_type(_t)


def _winners(shape, index):
    """For an index that may repeat entries: mask of the value entries whose write survives."""
    positions = np.arange(int(np.prod(shape))).reshape(shape)[index]
    flat = positions.ravel()
    last = {}
    for i, p in enumerate(flat):
        last[p] = i
    mask = np.zeros(flat.shape, dtype=bool)
    mask[list(last.values())] = True
    return mask.reshape(positions.shape)


def _has_advanced(index):
    parts = index if type(index) is tuple else (index,)
    for i in parts:
        if i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice, bool)):
            continue
        dtype = getattr(i, "dtype", None)
        if dtype is not None and dtype.kind == "b":
            continue
        return True
    return False


def ndarray_setitem(x, index, value):
    old = np.array(x[index], copy=True)
    x[index] = value
    repeated = _has_advanced(index)

    def ndarray_setitem_pullback(g):
        new = np.array(x[index], copy=True)
        x[index] = old                      # undo: earlier pullbacks see what they read
        record_redo(lambda: x.__setitem__(index, new))
        if g is None:
            return None, None, None
        dvalue = g[index]
        if repeated:
            dvalue = np.where(_winners(x.shape, index), dvalue, 0)
        dx = g.copy()
        dx[index] = 0
        return dx, None, unbroadcast(dvalue, value)

    return x, ndarray_setitem_pullback


def ndarray_iterate(x):
    rows = list(x)

    def ndarray_iteration_pullback(cts):
        if all(c is None for c in cts):
            return None
        dx = np.zeros_like(x, dtype=x.dtype if x.dtype.kind in "fc" else float)
        for i, c in enumerate(cts):
            if c is not None:
                dx[i] = c
        return dx

    return rows, ndarray_iteration_pullback


def scalar_getitem(x, index):
    return x[index], (lambda g: (g, None))


ops.register_type_op("getitem", np.ndarray, ndarray_getitem)
ops.register_type_op("setitem", np.ndarray, ndarray_setitem)
ops.register_type_op("iterate", np.ndarray, ndarray_iterate)
ops.register_type_op("getitem", np.generic, scalar_getitem)
