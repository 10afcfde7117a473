"""How the engine's operators meet NumPy arrays.

In: nothing. Out: registrations with the reverse runtime: NumPy arrays and
scalars take the registered ``operator`` rules directly; ``x[i]`` reads,
``x[i] = v`` writes (with undo, so earlier pullbacks see the values they
read) and ``for row in x`` iteration of ``ndarray``.
"""

import numpy as np

from ..errors import UnsupportedOperationError
from ..reverse import ops, runtime, shadow
from ..reverse.runtime import record_redo
from .registry import REGISTRY
from ..tangents import BATCH, CannotBatch, batch_of, unbroadcast

for _t in (np.ndarray, np.float64, np.float32, np.float16, np.complex128, np.complex64,
           np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.longdouble):
    ops.register_plain_type(_t)
# np.float64 is a Python float: inline scalar arithmetic applies to it too
runtime.FAST_FLOATS.add(np.float64)
runtime._CONSTANT_CLASSES.append(np.dtype)
REGISTRY.array_method_fallback = np.ndarray
REGISTRY.array_scalar_types = (np.generic,)


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


def _copy_of(v):
    """A copy of an entry or a part of an array (ndarray, or another array type's)."""
    if type(v) is not np.ndarray and type(v) in shadow.ARRAY_TYPES:
        return v.copy()
    return np.array(v, copy=True)


def _scalar_setitem(x, index, value):
    shadow.activate(x)
    old = x[index]
    x[index] = value

    def scalar_setitem_pullback(g):
        new = x[index]
        x[index] = old
        record_redo(lambda: x.__setitem__(index, new))
        s = shadow.view(x)
        if s is None:
            return None, None, None
        if g is not None:
            s += g
        d = s[index]
        s[index] = 0
        if type(value) in shadow.ARRAY_TYPES:
            shadow.deposit(value, unbroadcast(d, value))
            return None, None, None
        if type(value) is float and x.dtype.kind != "c":
            return None, None, unbroadcast(d, value)
        return None, None, d

    return x, scalar_setitem_pullback


def ndarray_setitem(x, index, value):
    """``x[index] = value`` in place. Reverse: the cotangent of the overwritten entries (in
    ``x``'s shadow, where every later read of that memory left it) goes to ``value`` and is
    zeroed; the overwritten values are restored first so earlier pullbacks see them."""
    if type(index) is int and x.ndim == 1 or type(index) is tuple and len(index) == x.ndim \
            and all(type(i) is int for i in index):
        return _scalar_setitem(x, index, value)
    shadow.activate(x)
    old = _copy_of(x[index])
    x[index] = value
    repeated = _has_advanced(index)

    def ndarray_setitem_pullback(g):
        new = _copy_of(x[index])
        x[index] = old
        record_redo(lambda: x.__setitem__(index, new))
        s = shadow.view(x)
        if s is None:
            return None, None, None
        if g is not None:
            s += g
        d = _copy_of(s[index])
        s[index] = 0
        if repeated:
            d = np.where(_winners(x.shape, index), d, 0)
        if isinstance(value, (list, tuple)):   # x[0:2] = (a, 3.0): the values' own structure
            return None, None, _structured(np.broadcast_to(d, np.shape(d)), value)
        dvalue = unbroadcast(d, value)
        if type(value) in shadow.ARRAY_TYPES:
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
    repeated = type(index) is not int and _has_advanced(index)

    def getitem_pullback(g):
        s = shadow.view(x)
        if x.dtype.kind != "c" and np.iscomplexobj(g):
            g = np.real(g)
        where = index
        if BATCH.size is not None:   # s and g carry a leading batch axis
            where = _batch_index(index)
            if where is None:
                for b in range(BATCH.size):
                    _scatter(s[b], index, g[b], repeated)
                return None, None
        _scatter(s, where, g, repeated)
        return None, None

    return y, getitem_pullback


def _scatter(s, index, g, repeated):
    if repeated:
        np.add.at(s, index, g)
    else:
        s[index] += g


def _batch_index(index):
    """``index`` for arrays with one more leading axis, or None when prepending that axis would
    move the selected entries' axes (advanced indices separated by slices go first)."""
    parts = index if type(index) is tuple else (index,)
    advanced, scalar_ints = [], []
    for k, i in enumerate(parts):
        if i is None or i is Ellipsis or type(i) is slice:
            continue
        if type(i) is bool or isinstance(i, np.bool_):
            return None
        if isinstance(i, (int, np.integer)):
            scalar_ints.append(k)
        else:
            advanced.append(k)
    if advanced:
        positions = sorted(advanced + scalar_ints)
        if positions[-1] - positions[0] + 1 != len(positions):
            return None
    return (slice(None),) + parts


# --------------------------------------------------------------------------- shadow memory hooks

def _root(x):
    """The array owning ``x``'s memory. A view whose elements overlap (read-only views such as
    ``np.broadcast_to``, or zero strides) is its own root: writing cotangents through it into the
    base's buffer would make the overlapping entries overwrite each other."""
    base = x.base
    if base is None and x.flags.c_contiguous:
        return x   # the common case: owns its memory, laid out without overlaps
    if _overlapping(x):
        return x
    while isinstance(base, np.ndarray):
        if _overlapping(base):
            return base
        x = base
        base = x.base
    return x


def _overlapping(x):
    for n, stride in zip(x.shape, x.strides):
        if stride == 0 and n > 1:
            return True
    return x.base is not None and not x.flags.writeable


# buffer type -> view_into(buffer, root, x) for the buffers of another array type an ndarray's
# shadow may hold (dual arrays' cotangents: see shadow.PROMOTE)
FOREIGN_VIEWS = {}


def _view_into(buffer, root, x):
    if type(buffer) is not np.ndarray and type(buffer) in FOREIGN_VIEWS:
        return FOREIGN_VIEWS[type(buffer)](buffer, root, x)
    if not (buffer.flags.c_contiguous or buffer.flags.f_contiguous):
        raise UnsupportedOperationError(
            "morula: an in-place write reached an array whose memory is not contiguous "
            "(created with custom strides); make a contiguous copy first (np.ascontiguousarray).")
    if x.size == 0:
        return np.zeros(x.shape, dtype=x.dtype)   # nothing to share (and no memory to view)
    raw = buffer.reshape(-1, order="A").view(np.uint8)
    offset = x.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return np.ndarray(x.shape, dtype=x.dtype, buffer=raw, offset=offset, strides=x.strides)


def _zeros_for(root):
    if root.dtype.kind not in "fc":
        return None
    return np.zeros_like(root, order="K")


def _writeable_view_of(x, root):
    return x.flags.writeable


def _batched_zeros_for(root, n):
    """Zeros of shape ``(n,) + root.shape``; entry ``b`` is laid out like ``_zeros_for(root)`` so
    that views of the root map onto it the same way (``_batched_view_into``)."""
    if root.dtype.kind not in "fc":
        return None
    if root.size == 0:
        return np.zeros((n,) + root.shape, dtype=root.dtype)
    entry = np.empty_like(root, order="K")
    raw = np.zeros(n * root.size, dtype=root.dtype)
    return np.ndarray((n,) + root.shape, dtype=root.dtype, buffer=raw,
                      strides=(root.size * root.itemsize,) + entry.strides)


def _batched_view_into(buffer, root, x):
    if x.size == 0:
        return np.zeros((buffer.shape[0],) + x.shape, dtype=x.dtype)   # nothing to share
    if buffer.flags.c_contiguous:   # entries laid out like a C-contiguous root, one after another
        raw = buffer.reshape(-1)
    else:                           # from _batched_zeros_for: over a flat array of its own
        raw = buffer.base
        while isinstance(raw, np.ndarray) and isinstance(raw.base, np.ndarray):
            raw = raw.base
        if not isinstance(raw, np.ndarray) or raw.ndim != 1 or not raw.flags.c_contiguous:
            raise CannotBatch("a batched cotangent buffer of unexpected layout")
    start = buffer.__array_interface__["data"][0] - raw.__array_interface__["data"][0]
    offset = x.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return np.ndarray((buffer.shape[0],) + x.shape, dtype=x.dtype, buffer=raw.view(np.uint8),
                      offset=start + offset, strides=(buffer.strides[0],) + x.strides)


def _stack_cotangents(values):
    return np.stack([np.asarray(v) for v in values])


shadow.register_array_type(np.ndarray, _root, _view_into, _zeros_for, _writeable_view_of,
                           shadow.BatchHooks(_batched_zeros_for, _batched_view_into, _stack_cotangents))


def _structured(d, value):
    """Cotangent ``d`` (array, the write's shape) for ``value``, a (nested) list/tuple of numbers
    or arrays broadcast into it."""
    if isinstance(value, (list, tuple)):
        d = np.asarray(d)
        if d.ndim == 0 or d.shape[-len(np.shape(value)):] != np.shape(value):
            d = unbroadcast(d, np.zeros(np.shape(value)))
        parts = [_structured(d[..., i] if d.ndim > 1 and np.ndim(value) == 1 else d[i], v)
                 for i, v in enumerate(value)]
        return type(value)(parts)
    return unbroadcast(d, value)


def ndarray_iterate(x):
    rows = list(x)

    def ndarray_iteration_pullback(cts):
        if all(c is None for c in cts):
            return None
        dtype = x.dtype if x.dtype.kind in "fc" else float
        n = next((batch_of(c) for c in cts if c is not None), None)
        dx = np.zeros(x.shape if n is None else (n,) + x.shape, dtype=dtype)
        for i, c in enumerate(cts):
            if c is not None:
                if n is None:
                    dx[i] = c
                else:
                    dx[:, i] = c
        # into x's shadow, as every array rule's cotangents: an earlier write into x through a
        # view (v = x[1:]; v *= 2) reverses on the shadow, and must see these too
        shadow.deposit(x, dx)
        return None

    return rows, ndarray_iteration_pullback


def scalar_getitem(x, index):
    return x[index], (lambda g: (g, None))


ops.register_type_op("getitem", np.ndarray, shadow_getitem)


# --------------------------------------------------------------------------- other in-place writes

def _undo_write(x, index, old):
    new = np.array(x[index], copy=True)
    x[index] = old
    record_redo(lambda: x.__setitem__(index, new))


def out_argument(rule, args, kwargs, names, call_rule):
    """``f(..., out=o)``: compute ``f(...)`` as usual, then write it into ``o`` (``o[...] = y``)."""
    o = kwargs["out"]
    if type(o) is tuple:
        if len(o) != 1:
            raise UnsupportedOperationError("morula: out= with several output arrays is not supported")
        o = o[0]
    rest = {k: v for k, v in kwargs.items() if k != "out"}
    rest_names = tuple(n for n in names if n != "out")
    y, pb = call_rule(rule, args, rest, rest_names)
    y, y_pb = shadow.wrap_rule(y, pb, tuple(args) + tuple(rest[n] for n in rest_names))
    _, write_pb = ndarray_setitem(o, Ellipsis, y)
    n_rest = len(args) + len(rest_names)

    def out_argument_pullback(g):
        # the written entries' cotangent moves from shadow(o) to y (its shadow, or returned
        # when y is a scalar such as a 0-d result)
        _, _, dy = write_pb(g)
        cts = list(y_pb(dy) if y_pb is not None else (None,) * n_rest)
        by_name = dict(zip(rest_names, cts[len(args):]))
        return tuple(cts[:len(args)]) + tuple(by_name.get(n) for n in names)

    return o, shadow.ShadowPullback(out_argument_pullback, (), o, "call", 0)


runtime.OUT_HANDLER.append(out_argument)


def copyto_rule(dst, src, *rest, **kwargs):
    nargs = 2 + len(rest)
    where = kwargs.get("where", rest[1] if len(rest) > 1 else True)
    mask = where if where is not True else Ellipsis
    shadow.activate(dst)
    old = np.array(dst[mask], copy=True)
    np.copyto(dst, src, *rest, **kwargs)

    def copyto_pullback(g):
        _undo_write(dst, mask, old)
        s = shadow.view(dst)
        if s is None:
            return (None,) * nargs
        if g is not None:
            s += g
        d = np.zeros_like(s)
        d[mask] = s[mask]
        s[mask] = 0
        dsrc = unbroadcast(d, src)
        if type(src) is np.ndarray:
            shadow.deposit(src, dsrc)
            dsrc = None
        return (None, dsrc) + (None,) * (nargs - 2)

    return None, copyto_pullback


REGISTRY.add_function(np.copyto, copyto_rule)


def fill_method(x, value):
    shadow.activate(x)
    old = x.copy()
    x.fill(value)

    def fill_pullback(g, seed):
        _undo_write(x, Ellipsis, old)
        s = shadow.view(x)
        if s is None:
            return seed, None
        if seed is not None:
            s += seed
        dvalue = s.sum()
        s[...] = 0
        dvalue = float(np.real(dvalue)) if isinstance(value, (int, float)) else dvalue
        return None, dvalue

    return None, fill_pullback


REGISTRY.add_method(np.ndarray, "fill", fill_method, mutating=True)


def ufunc_at_method(ufunc, x, index, *values):
    if ufunc not in (np.add, np.subtract):
        raise UnsupportedOperationError(
            f"morula: {ufunc.__name__}.at is not differentiable yet (only np.add.at and "
            f"np.subtract.at). Fix: accumulate with np.add.at of the terms, or write a loop.")
    shadow.activate(x)
    old = np.array(x[index], copy=True)
    ufunc.at(x, index, *values)
    sign = 1.0 if ufunc is np.add else -1.0

    def ufunc_at_pullback(g, seed):
        _undo_write(x, index, old)
        s = shadow.view(x)
        if s is not None and g is not None:
            s += g
        if not values or s is None:
            return (None, None, None) + (None,) * len(values)
        value = values[0]
        gathered = s[index] * sign   # every occurrence of a repeated index gets its entry's cotangent
        dvalue = unbroadcast(gathered, value)
        if type(value) is np.ndarray:
            shadow.deposit(value, dvalue)
            dvalue = None
        return None, None, None, dvalue

    return None, ufunc_at_pullback


REGISTRY.add_method(np.ufunc, "at", ufunc_at_method, mutating=True)


def fill_diagonal_rule(a, val, *wrap_arg, wrap=False):
    """``np.fill_diagonal(a, val)`` in place: ``a[diagonal] = val`` (``val`` repeats along it)."""
    wrap = wrap_arg[0] if wrap_arg else wrap
    rest = (None,) * len(wrap_arg)
    index = np.nonzero(_diagonal_mask(a.shape, wrap))
    count = index[0].size
    values = np.resize(np.asarray(val), count) if np.ndim(val) else val
    _, pb = ndarray_setitem(a, index, values)
    fills_scalar = np.ndim(val) == 0

    def fill_diagonal_pullback(g):
        _, _, dvalues = pb(g)
        if dvalues is None and type(values) is np.ndarray:
            dvalues = shadow.take(values)   # the write deposited it on the repeated values
        if dvalues is None:
            return (None, None) + rest
        if fills_scalar:
            dval = np.sum(dvalues)
            return (None, (float(np.real(dval)) if isinstance(val, (int, float)) else dval)) + rest
        # NumPy repeats a short val along the diagonal: fold the cotangent back onto val
        flat = np.zeros(np.size(val), dtype=np.result_type(dvalues, float))
        np.add.at(flat, np.arange(dvalues.size) % np.size(val), np.ravel(dvalues))
        return (None, flat.reshape(np.shape(val))) + rest

    return None, fill_diagonal_pullback


def _diagonal_mask(shape, wrap):
    probe = np.zeros(shape, dtype=bool)
    np.fill_diagonal(probe, True, wrap=wrap)
    return probe


REGISTRY.add_function(np.fill_diagonal, fill_diagonal_rule)


def _refuse(what, fix):
    def refusing_method(x, *args, **kwargs):
        raise UnsupportedOperationError(f"morula cannot differentiate {what}: {fix}")
    return refusing_method


REGISTRY.add_method(np.ndarray, "resize", _refuse(
    "ndarray.resize (it reallocates the array in place)", "use np.resize(x, shape), which returns a new array."),
    mutating=True)
REGISTRY.add_method(np.ndarray, "sort", _refuse(
    "ndarray.sort (an in-place sort)", "use y = np.sort(x)."), mutating=True)
REGISTRY.add_method(np.ndarray, "partition", _refuse(
    "ndarray.partition (in place)", "use y = np.partition(x, k)."), mutating=True)
REGISTRY.add_method(np.ndarray, "put", _refuse(
    "ndarray.put (in place)", "write x[np.unravel_index(idx, x.shape)] = v, or x.flat-free indexing."),
    mutating=True)
for _fn, _fix in ((np.put, "use x[np.unravel_index(idx, x.shape)] = v."),
                  (np.place, "use x[mask] = values."), (np.putmask, "use x[mask] = values."),
                  (np.random.shuffle, "use x = x[rng.permutation(len(x))] (indexing keeps the gradient).")):
    REGISTRY.add_function(_fn, _refuse(f"np.{_fn.__name__} (it writes into its argument)", _fix))
ops.register_type_op("setitem", np.ndarray, ndarray_setitem)
ops.register_type_op("iterate", np.ndarray, ndarray_iterate)
ops.register_type_op("getitem", np.generic, scalar_getitem)


# --------------------------------------------------------------------------- stride tricks

def sliding_window_view_rule(x, window_shape, axis=None, *, subok=False, writeable=False):
    """Overlapping windows (a read-only view): each window's cotangent is added back to the
    entries it covers."""
    if writeable:
        # the windows overlap: a write through one changes entries that other windows and x
        # read, which the shadow of an overlapping view cannot route back
        raise UnsupportedOperationError(
            f"{runtime._user_site()}: morula cannot differentiate through writeable "
            "sliding_window_view windows. Fix: keep writeable=False and write into x itself "
            "(x[i:i + k] = ...).")
    y = np.lib.stride_tricks.sliding_window_view(x, window_shape, axis, subok=subok, writeable=writeable)
    if x.dtype.kind not in "fc":
        return y, None
    positions = np.lib.stride_tricks.sliding_window_view(
        np.arange(x.size).reshape(x.shape), window_shape, axis)
    nargs = 2 + (axis is not None)

    def sliding_window_view_pullback(g):
        dx = np.zeros(x.size, dtype=np.result_type(x.dtype, getattr(g, "dtype", x.dtype)))
        np.add.at(dx, positions.ravel(), np.ravel(g))
        dx = dx.reshape(x.shape).astype(x.dtype, copy=False)
        return (dx,) + (None,) * (nargs - 1)
    return y, sliding_window_view_pullback


REGISTRY.add_function(np.lib.stride_tricks.sliding_window_view, sliding_window_view_rule)
REGISTRY.add_function(np.lib.stride_tricks.as_strided, _refuse(
    "np.lib.stride_tricks.as_strided (its elements may overlap in ways morula cannot follow)",
    "use np.lib.stride_tricks.sliding_window_view, np.broadcast_to or explicit indexing."))


# --------------------------------------------------------------------------- np.vectorize

def _vectorize_call(vec, args, kwargs):
    """``np.vectorize(f)(x, y)``: ``f`` runs (differentiated) on every element of the broadcast
    arguments; each element's cotangent comes back through its own pullback."""
    if kwargs or vec.signature is not None or vec.excluded:
        raise UnsupportedOperationError(
            "morula differentiates np.vectorize(f)(*arrays) of a scalar function with positional "
            "arguments only (no signature=, excluded= or keyword arguments).")
    arrays = np.broadcast_arrays(*[np.asarray(a) for a in args])
    shape = arrays[0].shape if arrays else ()
    outputs, pullbacks = [], []
    for index in np.ndindex(shape):
        out, pb = runtime.call(vec.pyfunc, *[a[index].item() for a in arrays])
        outputs.append(out)
        pullbacks.append(pb)
    dtype = np.dtype(vec.otypes[0]) if vec.otypes else np.result_type(*[np.asarray(o) for o in outputs]) \
        if outputs else np.float64
    result = np.array(outputs, dtype=dtype).reshape(shape)

    def vectorize_pullback(g, seed=None):
        taken = shadow.take(result)
        g = taken if g is None else (g if taken is None else g + taken)
        if g is None and not effects:
            return (seed,) + (None,) * len(args)
        g = np.broadcast_to(np.asarray(0.0 if g is None else g), shape)
        grads = [np.zeros(shape) for _ in args]
        indices = list(np.ndindex(shape))
        for k in range(len(indices) - 1, -1, -1):   # reverse order: the calls may write in place
            index, pb = indices[k], pullbacks[k]
            if pb is None or g[index] == 0 and not shadow.must_run(pb):
                continue
            cts = pb(float(g[index]))
            for j, c in enumerate(cts[1:]):
                if c is not None:
                    grads[j][index] += c
        cts = []
        for a, d in zip(args, grads):
            if isinstance(a, (int, bool)) or getattr(getattr(a, "dtype", None), "kind", "f") not in "fc":
                cts.append(None)
            else:
                cts.append(unbroadcast(d, a))
        return (seed,) + tuple(cts)

    effects = any(shadow.must_run(pb) for pb in pullbacks)
    return result, (shadow.ShadowPullback(vectorize_pullback, (), result, "call", 0) if effects
                    else vectorize_pullback)


np.vectorize.__morula_call__ = staticmethod(_vectorize_call)


def _vectorize_jvp(vec, T, args, targs, kwargs, tkwargs):
    """Forward mode: ``f`` runs (in forward mode) on every element of the broadcast arguments."""
    from ..forward import runtime as forward_runtime
    if kwargs or vec.signature is not None or vec.excluded:
        raise UnsupportedOperationError(
            "morula differentiates np.vectorize(f)(*arrays) of a scalar function with positional "
            "arguments only (no signature=, excluded= or keyword arguments).")
    arrays = np.broadcast_arrays(*[np.asarray(a) for a in args])
    tangents = [np.broadcast_to(np.asarray(t), a.shape) if t is not None else None for a, t in zip(arrays, targs)]
    shape = arrays[0].shape if arrays else ()
    outputs, touts = [], []
    for index in np.ndindex(shape):
        out, tout = forward_runtime.dispatch(
            T, vec.pyfunc, tuple(a[index].item() for a in arrays),
            tuple(t[index].item() if t is not None else None for t in tangents), None, None)
        outputs.append(out)
        touts.append(0.0 if tout is None else tout)
    dtype = np.dtype(vec.otypes[0]) if vec.otypes else np.result_type(*[np.asarray(o) for o in outputs]) \
        if outputs else np.float64
    result = np.array(outputs, dtype=dtype).reshape(shape)
    if dtype.kind not in "fc":
        return result, None
    return result, np.array(touts, dtype=dtype).reshape(shape)


np.vectorize.__morula_jvp__ = _vectorize_jvp


shadow.batch_capable(shadow_getitem)
