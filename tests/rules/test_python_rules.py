"""Rules for Python's own functions (math, operator, builtins), swept with check_rule."""
import math
import operator

import numpy as np
import pytest

from morula.testing import check_rule

UNARY_MATH = [
    (math.sqrt, 2.3), (math.exp, 0.4), (math.expm1, 0.4), (math.log, 2.3), (math.log10, 2.3),
    (math.log2, 2.3), (math.log1p, 0.4), (math.sin, 0.4), (math.cos, 0.4), (math.tan, 0.4),
    (math.asin, 0.4), (math.acos, 0.4), (math.atan, 0.4), (math.sinh, 0.4), (math.cosh, 0.4),
    (math.tanh, 0.4), (math.asinh, 0.4), (math.acosh, 2.3), (math.atanh, 0.4), (math.fabs, -0.4),
    (math.erf, 0.4), (math.erfc, 0.4), (math.degrees, 0.4), (math.radians, 0.4),
    (math.lgamma, 2.3), (math.gamma, 2.3), (math.lgamma, 0.3), (math.gamma, -1.3),
]


@pytest.mark.parametrize("fn, x", UNARY_MATH, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("shift", [0.0, 0.17])
def test_math_unary(fn, x, shift):
    check_rule(fn, x + shift)


@pytest.mark.parametrize("fn, args", [
    (math.log, (2.3, 3.0)), (math.pow, (2.3, 1.7)), (math.atan2, (0.4, -1.2)), (math.hypot, (0.4, -1.2)),
    (math.hypot, (0.4, -1.2, 2.0)), (math.copysign, (0.4, -1.0)), (math.fmod, (5.3, 1.7)),
    (math.fsum, ([0.4, 1.2, -2.0],)), (math.prod, ([0.4, 1.2, -2.0],)),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_math_other(fn, args):
    check_rule(fn, *args)


OPERANDS = [
    (1.3, -0.7), (1.3, 2), (np.array([1.3, -0.7]), 2.5), (np.ones((2, 3)) * 1.7, np.array([1.0, 2.0, -0.5])),
    (np.array([[1.3], [0.4]]), np.array([0.7, 1.1, 2.0])), (np.array([1.3, 0.4], dtype=np.float32), 0.5),
    (1.3 + 0.5j, 0.7 - 0.2j),
]


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("a, b", OPERANDS, ids=str)
def test_arithmetic_operators(op, a, b):
    check_rule(op, a, b)


@pytest.mark.parametrize("a, b", [(1.3, 2), (1.3, 0.7), (np.array([1.3, 0.4]), 2.5), (np.array([1.3, 0.4]), 3),
                                  (2.5, np.array([0.3, -1.0]))], ids=str)
def test_pow_and_mod(a, b):
    check_rule(operator.pow, a, b)
    check_rule(operator.mod, a + 3.0, 1.3)


@pytest.mark.parametrize("x", [1.3, np.array([1.3, -0.4]), 1.3 + 2j], ids=str)
def test_unary_operators(x):
    check_rule(operator.neg, x)
    check_rule(operator.pos, x)
    check_rule(abs, x)


@pytest.mark.parametrize("fn, args", [
    (min, (1.3, 0.4, 2.0)), (max, (1.3, 0.4, 2.0)), (min, ([1.3, 0.4, 2.0],)), (max, ((1.3, 0.4, 2.0),)),
    (sum, ([1.3, 0.4, 2.0],)), (sum, ([1.3, 0.4], 2.0)), (sum, ([np.ones(2), np.arange(2.0)],)),
    (pow, (1.3, 2.5)), (divmod, (5.3, 1.7)), (float, (np.float64(1.3),)), (float, (1.3,)),
    (complex, (1.3, 0.4)), (complex, (1.3,)),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_builtins(fn, args):
    check_rule(fn, *args)


# Container methods and iteration helpers (list.append, dict.update, zip, enumerate, sorted, ...)
# are swept by whole programs in tests/programs (aliasing, loops, keywords).
import copy  # noqa: E402
import functools  # noqa: E402

import morula  # noqa: E402

SWEPT = [copy.copy, copy.deepcopy, functools.partial, morula.checkpoint, zip, enumerate, reversed, map, filter, sorted, iter, list, tuple, dict, getattr, super,
         (list, "append"), (list, "extend"), (list, "insert"), (list, "pop"), (list, "copy"),
         (list, "reverse"), (list, "sort"), (list, "clear"), (list, "remove"),
         (dict, "get"), (dict, "keys"), (dict, "values"), (dict, "items"), (dict, "copy"),
         (dict, "update"), (dict, "pop"), (dict, "setdefault"), (complex, "conjugate"), (float, "conjugate"),
         (complex, "real"), (complex, "imag"), operator.floordiv, operator.matmul,
         operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ipow]
