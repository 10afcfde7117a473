"""How the engine's operators meet NumPy arrays.

In: nothing. Out: registrations with the reverse runtime: NumPy arrays and
scalars take the registered ``operator`` rules directly; ``x[i]`` reads,
``x[i] = v`` writes (with undo, so earlier pullbacks see the values they
read) and ``for row in x`` iteration of ``ndarray``.
"""

import numpy as np

from ..errors import UnsupportedOperationError
from ..reverse import ops, shadow
from ..reverse.runtime import record_redo
from ..tangents import unbroadcast

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
    """``x[index] = value`` in place. Reverse: the cotangent of the overwritten entries (in
    ``x``'s shadow, where every later read of that memory left it) goes to ``value`` and is
    zeroed; the overwritten values are restored first so earlier pullbacks see them."""
    old = np.array(x[index], copy=True)
    x[index] = value
    repeated = _has_advanced(index)

    def ndarray_setitem_pullback(g):
        new = np.array(x[index], copy=True)
        x[index] = old
        record_redo(lambda: x.__setitem__(index, new))
        s = shadow.view(x)
        if s is None:
            return None, None, None
        if g is not None:
            s += g
        d = np.array(s[index], copy=True)
        s[index] = 0
        if repeated:
            d = np.where(_winners(x.shape, index), d, 0)
        dvalue = unbroadcast(d, value)
        if type(value) is np.ndarray:
            shadow.deposit(value, dvalue)
            dvalue = None
        return None, None, dvalue

    return x, ndarray_setitem_pullback


def shadow_getitem(x, index):
    """``x[index]``: a view of ``x`` shares ``x``'s shadow (nothing to do); a copy or a scalar
    scatters its cotangent into ``x``'s shadow, touching only the selected entries."""
    y = x[index]
    if x.dtype.kind not in "fc":
        return y, None
    if type(y) is np.ndarray and y.base is not None and y.flags.writeable and _root(y) is _root(x):
        def view_getitem_pullback(g):
            shadow.deposit(y, g)
            return None, None
        return y, view_getitem_pullback
    repeated = _has_advanced(index)

    def getitem_pullback(g):
        s = shadow.view(x)
        if x.dtype.kind != "c" and np.iscomplexobj(g):
            g = np.real(g)
        if repeated:
            np.add.at(s, index, g)
        else:
            s[index] += g
        return None, None

    return y, getitem_pullback


# --------------------------------------------------------------------------- shadow memory hooks

def _root(x):
    base = x.base
    while isinstance(base, np.ndarray):
        x = base
        base = x.base
    return x


def _view_into(buffer, root, x):
    if not (buffer.flags.c_contiguous or buffer.flags.f_contiguous):
        raise UnsupportedOperationError(
            "morula: an in-place write reached an array whose memory is not contiguous "
            "(created with custom strides); make a contiguous copy first (np.ascontiguousarray).")
    raw = buffer.reshape(-1, order="A").view(np.uint8)
    offset = x.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return np.ndarray(x.shape, dtype=x.dtype, buffer=raw, offset=offset, strides=x.strides)


def _zeros_for(root):
    if root.dtype.kind not in "fc":
        return None
    return np.zeros_like(root, order="K")


def _writeable_view_of(x, root):
    return x.flags.writeable


shadow.register_array_type(np.ndarray, _root, _view_into, _zeros_for, _writeable_view_of)


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


ops.register_type_op("getitem", np.ndarray, shadow_getitem)
ops.register_type_op("setitem", np.ndarray, ndarray_setitem)
ops.register_type_op("iterate", np.ndarray, ndarray_iterate)
ops.register_type_op("getitem", np.generic, scalar_getitem)
