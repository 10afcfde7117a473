"""Reverse rules for NumPy reductions and scans.

In: nothing (importing registers the rules). Out: rules for ``np.sum``,
``mean``, ``prod``, ``max``/``min``/``amax``/``amin`` (and ``nanmax``/``nanmin``),
``ptp``, ``nansum``, ``nanmean``, ``average`` (``weights``, ``returned``),
``cumsum``, ``cumprod``, ``nancumsum``, ``nancumprod``, ``cumulative_sum``,
``cumulative_prod``, ``diff`` (``n``, ``prepend``/``append``), ``var``, ``std``,
``median``, ``percentile``, ``quantile``, and the ``ndarray`` methods of the
same names (``sum mean prod max min ptp cumsum cumprod var std``). Every
reduction accepts ``axis`` (None, int, negative, tuple), ``keepdims`` and,
where NumPy does, ``where=`` masks.

Conventions: ``prod`` and ``cumprod`` are exact at zeros (the cotangent of an
entry is built from the products of the *other* entries, no division by
zero); ties in ``max``/``min`` share the cotangent equally; ``std`` where it is
0 gives cotangent 0; ``median``/``percentile``/``quantile`` pass the cotangent
to the (at most two) order statistics they interpolate, ties broken by a
stable sort, and to the NaN entries of a slice whose result is NaN.
See docs/rules_numpy_notes.md.
"""

import numpy as np

from morula.errors import UnsupportedOperationError
from morula.reverse.shadow import batch_capable
from morula.rules.numpy_vspace import (
    check_no_out,
    conj,
    cotangent,
    inexact,
    is_complex,
    nan_safe,
    nan_safe_product,
    normalize_axes,
    numpy_method_rule,
    numpy_rule,
    real_part,
    with_dtype_of,
)
from morula.tangents import batch_of

_NoValue = getattr(np, "_NoValue", None)


def _given(value):
    return value is not _NoValue


def _options(**pairs):
    """Keyword arguments to pass on to NumPy, leaving out the ones not given."""
    return {k: v for k, v in pairs.items() if _given(v)}


def _expand(dy, x, axes, keepdims):
    """Reinsert the reduced ``axes`` into ``dy`` (as size-1 dims) unless ``keepdims`` kept them."""
    if keepdims is True or not axes:
        return dy
    if batch_of(dy) is not None:   # axis 0 holds a batch of cotangents
        return np.expand_dims(dy, tuple(a + 1 for a in axes))
    if getattr(dy, "ndim", 0) == 0 and len(axes) == x.ndim:
        return dy  # a full reduction: broadcasting does the rest
    return np.expand_dims(dy, axes)


def _zeros_plus(g, x):
    """A fresh array of ``x``'s shape holding ``g`` broadcast, cast to ``x``'s floating dtype."""
    return with_dtype_of(np.zeros_like(x) + g, x)


def _as_array(a):
    """Rules need ``.ndim``/``.shape`` of the operand; Python numbers and lists become arrays."""
    if hasattr(a, "ndim") and hasattr(a, "shape"):
        return a
    return np.asarray(a)


def _restore(ct, a, x):
    """The cotangent for the operand as given: ``ct`` for arrays, the same structure for numbers/lists."""
    if x is a:
        return ct
    return cotangent(ct, a)


# -- sum / mean ------------------------------------------------------------------------------


def _sum_rule(name, fn, a, axis, dtype, out, keepdims, initial, where, nan=False):
    check_no_out(name, out)
    x = _as_array(a)
    y = fn(a, axis=axis, dtype=dtype, **_options(keepdims=keepdims, initial=initial, where=where))
    d_init = _given(initial) and inexact(initial)
    if not (inexact(x) or d_init) or not inexact(y):
        return y, None
    axes = normalize_axes(axis, x.ndim)
    keep = _given(keepdims) and bool(keepdims)

    def sum_pullback(dy):
        g = None
        if inexact(x):
            g = _zeros_plus(_expand(dy, x, axes, keep), x)
            if _given(where) and where is not True:
                g = np.where(where, g, 0)
            if nan:
                g = np.where(np.isnan(x), 0, g)
            g = _restore(g, a, x)
        if d_init:  # initial is added to every output entry
            total = np.sum(dy) if batch_of(dy) is None else np.sum(dy, axis=tuple(range(1, np.ndim(dy))))
            return (g, None, None, None, None, cotangent(total, initial))
        return (g,)

    return y, sum_pullback


@numpy_rule(np.sum)
@numpy_method_rule(np.ndarray, "sum")
def sum_rule(a, axis=None, dtype=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):
    return _sum_rule("np.sum", np.sum, a, axis, dtype, out, keepdims, initial, where)


@numpy_rule(np.nansum)
def nansum_rule(a, axis=None, dtype=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):
    return _sum_rule("np.nansum", np.nansum, a, axis, dtype, out, keepdims, initial, where, nan=True)


def _count(x, axes, where, keepdims):
    """How many entries each output of a reduction over ``axes`` averages."""
    if _given(where) and where is not True:
        mask = np.broadcast_to(where, x.shape)
        return np.sum(mask, axis=axes, keepdims=True)
    n = 1
    for ax in axes:
        n *= x.shape[ax]
    return n


def _mean_rule(name, fn, a, axis, dtype, out, keepdims, where, nan=False):
    check_no_out(name, out)
    x = _as_array(a)
    y = fn(a, axis=axis, dtype=dtype, **_options(keepdims=keepdims, where=where))
    if not inexact(x) or not inexact(y):
        return y, None
    axes = normalize_axes(axis, x.ndim)
    keep = _given(keepdims) and bool(keepdims)

    def mean_pullback(dy):
        if nan:
            valid = np.logical_not(np.isnan(x))
            count = np.sum(valid, axis=axes, keepdims=True)
            g = np.where(valid, _expand(dy, x, axes, keep) / count, 0)
            g = _zeros_plus(g, x)
        else:
            count = _count(x, axes, where, keep)
            g = _zeros_plus(_expand(dy, x, axes, keep) / count, x)
            if _given(where) and where is not True:
                g = np.where(where, g, 0)
        return (_restore(g, a, x),)

    return y, mean_pullback


@numpy_rule(np.mean)
@numpy_method_rule(np.ndarray, "mean")
def mean_rule(a, axis=None, dtype=None, out=None, keepdims=_NoValue, *, where=_NoValue):
    return _mean_rule("np.mean", np.mean, a, axis, dtype, out, keepdims, where)


@numpy_rule(np.nanmean)
def nanmean_rule(a, axis=None, dtype=None, out=None, keepdims=_NoValue, *, where=_NoValue):
    return _mean_rule("np.nanmean", np.nanmean, a, axis, dtype, out, keepdims, where, nan=True)


# -- prod ------------------------------------------------------------------------------------


def _exclusive_cumprod(v):
    """Products of the entries strictly before each position along the last axis."""
    ones = np.ones_like(v[..., :1])
    return np.cumprod(np.concatenate([ones, v[..., :-1]], axis=-1), axis=-1)


def _prod_of_others(x, axes):
    """For every entry of ``x``, the product of the other entries in its reduction group.

    Exact when entries are zero (no division): the reduced axes are moved last and
    flattened, and the product of the others is (product before) * (product after).
    """
    nd = x.ndim
    k = len(axes)
    moved = np.moveaxis(x, axes, tuple(range(nd - k, nd)))
    kept_shape = moved.shape[: nd - k]
    flat = np.reshape(moved, kept_shape + (-1,)) if k else np.reshape(moved, kept_shape + (1,))
    before = _exclusive_cumprod(flat)
    after = np.flip(_exclusive_cumprod(np.flip(flat, axis=-1)), axis=-1)
    others = np.reshape(before * after, moved.shape)
    return np.moveaxis(others, tuple(range(nd - k, nd)), axes)


@numpy_rule(np.prod)
@numpy_method_rule(np.ndarray, "prod")
def prod_rule(a, axis=None, dtype=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):
    check_no_out("np.prod", out)
    x = _as_array(a)
    y = np.prod(a, axis=axis, dtype=dtype, **_options(keepdims=keepdims, initial=initial, where=where))
    d_init = _given(initial) and inexact(initial)
    if not (inexact(x) or d_init) or not inexact(y):
        return y, None
    axes = normalize_axes(axis, x.ndim)
    keep = _given(keepdims) and bool(keepdims)

    def prod_pullback(dy):
        d_initial = None
        if d_init:  # y = initial * prod(x): d initial = sum(dy conj(prod(x)))
            p = np.prod(x, axis=axes, keepdims=True, **_options(where=where))
            d_initial = cotangent(np.sum(_expand(dy, x, axes, keep) * conj(p)), initial)
            if not inexact(x):
                return (None, None, None, None, None, d_initial)
        xs = x
        masked = _given(where) and where is not True
        if masked:
            xs = np.where(where, x, 1)
        others = _prod_of_others(xs, axes)
        if _given(initial):
            others = others * initial
        g = _expand(dy, x, axes, keep) * conj(others)
        if masked:
            g = np.where(where, g, 0)
        g = _zeros_plus(g, x)
        if d_init:
            return (_restore(g, a, x), None, None, None, None, d_initial)
        return (_restore(g, a, x),)

    return y, prod_pullback


# -- max / min -------------------------------------------------------------------------------


def _extremum_rule(name, fn, a, axis, out, keepdims, initial, where, nan=False):
    check_no_out(name, out)
    x = _as_array(a)
    y = fn(a, axis=axis, **_options(keepdims=keepdims, initial=initial, where=where))
    d_init = _given(initial) and inexact(initial)
    if not (inexact(x) or d_init) or not inexact(y):
        return y, None
    axes = normalize_axes(axis, x.ndim)
    keep = _given(keepdims) and bool(keepdims)

    def extremum_pullback(dy):
        yk = _expand(y, x, axes, keep)
        hit = x == yk
        if not nan:
            # a propagated NaN: the NaN entries get the cotangent
            hit = np.logical_or(hit, np.logical_and(np.isnan(x), np.isnan(yk)))
        if _given(where) and where is not True:
            hit = np.logical_and(hit, where)
        count = np.sum(hit, axis=axes, keepdims=True)
        dyk = _expand(dy, x, axes, keep)
        share = dyk / np.maximum(count, 1)
        g = _restore(_zeros_plus(np.where(hit, share, 0), x), a, x) if inexact(x) else None
        if d_init:  # where no entry reaches the result, initial is the result
            won = np.broadcast_to(count == 0, np.shape(np.zeros_like(dyk) + np.zeros(count.shape)))
            d_initial = cotangent(np.sum(np.where(won, dyk, 0)), initial)
            return (g, None, None, None, d_initial)
        return (g,)

    return y, extremum_pullback


@numpy_rule(np.max, np.amax)
@numpy_method_rule(np.ndarray, "max")
def max_rule(a, axis=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):
    return _extremum_rule("np.max", np.max, a, axis, out, keepdims, initial, where)


@numpy_rule(np.min, np.amin)
@numpy_method_rule(np.ndarray, "min")
def min_rule(a, axis=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):
    return _extremum_rule("np.min", np.min, a, axis, out, keepdims, initial, where)


@numpy_rule(np.nanmax)
def nanmax_rule(a, axis=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):
    return _extremum_rule("np.nanmax", np.nanmax, a, axis, out, keepdims, initial, where, nan=True)


@numpy_rule(np.nanmin)
def nanmin_rule(a, axis=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):
    return _extremum_rule("np.nanmin", np.nanmin, a, axis, out, keepdims, initial, where, nan=True)


# -- cumsum ------------------------------------------------------------------------------------


@numpy_rule(np.cumsum)
@numpy_method_rule(np.ndarray, "cumsum")
def cumsum_rule(a, axis=None, dtype=None, out=None):
    check_no_out("np.cumsum", out)
    x = _as_array(a)
    y = np.cumsum(a, axis=axis, dtype=dtype)
    if not inexact(x) or not inexact(y):
        return y, None

    def cumsum_pullback(dy):
        ax = 0 if axis is None else axis
        g = np.flip(np.cumsum(np.flip(dy, axis=ax), axis=ax), axis=ax)
        if axis is None:
            g = np.reshape(g, x.shape)
        g = with_dtype_of(g, x)
        return (_restore(g, a, x),)

    return y, cumsum_pullback


# -- var / std ----------------------------------------------------------------------------------


def _var_parts(x, axis, ddof, where, correction):
    """(centered x, n - ddof) for the reduction over ``axis``."""
    axes = normalize_axes(axis, x.ndim)
    masked = _given(where) and where is not True
    mean = np.mean(x, axis=axes, keepdims=True, **_options(where=where))
    centered = x - mean
    if masked:
        centered = np.where(where, centered, 0)
    n = _count(x, axes, where, True)
    d = correction if _given(correction) else ddof
    return axes, centered, n - d


def _var_like_rule(name, fn, a, axis, dtype, out, ddof, keepdims, where, mean, correction, root):
    check_no_out(name, out)
    x = _as_array(a)
    opts = _options(keepdims=keepdims, where=where, mean=mean, correction=correction)
    if not _given(correction):
        opts["ddof"] = ddof
    y = fn(a, axis=axis, dtype=dtype, **opts)
    if not inexact(x) or not inexact(y):
        return y, None
    keep = _given(keepdims) and bool(keepdims)

    def var_pullback(dy):
        axes, centered, dof = _var_parts(x, axis, ddof, where, correction)
        dyk = real_part(_expand(dy, x, axes, keep))
        if root:
            yk = _expand(y, x, axes, keep)
            nonzero = yk != 0
            dyk = np.where(nonzero, dyk / (2 * np.where(nonzero, yk, 1)), 0)
        # d var / d x_i = 2 (x_i - mean) / dof (also for complex x: the Zygote-convention gradient)
        g = _zeros_plus(dyk * (2 * centered / dof), x)
        return (_restore(g, a, x),)

    return y, var_pullback


@numpy_rule(np.var)
@numpy_method_rule(np.ndarray, "var")
def var_rule(a, axis=None, dtype=None, out=None, ddof=0, keepdims=_NoValue, *, where=_NoValue,
             mean=_NoValue, correction=_NoValue):
    return _var_like_rule("np.var", np.var, a, axis, dtype, out, ddof, keepdims, where, mean,
                          correction, root=False)


@numpy_rule(np.std)
@numpy_method_rule(np.ndarray, "std")
def std_rule(a, axis=None, dtype=None, out=None, ddof=0, keepdims=_NoValue, *, where=_NoValue,
             mean=_NoValue, correction=_NoValue):
    return _var_like_rule("np.std", np.std, a, axis, dtype, out, ddof, keepdims, where, mean,
                          correction, root=True)



# -- ptp -----------------------------------------------------------------------------------------


@numpy_rule(np.ptp)
def ptp_rule(a, axis=None, out=None, keepdims=_NoValue):
    """``max - min``: the max rule's cotangent minus the min rule's (ties share; all equal gives 0)."""
    check_no_out("np.ptp", out)
    y = np.ptp(a, axis=axis, **_options(keepdims=keepdims))
    x = _as_array(a)
    _, max_pb = _extremum_rule("np.max", np.max, x, axis, None, keepdims, _NoValue, _NoValue)
    _, min_pb = _extremum_rule("np.min", np.min, x, axis, None, keepdims, _NoValue, _NoValue)
    if max_pb is None or not inexact(y):
        return y, None

    def ptp_pullback(dy):
        return (_restore(max_pb(dy)[0] - min_pb(dy)[0], a, x),)

    return y, ptp_pullback


# -- cumprod -------------------------------------------------------------------------------------


def _reverse_cumsum(v, axis=-1):
    return np.flip(np.cumsum(np.flip(v, axis=axis), axis=axis), axis=axis)


def _cumprod_cotangent(dy, x, y):
    """Cotangent of ``y = cumprod(x, axis=-1)``, exact when ``x`` has zeros.

    d y_i / d x_j = prod_{k <= i, k != j} x_k for j <= i. Before the first zero z of
    a lane, ``sum_{i >= j} dy_i y_i / x_j`` is exact (y_i = 0 for i >= z). At z
    itself, the cotangent is ``sum_{i >= z} dy_i c_i`` where c is the cumprod with
    x_z replaced by 1. After z every product contains x_z = 0: the cotangent is 0.
    """
    xc, yc = conj(x), conj(y)
    zero = x == 0
    if not np.any(zero):
        return nan_safe(_reverse_cumsum(nan_safe_product(dy, yc)) / xc, dy)
    n = x.shape[-1]
    position = np.arange(n)
    first = np.where(np.any(zero, axis=-1, keepdims=True),
                     np.argmax(zero, axis=-1)[..., None], n)
    before, at = position < first, position == first
    safe_x = np.where(before, xc, 1)
    fast = _reverse_cumsum(nan_safe_product(dy, yc)) / safe_x
    replaced = np.cumprod(np.where(at, 1, xc), axis=-1)
    at_zero = _reverse_cumsum(nan_safe_product(dy, replaced))
    return np.where(before, fast, np.where(at, at_zero, 0))


def _scan_setup(a, axis):
    """The operand as an array with the scanned axis last (``axis=None`` scans the flattened array)."""
    x = _as_array(a)
    flat = axis is None
    if flat:
        moved = np.ravel(x)
        ax = 0
    else:
        ax = axis % x.ndim if x.ndim else 0
        moved = np.moveaxis(x, ax, -1) if x.ndim else np.reshape(x, (1,))
    return x, flat, ax, moved


def _scan_back(g, x, flat, ax):
    if flat or x.ndim == 0:
        return np.reshape(g, x.shape)
    return np.moveaxis(g, -1, ax)


def _cumprod_rule(name, fn, a, axis, dtype, out, nan=False):
    check_no_out(name, out)
    y = fn(a, axis=axis, dtype=dtype)
    x, flat, ax, moved = _scan_setup(a, axis)
    if not inexact(x) or not inexact(y):
        return y, None

    def cumprod_pullback(dy):
        src = np.where(np.isnan(moved), 1, moved) if nan else moved
        ym = np.reshape(y, src.shape) if flat or x.ndim == 0 else np.moveaxis(y, ax, -1)
        dym = np.reshape(dy, src.shape) if flat or x.ndim == 0 else np.moveaxis(dy, ax, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = _cumprod_cotangent(dym, src, ym)
        if nan:
            g = np.where(np.isnan(moved), 0, g)
        g = with_dtype_of(_scan_back(g, x, flat, ax), x)
        return (_restore(g, a, x),)

    return y, cumprod_pullback


@numpy_rule(np.cumprod)
@numpy_method_rule(np.ndarray, "cumprod")
def cumprod_rule(a, axis=None, dtype=None, out=None):
    return _cumprod_rule("np.cumprod", np.cumprod, a, axis, dtype, out)


@numpy_rule(np.nancumprod)
def nancumprod_rule(a, axis=None, dtype=None, out=None):
    """NaNs count as 1 (NumPy's definition) and get no cotangent."""
    return _cumprod_rule("np.nancumprod", np.nancumprod, a, axis, dtype, out, nan=True)


@numpy_rule(np.nancumsum)
def nancumsum_rule(a, axis=None, dtype=None, out=None):
    """NaNs count as 0 (NumPy's definition) and get no cotangent."""
    check_no_out("np.nancumsum", out)
    x = _as_array(a)
    y = np.nancumsum(a, axis=axis, dtype=dtype)
    _, pb = cumsum_rule(x, axis, dtype)
    if pb is None or not inexact(y):
        return y, None

    def nancumsum_pullback(dy):
        g = np.where(np.isnan(x), 0, pb(dy)[0])
        return (_restore(with_dtype_of(g, x), a, x),)

    return y, nancumsum_pullback


def _cumulative_rule(name, fn, scan_rule, x, axis, dtype, out, include_initial):
    """NumPy 2's array-API ``cumulative_sum``/``cumulative_prod`` (``include_initial`` prepends 0 / 1)."""
    check_no_out(name, out)
    kw = {"include_initial": True} if include_initial else {}
    y = fn(x, axis=axis, dtype=dtype, **kw)
    arr = _as_array(x)
    ax = 0 if axis is None else axis
    _, pb = scan_rule(arr, ax if arr.ndim else None, dtype)
    if pb is None or not inexact(y):
        return y, None

    def cumulative_pullback(dy):
        if include_initial:
            dy = np.take(dy, np.arange(1, dy.shape[ax]), axis=ax)
        g = pb(np.reshape(dy, arr.shape))[0]
        return (_restore(g, x, arr),)

    return y, cumulative_pullback


if hasattr(np, "cumulative_sum"):

    @numpy_rule(np.cumulative_sum)
    def cumulative_sum_rule(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        return _cumulative_rule("np.cumulative_sum", np.cumulative_sum, cumsum_rule, x, axis, dtype,
                                out, include_initial)

    @numpy_rule(np.cumulative_prod)
    def cumulative_prod_rule(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        return _cumulative_rule("np.cumulative_prod", np.cumulative_prod, cumprod_rule, x, axis,
                                dtype, out, include_initial)


# -- diff ----------------------------------------------------------------------------------------


def _diff_adjoint(g, axis):
    """Adjoint of one forward difference along ``axis``: (m,) -> (m + 1,)."""
    n = g.shape[axis]
    zero = np.zeros_like(np.take(g, [0], axis=axis))
    padded = np.concatenate([zero, g, zero], axis=axis)
    return np.take(padded, np.arange(0, n + 1), axis=axis) - np.take(padded, np.arange(1, n + 2), axis=axis)


@numpy_rule(np.diff)
def diff_rule(a, n=1, axis=-1, prepend=_NoValue, append=_NoValue):
    """Linear: the cotangent is the adjoint difference applied ``n`` times, split between
    ``prepend``, ``a`` and ``append`` (a scalar ``prepend``/``append`` collects its whole slice)."""
    y = np.diff(a, n, axis, **_options(prepend=prepend, append=append))
    x = _as_array(a)
    if not (inexact(x) or inexact(prepend) or inexact(append)) or not inexact(y) or n == 0:
        if n == 0 and inexact(x):
            return y, (lambda dy: (cotangent(dy, a),))
        return y, None
    ax = axis % x.ndim

    def part_length(v):
        if not _given(v):
            return 0
        return 1 if np.ndim(v) == 0 else np.shape(v)[ax]

    n_pre, n_app = part_length(prepend), part_length(append)

    def diff_pullback(dy):
        g = dy
        for _ in range(n):
            g = _diff_adjoint(g, ax)
        total = g.shape[ax]
        pieces = []
        for start, stop in ((0, n_pre), (n_pre, total - n_app), (total - n_app, total)):
            pieces.append(np.take(g, np.arange(start, stop), axis=ax))
        da = cotangent(pieces[1], a) if inexact(x) else None
        dpre = cotangent(pieces[0], prepend) if _given(prepend) and inexact(prepend) else None
        dapp = cotangent(pieces[2], append) if _given(append) and inexact(append) else None
        return da, None, None, dpre, dapp

    return y, diff_pullback


# -- average -------------------------------------------------------------------------------------


def _weights_layout(x, w, axis):
    """How NumPy broadcasts ``weights`` against ``a``: returns (broadcast w, to_w) where
    ``to_w(g)`` reduces a cotangent of ``a``'s shape back to ``w``'s shape."""
    if np.shape(w) == x.shape:
        return w, lambda g: g
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = tuple(int(ax) % x.ndim for ax in axes)
    order = np.argsort(axes)
    w_sorted = np.transpose(w, order) if len(axes) > 1 else w
    shape = tuple(s if i in axes else 1 for i, s in enumerate(x.shape))
    wb = np.reshape(w_sorted, shape)
    others = tuple(i for i in range(x.ndim) if i not in axes)
    inverse = np.argsort(order)

    def to_w(g):
        g = np.sum(g, axis=others) if others else g
        g = np.reshape(g, np.shape(w_sorted))
        return np.transpose(g, inverse) if len(axes) > 1 else g

    return wb, to_w


@numpy_rule(np.average)
def average_rule(a, axis=None, weights=None, returned=False, *, keepdims=_NoValue):
    """``sum(a w) / sum(w)``: cotangents ``dy w / sum(w)`` for ``a`` and ``dy (a - avg) / sum(w)`` for ``w``;
    with ``returned=True`` the sum of weights' cotangent adds ``d_scl`` to every weight."""
    opts = _options(keepdims=keepdims)
    y = np.average(a, axis=axis, weights=weights, returned=returned, **opts)
    x = _as_array(a)
    if weights is None:
        avg_y, pb = _mean_rule("np.mean", np.mean, a, axis, None, None, keepdims, _NoValue)
        if pb is None:
            return y, None

        def average_pullback(dy):
            d_avg = dy[0] if returned else dy
            return (pb(d_avg)[0] if d_avg is not None else None, None, None, None)

        return y, average_pullback
    w = _as_array(weights)
    if not (inexact(x) or inexact(w)):
        return y, None
    avg = y[0] if returned else y
    keep = _given(keepdims) and bool(keepdims)
    axes = normalize_axes(axis, x.ndim)
    wb, to_w = _weights_layout(x, w, axis)

    def average_pullback(dy):
        d_avg, d_scl = (dy[0], dy[1]) if returned else (dy, None)
        scl = np.sum(wb * np.ones(x.shape, dtype=w.dtype), axis=axes, keepdims=True)
        da = dw_full = None
        if d_avg is not None:
            g = _expand(d_avg, x, axes, keep) / conj(scl)
            if inexact(x):
                da = cotangent(_zeros_plus(g * conj(wb), x), a)
            if inexact(w):
                dw_full = g * conj(x - _expand(avg, x, axes, keep))
        if d_scl is not None and inexact(w):
            extra = np.zeros(x.shape) + _expand(d_scl, x, axes, keep)
            dw_full = extra if dw_full is None else dw_full + extra
        dw = None
        if dw_full is not None:
            dw_full = dw_full + np.zeros(x.shape, dtype=np.result_type(dw_full, np.float64))
            dw = cotangent(to_w(dw_full), weights)
        return da, None, dw, None

    return y, average_pullback


# -- median / percentile / quantile ----------------------------------------------------------------
# The result is a convex combination of at most two order statistics of each slice,
# with weights that depend only on the slice length and q: y = (1 - gamma) s[lo] + gamma s[hi].


def _alpha_beta(method):
    return {
        "linear": (1.0, 1.0), "hazen": (0.5, 0.5), "weibull": (0.0, 0.0),
        "median_unbiased": (1 / 3.0, 1 / 3.0), "normal_unbiased": (3 / 8.0, 3 / 8.0),
        "interpolated_inverted_cdf": (0.0, 1.0),
    }.get(method)


_QUANTILE_METHODS = ("linear", "hazen", "weibull", "median_unbiased", "normal_unbiased",
                     "interpolated_inverted_cdf", "lower", "higher", "midpoint", "nearest")


def _quantile_positions(n, q, method):
    """(lo, hi, gamma, dgamma/dq) for sorted slices of length ``n`` and 1-D quantiles ``q``."""
    q = np.asarray(q, dtype=np.float64)
    zeros = np.zeros_like(q)
    if method in ("lower", "higher", "nearest"):
        v = (n - 1) * q
        index = {"lower": np.floor, "higher": np.ceil, "nearest": np.around}[method](v).astype(np.intp)
        index = np.clip(index, 0, n - 1)
        return index, index, zeros, zeros
    if method == "midpoint":
        v = 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q))
        slope = zeros
    else:
        alpha, beta = _alpha_beta(method)
        if method == "linear":
            v = (n - 1) * q
            slope = np.full_like(q, float(n - 1))
        else:
            v = n * q + (alpha + q * (1 - alpha - beta)) - 1
            slope = np.full_like(q, n + (1 - alpha - beta))
    lo = np.floor(v)
    gamma = v - lo
    if method == "midpoint":
        gamma = np.where(v % 1 == 0, 0.0, 0.5)
    lo = lo.astype(np.intp)
    hi = lo + 1
    above = v >= n - 1
    below = v < 0
    lo = np.where(above, n - 1, np.where(below, 0, lo))
    hi = np.where(above, n - 1, np.where(below, 0, hi))
    clipped = np.logical_or(above, below)
    gamma = np.where(clipped, 0.0, gamma)
    slope = np.where(clipped, 0.0, slope)
    return lo, hi, gamma, slope


def _quantile_rule(name, fn, a, q, axis, out, overwrite_input, method, keepdims, weights,
                   q_scale=1.0, median=False):
    check_no_out(name, out)
    kwargs = {} if median else {"method": method}
    if not median and weights is not None:
        kwargs["weights"] = weights
    if median:
        y = fn(a, axis=axis, keepdims=keepdims)
    else:
        y = fn(a, q, axis=axis, keepdims=keepdims, **kwargs)
    x = _as_array(a)
    if not inexact(y) or not (inexact(x) or inexact(q)):
        return y, None
    if weights is not None:
        raise UnsupportedOperationError(
            f"morula has no rule for {name}(..., weights=...) (method='inverted_cdf'): "
            f"its result jumps between data values. Fix: compute the weighted quantile "
            f"with np.sort/np.cumsum/np.searchsorted, or wrap it with morula.stop_gradient.")
    if method not in _QUANTILE_METHODS:
        raise UnsupportedOperationError(
            f"morula has a rule for {name} with method in {_QUANTILE_METHODS}, not "
            f"method={method!r} (a discontinuous estimator). Fix: use method='linear' "
            f"(the default), or register your own rule with @morula.rrule({name}).")
    if is_complex(x):
        raise UnsupportedOperationError(f"morula: {name} of complex values has no derivative rule")
    axes = normalize_axes(axis, x.ndim)
    kept = tuple(i for i in range(x.ndim) if i not in axes)
    moved = np.moveaxis(x, axes, tuple(range(len(kept), x.ndim))) if axes else x
    batch = moved.shape[: len(kept)]
    n = 1
    for ax in axes:
        n *= x.shape[ax]
    lanes = np.reshape(moved, batch + (n,))
    qa = np.asarray(q, dtype=np.float64) * q_scale
    q_shape = qa.shape
    lo, hi, gamma, slope = _quantile_positions(n, np.ravel(qa), method)
    slope = slope * q_scale

    def quantile_pullback(dy):
        perm = np.argsort(lanes, axis=-1, kind="stable")
        m = lo.shape[0]
        # dy (shape q_shape + batch, or with keepdims the reduced axes as 1s) as (batch..., m)
        d = np.reshape(dy, q_shape + batch)
        d = np.moveaxis(np.reshape(d, (m,) + batch), 0, -1) if m else d
        d = np.reshape(d, batch + (m,))
        weight = np.zeros((m, n))
        np.add.at(weight, (np.arange(m), lo), 1 - gamma)
        np.add.at(weight, (np.arange(m), hi), gamma)
        g_sorted = np.matmul(d, weight)  # (batch..., n)
        g_lanes = np.zeros(batch + (n,), dtype=np.result_type(g_sorted, np.float64))
        np.put_along_axis(g_lanes, perm, g_sorted, axis=-1)
        nans = np.isnan(lanes)
        nan_lane = np.any(nans, axis=-1, keepdims=True)
        if np.any(nan_lane):
            share = np.sum(d, axis=-1, keepdims=True) / np.maximum(np.sum(nans, axis=-1, keepdims=True), 1)
            g_lanes = np.where(nan_lane, np.where(nans, share, 0), g_lanes)
        dx = None
        if inexact(x):
            g = np.reshape(g_lanes, moved.shape)
            g = np.moveaxis(g, tuple(range(len(kept), x.ndim)), axes) if axes else g
            dx = cotangent(with_dtype_of(g, x), a)
        dq = None
        if inexact(q):
            s = np.take_along_axis(lanes, perm, axis=-1)
            jump = np.take(s, hi, axis=-1) - np.take(s, lo, axis=-1)  # (batch..., m)
            jump = np.where(nan_lane, 0, jump)
            dq_flat = np.sum(np.reshape(d * jump, (-1, m)), axis=0) * slope
            dq = cotangent(np.reshape(dq_flat, q_shape), q)
        return dx, dq

    if median:
        def median_pullback(dy):
            return quantile_pullback(dy)[:1]
        return y, median_pullback
    return y, quantile_pullback


@numpy_rule(np.median)
def median_rule(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    return _quantile_rule("np.median", np.median, a, 0.5, axis, out, overwrite_input, "linear",
                          keepdims, None, median=True)


@numpy_rule(np.quantile)
def quantile_rule(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, weights=None):
    return _quantile_rule("np.quantile", np.quantile, a, q, axis, out, overwrite_input, method,
                          keepdims, weights)


@numpy_rule(np.percentile)
def percentile_rule(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                    keepdims=False, *, weights=None):
    return _quantile_rule("np.percentile", np.percentile, a, q, axis, out, overwrite_input, method,
                          keepdims, weights, q_scale=0.01)


# pullbacks that take a batch of cotangents (leading axis; see morula.tangents.BATCH)
batch_capable(_sum_rule, _mean_rule)
