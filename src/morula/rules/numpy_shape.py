"""Reverse rules for NumPy's shape and layout functions.

In: nothing (importing registers the rules). Out: rules for ``np.reshape``,
``transpose``, ``squeeze``, ``expand_dims``, ``concatenate``, ``stack``,
``hstack``, ``vstack``, ``broadcast_to``, ``ravel``, ``swapaxes``,
``moveaxis``, ``flip``, ``atleast_1d/2d/3d``, ``copy``, ``roll``, ``tile``,
``repeat``, ``diagonal``, ``trace``, ``diag``, ``sort``, ``split``,
``array_split``, ``pad`` (constant mode) and the ``ndarray`` methods
``reshape``, ``transpose``, ``ravel``, ``flatten``, ``squeeze``, ``swapaxes``,
``copy``, ``astype``, ``repeat``, ``diagonal``, ``trace``, plus the attributes
``T``, ``mT``, ``real`` and ``imag``.

All of these are linear and move entries around, so each pullback applies the
inverse movement to the cotangent. Functions that take a sequence of arrays
return a sequence cotangent of the same type (list or tuple).
"""

import numpy as np

from morula.errors import UnsupportedOperationError
from morula.rules.numpy_vspace import (
    check_no_out,
    cotangent,
    inexact,
    is_complex,
    numpy_attr_rule,
    numpy_method_rule,
    numpy_rule,
    real_part,
    shape_of,
    with_dtype_of,
)


def _kw(**pairs):
    """``name=(value, default)`` pairs -> the keywords whose value is not NumPy's default.

    Other array libraries (Dask, CuPy) lack some of NumPy's keywords; passing only
    non-default ones keeps the rules working there.
    """
    return {k: v for k, (v, default) in pairs.items() if not (v is default or v == default)}


def _back(dy, x, shape_fn):
    """``shape_fn(dy)`` as the cotangent of ``x`` (``None`` for integer operands)."""
    if not inexact(x):
        return None
    return cotangent(shape_fn(dy), x)


def _reshape_back(dy, x, order="C"):
    if not inexact(x):
        return None
    return cotangent(np.reshape(dy, shape_of(x), **_kw(order=(_inverse_order(order, x), "C"))), x)


def _inverse_order(order, x):
    """The order that undoes a reshape done with ``order`` ('A' is 'F' only for Fortran-contiguous x)."""
    order = (order or "C").upper()
    if order == "F":
        return "F"
    flags = getattr(x, "flags", None)
    if order == "A" and flags is not None and flags.f_contiguous and not flags.c_contiguous:
        return "F"
    return "C"


def _constant_or(y, x, pullback):
    return (y, pullback) if inexact(x) and inexact(y) else (y, None)


# -- reshape / ravel / squeeze / expand_dims ------------------------------------------------


@numpy_rule(np.reshape)
def reshape_rule(a, shape=None, order="C", *, newshape=None, copy=None):
    if shape is None and newshape is not None:
        shape = newshape
    y = np.reshape(a, shape, **_kw(order=(order, "C"), copy=(copy, None)))

    def reshape_pullback(dy):
        return (_reshape_back(dy, a, order),)

    return _constant_or(y, a, reshape_pullback)


def _method_shape(args):
    """``x.reshape(2, 3)`` and ``x.reshape((2, 3))`` (and ``x.transpose(1, 0)`` / ``((1, 0))``)."""
    if len(args) == 1 and (args[0] is None or isinstance(args[0], (tuple, list))):
        return args[0]
    return args


@numpy_method_rule(np.ndarray, "reshape")
def ndarray_reshape_rule(self, *shape, order="C", **kwargs):
    if not shape and "shape" in kwargs:
        shape = (kwargs.pop("shape"),)
    y = self.reshape(*shape, order=order, **kwargs)

    def reshape_pullback(dy):
        return (_reshape_back(dy, self, order),)

    return _constant_or(y, self, reshape_pullback)


def _ravel_pullback_for(x, order, name):
    """Undo ``ravel``/``flatten`` with ``order``, reading the order NumPy actually used."""
    order = (order or "C").upper()
    flags = getattr(x, "flags", None)
    c_contig = flags is None or flags.c_contiguous
    f_contig = flags is not None and flags.f_contiguous
    perm = None
    if order == "F" or (order in ("A", "K") and f_contig and not c_contig):
        used = "F"
    elif order == "K" and not c_contig:
        strides = getattr(x, "strides", None)
        if strides is None or any(st < 0 for st in strides):
            raise NotImplementedError(
                f"morula: {name}(order='K') of an array with negative strides has no rule; "
                f"use order='C'"
            )
        # 'K' reads memory order: C order of the axes sorted by decreasing stride
        perm = sorted(range(x.ndim), key=lambda i: -strides[i])
        used = "C"
    else:
        used = "C"

    def ravel_pullback(dy):
        if not inexact(x):
            return (None,)
        if perm is None:
            return (cotangent(np.reshape(dy, shape_of(x), **_kw(order=(used, "C"))), x),)
        shape = tuple(x.shape[i] for i in perm)
        g = np.transpose(np.reshape(dy, shape), _inverse_permutation(perm))
        return (cotangent(g, x),)

    return ravel_pullback


@numpy_rule(np.ravel)
def ravel_rule(a, order="C"):
    y = np.ravel(a, **_kw(order=(order, "C")))
    if not inexact(a):
        return y, None
    return _constant_or(y, a, _ravel_pullback_for(a, order, "np.ravel"))


@numpy_method_rule(np.ndarray, "ravel")
def ndarray_ravel_rule(self, order="C"):
    y = self.ravel(order)
    return _constant_or(y, self, _ravel_pullback_for(self, order, "ndarray.ravel"))


@numpy_method_rule(np.ndarray, "flatten")
def ndarray_flatten_rule(self, order="C"):
    y = self.flatten(order)
    return _constant_or(y, self, _ravel_pullback_for(self, order, "ndarray.flatten"))


@numpy_rule(np.squeeze)
@numpy_method_rule(np.ndarray, "squeeze")
def squeeze_rule(a, axis=None):
    y = np.squeeze(a, axis=axis)

    def squeeze_pullback(dy):
        return (_reshape_back(dy, a),)

    return _constant_or(y, a, squeeze_pullback)


@numpy_rule(np.expand_dims)
def expand_dims_rule(a, axis):
    y = np.expand_dims(a, axis)

    def expand_dims_pullback(dy):
        return (_reshape_back(dy, a),)

    return _constant_or(y, a, expand_dims_pullback)


def _atleast_rule_for(fn):
    def atleast_rule(*arys):
        y = fn(*arys)

        def atleast_pullback(dy):
            if len(arys) == 1:
                return (_reshape_back(dy, arys[0]),)
            return tuple(
                _reshape_back(d, a) if d is not None else None for d, a in zip(dy, arys)
            )

        if not any(inexact(a) for a in arys):
            return y, None
        return y, atleast_pullback

    numpy_rule(fn)(atleast_rule)
    return atleast_rule


for _fn in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    _atleast_rule_for(_fn)


# -- transposes ---------------------------------------------------------------------------------


def _inverse_permutation(axes):
    inv = [0] * len(axes)
    for i, p in enumerate(axes):
        inv[p] = i
    return tuple(inv)


def _transpose_pullback_for(a, axes):
    def transpose_pullback(dy):
        if axes is None:
            return (_back(dy, a, np.transpose),)
        nd = len(axes)
        inv = _inverse_permutation([int(p) % nd for p in axes])
        return (_back(dy, a, lambda g: np.transpose(g, inv)),)

    return transpose_pullback


@numpy_rule(np.transpose)
def transpose_rule(a, axes=None):
    y = np.transpose(a, axes)
    return _constant_or(y, a, _transpose_pullback_for(a, axes))


@numpy_method_rule(np.ndarray, "transpose")
def ndarray_transpose_rule(self, *axes):
    axes = _method_shape(axes) if axes else None
    if axes is not None and len(axes) == 0:
        axes = None
    y = np.transpose(self, axes)
    return _constant_or(y, self, _transpose_pullback_for(self, axes))


@numpy_attr_rule(np.ndarray, "T")
def ndarray_T_rule(obj):
    def T_pullback(dy):
        return (_back(dy, obj, np.transpose),)

    return _constant_or(obj.T, obj, T_pullback)


@numpy_attr_rule(np.ndarray, "mT")
def ndarray_mT_rule(obj):
    def mT_pullback(dy):
        return (_back(dy, obj, lambda g: np.swapaxes(g, -1, -2)),)

    return _constant_or(np.swapaxes(obj, -1, -2), obj, mT_pullback)


@numpy_rule(np.swapaxes)
@numpy_method_rule(np.ndarray, "swapaxes")
def swapaxes_rule(a, axis1, axis2):
    y = np.swapaxes(a, axis1, axis2)

    def swapaxes_pullback(dy):
        return (_back(dy, a, lambda g: np.swapaxes(g, axis1, axis2)),)

    return _constant_or(y, a, swapaxes_pullback)


@numpy_rule(np.moveaxis)
def moveaxis_rule(a, source, destination):
    y = np.moveaxis(a, source, destination)

    def moveaxis_pullback(dy):
        return (_back(dy, a, lambda g: np.moveaxis(g, destination, source)),)

    return _constant_or(y, a, moveaxis_pullback)


@numpy_rule(np.flip)
def flip_rule(m, axis=None):
    y = np.flip(m, axis=axis)

    def flip_pullback(dy):
        return (_back(dy, m, lambda g: np.flip(g, axis=axis)),)

    return _constant_or(y, m, flip_pullback)


@numpy_rule(np.broadcast_to)
def broadcast_to_rule(array, shape, subok=False):
    y = np.broadcast_to(array, shape, **_kw(subok=(subok, False)))

    def broadcast_to_pullback(dy):
        return (cotangent(dy, array) if inexact(array) else None,)

    return _constant_or(y, array, broadcast_to_pullback)


# -- joining ------------------------------------------------------------------------------------


def _sequence_cotangent(arrays, parts):
    """One cotangent per element of the sequence ``arrays``, in a container of the same type."""
    cts = [_reshape_back(p, a) for p, a in zip(parts, arrays)]
    return list(cts) if isinstance(arrays, list) else tuple(cts)


def _split_along(dy, sizes, axis):
    """Pieces of ``dy`` along ``axis`` with the given sizes (views: the pullback does not write)."""
    pieces = []
    start = 0
    nd = dy.ndim
    for n in sizes:
        index = (slice(None),) * (axis % nd) + (slice(start, start + n),)
        pieces.append(dy[index])
        start += n
    return pieces


def _any_inexact(arrays):
    return any(inexact(a) for a in arrays)


@numpy_rule(np.concatenate)
def concatenate_rule(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    check_no_out("np.concatenate", out)
    y = np.concatenate(arrays, axis=axis, **_kw(dtype=(dtype, None), casting=(casting, "same_kind")))
    if not _any_inexact(arrays) or not inexact(y):
        return y, None
    if axis is None:
        sizes = [int(np.size(a)) for a in arrays]
    else:
        sizes = [shape_of(a)[axis] for a in arrays]

    def concatenate_pullback(dy):
        parts = _split_along(dy, sizes, 0 if axis is None else axis)
        return (_sequence_cotangent(arrays, parts),)

    return y, concatenate_pullback


@numpy_rule(np.stack)
def stack_rule(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    check_no_out("np.stack", out)
    y = np.stack(arrays, axis=axis, **_kw(dtype=(dtype, None), casting=(casting, "same_kind")))
    if not _any_inexact(arrays) or not inexact(y):
        return y, None
    ax = axis % y.ndim

    def stack_pullback(dy):
        parts = [dy[(slice(None),) * ax + (i,)] for i in range(len(arrays))]
        return (_sequence_cotangent(arrays, parts),)

    return y, stack_pullback


def _join_rule_for(fn, axis_for, promote):
    def join_rule(tup, *, dtype=None, casting="same_kind"):
        y = fn(tup, **_kw(dtype=(dtype, None), casting=(casting, "same_kind")))
        if not _any_inexact(tup) or not inexact(y):
            return y, None
        promoted = [promote(a) for a in tup]
        axis = axis_for(promoted)
        sizes = [shape_of(p)[axis] for p in promoted]

        def join_pullback(dy):
            parts = _split_along(dy, sizes, axis)
            return (_sequence_cotangent(tup, parts),)

        join_pullback.__name__ = f"{fn.__name__}_pullback"
        return y, join_pullback

    join_rule.__name__ = f"{fn.__name__}_rule"
    numpy_rule(fn)(join_rule)
    return join_rule


hstack_rule = _join_rule_for(
    np.hstack, lambda ps: 0 if ps and ps[0].ndim == 1 else 1, np.atleast_1d
)
vstack_rule = _join_rule_for(np.vstack, lambda ps: 0, np.atleast_2d)


# -- copies and casts ---------------------------------------------------------------------------


@numpy_rule(np.copy)
def copy_rule(a, order="K", subok=False):
    y = np.copy(a, **_kw(order=(order, "K"), subok=(subok, False)))

    def copy_pullback(dy):
        return (cotangent(dy, a) if inexact(a) else None,)

    return _constant_or(y, a, copy_pullback)


@numpy_method_rule(np.ndarray, "copy")
def ndarray_copy_rule(self, order="C"):
    y = self.copy(order)

    def copy_pullback(dy):
        return (cotangent(dy, self),)

    return _constant_or(y, self, copy_pullback)


@numpy_method_rule(np.ndarray, "astype")
def ndarray_astype_rule(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
    y = self.astype(dtype, order=order, casting=casting, subok=subok, copy=copy)

    def astype_pullback(dy):
        return (with_dtype_of(dy, self),)  # cast back (complex -> real keeps the real part)

    return _constant_or(y, self, astype_pullback)


# -- complex parts as attributes -------------------------------------------------------------------


@numpy_attr_rule(np.ndarray, "real")
def ndarray_real_rule(obj):
    def real_pullback(dy):
        return (cotangent(real_part(dy), obj),)

    return _constant_or(obj.real, obj, real_pullback)


@numpy_attr_rule(np.ndarray, "imag")
def ndarray_imag_rule(obj):
    y = obj.imag
    if not is_complex(obj):
        return y, None

    def imag_pullback(dy):
        return (cotangent(1j * real_part(dy), obj),)

    return y, imag_pullback


@numpy_attr_rule(np.generic, "real")
def generic_real_rule(obj):
    return ndarray_real_rule(obj)


@numpy_attr_rule(np.generic, "imag")
def generic_imag_rule(obj):
    return ndarray_imag_rule(obj)



# -- repetition, rolling, diagonals, sorting, splitting ---------------------------------------


def _zeros_for(x):
    """A float zero array shaped like ``x`` (float/complex dtype kept)."""
    if x.dtype.kind in "fc":
        return np.zeros_like(x)
    return np.zeros_like(x, dtype=np.float64)


def _as_array(a):
    if hasattr(a, "shape") and hasattr(a, "ndim"):
        return a
    return np.asarray(a)


def _real_if_real(dy, x):
    return dy if is_complex(x) else real_part(dy)


@numpy_rule(np.roll)
def roll_rule(a, shift, axis=None):
    y = np.roll(a, shift, axis=axis)
    if isinstance(shift, (tuple, list)):
        back_shift = tuple(-int(s) for s in shift)
    else:
        back_shift = -shift

    def roll_pullback(dy):
        return (_back(dy, a, lambda g: np.roll(g, back_shift, axis=axis)),)

    return _constant_or(y, a, roll_pullback)


@numpy_rule(np.tile)
def tile_rule(A, reps):
    y = np.tile(A, reps)
    x = _as_array(A)
    reps_t = tuple(reps) if isinstance(reps, (tuple, list)) else (reps,)
    d = max(x.ndim, len(reps_t))
    shape = (1,) * (d - x.ndim) + tuple(x.shape)
    reps_t = (1,) * (d - len(reps_t)) + tuple(int(r) for r in reps_t)

    def tile_pullback(dy):
        interleaved = []
        for r, s in zip(reps_t, shape):
            interleaved += [r, s]
        g = np.reshape(dy, tuple(interleaved))
        g = np.sum(g, axis=tuple(range(0, 2 * d, 2)))
        return (_reshape_back(g, A),)

    return _constant_or(y, A, tile_pullback)


@numpy_rule(np.repeat)
@numpy_method_rule(np.ndarray, "repeat")
def repeat_rule(a, repeats, axis=None):
    y = np.repeat(a, repeats, axis=axis)
    x = _as_array(a)

    def repeat_pullback(dy):
        flat = axis is None
        src = np.ravel(x) if flat else x
        ax = 0 if flat else axis % x.ndim
        n = src.shape[ax]
        if np.ndim(repeats) == 0:
            r = int(repeats)
            moved = np.moveaxis(dy, ax, 0)
            g = np.sum(np.reshape(moved, (n, r) + moved.shape[1:]), axis=1)
            g = np.moveaxis(g, 0, ax)
        else:
            owner = np.repeat(np.arange(n), repeats)
            g = _zeros_for(src)
            np.add.at(g, (slice(None),) * ax + (owner,), _real_if_real(dy, src))
        if flat:
            g = np.reshape(g, x.shape)
        return (cotangent(g, a),)

    return _constant_or(y, a, repeat_pullback)


def _diagonal_positions(n1, n2, offset):
    """Row and column indices of the ``offset`` diagonal of an ``n1 x n2`` matrix."""
    if offset >= 0:
        length = max(0, min(n1, n2 - offset))
        rows = np.arange(length)
        return rows, rows + offset
    length = max(0, min(n1 + offset, n2))
    cols = np.arange(length)
    return cols - offset, cols


def _scatter_diagonal(dy, x, offset, axis1, axis2):
    """Zeros like ``x`` with ``dy`` (diagonal last) written on the ``offset`` diagonal of (axis1, axis2)."""
    g = _zeros_for(x)
    nd = x.ndim
    a1, a2 = axis1 % nd, axis2 % nd
    view = np.moveaxis(g, (a1, a2), (-2, -1))
    rows, cols = _diagonal_positions(x.shape[a1], x.shape[a2], offset)
    view[..., rows, cols] = _real_if_real(dy, x)
    return g


@numpy_rule(np.diagonal)
@numpy_method_rule(np.ndarray, "diagonal")
def diagonal_rule(a, offset=0, axis1=0, axis2=1):
    y = np.diagonal(a, offset, axis1, axis2)
    x = _as_array(a)

    def diagonal_pullback(dy):
        return (cotangent(_scatter_diagonal(dy, x, offset, axis1, axis2), a),)

    return _constant_or(y, a, diagonal_pullback)


@numpy_rule(np.trace)
@numpy_method_rule(np.ndarray, "trace")
def trace_rule(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    check_no_out("np.trace", out)
    y = np.trace(a, offset, axis1, axis2, dtype)
    x = _as_array(a)

    def trace_pullback(dy):
        n = len(_diagonal_positions(x.shape[axis1 % x.ndim], x.shape[axis2 % x.ndim], offset)[0])
        d = np.expand_dims(dy, -1) * np.ones(n, dtype=x.dtype if x.dtype.kind in "fc" else None)
        return (cotangent(_scatter_diagonal(d, x, offset, axis1, axis2), a),)

    return _constant_or(y, a, trace_pullback)


@numpy_rule(np.diag)
def diag_rule(v, k=0):
    y = np.diag(v, k)
    x = _as_array(v)

    def diag_pullback(dy):
        if x.ndim == 1:
            return (cotangent(np.diagonal(dy, k), v),)
        return (cotangent(_scatter_diagonal(dy, x, k, 0, 1), v),)

    return _constant_or(y, v, diag_pullback)


@numpy_rule(np.sort)
def sort_rule(a, axis=-1, kind=None, order=None, **kwargs):
    """Ties are resolved by a stable sort: tied entries receive cotangents in their original order."""
    y = np.sort(a, axis=axis, **_kw(kind=(kind, None), order=(order, None)), **kwargs)
    x = _as_array(a)
    if not inexact(x):
        return y, None
    if axis is None:
        perm = np.argsort(np.ravel(x), kind="stable")
    else:
        perm = np.argsort(x, axis=axis, kind="stable")

    def sort_pullback(dy):
        g = _zeros_for(x)
        dyr = _real_if_real(dy, x)
        if axis is None:
            flat = np.ravel(g)
            flat[perm] = dyr
            g = np.reshape(flat, x.shape)
        else:
            np.put_along_axis(g, perm, dyr, axis=axis)
        return (cotangent(g, a),)

    return y, sort_pullback


def _split_rule_for(fn):
    def split_rule(ary, indices_or_sections, axis=0):
        pieces = fn(ary, indices_or_sections, axis)
        x = _as_array(ary)
        if not inexact(x):
            return pieces, None

        def split_pullback(dys):
            parts = [
                d if d is not None else _zeros_for(p) for d, p in zip(dys, pieces)
            ]
            g = np.concatenate(parts, axis=axis)
            return (cotangent(g, ary),)

        split_pullback.__name__ = f"{fn.__name__}_pullback"
        return pieces, split_pullback

    split_rule.__name__ = f"{fn.__name__}_rule"
    return numpy_rule(fn)(split_rule)


split_rule = _split_rule_for(np.split)
array_split_rule = _split_rule_for(np.array_split)


@numpy_rule(np.pad)
def pad_rule(array, pad_width, mode="constant", **kwargs):
    """Only ``mode='constant'`` (the default) is differentiable here; its fill values are static."""
    y = np.pad(array, pad_width, mode, **kwargs)
    x = _as_array(array)
    if not inexact(x):
        return y, None
    if mode != "constant":
        raise UnsupportedOperationError(
            f"morula has a rule for np.pad only with mode='constant', not mode={mode!r}. "
            f"Fix: build the padded array with np.concatenate, or register a rule with @morula.rrule(np.pad)."
        )
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    index = tuple(slice(int(lo), int(lo) + n) for (lo, _), n in zip(widths, x.shape))

    def pad_pullback(dy):
        return (cotangent(dy[index], array),)

    return y, pad_pullback
