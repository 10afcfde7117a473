"""Whole programs exercising calls: helpers, recursion, closures, arguments, higher-order functions."""
import functools
import math

import numpy as np

SCALE = 2.0


def helper(a, b=3.0):
    return a * b + SCALE


def calls_helper(x):
    return helper(x) + helper(x, 0.5) + helper(b=x, a=2.0)


def power(x, n):
    if n == 0:
        return 1.0
    return x * power(x, n - 1)


def nested_sum(items):
    total = 0.0
    for item in items:
        if isinstance(item, list):
            total = total + nested_sum(item)
        else:
            total = total + item * item
    return total


def fib_like(x, n):
    if n <= 1:
        return x
    return fib_like(x, n - 1) + 0.5 * fib_like(x, n - 2)


def variadic(*xs, **scales):
    total = 0.0
    for x in xs:
        total = total + x * scales.get("a", 1.0)
    return total * scales["b"]


def calls_variadic(x, y):
    args = (x, y, x * y)
    kw = {"a": y, "b": 2.0}
    return variadic(*args, **kw) + variadic(x, b=x)


def keyword_only(x, *, scale=2.0, shift):
    return x * scale + shift


def calls_keyword_only(x, s):
    return keyword_only(x, shift=s) + keyword_only(x, scale=s, shift=1.0)


def closure_reader(a, x):
    def g(y):
        return a * y + math.sin(a)
    return g(x) + g(x * x)


def lambda_and_higher_order(a, x):
    def apply_twice(fn, v):
        return fn(fn(v))
    square_plus = lambda v: v * v + a
    return apply_twice(square_plus, x) + apply_twice(lambda v: a * v, x)


def make_scaler(k):
    def scale(v):
        return k * v
    return scale


def returns_closure(a, x):
    f = make_scaler(a)
    return f(x) * f(2.0)


def dispatch_table(x, name):
    table = {"sin": math.sin, "square": lambda v: v * v, "cube": lambda v: v ** 3}
    return table[name](x) + table["square"](x)


def with_partial(a, x):
    f = functools.partial(helper, b=a)
    return f(x) + functools.partial(helper, x)(a)


def comprehension_sum(xs, w):
    squares = [w * v * v for v in xs if v > 0]
    pairs = {i: v * w for i, v in enumerate(xs)}
    gen = sum(v * w for v in xs)
    biggest = max(v * w for v in xs)
    smallest = min(w * v for v in xs)
    return sum(squares) + sum(pairs.values()) + gen + biggest + smallest + sum(tuple(v for v in xs))


def nested_comprehension(M):
    return sum([M[i][j] * (i + 1) for i in range(len(M)) for j in range(len(M[i])) if j >= i])


def builtins_use(x, y):
    a = abs(x - y) + max(x, y) + min(x, y, 0.5) + pow(x, 2) + float(y)
    q, r = divmod(x, 0.3)
    return a + r + sum([x, y]) + math.hypot(x, y) + math.atan2(y, x) + math.exp(x) * math.log(y)


def default_array_param(x, w=np.array([1.0, 2.0])):
    return np.sum(w * x)


def calls_map_sorted(xs):
    ys = list(map(lambda v: v * v, xs))
    zs = sorted(ys, reverse=True)
    return zs[0] * 2.0 + zs[-1]


@functools.lru_cache(maxsize=None)
def cached_square(v):
    return v * v


def uses_lru_cache(x):
    return cached_square(x) + cached_square(2.0)


def default_from_enclosing(x):
    f = lambda v=x: 2.0 * v      # noqa: E731
    def g(v=x, *, w=x):
        return v * w
    return f() + g() + g(1.0) + f(3.0)


def checkpointed_closure(a, x):
    import morula as mo

    def inner(v):
        return a * np.sin(v)
    return np.sum(mo.checkpoint(inner)(x))


def checkpointed_closure_called_twice(a, x):
    import morula as mo
    c = mo.checkpoint(lambda v: np.sin(a * v))     # a's cotangent arrives from both calls
    return np.sum(c(x) * c(x * 2.0))


class WithRuledMethod:
    def __init__(self, v):
        self.v = v

    def double(self):
        return 2.0 * self.v


def calls_ruled_method(x):
    return WithRuledMethod(x).double() * 3.0


def singular_python_floats(x):
    return x ** 0.5 + np.log(x) * 0.0 + x ** 0.0
