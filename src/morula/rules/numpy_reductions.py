"""Reverse rules for NumPy reductions.

In: nothing (importing registers the rules). Out: rules for ``np.sum``,
``mean``, ``prod``, ``max``/``min``/``amax``/``amin`` (and ``nanmax``/``nanmin``),
``nansum``, ``nanmean``, ``cumsum``, ``var``, ``std``, and the ``ndarray``
methods of the same names. Every reduction accepts ``axis`` (None, int,
negative, tuple), ``keepdims`` and, where NumPy does, ``where=`` masks.

Conventions: ``prod`` is exact at zeros (the cotangent of an entry is the
product of the *other* entries); ties in ``max``/``min`` share the cotangent
equally; ``std`` where it is 0 gives cotangent 0. See docs/rules_numpy_notes.md.
"""

import numpy as np

from morula.rules.numpy_vspace import (
    check_no_out,
    conj,
    cotangent,
    inexact,
    normalize_axes,
    numpy_method_rule,
    numpy_rule,
    real_part,
    with_dtype_of,
)

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
    if not inexact(x) or not inexact(y):
        return y, None
    axes = normalize_axes(axis, x.ndim)
    keep = _given(keepdims) and bool(keepdims)

    def sum_pullback(dy):
        g = _zeros_plus(_expand(dy, x, axes, keep), x)
        if _given(where) and where is not True:
            g = np.where(where, g, 0)
        if nan:
            g = np.where(np.isnan(x), 0, g)
        return (_restore(g, a, x),)

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
    if not inexact(x) or not inexact(y):
        return y, None
    axes = normalize_axes(axis, x.ndim)
    keep = _given(keepdims) and bool(keepdims)

    def prod_pullback(dy):
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
        return (_restore(g, a, x),)

    return y, prod_pullback


# -- max / min -------------------------------------------------------------------------------


def _extremum_rule(name, fn, a, axis, out, keepdims, initial, where, nan=False):
    check_no_out(name, out)
    x = _as_array(a)
    y = fn(a, axis=axis, **_options(keepdims=keepdims, initial=initial, where=where))
    if not inexact(x) or not inexact(y):
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
        share = _expand(dy, x, axes, keep) / np.maximum(count, 1)
        g = _zeros_plus(np.where(hit, share, 0), x)
        return (_restore(g, a, x),)

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
