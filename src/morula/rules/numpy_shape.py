"""Reverse rules for NumPy's shape and layout functions.

In: nothing (importing registers the rules). Out: rules for ``np.reshape``,
``transpose``/``permute_dims``, ``matrix_transpose``, ``squeeze``,
``expand_dims``, ``concatenate``/``concat``, ``stack``, ``unstack``, ``hstack``,
``vstack``, ``row_stack``, ``column_stack``, ``dstack``, ``broadcast_to``,
``ravel``, ``swapaxes``, ``moveaxis``, ``rollaxis``, ``flip``, ``fliplr``,
``flipud``, ``rot90``, ``atleast_1d/2d/3d``, ``copy``, ``roll``, ``tile``,
``repeat``, ``diagonal``, ``trace``, ``diag``, ``diagflat``, ``tril``, ``triu``,
``sort``, ``partition``, ``unique`` (values), ``unique_values``, ``split``,
``array_split``, ``hsplit``, ``vsplit``, ``dsplit``, ``pad`` (modes
``constant edge reflect symmetric wrap linear_ramp mean``), ``append``,
``delete``, ``insert``; the ``ndarray`` methods ``reshape``, ``transpose``,
``ravel``, ``flatten``, ``squeeze``, ``swapaxes``, ``copy``, ``astype``,
``repeat``, ``diagonal``, ``trace``, plus the attributes ``T``, ``mT``, ``real``
and ``imag``; ``argpartition`` has no derivative.

All of these are linear and move entries around, so each pullback applies the
inverse movement to the cotangent. Functions that take a sequence of arrays
return a sequence cotangent of the same type (list or tuple); functions that
return a sequence (``split``, ``unstack``) take one (``None`` entries are zeros).
"""

import numpy as np

from morula.errors import UnsupportedOperationError
from morula.reverse.shadow import batch_capable
from morula.rules.numpy_vspace import (
    check_no_out,
    cotangent,
    inexact,
    is_complex,
    normalize_axes,
    numpy_attr_rule,
    numpy_method_rule,
    numpy_rule,
    real_part,
    shape_of,
    with_dtype_of,
)
from morula.rules.registry import nondiff
from morula.tangents import batch_of


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
    inverse = _inverse_order(order, x)
    if batch_of(dy) is not None:   # axis 0 holds a batch of cotangents
        if inverse == "C":
            return cotangent(np.reshape(dy, (dy.shape[0],) + tuple(shape_of(x))), x)
        return cotangent(np.stack([np.reshape(d, shape_of(x), order=inverse) for d in dy]), x)
    return cotangent(np.reshape(dy, shape_of(x), **_kw(order=(inverse, "C"))), x)


def _transposed(dy, axes):
    """``np.transpose(dy, axes)`` of a cotangent -- of each cotangent of a batch (axis 0)."""
    if batch_of(dy) is None:
        return np.transpose(dy, axes)
    if axes is None:
        axes = tuple(range(dy.ndim - 2, -1, -1))
    return np.transpose(dy, (0,) + tuple(a + 1 for a in axes))


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
            return (_back(dy, a, lambda g: _transposed(g, None)),)
        nd = len(axes)
        inv = _inverse_permutation([int(p) % nd for p in axes])
        return (_back(dy, a, lambda g: _transposed(g, inv)),)

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
        return (_back(dy, obj, lambda g: _transposed(g, None)),)

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


# -- pad ---------------------------------------------------------------------------------------
# Every mode but maximum/minimum/median/empty is linear (affine for constant/linear_ramp,
# whose fill values are static), and np.pad pads one axis after another, so the padded
# array is x multiplied along each axis k by a (lo + n + hi) x n matrix M_k. The pullback
# applies M_k^T along each axis: the interior rows are the identity, the pad rows are
# gathered from the cotangent (copy modes: an index map, np.pad of arange(n); mean,
# linear_ramp and odd reflections: the rows of np.pad applied to the identity).

_PAD_COPY_MODES = ("edge", "reflect", "symmetric", "wrap")
_PAD_LINEAR_MODES = _PAD_COPY_MODES + ("constant", "linear_ramp", "mean")


def _pairs(value, ndim):
    """NumPy's per-axis (before, after) pairs for ``pad_width``/``stat_length``-style arguments."""
    return np.broadcast_to(np.asarray(value, dtype=object), (ndim, 2))


def _pad_axis_adjoint(g, axis, n, lo, hi, mode, kwargs, k, ndim):
    """Apply M_k^T along ``axis`` of ``g`` (length lo + n + hi) -> length n."""
    moved = np.moveaxis(g, axis, 0)
    interior = moved[lo:lo + n]
    if lo == 0 and hi == 0:
        return g
    pad_rows = np.concatenate([moved[:lo], moved[lo + n:]], axis=0)
    odd = kwargs.get("reflect_type", "even") == "odd"
    if mode in _PAD_COPY_MODES and not odd:
        source = np.pad(np.arange(n), (lo, hi), mode)
        source = np.concatenate([source[:lo], source[lo + n:]])
        out = np.array(interior, copy=True)
        np.add.at(out, source, pad_rows)
    else:
        options = {}
        if mode == "mean" and kwargs.get("stat_length") is not None:
            options["stat_length"] = tuple(int(v) for v in _pairs(kwargs["stat_length"], ndim)[k])
        if mode == "linear_ramp":
            options["end_values"] = 0  # the ramp ends are static: only the linear part
        if odd:
            options["reflect_type"] = "odd"
        matrix = np.pad(np.eye(n), ((lo, hi), (0, 0)), mode, **options)
        matrix = np.concatenate([matrix[:lo], matrix[lo + n:]], axis=0)  # (lo + hi, n)
        out = interior + np.tensordot(matrix.T, pad_rows, axes=1)
    return np.moveaxis(out, 0, axis)



_PAD_UNSET = object()


def _shaped_like(ct, value):
    """Cotangent ``ct`` (an array) in the structure of ``value`` (a number, tuple, list or array)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_shaped_like(c, v) for c, v in zip(ct, value))
    if isinstance(value, (int, float)):
        return float(ct)
    return ct

@numpy_rule(np.pad)
def pad_rule(array, pad_width, mode="constant", constant_values=_PAD_UNSET, end_values=_PAD_UNSET,
             **kwargs):
    """Modes constant, edge, reflect, symmetric, wrap (both reflect types), linear_ramp and mean;
    others raise. ``constant_values`` and ``end_values`` are parameters here (not NumPy's
    ``**kwargs``) so that they get cotangents: the output is linear in them, so each entry's
    cotangent is ``sum(dy * pad(zeros, value=basis entry))``."""
    given = {k: v for k, v in (("constant_values", constant_values), ("end_values", end_values))
             if v is not _PAD_UNSET}
    kwargs = {**kwargs, **given}
    y = np.pad(array, pad_width, mode, **kwargs)
    x = _as_array(array)
    if not inexact(x):
        return y, None
    if mode not in _PAD_LINEAR_MODES:
        raise UnsupportedOperationError(
            f"morula has a rule for np.pad with mode in {_PAD_LINEAR_MODES}, not mode={mode!r}. "
            f"Fix: build the padded array with np.concatenate, or register a rule with "
            f"@morula.rrule(np.pad).")
    widths = [(int(lo), int(hi)) for lo, hi in _pairs(pad_width, x.ndim)]
    index = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))

    def fill_value_cotangent(dy, key):
        value = given.get(key, _PAD_UNSET)
        if value is _PAD_UNSET or not inexact(value):
            return None
        values = np.asarray(value)
        if values.dtype.kind not in "fc":
            values = values.astype(np.float64)
        flat = np.zeros(values.size, dtype=values.dtype)
        for k in range(values.size):
            basis = np.zeros(values.size, dtype=values.dtype)
            basis[k] = 1
            weight = np.pad(np.zeros(x.shape, dtype=values.dtype), pad_width, mode,
                            **{**kwargs, key: basis.reshape(values.shape)})
            flat[k] = np.sum(dy * weight)
        return _shaped_like(flat.reshape(values.shape), value)

    def pad_pullback(dy):
        if mode == "constant":
            dx = cotangent(dy[index], array)
        else:
            g = dy
            for k, ((lo, hi), n) in enumerate(zip(widths, x.shape)):
                g = _pad_axis_adjoint(g, k, n, lo, hi, mode, kwargs, k, x.ndim)
            dx = cotangent(g, array)
        return (dx, None, None, fill_value_cotangent(dy, "constant_values"),
                fill_value_cotangent(dy, "end_values"))

    return y, pad_pullback


# -- more flips, rotations and axis moves ---------------------------------------------------------


def _linear_rule_for(fn, inverse):
    """A rule for a linear ``fn(a, *static)`` whose adjoint is ``inverse(dy, a, *static)``."""

    def linear_rule(a, *args, **kwargs):
        y = fn(a, *args, **kwargs)

        def linear_pullback(dy):
            return (_back(dy, a, lambda g: inverse(g, _as_array(a), *args, **kwargs)),)

        linear_pullback.__name__ = f"{fn.__name__}_pullback"
        return _constant_or(y, a, linear_pullback)

    linear_rule.__name__ = f"{fn.__name__}_rule"
    return linear_rule


@numpy_rule(np.fliplr)
def fliplr_rule(m):
    return _linear_rule_for(np.fliplr, lambda g, x: np.fliplr(g))(m)


@numpy_rule(np.flipud)
def flipud_rule(m):
    return _linear_rule_for(np.flipud, lambda g, x: np.flipud(g))(m)


@numpy_rule(np.rot90)
def rot90_rule(m, k=1, axes=(0, 1)):
    return _linear_rule_for(np.rot90, lambda g, x, k, axes: np.rot90(g, -k, axes))(m, k, axes)


@numpy_rule(np.rollaxis)
def rollaxis_rule(a, axis, start=0):
    """``rollaxis`` is a ``moveaxis`` (NumPy's own reduction of it); the pullback moves back."""
    x = _as_array(a)
    n = x.ndim
    ax = axis % n if n else 0
    st = start + n if start < 0 else start
    if ax < st:
        st -= 1

    def inverse(g, x, *_):
        return g if ax == st else np.moveaxis(g, st, ax)

    return _linear_rule_for(np.rollaxis, inverse)(a, axis, start)


if hasattr(np, "matrix_transpose"):

    @numpy_rule(np.matrix_transpose)
    def matrix_transpose_rule(x, /):
        return _linear_rule_for(np.matrix_transpose, lambda g, a: np.swapaxes(g, -1, -2))(x)


# -- more joining and splitting -----------------------------------------------------------------


def _column(a):
    a = _as_array(a)
    return np.reshape(a, (-1, 1)) if a.ndim < 2 else a


if hasattr(np, "row_stack"):  # deprecated alias of vstack (a separate function in NumPy 2)
    row_stack_rule = _join_rule_for(np.row_stack, lambda ps: 0, np.atleast_2d)


@numpy_rule(np.column_stack)
def column_stack_rule(tup):
    return _join_rule_for_plain(np.column_stack, tup, 1, _column)


@numpy_rule(np.dstack)
def dstack_rule(tup):
    return _join_rule_for_plain(np.dstack, tup, 2, np.atleast_3d)


def _join_rule_for_plain(fn, tup, axis, promote):
    y = fn(tup)
    if not _any_inexact(tup) or not inexact(y):
        return y, None
    sizes = [shape_of(promote(a))[axis] for a in tup]

    def join_pullback(dy):
        return (_sequence_cotangent(tup, _split_along(dy, sizes, axis)),)

    return y, join_pullback


if hasattr(np, "unstack"):

    @numpy_rule(np.unstack)
    def unstack_rule(x, /, *, axis=0):
        y = np.unstack(x, axis=axis)
        arr = _as_array(x)
        if not inexact(arr):
            return y, None

        def unstack_pullback(dys):
            parts = [d if d is not None else _zeros_for(p) for d, p in zip(dys, y)]
            return (cotangent(np.stack(parts, axis=axis), x),)

        return y, unstack_pullback


def _split_variant_rule(fn, axis_of):
    def split_variant_rule(ary, indices_or_sections):
        x = _as_array(ary)
        pieces = fn(ary, indices_or_sections)
        if not inexact(x):
            return pieces, None
        axis = axis_of(x)

        def split_pullback(dys):
            parts = [d if d is not None else _zeros_for(p) for d, p in zip(dys, pieces)]
            return (cotangent(np.concatenate(parts, axis=axis), ary),)

        split_pullback.__name__ = f"{fn.__name__}_pullback"
        return pieces, split_pullback

    split_variant_rule.__name__ = f"{fn.__name__}_rule"
    return numpy_rule(fn)(split_variant_rule)


hsplit_rule = _split_variant_rule(np.hsplit, lambda x: 1 if x.ndim > 1 else 0)
vsplit_rule = _split_variant_rule(np.vsplit, lambda x: 0)
dsplit_rule = _split_variant_rule(np.dsplit, lambda x: 2)


@numpy_rule(np.append)
def append_rule(arr, values, axis=None):
    """``concatenate((ravel(arr), ravel(values)))`` (``axis=None``) or along ``axis``."""
    y = np.append(arr, values, axis=axis)
    x, v = _as_array(arr), _as_array(values)
    if not (inexact(x) or inexact(v)) or not inexact(y):
        return y, None
    split = x.size if axis is None else x.shape[axis]

    def append_pullback(dy):
        ax = 0 if axis is None else axis
        first = np.take(dy, np.arange(split), axis=ax)
        second = np.take(dy, np.arange(split, dy.shape[ax]), axis=ax)
        return (_reshape_back(first, arr), _reshape_back(second, values))

    return y, append_pullback


def _positions(x):
    """Each entry's flat index, shaped like ``x`` (to see where a rearrangement puts entries)."""
    return np.reshape(np.arange(int(np.prod(x.shape)), dtype=np.intp), x.shape)


@numpy_rule(np.delete)
def delete_rule(arr, obj, axis=None):
    """The kept entries get their cotangents back; deleted ones get zero."""
    y = np.delete(arr, obj, axis=axis)
    x = _as_array(arr)
    if not inexact(x):
        return y, None
    kept = np.ravel(np.delete(_positions(x), obj, axis=axis))

    def delete_pullback(dy):
        g = np.ravel(_zeros_for(x))
        g[kept] = np.ravel(_real_if_real(dy, x))
        return (cotangent(np.reshape(g, x.shape), arr),)

    return y, delete_pullback


@numpy_rule(np.insert)
def insert_rule(arr, obj, values, axis=None):
    """Where every entry of ``arr`` and ``values`` landed is found by inserting index arrays the
    same way; a value NumPy broadcast into several slots collects all their cotangents."""
    y = np.insert(arr, obj, values, axis=axis)
    x, v = _as_array(arr), _as_array(values)
    if not (inexact(x) or inexact(v)) or not inexact(y):
        return y, None
    from_x = np.ravel(np.insert(_positions(x), obj, -1, axis=axis))
    from_v = np.ravel(np.insert(np.full(x.shape, -1, dtype=np.intp), obj, _positions(v), axis=axis))
    in_x, in_v = from_x >= 0, from_v >= 0

    def insert_pullback(dy):
        flat = np.ravel(dy)
        dx = dv = None
        if inexact(x):
            g = np.ravel(_zeros_for(x))
            g[from_x[in_x]] = _real_if_real(flat[in_x], x)
            dx = cotangent(np.reshape(g, x.shape), arr)
        if inexact(v):
            g = np.ravel(_zeros_for(v))
            np.add.at(g, from_v[in_v], _real_if_real(flat[in_v], v))
            dv = cotangent(np.reshape(g, v.shape), values)
        return dx, None, dv

    return y, insert_pullback


# -- diagflat / tril / triu -----------------------------------------------------------------------


@numpy_rule(np.diagflat)
def diagflat_rule(v, k=0):
    y = np.diagflat(v, k)

    def diagflat_pullback(dy):
        return (_reshape_back(np.diagonal(dy, k), v),)

    return _constant_or(y, v, diagflat_pullback)


@numpy_rule(np.tril)
def tril_rule(m, k=0):
    y = np.tril(m, k)

    def tril_pullback(dy):
        return (_back(dy, m, lambda g: np.tril(g, k)),)

    return _constant_or(y, m, tril_pullback)


@numpy_rule(np.triu)
def triu_rule(m, k=0):
    y = np.triu(m, k)

    def triu_pullback(dy):
        return (_back(dy, m, lambda g: np.triu(g, k)),)

    return _constant_or(y, m, triu_pullback)


# -- partition --------------------------------------------------------------------------------------


def _matching_permutation(x, y, axis):
    """Indices ``p`` along ``axis`` with ``y == take_along_axis(x, p, axis)``, for ``y`` a
    rearrangement of ``x`` along ``axis`` (tied values matched in order of appearance)."""
    sx = np.argsort(x, axis=axis, kind="stable")
    sy = np.argsort(y, axis=axis, kind="stable")
    p = np.empty_like(sx)
    np.put_along_axis(p, sy, sx, axis=axis)
    return p


@numpy_rule(np.partition)
def partition_rule(a, kth, axis=-1, kind="introselect", order=None):
    """NumPy's own arrangement is returned; each output entry's cotangent goes back to the
    input entry it came from (tied values: in order of appearance)."""
    y = np.partition(a, kth, axis=axis, **_kw(kind=(kind, "introselect"), order=(order, None)))
    x = _as_array(a)
    if not inexact(x):
        return y, None
    flat = axis is None
    src = np.ravel(x) if flat else x
    ax = -1 if flat else axis
    perm = _matching_permutation(src, y, ax)

    def partition_pullback(dy):
        g = _zeros_for(src)
        np.put_along_axis(g, perm, _real_if_real(dy, src), axis=ax)
        return (cotangent(np.reshape(g, x.shape), a),)

    return y, partition_pullback


nondiff(np.argpartition)


# -- unique -----------------------------------------------------------------------------------------


@numpy_rule(np.unique)
def unique_rule(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
                equal_nan=True, **kwargs):
    """The cotangent of each unique value is added to *every* occurrence of it in ``ar``
    (the derivative of ``x -> unique(x)`` where the tied entries move together);
    index, inverse and count outputs are integers (no cotangent)."""
    y = np.unique(ar, return_index, return_inverse, return_counts, axis, equal_nan=equal_nan, **kwargs)
    x = _as_array(ar)
    if not inexact(x):
        return y, None
    _, inverse = np.unique(x, return_inverse=True, axis=axis, equal_nan=equal_nan, **kwargs)
    inverse = np.reshape(inverse, (-1,))
    extra = return_index or return_inverse or return_counts

    def unique_pullback(dy):
        dvalues = dy[0] if extra else dy
        if dvalues is None:
            return (None,)
        if axis is None:
            g = np.reshape(np.take(dvalues, inverse), x.shape)
        else:
            g = np.take(dvalues, inverse, axis=axis)
        return (cotangent(g, ar),)

    return y, unique_pullback


if hasattr(np, "unique_values"):

    @numpy_rule(np.unique_values)
    def unique_values_rule(x, /):
        y = np.unique_values(x)
        arr = _as_array(x)
        if not inexact(arr):
            return y, None
        values, inverse = np.unique(np.ravel(arr), return_inverse=True)
        # unique_values may not sort (NumPy >= 2.3): map our sorted values onto its order
        order = np.searchsorted(values, y) if not np.array_equal(values, y, equal_nan=True) else None

        def unique_values_pullback(dy):
            d = dy
            if order is not None:
                d = np.zeros_like(dy)
                d[order] = dy
            return (cotangent(np.reshape(np.take(d, np.reshape(inverse, (-1,))), arr.shape), x),)

        return y, unique_values_pullback


# pullbacks that take a batch of cotangents (leading axis; see morula.tangents.BATCH)
batch_capable(reshape_rule, ndarray_reshape_rule, _transpose_pullback_for, ndarray_T_rule)
