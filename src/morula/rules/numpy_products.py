"""Reverse rules for NumPy's structured products: ``np.kron`` and ``np.cross``.

In: nothing (importing registers the rules). Out: rules for ``np.kron`` (any
ranks; the smaller operand is padded with leading 1s as NumPy does) and
``np.cross`` (3- and 2-vectors, ``axisa``/``axisb``/``axisc``/``axis``,
broadcast batch dimensions).

Both are bilinear: the cotangent of one operand is the product of the output
cotangent with the *conjugated* other operand (Zygote's complex convention),
reduced to the operand's shape. The matmul/einsum family lives in
``numpy_linalg``.
"""

import numpy as np

from morula.rules.numpy_vspace import as_array, conj, cotangent, inexact, numpy_rule


# -- kron --------------------------------------------------------------------------------------------


@numpy_rule(np.kron)
def kron_rule(a, b):
    """``y[i * sb + j] = a[i] b[j]`` along every axis: reshape the cotangent to interleaved
    ``(sa0, sb0, sa1, sb1, ...)`` axes and contract with the other operand."""
    y = np.kron(a, b)
    ua, ub = as_array(a), as_array(b)
    if not (inexact(ua) or inexact(ub)) or not inexact(y):
        return y, None
    nd = max(ua.ndim, ub.ndim)
    sa = (1,) * (nd - ua.ndim) + tuple(ua.shape)
    sb = (1,) * (nd - ub.ndim) + tuple(ub.shape)
    interleaved = tuple(n for pair in zip(sa, sb) for n in pair)
    a_axes = tuple(range(0, 2 * nd, 2))
    b_axes = tuple(range(1, 2 * nd, 2))

    def kron_pullback(dy):
        g = np.reshape(dy, interleaved)
        da = db = None
        if inexact(ua):
            b_wide = np.expand_dims(np.reshape(conj(ub), sb), a_axes)
            da = cotangent(np.reshape(np.sum(g * b_wide, axis=b_axes), ua.shape), a)
        if inexact(ub):
            a_wide = np.expand_dims(np.reshape(conj(ua), sa), b_axes)
            db = cotangent(np.reshape(np.sum(g * a_wide, axis=a_axes), ub.shape), b)
        return da, db

    return y, kron_pullback


# -- cross -------------------------------------------------------------------------------------------


def _as_3(v):
    """Vectors along the last axis as 3-vectors (a 2-vector gets z = 0)."""
    if v.shape[-1] == 3:
        return v
    zero = np.zeros_like(v[..., :1])
    return np.concatenate([v, zero], axis=-1)


@numpy_rule(np.cross)
def cross_rule(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """``c = a x b``: ``da = conj(b) x dc``, ``db = dc x conj(a)`` (2-vectors as 3-vectors with
    z = 0; the cotangent of a 2-vector drops z; a scalar result of two 2-vectors is the z part)."""
    y = np.cross(a, b, axisa, axisb, axisc, axis)
    ua, ub = as_array(a), as_array(b)
    if not (inexact(ua) or inexact(ub)) or not inexact(y):
        return y, None
    if axis is not None:
        axisa = axisb = axisc = axis
    am = np.moveaxis(ua, axisa, -1)
    bm = np.moveaxis(ub, axisb, -1)
    na, nb = am.shape[-1], bm.shape[-1]
    a3, b3 = _as_3(am), _as_3(bm)
    scalar = na == 2 and nb == 2

    def cross_pullback(dy):
        if scalar:
            dc = np.stack([np.zeros_like(dy), np.zeros_like(dy), dy], axis=-1)
        else:
            dc = np.moveaxis(dy, axisc, -1)
        da = db = None
        if inexact(ua):
            g = np.cross(conj(b3), dc)[..., :na]
            g = _reduce_to(g, am.shape)
            da = cotangent(np.moveaxis(g, -1, axisa), a)
        if inexact(ub):
            g = np.cross(dc, conj(a3))[..., :nb]
            g = _reduce_to(g, bm.shape)
            db = cotangent(np.moveaxis(g, -1, axisb), b)
        return da, db

    return y, cross_pullback


def _reduce_to(g, shape):
    """Sum the batch dimensions that were broadcast so that ``g`` has ``shape``."""
    shape = tuple(shape)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = np.sum(g, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = np.sum(g, axis=axes, keepdims=True)
    return g
