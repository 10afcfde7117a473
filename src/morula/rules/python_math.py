"""Rules for the ``math`` module (Python floats in, Python floats out).

In: nothing. Out: registered reverse rules; most are one line giving the
derivative through ``scalar(fn, derivative)`` where ``derivative(x, y)`` is
dy/dx at input ``x`` with output ``y``.
"""

import math

from ..reverse.runtime import SCALAR_FUNCTIONS
from .registry import nondiff, rrule


# fn -> derivative(x, y): forward mode uses the same declarations, and generated code calls
# these functions (float in, float out) inline -- one table, the engine's
DERIVATIVES = SCALAR_FUNCTIONS


def scalar(fn, derivative):
    DERIVATIVES[fn] = derivative
    def scalar_rule(x):
        y = fn(x)

        def scalar_pullback(g):
            return (g * derivative(x, y),)
        scalar_pullback.__name__ = f"{fn.__name__}_pullback"
        return y, scalar_pullback
    scalar_rule.__name__ = f"{fn.__name__}_rule"
    rrule(fn)(scalar_rule)
    return scalar_rule


_SQRT_PI = math.sqrt(math.pi)

scalar(math.sqrt, lambda x, y: 0.5 / y if y != 0 else math.inf)
scalar(math.exp, lambda x, y: y)
scalar(math.expm1, lambda x, y: y + 1.0)
scalar(math.log10, lambda x, y: 1.0 / (x * math.log(10.0)))
scalar(math.log2, lambda x, y: 1.0 / (x * math.log(2.0)))
scalar(math.log1p, lambda x, y: 1.0 / (1.0 + x))
scalar(math.sin, lambda x, y: math.cos(x))
scalar(math.cos, lambda x, y: -math.sin(x))
scalar(math.tan, lambda x, y: 1.0 + y * y)
scalar(math.asin, lambda x, y: 1.0 / math.sqrt(1.0 - x * x))
scalar(math.acos, lambda x, y: -1.0 / math.sqrt(1.0 - x * x))
scalar(math.atan, lambda x, y: 1.0 / (1.0 + x * x))
scalar(math.sinh, lambda x, y: math.cosh(x))
scalar(math.cosh, lambda x, y: math.sinh(x))
scalar(math.tanh, lambda x, y: 1.0 - y * y)
scalar(math.asinh, lambda x, y: 1.0 / math.sqrt(x * x + 1.0))
scalar(math.acosh, lambda x, y: 1.0 / math.sqrt(x * x - 1.0))
scalar(math.atanh, lambda x, y: 1.0 / (1.0 - x * x))
scalar(math.fabs, lambda x, y: (x > 0) - (x < 0))
scalar(math.erf, lambda x, y: 2.0 / _SQRT_PI * math.exp(-x * x))
scalar(math.erfc, lambda x, y: -2.0 / _SQRT_PI * math.exp(-x * x))
scalar(math.degrees, lambda x, y: 180.0 / math.pi)
scalar(math.radians, lambda x, y: math.pi / 180.0)
scalar(math.lgamma, lambda x, y: _digamma(x))
scalar(math.gamma, lambda x, y: y * _digamma(x))


def _digamma(x):
    """Digamma for real x (asymptotic series after shifting; reflection for x < 0.5)."""
    if x < 0.5:
        return _digamma(1.0 - x) - math.pi / math.tan(math.pi * x)
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    return result + math.log(x) - 0.5 * inv - inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132))))


@rrule(math.log)
def log_rule(x, *base):
    y = math.log(x, *base)

    def log_pullback(g):
        if not base:
            return (g / x,)
        lb = math.log(base[0])
        return g / (x * lb), -g * y / (base[0] * lb)
    return y, log_pullback


@rrule(math.pow)
def pow_rule(x, y):
    out = math.pow(x, y)

    def math_pow_pullback(g):
        dx = g * y * math.pow(x, y - 1) if y != 0 else 0.0
        dy = g * out * math.log(x) if x > 0 else 0.0
        return dx, dy
    return out, math_pow_pullback


@rrule(math.atan2)
def atan2_rule(y, x):
    out = math.atan2(y, x)

    def atan2_pullback(g):
        r2 = x * x + y * y
        return g * x / r2, -g * y / r2
    return out, atan2_pullback


@rrule(math.hypot)
def hypot_rule(*xs):
    out = math.hypot(*xs)

    def hypot_pullback(g):
        return tuple(g * x / out if out else 0.0 for x in xs)
    return out, hypot_pullback


@rrule(math.copysign)
def copysign_rule(x, y):
    out = math.copysign(x, y)

    def copysign_pullback(g):
        same = (x >= 0) == (math.copysign(1.0, y) > 0)
        return (g if same else -g), None
    return out, copysign_pullback


@rrule(math.fmod)
def fmod_rule(x, y):
    out = math.fmod(x, y)

    def fmod_pullback(g):
        return g, -g * math.trunc(x / y)
    return out, fmod_pullback


@rrule(math.fsum)
def fsum_rule(xs):
    items = list(xs)
    out = math.fsum(items)

    def fsum_pullback(g):
        return ([g] * len(items) if isinstance(xs, list) else tuple([g] * len(items))),
    return out, fsum_pullback


@rrule(math.prod)
def prod_rule(xs, *, start=1):
    items = list(xs)
    out = math.prod(items, start=start)

    def prod_pullback(g):
        cts = []
        for i in range(len(items)):
            others = math.prod(items[:i] + items[i + 1:], start=start)
            cts.append(g * others)
        return (cts if isinstance(xs, list) else tuple(cts)),
    return out, prod_pullback


nondiff(math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite, math.factorial,
        math.comb, math.perm, math.gcd, math.isclose, math.isqrt)
