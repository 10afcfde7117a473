"""Reverse rules for ``scipy.special`` (imported lazily, once the user has imported SciPy).

In: nothing (importing registers the rules; ``morula.rules.scipy_rules`` imports this
module when ``load_pending()`` finds ``scipy`` in ``sys.modules``). Out: rules for

- unary ufuncs, declared from their derivative like ``numpy_elementwise``:
  ``gamma``, ``gammaln``, ``loggamma``, ``rgamma``, ``digamma`` (= ``psi``), ``erf``,
  ``erfc``, ``erfcx``, ``erfinv``, ``erfcinv``, ``expit``, ``logit``, ``log_expit``,
  ``ndtr``, ``ndtri``, ``log_ndtr``, ``entr``, ``i0``, ``i1``, ``i0e``, ``i1e``, ``j0``,
  ``j1``, ``y0``, ``y1``, ``k0``, ``k1``, ``k0e``, ``k1e``, and SciPy's own ``expm1``,
  ``log1p``, ``exp2``, ``exp10``, ``cbrt`` (different objects from NumPy's);
- binary ufuncs with both partial derivatives: ``beta``, ``betaln``, ``xlogy``,
  ``xlog1py``, ``rel_entr``, ``kl_div``;
- functions of a parameter and an argument where only the argument is differentiated:
  ``polygamma(n, x)``, ``jv`` (= ``jn``)/``yv``/``iv``/``kv`` (order ``v``; complex ``x``
  too) and their exponentially scaled ``jve``/``yve``/``ive``/``kve`` (real ``x`` only,
  except ``kve``: the scaling by exp(-|Im x|) or exp(-|Re x|) is not holomorphic, so
  complex ``x`` raises ``UnsupportedOperationError``);
- ``zeta(x, q=None)``: both arguments (see below);
- the Python wrappers ``logsumexp`` (``axis``, ``keepdims``, weights ``b``,
  ``return_sign``), ``softmax`` and ``log_softmax`` (``axis``), registered by identity.

Conventions:
- complex inputs follow the package convention ``cotangent = dy * conj(f'(z))`` for the
  ufuncs that have complex loops (``gamma``, ``loggamma``, ``erf``, ``erfc``, ``ndtr``,
  ``log_ndtr``, ``expm1``, ``log1p``, ``jv`` in ``z``, ...);
- the order ``v`` of the Bessel functions and ``n`` of ``polygamma`` get no cotangent
  (``None``): SciPy offers no derivative with respect to the order. A float order is
  therefore treated as a constant; do not differentiate with respect to it;
- ``zeta(x, q)`` is the Hurwitz zeta function sum_k (k + q)**-x: d/dq = -x * zeta(x+1, q);
  d/dx = -sum_k log(k + q) (k + q)**-x has no SciPy function and is computed by
  Euler-Maclaurin summation (16 terms, then the tail with 8 Bernoulli corrections). It is
  defined for x > 1, q > 0 (for ``q=None``, the Riemann zeta, q = 1) and is NaN elsewhere
  (analytic continuation to x < 1 is not differentiated);
- ``xlogy(x, y) = x*log(y)`` and ``xlog1py(x, y) = x*log1p(y)`` keep SciPy's 0*log(0) = 0
  convention in the derivative: where x == 0 the cotangent of y is 0, and the cotangent
  of x is 0 where the formula would be 0*log(0) (x == 0 and y == 0, resp. y == -1);
- ``entr``, ``rel_entr``, ``kl_div`` use the true slopes, which are infinite at x == 0
  (like NumPy's ``sqrt`` at 0); where the output is +-inf (outside the domain) the
  derivative is 0 (a constant);
- ``logsumexp`` with every term -inf (output -inf) gives cotangent 0; with
  ``return_sign=True`` the sign output is piecewise constant (no cotangent).
- cotangents keep each operand's shape and floating dtype (float32 stays float32).
"""

import numpy as np
import scipy.special as sc

from morula.errors import UnsupportedOperationError
from morula.rules.numpy_elementwise import ELEMENTWISE, binary_elementwise, elementwise
from morula.rules.numpy_vspace import (
    as_operand,
    check_no_out,
    check_ufunc_kwargs,
    conj,
    cotangent,
    inexact,
    is_complex,
    normalize_axes,
    numpy_rule,
)
from morula.rules.registry import REGISTRY

_SQRT_PI = float(np.sqrt(np.pi))
_SQRT_2PI = float(np.sqrt(2 * np.pi))
_LN2 = float(np.log(2.0))
_LN10 = float(np.log(10.0))


def _name(fn):
    return "scipy.special." + getattr(fn, "__name__", "fn")


def _safe(mask, value, fill=1):
    return np.where(mask, value, fill)


# -- declaration helpers ----------------------------------------------------------------


def unary(fn, derivative):
    """Register a unary elementwise rule for ``fn`` from ``derivative(x, y) -> dy/dx``."""
    return _declared_here(elementwise(fn, derivative, name=_name(fn)))


def binary(fn, d1, d2):
    """Register a binary broadcasting rule for ``fn`` from ``d1/d2(x1, x2, y)``."""
    return _declared_here(binary_elementwise(fn, d1, d2, name=_name(fn)))


def _declared_here(rule):
    # the coverage table and the sweep checks attribute a rule to the module declaring it
    rule.__module__ = __name__
    return rule


def parametrized(fn, derivative, real_only=False):
    """``fn(p, x)`` differentiated in ``x`` only: ``derivative(p, x, y) -> dy/dx``; ``p`` gets ``None``.

    ``real_only``: refuse complex ``x`` (the function is not holomorphic there).
    """
    name = _name(fn)
    short = getattr(fn, "__name__", "fn")

    def parametrized_rule(p, x, *out, **kwargs):
        check_ufunc_kwargs(name, out, kwargs)
        y = fn(p, x, **kwargs)
        if not inexact(x) or not inexact(y):
            return y, None
        if real_only and is_complex(y):
            raise UnsupportedOperationError(
                f"morula has no derivative of {name} for complex arguments (the exponential "
                f"scaling is not holomorphic). Fix: use the unscaled function."
            )
        up, ux = as_operand(p), as_operand(x)

        def parametrized_pullback(dy):
            return None, cotangent(dy * conj(derivative(up, ux, y)), x)

        parametrized_pullback.__name__ = f"{short}_pullback"
        return y, parametrized_pullback

    parametrized_rule.__name__ = f"{short}_rule"
    REGISTRY.add_function(fn, parametrized_rule)
    return parametrized_rule


# -- gamma family ------------------------------------------------------------------------

unary(sc.gamma, lambda x, y: y * sc.digamma(x))
unary(sc.gammaln, lambda x, y: sc.digamma(x))  # log|Gamma(x)|: psi(x) also for x < 0
unary(sc.loggamma, lambda x, y: sc.digamma(x))
unary(sc.rgamma, lambda x, y: -y * sc.digamma(x))
unary(sc.digamma, lambda x, y: sc.polygamma(1, x))  # sc.psi is the same object
binary(
    sc.beta,
    lambda a, b, y: y * (sc.digamma(a) - sc.digamma(a + b)),
    lambda a, b, y: y * (sc.digamma(b) - sc.digamma(a + b)),
)
binary(
    sc.betaln,
    lambda a, b, y: sc.digamma(a) - sc.digamma(a + b),
    lambda a, b, y: sc.digamma(b) - sc.digamma(a + b),
)


@numpy_rule(sc.polygamma)
def polygamma_rule(n, x):
    """``polygamma(n, x)``: the order ``n`` (an integer) gets no cotangent."""
    y = sc.polygamma(n, x)
    if not inexact(x):
        return y, None
    ux = as_operand(x)

    def polygamma_pullback(dy):
        return None, cotangent(dy * sc.polygamma(np.add(n, 1), ux), x)

    return y, polygamma_pullback


# -- error functions and the normal distribution -------------------------------------------

unary(sc.erf, lambda x, y: (2 / _SQRT_PI) * np.exp(-x * x))
unary(sc.erfc, lambda x, y: (-2 / _SQRT_PI) * np.exp(-x * x))
unary(sc.erfcx, lambda x, y: 2 * x * y - 2 / _SQRT_PI)
unary(sc.erfinv, lambda x, y: (_SQRT_PI / 2) * np.exp(y * y))
unary(sc.erfcinv, lambda x, y: (-_SQRT_PI / 2) * np.exp(y * y))
unary(sc.ndtr, lambda x, y: np.exp(-0.5 * x * x) / _SQRT_2PI)
unary(sc.ndtri, lambda x, y: _SQRT_2PI * np.exp(0.5 * y * y))
# d log Phi(x) = phi(x) / Phi(x) = exp(-x^2/2 - log Phi(x)) / sqrt(2 pi): no underflow for x << 0
unary(sc.log_ndtr, lambda x, y: np.exp(-0.5 * x * x - y) / _SQRT_2PI)

# -- logistic ------------------------------------------------------------------------------

unary(sc.expit, lambda x, y: y * (1 - y))
unary(sc.logit, lambda x, y: 1 / (x * (1 - x)))
unary(sc.log_expit, lambda x, y: sc.expit(-x))

# -- SciPy's own exponentials and logarithms (distinct objects from NumPy's ufuncs) ----------

unary(sc.expm1, lambda x, y: y + 1)
unary(sc.log1p, lambda x, y: 1 / (1 + x))
unary(sc.exp2, lambda x, y: y * _LN2)
unary(sc.exp10, lambda x, y: y * _LN10)
unary(sc.cbrt, lambda x, y: 1 / (3 * y * y))  # inf at x == 0

# -- x log y and information measures -----------------------------------------------------


def _xlogy_dx(x, y, out):
    """log(y); 0 where x == 0 and y == 0 (the 0*log(0) = 0 convention)."""
    zero = (x == 0) & (y == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(zero, 0, np.log(np.where(zero, 1, y)))


def _xlogy_dy(x, y, out):
    """x / y; 0 where x == 0 (even at y == 0)."""
    xzero = x == 0
    return np.where(xzero, 0, x / np.where(xzero, 1, y))


def _xlog1py_dx(x, y, out):
    """log1p(y); 0 where x == 0 and y == -1."""
    zero = (x == 0) & (y == -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(zero, 0, np.log1p(np.where(zero, 0, y)))


def _xlog1py_dy(x, y, out):
    """x / (1 + y); 0 where x == 0."""
    xzero = x == 0
    return np.where(xzero, 0, x / (1 + np.where(xzero, 0, y)))


binary(sc.xlogy, _xlogy_dx, _xlogy_dy)
binary(sc.xlog1py, _xlog1py_dx, _xlog1py_dy)


def _entr_derivative(x, y):
    """-(log x + 1) for x > 0 (+inf at 0); 0 where entr is -inf (x < 0)."""
    positive = x > 0
    with np.errstate(divide="ignore"):
        inside = np.where(x == 0, np.inf, -(np.log(_safe(positive, x, 1)) + 1))
    return np.where(x >= 0, inside, 0)


unary(sc.entr, _entr_derivative)


def _entropy_parts(x, y):
    """(x > 0 and y > 0, x == 0 and y >= 0, log(x/y) where defined)."""
    both = (x > 0) & (y > 0)
    xzero = (x == 0) & (y >= 0)
    log_ratio = np.log(_safe(both, x, 1)) - np.log(_safe(both, y, 1))
    return both, xzero, log_ratio


def _rel_entr_dx(x, y, out):
    both, xzero, log_ratio = _entropy_parts(x, y)
    return np.where(both, log_ratio + 1, np.where(xzero & (y > 0), -np.inf, 0))


def _rel_entr_dy(x, y, out):
    both, _, _ = _entropy_parts(x, y)
    return np.where(both, -x / _safe(both, y, 1), 0)


def _kl_div_dx(x, y, out):
    both, xzero, log_ratio = _entropy_parts(x, y)
    return np.where(both, log_ratio, np.where(xzero & (y > 0), -np.inf, 0))


def _kl_div_dy(x, y, out):
    both, xzero, _ = _entropy_parts(x, y)
    return np.where(both, 1 - x / _safe(both, y, 1), np.where(xzero, 1, 0))


binary(sc.rel_entr, _rel_entr_dx, _rel_entr_dy)
binary(sc.kl_div, _kl_div_dx, _kl_div_dy)

# -- Bessel functions ------------------------------------------------------------------------


def _over_x(v, x, at_zero):
    """v / x, and ``at_zero`` where x == 0 (the limit used by the callers)."""
    nonzero = x != 0
    return np.where(nonzero, v / _safe(nonzero, x, 1), at_zero)


unary(sc.i0, lambda x, y: sc.i1(x))
unary(sc.i1, lambda x, y: sc.i0(x) - _over_x(y, x, 0.5))  # i1'(0) = 1/2
unary(sc.i0e, lambda x, y: sc.i1e(x) - np.sign(x) * y)
unary(sc.i1e, lambda x, y: sc.i0e(x) - _over_x(y, x, 0.5) - np.sign(x) * y)
unary(sc.j0, lambda x, y: -sc.j1(x))
unary(sc.j1, lambda x, y: sc.j0(x) - _over_x(y, x, 0.5))
unary(sc.y0, lambda x, y: -sc.y1(x))
unary(sc.y1, lambda x, y: sc.y0(x) - y / x)
unary(sc.k0, lambda x, y: -sc.k1(x))
unary(sc.k1, lambda x, y: -sc.k0(x) - y / x)
unary(sc.k0e, lambda x, y: y - sc.k1e(x))
unary(sc.k1e, lambda x, y: y - sc.k0e(x) - y / x)

parametrized(sc.jv, lambda v, x, y: 0.5 * (sc.jv(v - 1, x) - sc.jv(v + 1, x)))  # sc.jn is sc.jv
parametrized(sc.yv, lambda v, x, y: 0.5 * (sc.yv(v - 1, x) - sc.yv(v + 1, x)))
parametrized(sc.iv, lambda v, x, y: 0.5 * (sc.iv(v - 1, x) + sc.iv(v + 1, x)))
parametrized(sc.kv, lambda v, x, y: -0.5 * (sc.kv(v - 1, x) + sc.kv(v + 1, x)))
# exponentially scaled, real arguments only (the scaling exp(-|Im x|), exp(-|Re x|) is not
# holomorphic): jve = jv and yve = yv for real x, ive = iv * exp(-|x|), kve = kv * exp(x).
parametrized(sc.jve, lambda v, x, y: 0.5 * (sc.jve(v - 1, x) - sc.jve(v + 1, x)), real_only=True)
parametrized(sc.yve, lambda v, x, y: 0.5 * (sc.yve(v - 1, x) - sc.yve(v + 1, x)), real_only=True)
parametrized(
    sc.ive,
    lambda v, x, y: 0.5 * (sc.ive(v - 1, x) + sc.ive(v + 1, x)) - np.sign(x) * y,
    real_only=True,
)
parametrized(sc.kve, lambda v, x, y: y - 0.5 * (sc.kve(v - 1, x) + sc.kve(v + 1, x)))


# -- zeta ---------------------------------------------------------------------------------------

_EM_TERMS = 16
# B_2j / (2j)! for j = 1..8
_BERNOULLI_OVER_FACTORIAL = [
    1 / 6 / 2, -1 / 30 / 24, 1 / 42 / 720, -1 / 30 / 40320, 5 / 66 / 3628800,
    -691 / 2730 / 479001600, 7 / 6 / 87178291200, -3617 / 510 / 20922789888000,
]  # fmt: skip


def _zeta_dx(x, q):
    """d/dx of the Hurwitz zeta function: -sum_k log(k + q) (k + q)**-x (Euler-Maclaurin).

    Defined for x > 1 and q > 0; NaN elsewhere.
    """
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    ok = (x > 1) & (q > 0)
    x, q = np.broadcast_arrays(np.where(ok, x, 2.0), np.where(ok, q, 1.0))
    k = np.arange(_EM_TERMS, dtype=np.float64)
    t = q[..., None] + k
    head = np.sum(np.log(t) * t ** -x[..., None], axis=-1)
    a = q + _EM_TERMS
    log_a = np.log(a)
    s1 = x - 1
    # tail: integral + g(a)/2 - sum B_2j/(2j)! g^(2j-1)(a), g(t) = log(t) t^-x;
    # g^(m)(t) = t^(-x-m) (c_m log t + d_m), c_{m+1} = (-x-m) c_m, d_{m+1} = (-x-m) d_m + c_m.
    tail = a ** (-s1) * (log_a / s1 + 1 / (s1 * s1)) + 0.5 * log_a * a ** -x
    c, d = np.ones_like(x), np.zeros_like(x)
    for m in range(2 * len(_BERNOULLI_OVER_FACTORIAL)):
        c, d = (-x - m) * c, (-x - m) * d + c  # now the coefficients of g^(m+1)
        if m % 2 == 0:  # g^(m+1) with m+1 odd: the (m+2)/2-th Bernoulli correction
            coeff = _BERNOULLI_OVER_FACTORIAL[m // 2]
            tail = tail - coeff * a ** (-x - m - 1) * (c * log_a + d)
    return np.where(ok, -(head + tail), np.nan)


@numpy_rule(sc.zeta)
def zeta_rule(x, q=None, out=None):
    """Hurwitz zeta ``zeta(x, q)`` (Riemann zeta for ``q=None``); both arguments differentiated."""
    check_no_out("scipy.special.zeta", out)
    y = sc.zeta(x, q)
    need_x, need_q = inexact(x), q is not None and inexact(q)
    if not (need_x or need_q) or not inexact(y):
        return y, None
    ux = as_operand(x)
    uq = 1.0 if q is None else as_operand(q)

    def zeta_pullback(dy):
        dx = cotangent(dy * _zeta_dx(ux, uq), x) if need_x else None
        dq = cotangent(dy * (-ux * sc.zeta(ux + 1, uq)), q) if need_q else None
        return dx, dq

    return y, zeta_pullback


# -- logsumexp, softmax, log_softmax (Python wrappers: registered by identity) ---------------


def _ndim(a):
    nd = getattr(a, "ndim", None)
    return nd if nd is not None else np.ndim(a)


@numpy_rule(sc.logsumexp)
def logsumexp_rule(a, axis=None, b=None, keepdims=False, return_sign=False):
    out = sc.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    need_a, need_b = inexact(a), b is not None and inexact(b)
    if not (need_a or need_b):
        return out, None
    value, sign = out if return_sign else (out, None)
    ua, ub = as_operand(a), as_operand(b)
    ndim = max(_ndim(ua), _ndim(ub)) if b is not None else _ndim(ua)
    axes = normalize_axes(axis, ndim)

    def expand(v):
        if keepdims or not axes or getattr(v, "ndim", 0) == 0 and len(axes) == ndim:
            return v
        return np.expand_dims(v, axes)

    def logsumexp_pullback(dy):
        if return_sign:
            dy = dy[0] if dy is not None else None
        if dy is None:
            return None, None, None
        r = expand(value)
        finite = r != -np.inf
        with np.errstate(invalid="ignore", over="ignore"):
            e = np.where(finite, np.exp(ua - np.where(finite, r, 0)), 0)  # e^a / |sum b e^a|
        if return_sign:
            e = e * expand(sign)
        if ub is not None:
            e = np.broadcast_to(e, np.broadcast_shapes(np.shape(ua), np.shape(ub)))
        g = expand(dy)
        da = cotangent(g * conj(e if ub is None else e * ub), a) if need_a else None
        db = cotangent(g * conj(e), b) if need_b else None
        return da, None, db

    return out, logsumexp_pullback


@numpy_rule(sc.softmax)
def softmax_rule(x, axis=None):
    y = sc.softmax(x, axis=axis)
    if not inexact(x):
        return y, None
    axes = normalize_axes(axis, _ndim(y)) or None

    def softmax_pullback(dy):
        yc = np.conj(y)   # holomorphic: the cotangent is J^H dy
        gy = dy * yc
        return (cotangent(gy - yc * np.sum(gy, axis=axes, keepdims=True), x),)

    return y, softmax_pullback


@numpy_rule(sc.log_softmax)
def log_softmax_rule(x, axis=None):
    y = sc.log_softmax(x, axis=axis)
    if not inexact(x):
        return y, None
    axes = normalize_axes(axis, _ndim(y)) or None

    def log_softmax_pullback(dy):
        return (cotangent(dy - np.conj(np.exp(y)) * np.sum(dy, axis=axes, keepdims=True), x),)

    return y, log_softmax_pullback
