"""Reverse rules for NumPy's elementwise functions (ufuncs and friends).

In: nothing (importing registers the rules). Out: rules for arithmetic,
powers, exponentials/logs, trigonometric and hyperbolic functions, min/max,
``clip``, ``where``, complex parts, and ``nondiff`` declarations for rounding,
predicates, comparisons, ``arg*`` and random sampling.

Helpers (also used by forward mode through ``ELEMENTWISE``):
- ``elementwise(fn, derivative)``: ``derivative(x, y)`` is dy/dx given the
  input ``x`` and the output ``y``; the pullback is ``dy * conj(derivative)``;
- ``binary_elementwise(fn, dx, dy)``: ``dx(x1, x2, y)`` / ``dy(x1, x2, y)`` are
  the partial derivatives; cotangents are ``unbroadcast`` to each operand.

Complex convention (Zygote's): for a holomorphic ``f`` the cotangent of the
input is ``conj(f'(z)) * dy``; for real inputs that is the usual formula.
Conventions at non-smooth points are listed in docs/rules_numpy_notes.md.

NaN safety: every pullback here returns an exact zero where its incoming
cotangent is exactly zero, even where the local derivative is infinite or NaN
(``0 * inf := 0``, ``numpy_vspace.nan_safe``), and the selecting functions
(``where``, ``select``, ``clip``, ``maximum``/``minimum``, ``nan_to_num``) give
the unselected operand an exact zero (``np.where``, never ``dy * 0``). Warnings
raised while evaluating a derivative at such points are silenced.
"""

import numpy as np

from morula.rules.numpy_vspace import (
    as_operand,
    check_ufunc_kwargs,
    conj,
    cotangent,
    inexact,
    is_complex,
    nan_safe,
    nan_safe_product,
    numpy_method_rule,
    numpy_rule,
    quiet,
    scalar_wanted,
    real_part,
    keep,
)
from morula.rules.registry import REGISTRY, nondiff, nondiff_method
from morula.reverse.shadow import batch_capable

# fn -> ("unary", derivative) | ("binary", dx, dy): the same declarations serve forward mode.
ELEMENTWISE = {}

_LN2 = float(np.log(2.0))
_LN10 = float(np.log(10.0))


def _name(fn):
    return "np." + getattr(fn, "__name__", "fn")


def elementwise(fn, derivative, name=None):
    """Register a unary elementwise rule for ``fn`` from ``derivative(x, y) -> dy/dx``
    (``name``: how errors call ``fn``, ``np.<name>`` by default)."""
    name = name or _name(fn)

    def elementwise_rule(x, *out, **kwargs):
        check_ufunc_kwargs(name, out, kwargs)
        y = fn(x, **kwargs)
        if not inexact(x) or not inexact(y):
            return y, None

        u = as_operand(x)

        def elementwise_pullback(dy):
            with quiet():
                d = conj(derivative(u, y))
            return (cotangent(nan_safe_product(dy, d), x),)

        elementwise_pullback.__name__ = f"{getattr(fn, '__name__', 'fn')}_pullback"
        return y, elementwise_pullback

    elementwise_rule.__name__ = f"{getattr(fn, '__name__', 'fn')}_rule"
    REGISTRY.add_function(fn, elementwise_rule)
    ELEMENTWISE[fn] = ("unary", derivative)
    return elementwise_rule


def binary_elementwise(fn, dx, dy, name=None):
    """Register a binary broadcasting rule for ``fn`` from its partial derivatives ``dx/dy(x1, x2, y)``."""
    name = name or _name(fn)

    def binary_rule(x1, x2, *out, **kwargs):
        check_ufunc_kwargs(name, out, kwargs)
        y = fn(x1, x2, **kwargs)
        need1, need2 = scalar_wanted(x1), scalar_wanted(x2)
        if not (need1 or need2) or not inexact(y):
            return y, None

        u1, u2 = as_operand(x1), as_operand(x2)

        def binary_pullback(g):
            with quiet():
                d1 = conj(dx(u1, u2, y)) if need1 else None
                d2 = conj(dy(u1, u2, y)) if need2 else None
            g1 = cotangent(nan_safe_product(g, d1), x1) if need1 else None
            g2 = cotangent(nan_safe_product(g, d2), x2) if need2 else None
            return g1, g2

        binary_pullback.__name__ = f"{getattr(fn, '__name__', 'fn')}_pullback"
        return y, binary_pullback

    binary_rule.__name__ = f"{getattr(fn, '__name__', 'fn')}_rule"
    REGISTRY.add_function(fn, binary_rule)
    ELEMENTWISE[fn] = ("binary", dx, dy)
    return binary_rule


def _constant(y, *operands):
    """True when no operand carries a derivative (or the output is not floating): a constant."""
    return not inexact(y) or not any(inexact(x) for x in operands)


def _safe(mask, value, fill=1):
    """``value`` where ``mask`` holds, ``fill`` elsewhere (to keep a later division or log finite)."""
    return np.where(mask, value, fill)


# -- linear arithmetic (written out: no multiplication by 1) -----------------------------


@numpy_rule(np.add)
def add_rule(x1, x2, *out, **kwargs):
    check_ufunc_kwargs("np.add", out, kwargs)
    y = np.add(x1, x2, **kwargs)
    if _constant(y, x1, x2):
        return y, None

    def add_pullback(dy):
        return cotangent(dy, x1), cotangent(dy, x2)

    return y, add_pullback


@numpy_rule(np.subtract)
def subtract_rule(x1, x2, *out, **kwargs):
    check_ufunc_kwargs("np.subtract", out, kwargs)
    y = np.subtract(x1, x2, **kwargs)
    if _constant(y, x1, x2):
        return y, None

    def subtract_pullback(dy):
        return cotangent(dy, x1), (cotangent(-dy, x2) if inexact(x2) else None)

    return y, subtract_pullback


@numpy_rule(np.negative)
def negative_rule(x, *out, **kwargs):
    check_ufunc_kwargs("np.negative", out, kwargs)
    y = np.negative(x, **kwargs)
    if _constant(y, x):
        return y, None

    def negative_pullback(dy):
        return (cotangent(-dy, x),)

    return y, negative_pullback


@numpy_rule(np.positive)
def positive_rule(x, *out, **kwargs):
    check_ufunc_kwargs("np.positive", out, kwargs)
    y = np.positive(x, **kwargs)
    if _constant(y, x):
        return y, None

    def positive_pullback(dy):
        return (cotangent(dy, x),)

    return y, positive_pullback


ELEMENTWISE[np.add] = ("binary", lambda x1, x2, y: 1, lambda x1, x2, y: 1)
ELEMENTWISE[np.subtract] = ("binary", lambda x1, x2, y: 1, lambda x1, x2, y: -1)
ELEMENTWISE[np.negative] = ("unary", lambda x, y: -1)
ELEMENTWISE[np.positive] = ("unary", lambda x, y: 1)


@numpy_rule(np.multiply)
def multiply_rule(x1, x2, *out, **kwargs):
    check_ufunc_kwargs("np.multiply", out, kwargs)
    y = np.multiply(x1, x2, **kwargs)
    if _constant(y, x1, x2):
        return y, None

    u1, u2 = as_operand(x1), as_operand(x2)

    def multiply_pullback(dy):
        g1 = cotangent(nan_safe_product(dy, conj(u2)), x1) if inexact(x1) else None
        g2 = cotangent(nan_safe_product(dy, conj(u1)), x2) if inexact(x2) else None
        return g1, g2

    return y, multiply_pullback


ELEMENTWISE[np.multiply] = ("binary", lambda x1, x2, y: x2, lambda x1, x2, y: x1)


@numpy_rule(np.divide)  # np.true_divide is the same object
def divide_rule(x1, x2, *out, **kwargs):
    check_ufunc_kwargs("np.divide", out, kwargs)
    y = np.divide(x1, x2, **kwargs)
    if _constant(y, x1, x2):
        return y, None

    u2 = as_operand(x2)

    def divide_pullback(dy):
        with quiet():
            g1 = nan_safe(dy / conj(u2), dy)
            d2 = nan_safe(-g1 * conj(y), dy) if inexact(x2) else None
        d1 = cotangent(g1, x1) if inexact(x1) else None
        return d1, (cotangent(d2, x2) if d2 is not None else None)

    return y, divide_pullback


ELEMENTWISE[np.divide] = ("binary", lambda x1, x2, y: 1 / x2, lambda x1, x2, y: -y / x2)


# -- powers --------------------------------------------------------------------------


def _power_dbase(x1, x2, y, power):
    """d(x1**x2)/dx1 = x2 * x1**(x2-1), and exactly 0 where x2 == 0 (also at x1 == 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = x2 * power(x1, x2 - 1)
    return np.where(x2 == 0, 0, d)


def _power_dexp(x1, x2, y):
    """d(x1**x2)/dx2 = x1**x2 * log(x1), using log only where it exists (x1 > 0; x1 != 0 if complex).

    Elsewhere (x1 <= 0 for real bases) the derivative is taken as 0.
    """
    ok = (x1 != 0) if is_complex(x1) else (x1 > 0)
    return np.where(ok, y * np.log(_safe(ok, x1)), 0)


def _power_rule_for(power, name):
    def power_rule(x1, x2, *out, **kwargs):
        check_ufunc_kwargs(name, out, kwargs)
        y = power(x1, x2, **kwargs)
        need1, need2 = scalar_wanted(x1), scalar_wanted(x2)
        if not (need1 or need2) or not inexact(y):
            return y, None

        u1, u2 = as_operand(x1), as_operand(x2)

        def power_pullback(dy):
            with quiet():
                d1 = conj(_power_dbase(u1, u2, y, power)) if need1 else None
                d2 = conj(_power_dexp(u1, u2, y)) if need2 else None
            g1 = cotangent(nan_safe_product(dy, d1), x1) if need1 else None
            g2 = cotangent(nan_safe_product(dy, d2), x2) if need2 else None
            return g1, g2

        return y, power_pullback

    REGISTRY.add_function(power, power_rule)
    ELEMENTWISE[power] = (
        "binary",
        lambda x1, x2, y: _power_dbase(x1, x2, y, power),
        _power_dexp,
    )
    return power_rule


power_rule = _power_rule_for(np.power, "np.power")
float_power_rule = _power_rule_for(np.float_power, "np.float_power")


# -- unary functions -----------------------------------------------------------------

elementwise(np.exp, lambda x, y: y)
elementwise(np.exp2, lambda x, y: y * _LN2)
elementwise(np.expm1, lambda x, y: y + 1)
elementwise(np.log, lambda x, y: 1 / x)
elementwise(np.log2, lambda x, y: 1 / (x * _LN2))
elementwise(np.log10, lambda x, y: 1 / (x * _LN10))
elementwise(np.log1p, lambda x, y: 1 / (1 + x))
elementwise(np.sqrt, lambda x, y: 0.5 / y)  # inf at x == 0 (the true one-sided slope)
elementwise(np.cbrt, lambda x, y: 1 / (3 * y * y))  # inf at x == 0
elementwise(np.square, lambda x, y: 2 * x)
elementwise(np.reciprocal, lambda x, y: -(y * y))
elementwise(np.sin, lambda x, y: np.cos(x))
elementwise(np.cos, lambda x, y: -np.sin(x))
elementwise(np.tan, lambda x, y: 1 + y * y)
elementwise(np.sinh, lambda x, y: np.cosh(x))
elementwise(np.cosh, lambda x, y: np.sinh(x))
elementwise(np.tanh, lambda x, y: 1 - y * y)
elementwise(np.arcsin, lambda x, y: 1 / np.sqrt(1 - x * x))
elementwise(np.arccos, lambda x, y: -1 / np.sqrt(1 - x * x))
elementwise(np.arctan, lambda x, y: 1 / (1 + x * x))
elementwise(np.arcsinh, lambda x, y: 1 / np.sqrt(x * x + 1))
elementwise(np.arccosh, lambda x, y: 1 / (np.sqrt(x - 1) * np.sqrt(x + 1)))
elementwise(np.arctanh, lambda x, y: 1 / (1 - x * x))
elementwise(np.deg2rad, lambda x, y: np.pi / 180)
elementwise(np.radians, lambda x, y: np.pi / 180)
elementwise(np.rad2deg, lambda x, y: 180 / np.pi)
elementwise(np.degrees, lambda x, y: 180 / np.pi)
elementwise(np.fabs, lambda x, y: np.sign(x))  # 0 at x == 0


def _sinc_derivative(x, y):
    """d sinc(x)/dx = (cos(pi x) - sinc(x)) / x, and 0 at x == 0."""
    nonzero = x != 0
    xs = _safe(nonzero, x)
    return np.where(nonzero, (np.cos(np.pi * xs) - y) / xs, 0)


elementwise(np.sinc, _sinc_derivative)

# -- absolute value and complex parts (not holomorphic: written out) -------------------


def _abs_pullback_value(dy, x, y):
    if is_complex(x):
        nonzero = y != 0
        return nan_safe_product(real_part(dy), np.where(nonzero, x / _safe(nonzero, y), 0))
    return nan_safe_product(dy, np.sign(x))


@numpy_rule(np.absolute)  # np.abs is the same object
def absolute_rule(x, *out, **kwargs):
    check_ufunc_kwargs("np.absolute", out, kwargs)
    y = np.absolute(x, **kwargs)
    if not inexact(x):
        return y, None

    u = as_operand(x)

    def absolute_pullback(dy):
        return (cotangent(_abs_pullback_value(dy, u, y), x),)

    return y, absolute_pullback


ELEMENTWISE[np.absolute] = ("unary", lambda x, y: np.sign(x))  # real inputs


@numpy_rule(np.conjugate)  # np.conj is the same object
def conjugate_rule(x, *out, **kwargs):
    check_ufunc_kwargs("np.conjugate", out, kwargs)
    y = np.conjugate(x, **kwargs)
    if _constant(y, x):
        return y, None

    def conjugate_pullback(dy):
        return (cotangent(conj(dy), x),)

    return y, conjugate_pullback


@numpy_rule(np.real)
def real_rule(val):
    y = np.real(val)
    if _constant(y, val):
        return y, None

    def real_pullback(dy):
        return (cotangent(real_part(dy), val),)

    return y, real_pullback


@numpy_rule(np.imag)
def imag_rule(val):
    y = np.imag(val)
    if not is_complex(val):
        return y, None  # zeros: a constant

    def imag_pullback(dy):
        return (cotangent(1j * real_part(dy), val),)

    return y, imag_pullback


@numpy_method_rule(np.ndarray, "conj", "conjugate")
def ndarray_conjugate_rule(self):
    def conjugate_pullback(dy):
        return (cotangent(conj(dy), self),)

    return self.conjugate(), conjugate_pullback

# -- binary functions ------------------------------------------------------------------


def _arctan2_parts(x1, x2):
    r2 = x1 * x1 + x2 * x2
    nonzero = r2 != 0
    return nonzero, _safe(nonzero, r2)


def _arctan2_d1(x1, x2, y):
    nonzero, r2 = _arctan2_parts(x1, x2)
    return np.where(nonzero, x2 / r2, 0)


def _arctan2_d2(x1, x2, y):
    nonzero, r2 = _arctan2_parts(x1, x2)
    return np.where(nonzero, -x1 / r2, 0)


binary_elementwise(np.arctan2, _arctan2_d1, _arctan2_d2)  # 0 at the origin


def _hypot_d(which):
    def hypot_derivative(x1, x2, y):
        nonzero = y != 0
        return np.where(nonzero, (x1 if which == 0 else x2) / _safe(nonzero, y), 0)

    return hypot_derivative


binary_elementwise(np.hypot, _hypot_d(0), _hypot_d(1))  # 0 at the origin
binary_elementwise(np.logaddexp, lambda x1, x2, y: np.exp(x1 - y), lambda x1, x2, y: np.exp(x2 - y))
binary_elementwise(
    np.logaddexp2, lambda x1, x2, y: np.exp2(x1 - y), lambda x1, x2, y: np.exp2(x2 - y)
)
binary_elementwise(np.remainder, lambda x1, x2, y: 1, lambda x1, x2, y: -np.floor_divide(x1, x2))
binary_elementwise(np.fmod, lambda x1, x2, y: 1, lambda x1, x2, y: -np.trunc(x1 / x2))
binary_elementwise(
    np.copysign,
    lambda x1, x2, y: np.where(np.signbit(x1) == np.signbit(x2), 1.0, -1.0),
    lambda x1, x2, y: 0,
)


# -- maximum / minimum ---------------------------------------------------------------
# Ties (x1 == x2) split the cotangent half-half between the two operands, so the
# gradient is the average of the one-sided ones (and symmetric in the operands).
# A NaN that maximum/minimum propagates gets the cotangent; fmax/fmin pass it to
# the operand they select (the non-NaN one).


def _minmax_weights(x1, x2, better, propagate_nan):
    eq = x1 == x2
    w1 = np.where(better(x1, x2), 1.0, np.where(eq, 0.5, 0.0))
    w2 = np.where(better(x2, x1), 1.0, np.where(eq, 0.5, 0.0))
    n1, n2 = np.isnan(x1), np.isnan(x2)
    if propagate_nan:
        w1 = np.where(n1, 1.0, w1)
        w2 = np.where(n1, 0.0, np.where(n2, 1.0, w2))
    else:
        w1 = np.where(n2 & ~n1, 1.0, np.where(n1, 0.0, w1))
        w2 = np.where(n1, 1.0, np.where(n2, 0.0, w2))
    return w1, w2


def _relu_like_cotangent(dy, u1, u2, y, better):
    """``dy`` where the array ``u1`` wins against the number ``u2`` (``np.maximum(h, 0.0)``), or None
    when the fast path cannot vouch for the result: a NaN or infinity in ``y`` (NaN propagates:
    its entry gets the cotangent), a non-finite product (``inf * 0`` is NaN, not the exact zero)
    or a tie (half the cotangent each). The finiteness checks are dot products of a vector with
    itself (NaN or inf when any entry is, and BLAS-fast), not masks."""
    with np.errstate(all="ignore"):
        if not np.isfinite(np.vdot(y, y)) or (u1 == u2).any():
            return None
        picked = dy * better(u1, u2)
        if not np.isfinite(np.vdot(picked, picked)):
            return None
        return picked


def _minmax_rule_for(fn, better, propagate_nan):
    name = _name(fn)

    def minmax_rule(x1, x2, *out, **kwargs):
        check_ufunc_kwargs(name, out, kwargs)
        y = fn(x1, x2, **kwargs)
        need1, need2 = scalar_wanted(x1), scalar_wanted(x2)
        if not (need1 or need2) or not inexact(y):
            return y, None

        # compared as the forward pass compared them: a Python number stays a weak scalar (a
        # float32 array against 0.1 compares in float32, with no float64 copy of the array)
        u1 = x1 if type(x1) in (float, int) else as_operand(x1)
        u2 = x2 if type(x2) in (float, int) else as_operand(x2)
        scalar2 = type(x2) in (float, int) and getattr(y, "ndim", 0) > 0
        # np.maximum(h, 0.0) with a literal bound: only h's cotangent, on the hot path of every
        # ReLU network (see _relu_like_cotangent)
        relu_like = propagate_nan and scalar2 and need1 and not need2 and type(x1) is np.ndarray \
            and x1.dtype.kind == "f" and type(y) is np.ndarray and y.shape == x1.shape

        def minmax_pullback(dy):
            if relu_like and type(dy) is np.ndarray and dy.shape == y.shape and dy.dtype == y.dtype:
                picked = _relu_like_cotangent(dy, u1, u2, y, better)
                if picked is not None:
                    return cotangent(picked, x1), None
            if not propagate_nan or np.isnan(y).any():
                w1, w2 = _minmax_weights(u1, u2, better, propagate_nan)
                g1 = cotangent(np.where(w1 != 0, dy * w1, 0), x1) if need1 else None
                g2 = cotangent(np.where(w2 != 0, dy * w2, 0), x2) if need2 else None
                return g1, g2
            # no NaN: exactly one of better / equal / worse holds, so w2 = 1 - w1
            dy = np.asarray(dy) if np.isscalar(dy) else dy
            real = dy.real if np.iscomplexobj(dy) else dy
            first = better(u1, u2)
            ties = u1 == u2
            tied = np.any(ties)
            picked1 = keep(first, real) if need1 or tied else None
            if tied:
                picked1 = picked1 + keep(ties, 0.5 * real)
            g1 = cotangent(picked1, x1) if need1 else None
            if not need2:
                return g1, None
            if scalar2 and picked1 is not None and np.isfinite(real).all():
                # np.maximum(h, 0.0): the number's cotangent is the sum of what h's side left
                return g1, cotangent(np.sum(real) - np.sum(picked1), x2)
            if tied:
                picked2 = keep(np.logical_not(first), real - picked1)
            else:
                picked2 = keep(np.logical_not(first), real)  # exact zeros, also where dy is inf/nan
            return g1, cotangent(picked2, x2)

        minmax_pullback.__name__ = f"{fn.__name__}_pullback"
        return y, minmax_pullback

    REGISTRY.add_function(fn, minmax_rule)
    ELEMENTWISE[fn] = (
        "binary",
        lambda x1, x2, y: _minmax_weights(x1, x2, better, propagate_nan)[0],
        lambda x1, x2, y: _minmax_weights(x1, x2, better, propagate_nan)[1],
    )
    return minmax_rule


maximum_rule = _minmax_rule_for(np.maximum, np.greater, True)
minimum_rule = _minmax_rule_for(np.minimum, np.less, True)
fmax_rule = _minmax_rule_for(np.fmax, np.greater, False)
fmin_rule = _minmax_rule_for(np.fmin, np.less, False)


# -- clip --------------------------------------------------------------------------------
# clip(x, lo, hi) = minimum(maximum(x, lo), hi).  Convention: x gets the cotangent where
# lo <= x <= hi (bounds included), lo where x < lo, hi where x > hi (and where lo > hi,
# NumPy returns hi, so hi gets it).


def _clip_pullback_parts(dy, x, lo, hi):
    inside = True
    d_lo = d_hi = None
    if lo is not None:
        above_lo = x >= lo
        m = np.where(above_lo, x, lo)
    else:
        above_lo = True
        m = x
    if hi is not None:
        below_hi = m <= hi
        d_hi = np.where(below_hi, 0, dy)
        inside = below_hi
    if lo is not None:
        d_lo = np.where(np.logical_and(inside, np.logical_not(above_lo)), dy, 0)
    d_x = keep(np.logical_and(inside, above_lo), dy)
    return d_x, d_lo, d_hi


def _clip_rule(name, a, lo, hi, out, kwargs):
    check_ufunc_kwargs(name, out, kwargs)
    y = np.clip(a, lo, hi, **kwargs)
    if not inexact(y):
        return y, None

    ua, ulo, uhi = as_operand(a), as_operand(lo), as_operand(hi)

    def clip_pullback(dy):
        d_x, d_lo, d_hi = _clip_pullback_parts(dy, ua, ulo, uhi)
        return cotangent(d_x, a), cotangent(d_lo, lo), cotangent(d_hi, hi)

    return y, clip_pullback


_NoValue = getattr(np, "_NoValue", None)


@numpy_rule(np.clip)
def clip_rule(a, a_min=_NoValue, a_max=_NoValue, out=None, **kwargs):
    """Bounds get cotangents whether given by position or as ``a_min=``/``min=`` keywords (the
    runtime maps ``min``/``max`` onto ``a_min``/``a_max``: ``keyword_aliases``)."""
    lo = kwargs.pop("min", None) if a_min is _NoValue else a_min
    hi = kwargs.pop("max", None) if a_max is _NoValue else a_max
    return _clip_rule("np.clip", a, lo, hi, out, kwargs)


clip_rule.keyword_aliases = {"min": "a_min", "max": "a_max"}


@numpy_method_rule(np.ndarray, "clip")
def ndarray_clip_rule(self, min=None, max=None, out=None, **kwargs):
    return _clip_rule("ndarray.clip", self, min, max, out, kwargs)


# -- where ---------------------------------------------------------------------------------


@numpy_rule(np.where)
def where_rule(condition, *xy):
    if len(xy) != 2:
        return np.where(condition, *xy), None  # indices
    x, y = xy
    out = np.where(condition, x, y)

    def where_pullback(dy):
        cond = np.asarray(condition, dtype=bool) if not hasattr(condition, "dtype") else condition
        dx = cotangent(keep(cond, dy), x) if inexact(x) else None
        dyy = cotangent(keep(np.logical_not(cond), dy), y) if inexact(y) else None
        return None, dx, dyy

    return out, where_pullback


# -- select ----------------------------------------------------------------------------------
# np.select(condlist, choicelist, default): the first choice whose condition holds, else
# default. Each choice gets the cotangent exactly where it was selected (np.where: exact
# zeros elsewhere); the conditions have no derivative.


@numpy_rule(np.select)
def select_rule(condlist, choicelist, default=0):
    y = np.select(condlist, choicelist, default)
    if not inexact(y) or not (inexact(choicelist) or inexact(default)):
        return y, None
    conds = [as_operand(c) for c in condlist]

    def select_pullback(dy):
        taken = False  # entries already claimed by an earlier condition
        cts = []
        for cond, choice in zip(conds, choicelist):
            mine = np.logical_and(cond, np.logical_not(taken))
            cts.append(cotangent(np.where(mine, dy, 0), choice) if inexact(choice) else None)
            taken = np.logical_or(taken, cond)
        d_default = cotangent(np.where(taken, 0, dy), default) if inexact(default) else None
        if isinstance(choicelist, list):
            d_choices = cts
        elif isinstance(choicelist, tuple):
            d_choices = tuple(cts)
        else:  # an array of choices (stacked along the first axis)
            shape = np.shape(choicelist)[1:]
            d_choices = cotangent(np.stack([c if c is not None else np.zeros(shape) for c in cts]),
                                  choicelist)
        return None, d_choices, d_default

    return y, select_pullback


# -- nan_to_num --------------------------------------------------------------------------------
# Finite entries pass through (cotangent dy); replaced entries get none, and the
# replacement values nan/posinf/neginf (when given as floats) collect the cotangents
# of the entries they replaced. Complex inputs: real and imaginary parts separately.


def _nan_to_num_parts(dy, x):
    """(cotangent of x, mask of NaN, +inf, -inf entries) for real ``x``."""
    finite = np.isfinite(x)
    return np.where(finite, dy, 0), np.isnan(x), np.isposinf(x), np.isneginf(x)


@numpy_rule(np.nan_to_num)
def nan_to_num_rule(x, copy=True, nan=0.0, posinf=None, neginf=None):
    y = np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)
    if not inexact(x) or not inexact(y):
        return y, None
    u = as_operand(x)

    def nan_to_num_pullback(dy):
        if is_complex(u):
            parts = [_nan_to_num_parts(np.real(dy), np.real(u)),
                     _nan_to_num_parts(np.imag(dy), np.imag(u))]
            dx = parts[0][0] + 1j * parts[1][0]
            comps = [np.real(dy), np.imag(dy)]
        else:
            parts = [_nan_to_num_parts(real_part(dy), u)]
            dx = parts[0][0]
            comps = [real_part(dy)]
        out = [None, None, None]
        for k, value in enumerate((nan, posinf, neginf)):
            if value is not None and inexact(value):
                total = sum(np.sum(np.where(p[k + 1], c, 0)) for p, c in zip(parts, comps))
                out[k] = cotangent(total, value)
        return (cotangent(dx, x), None) + tuple(out)

    return y, nan_to_num_pullback


# -- angle ---------------------------------------------------------------------------------------


@numpy_rule(np.angle)
def angle_rule(z, deg=False):
    """``angle(z) = arctan2(imag z, real z)``: gradient ``i z / |z|^2`` (0 at ``z = 0``);
    a constant (0 or pi) for real ``z``."""
    y = np.angle(z, deg)
    if not is_complex(z):
        return y, None  # 0 or pi: piecewise constant
    u = as_operand(z)
    scale = 180 / np.pi if deg else 1.0

    def angle_pullback(dy):
        r2 = np.real(u * np.conj(u))
        nonzero = r2 != 0
        d = np.where(nonzero, 1j * u / _safe(nonzero, r2), 0)
        return (cotangent(nan_safe_product(real_part(dy) * scale, d), z),)

    return y, angle_pullback


# -- divmod (the quotient is piecewise constant) --------------------------------------------


@numpy_rule(np.divmod)
def divmod_rule(x1, x2, *out, **kwargs):
    check_ufunc_kwargs("np.divmod", out, kwargs)
    q, r = np.divmod(x1, x2, **kwargs)

    def divmod_pullback(dys):
        dr = dys[1] if dys is not None else None
        if dr is None:
            return None, None
        d1 = cotangent(dr, x1) if inexact(x1) else None
        d2 = cotangent(-dr * q, x2) if inexact(x2) else None  # q is an array
        return d1, d2

    return (q, r), divmod_pullback


# -- no derivative ---------------------------------------------------------------------------

nondiff(
    np.floor, np.ceil, np.trunc, np.rint, np.fix, np.round, np.around,
    np.sign, np.signbit, np.heaviside, np.floor_divide,
    np.isnan, np.isfinite, np.isinf, np.isneginf, np.isposinf, np.isreal, np.iscomplex,
    np.argmax, np.argmin, np.argsort, np.nanargmax, np.nanargmin, np.argwhere, np.nonzero,
    np.flatnonzero, np.count_nonzero, np.searchsorted, np.digitize,
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
    np.isclose, np.allclose, np.array_equal, np.array_equiv,
    np.all, np.any,
)  # fmt: skip

# shape, dtype and type questions: integers, booleans, tuples and dtypes, never derivatives
nondiff(
    np.ndim, np.shape, np.size, np.isscalar, np.iscomplexobj, np.isrealobj, np.isfortran,
    np.iterable, np.result_type, np.issubdtype, np.can_cast, np.promote_types,
    np.min_scalar_type, np.may_share_memory, np.shares_memory,
)  # fmt: skip

nondiff_method(
    np.ndarray, "argmax", "argmin", "argsort", "nonzero", "round", "all", "any",
)  # fmt: skip

# Random sampling: the samples are constants (no reparameterization through loc/scale).
_RANDOM_FUNCTIONS = (
    "rand", "randn", "normal", "uniform", "random", "random_sample", "ranf", "sample",
    "standard_normal", "randint", "random_integers", "choice", "permutation", "seed",
    "default_rng", "exponential", "standard_exponential", "gamma", "standard_gamma", "beta",
    "binomial", "poisson", "laplace", "lognormal", "logistic", "gumbel", "multivariate_normal",
    "multinomial", "dirichlet", "chisquare", "standard_t", "standard_cauchy", "triangular",
    "rayleigh", "weibull", "pareto", "power", "vonmises", "wald", "geometric",
    "negative_binomial", "hypergeometric", "f", "noncentral_chisquare", "noncentral_f",
    "logseries", "zipf", "bytes", "get_state",
)  # fmt: skip
_GENERATOR_METHODS = (
    "normal", "uniform", "random", "standard_normal", "integers", "choice", "permutation",
    "exponential", "standard_exponential", "gamma", "standard_gamma", "beta", "binomial",
    "poisson", "laplace", "lognormal", "logistic", "gumbel", "multivariate_normal",
    "multinomial", "dirichlet", "chisquare", "standard_t", "standard_cauchy", "triangular",
    "rayleigh", "weibull", "pareto", "power", "vonmises", "wald", "geometric",
    "negative_binomial", "hypergeometric", "f", "noncentral_chisquare", "noncentral_f",
    "logseries", "zipf", "bytes", "spawn",
)  # fmt: skip
_RANDOMSTATE_METHODS = tuple(
    n for n in _RANDOM_FUNCTIONS if n != "default_rng" and hasattr(np.random.RandomState, n)
)

nondiff(*(getattr(np.random, n) for n in _RANDOM_FUNCTIONS if hasattr(np.random, n)))
nondiff_method(
    np.random.Generator, *(n for n in _GENERATOR_METHODS if hasattr(np.random.Generator, n))
)
nondiff_method(np.random.RandomState, *_RANDOMSTATE_METHODS)



# -- ufuncs with two outputs, and the rest of NumPy's floating ufuncs ---------------------------

@numpy_rule(np.frexp)
def frexp_rule(x, *out, **kwargs):
    check_ufunc_kwargs("frexp", out, kwargs)
    mantissa, exponent = np.frexp(x)

    def frexp_pullback(dy):
        dm = tangents_items(dy)[0]
        if dm is None:
            return (None,)
        return (cotangent(dm * np.ldexp(np.ones_like(mantissa), -exponent), x),)
    return (mantissa, exponent), frexp_pullback


@numpy_rule(np.modf)
def modf_rule(x, *out, **kwargs):
    check_ufunc_kwargs("modf", out, kwargs)
    fractional, integral = np.modf(x)

    def modf_pullback(dy):
        df = tangents_items(dy)[0]
        return ((cotangent(df, x) if df is not None else None),)
    return (fractional, integral), modf_pullback


@numpy_rule(np.ldexp)
def ldexp_rule(x1, x2, *out, **kwargs):
    check_ufunc_kwargs("ldexp", out, kwargs)
    y = np.ldexp(x1, x2)

    def ldexp_pullback(dy):
        return cotangent(np.ldexp(dy, x2), x1), None
    return y, ldexp_pullback


@numpy_rule(np.nextafter)
def nextafter_rule(x1, x2, *out, **kwargs):
    # one representable step from x1: the value moves with x1 (slope 1), not with x2
    check_ufunc_kwargs("nextafter", out, kwargs)
    y = np.nextafter(x1, x2)

    def nextafter_pullback(dy):
        return cotangent(dy, x1) if inexact(x1) else None, None
    return y, nextafter_pullback


nondiff(np.spacing)


def tangents_items(dy):
    from morula.tangents import _items
    return _items(dy, 2)


# pullbacks that take a batch of cotangents (leading axis; see morula.tangents.BATCH): elementwise
# products with derivatives of the output's shape, reduced by ``cotangent`` (batch-aware)
batch_capable(elementwise, binary_elementwise, _power_rule_for, add_rule, subtract_rule,
              negative_rule, positive_rule, multiply_rule, divide_rule)
