"""Reverse rules for NumPy's 1-D signal and numerical-analysis helpers.

In: nothing (importing registers the rules). Out: rules for ``np.convolve``
and ``np.correlate`` (modes ``full``/``same``/``valid``, real or complex),
``np.interp`` (cotangents for ``x``, ``xp``, ``fp``, ``left``, ``right``;
``period`` supported), ``np.polyval`` (coefficients and points), and
``np.trapezoid`` (and ``np.trapz`` where NumPy still has it) with ``x=`` or
``dx=``.

Conventions: ``interp`` is piecewise linear; at a knot ``x == xp[j]`` the
slope to the right is used (the last knot uses the slope to its left), and
outside ``[xp[0], xp[-1]]`` the derivative wrt ``x`` is 0 and the cotangent
goes to ``left``/``right`` (or to ``fp[0]``/``fp[-1]`` when they are None).
Complex conventions as everywhere: cotangent = dy * conj(derivative).
"""

import numpy as np

from morula.rules.numpy_vspace import (
    as_array,
    conj,
    cotangent,
    inexact,
    numpy_rule,
    real_part,
)


# -- convolve / correlate -------------------------------------------------------------------------


def _full_offset(n, m, mode):
    """Where a mode's output starts inside the full convolution of lengths ``n`` and ``m``."""
    if mode == "full":
        return 0
    if mode == "valid":
        return min(n, m) - 1
    if mode == "same":
        return (min(n, m) - 1) // 2
    raise ValueError(f"mode must be 'full', 'same' or 'valid', not {mode!r}")


def _convolve_cotangents(dy, a, v, mode):
    """Cotangents of ``y = convolve(a, v, mode)`` (1-D): embed ``dy`` in the full output, then
    ``da = correlate(dy_full, v, 'valid')`` (which conjugates ``v``) and the same for ``v``."""
    n, m = a.shape[0], v.shape[0]
    offset = _full_offset(n, m, mode)
    full = np.zeros(n + m - 1, dtype=np.result_type(dy, a, v))
    full[offset:offset + dy.shape[0]] = dy
    da = np.correlate(full, v, "valid") if inexact(a) else None
    dv = np.correlate(full, a, "valid") if inexact(v) else None
    return da, dv


def _mode(mode, default):
    if mode is None:
        return default
    if isinstance(mode, int):  # NumPy's old integer codes
        return {0: "valid", 1: "same", 2: "full"}[mode]
    return {"v": "valid", "s": "same", "f": "full"}.get(mode, mode)


@numpy_rule(np.convolve)
def convolve_rule(a, v, mode="full"):
    y = np.convolve(a, v, mode)
    ua, uv = as_array(a), as_array(v)
    if not (inexact(ua) or inexact(uv)) or not inexact(y):
        return y, None
    md = _mode(mode, "full")

    def convolve_pullback(dy):
        da, dv = _convolve_cotangents(np.asarray(dy) if np.ndim(dy) == 0 else dy, ua, uv, md)
        return (cotangent(da, a) if da is not None else None,
                cotangent(dv, v) if dv is not None else None)

    return y, convolve_pullback


@numpy_rule(np.correlate)
def correlate_rule(a, v, mode="valid"):
    """``correlate(a, v) = convolve(a, conj(v[::-1]))``; ``w = conj(v[::-1])`` is antilinear in
    ``v``, so ``dv = conj(dw[::-1])``."""
    y = np.correlate(a, v, mode)
    ua, uv = as_array(a), as_array(v)
    if not (inexact(ua) or inexact(uv)) or not inexact(y):
        return y, None
    md = _mode(mode, "valid")
    w = conj(uv[::-1])

    def correlate_pullback(dy):
        da, dw = _convolve_cotangents(dy, ua, w, md)
        dv = conj(dw[::-1]) if dw is not None else None
        return (cotangent(da, a) if da is not None else None,
                cotangent(dv, v) if dv is not None else None)

    return y, correlate_pullback


# -- interp ---------------------------------------------------------------------------------------------


def _interp_layout(x, xp, fp, period):
    """(knots, source index of each knot in ``xp``/``fp``, d knot / d period) after NumPy's
    periodic extension (``xp % period`` sorted, one knot wrapped around at each end)."""
    xp = np.asarray(xp, dtype=np.float64)
    source = np.arange(np.shape(fp)[0])
    if period is None:
        return xp, source, None
    period = abs(float(period))
    dknot = -np.floor(xp / period)  # d (xp mod P) / dP
    xp = xp % period
    order = np.argsort(xp)
    xp, source, dknot = xp[order], source[order], dknot[order]
    xp = np.concatenate([xp[-1:] - period, xp, xp[:1] + period])
    source = np.concatenate([source[-1:], source, source[:1]])
    dknot = np.concatenate([dknot[-1:] - 1, dknot, dknot[:1] + 1])
    return xp, source, dknot


@numpy_rule(np.interp)
def interp_rule(x, xp, fp, left=None, right=None, period=None):
    y = np.interp(x, xp, fp, left, right, period)
    ux, ufp = as_array(x), as_array(fp)
    if not (inexact(ux) or inexact(ufp) or inexact(left) or inexact(right)) or not inexact(y):
        return y, None
    knots, source, dknot = _interp_layout(ux, xp, ufp, period)
    values = ufp[source]
    xs = np.asarray(ux, dtype=np.float64)
    if period is not None:
        dxs = -np.floor(xs / abs(float(period)))  # d (x mod P) / dP
        xs = xs % abs(float(period))
    k = knots.shape[0]
    i = np.clip(np.searchsorted(knots, xs, side="right") - 1, 0, max(k - 2, 0))
    if k > 1:
        width = knots[i + 1] - knots[i]
        nonzero = width != 0
        t = np.where(nonzero, (xs - knots[i]) / np.where(nonzero, width, 1), 0.0)
        slope = np.where(nonzero, (values[i + 1] - values[i]) / np.where(nonzero, width, 1), 0)
    else:
        t = np.zeros_like(xs)
        slope = np.zeros_like(xs)
    below = xs < knots[0]
    above = xs > knots[-1]
    if period is not None:
        below = above = np.zeros_like(xs, dtype=bool)
    inside = np.logical_not(np.logical_or(below, above))
    t = np.where(above, 1.0, np.where(below, 0.0, t))
    use_left = below if left is None else np.zeros_like(below)
    use_right = above if right is None else np.zeros_like(above)
    uxp = as_array(xp)

    def interp_pullback(dy):
        dyv = np.asarray(dy)
        d_x = d_xp = d_fp = d_left = d_right = None
        if inexact(ux):
            d_x = cotangent(np.where(inside, dyv * conj(slope), 0), x)
        if inexact(uxp) and k > 1:
            # y = f_i + t (f_{i+1} - f_i), t = (x - a) / (b - a): dy/da = slope (t - 1), dy/db = -slope t
            g = np.zeros(uxp.shape[0], dtype=np.float64)
            common = real_part(np.where(inside, dyv * conj(slope), 0))
            np.add.at(g, np.ravel(source[i]), np.ravel(common * (t - 1)))
            np.add.at(g, np.ravel(source[np.minimum(i + 1, k - 1)]), np.ravel(-common * t))
            d_xp = cotangent(g, xp)
        if inexact(ufp):
            g = np.zeros(ufp.shape[0], dtype=np.result_type(dyv, ufp, np.float64))
            lo_w = np.where(inside, 1 - t, 0) + use_left  # weight of values[i]
            hi_w = np.where(inside, t, 0) + use_right     # weight of values[i + 1]
            lo_index = np.where(use_left, 0, source[i])
            hi_index = np.where(use_right, source[-1], source[np.minimum(i + 1, k - 1)])
            np.add.at(g, np.ravel(lo_index), np.ravel(dyv * lo_w))
            np.add.at(g, np.ravel(hi_index), np.ravel(dyv * hi_w))
            d_fp = cotangent(g, fp)
        if left is not None and inexact(left):
            d_left = cotangent(np.sum(np.where(below, dyv, 0)), left)
        if right is not None and inexact(right):
            d_right = cotangent(np.sum(np.where(above, dyv, 0)), right)
        d_period = None
        if period is not None and inexact(period) and k > 1:
            common = real_part(np.where(inside, dyv * conj(slope), 0))
            j = np.minimum(i + 1, k - 1)
            total = np.sum(common * (dxs + (t - 1) * dknot[i] - t * dknot[j]))
            d_period = cotangent(total * np.sign(float(period)), period)
        return d_x, d_xp, d_fp, d_left, d_right, d_period

    return y, interp_pullback


# -- polyval ---------------------------------------------------------------------------------------------


@numpy_rule(np.polyval)
def polyval_rule(p, x):
    """``y = sum_i p_i x**(N-1-i)``: ``dp_i = sum dy conj(x**(N-1-i))``, ``dx = dy conj(p'(x))``."""
    y = np.polyval(p, x)
    up, ux = as_array(p), as_array(x)
    if not (inexact(up) or inexact(ux)) or not inexact(y):
        return y, None
    n = up.shape[0]

    def polyval_pullback(dy):
        dyv = np.asarray(dy)
        dp = dx = None
        if inexact(up):
            powers = np.arange(n - 1, -1, -1)
            basis = np.asarray(ux)[..., None] ** powers  # x**(N-1-i); 0**0 = 1
            g = np.reshape(dyv[..., None] * conj(basis), (-1, n)).sum(axis=0)
            dp = cotangent(g, p)
        if inexact(ux):
            derivative = up[:-1] * np.arange(n - 1, 0, -1) if n > 1 else np.zeros(1, dtype=up.dtype)
            dx = cotangent(dyv * conj(np.polyval(derivative, ux)), x)
        return dp, dx

    return y, polyval_pullback


# -- trapezoid ---------------------------------------------------------------------------------------------


def _take(a, start, stop, axis):
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return a[tuple(index)]


def _trapezoid_rule_for(fn):
    def trapezoid_rule(y, x=None, dx=1.0, axis=-1):
        out = fn(y, x, dx, axis)
        uy = as_array(y)
        ux = as_array(x) if x is not None else None
        if not (inexact(uy) or inexact(x) or (x is None and inexact(dx))) or not inexact(out):
            return out, None
        nd = uy.ndim
        ax = axis % nd
        if ux is not None:
            if ux.ndim == 1:
                d = np.diff(ux)
                shape = [1] * nd
                shape[ax] = d.shape[0]
                d = np.reshape(d, shape)
            else:
                d = np.diff(ux, axis=axis)
        else:
            d = as_array(dx)
        mid = (_take(uy, 1, None, ax) + _take(uy, None, -1, ax)) / 2.0  # (y_i + y_{i+1}) / 2

        def trapezoid_pullback(g):
            ge = np.expand_dims(np.asarray(g), ax) if np.ndim(g) < nd else g
            d_y = d_x = d_dx = None
            if inexact(uy):
                half = ge * conj(d) / 2.0  # cotangent of each interval's y_i and y_{i+1}
                half = half + np.zeros(mid.shape)
                zero = np.zeros_like(_take(half, 0, 1, ax))
                d_y = cotangent(np.concatenate([half, zero], axis=ax)
                                + np.concatenate([zero, half], axis=ax), y)
            dd = ge * conj(mid)  # cotangent of each interval width
            if ux is not None and inexact(ux):
                if ux.ndim == 1:
                    other = tuple(k for k in range(nd) if k != ax)
                    dd1 = np.sum(dd + np.zeros(mid.shape), axis=other) if other else dd
                    dd1 = np.reshape(dd1, (-1,))
                    zero = np.zeros_like(dd1[:1])
                    g_x = np.concatenate([zero, dd1]) - np.concatenate([dd1, zero])
                else:
                    dd1 = _reduce_like(dd, np.shape(d))
                    zero = np.zeros_like(_take(dd1, 0, 1, ax))
                    g_x = np.concatenate([zero, dd1], axis=ax) - np.concatenate([dd1, zero], axis=ax)
                d_x = cotangent(g_x, x)
            elif ux is None and inexact(dx):
                d_dx = cotangent(_reduce_like(dd, np.shape(dx)), dx)
            return d_y, d_x, d_dx, None

        return out, trapezoid_pullback

    trapezoid_rule.__name__ = f"{fn.__name__}_rule"
    return numpy_rule(fn)(trapezoid_rule)


def _reduce_like(g, shape):
    """Sum ``g`` down to ``shape`` (which broadcasts to ``g.shape``)."""
    shape = tuple(shape)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = np.sum(g, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = np.sum(g, axis=axes, keepdims=True)
    return np.reshape(g, shape)


if hasattr(np, "trapezoid"):
    trapezoid_rule = _trapezoid_rule_for(np.trapezoid)
if hasattr(np, "trapz"):
    trapz_rule = _trapezoid_rule_for(np.trapz)
