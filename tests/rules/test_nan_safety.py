"""NaN safety: a branch that ``np.where`` (or ``select``, ``clip``, ``maximum``) did not select
contributes an exact zero to the gradient, even where its local derivative is inf or NaN.

JAX and PyTorch return NaN for ``grad(lambda x: where(x > 0, sqrt(x), 0))`` at ``x <= 0``
(``0 * inf``); morula's elementwise pullbacks define ``0 * inf := 0`` for the incoming
cotangent (see docs/rules_numpy_notes.md, "NaN safety"). The user functions are written
here, in a file, because morula reads source.
"""

import warnings

import numpy as np
import pytest

import morula as mo
from morula.rules.numpy_vspace import nan_safe, nan_safe_product
from morula.rules.registry import REGISTRY

X = np.array([-1.0, 0.0, 4.0])


def sqrt_branch(x):
    return np.sum(np.where(x > 0, np.sqrt(x), 0.0))


def log_branch(x):
    return np.sum(np.where(x > 0, np.log(x), 0.0))


def log2_branch(x):
    return np.sum(np.where(x > 0, np.log2(x), 0.0))


def reciprocal_branch(x):
    return np.sum(np.where(x != 0, np.reciprocal(x), 0.0))


def divide_branch(x):
    return np.sum(np.where(x != 0, np.divide(2.0, x), 0.0))


def arcsin_branch(x):
    return np.sum(np.where(np.abs(x) < 1, np.arcsin(x / 4.0), 0.0))


def arccosh_branch(x):
    return np.sum(np.where(x > 1, np.arccosh(x), 0.0))


def power_branch(x):
    return np.sum(np.where(x > 0, np.power(x, 0.5), 0.0))


def power_negative_base(x):
    return np.sum(np.where(x > 0, np.power(x, 1.5), x))


def float_power_branch(x):
    return np.sum(np.where(x > 0, np.float_power(x, 0.25), 0.0))


def cbrt_branch(x):
    return np.sum(np.where(x != 0, np.cbrt(x), 0.0))


def select_branches(x):
    return np.sum(np.select([x > 0, x < 0], [np.sqrt(x), np.log(-x)], 0.0))


def maximum_guard(x):
    return np.sum(np.sqrt(np.maximum(x, 1.0)))


def clip_guard(x):
    return np.sum(np.log(np.clip(x, 0.5, None)))


def where_after_where(x):
    safe = np.where(x > 0, x, 1.0)
    return np.sum(np.where(x > 0, np.log(safe) + np.sqrt(x), 0.0))


def masked_mean(x):
    return np.mean(np.where(np.isfinite(np.log(x)), np.log(x), 0.0))


CASES = [  # function, expected gradient at X = [-1, 0, 4]
    (sqrt_branch, [0.0, 0.0, 0.25]),
    (log_branch, [0.0, 0.0, 0.25]),
    (log2_branch, [0.0, 0.0, 0.25 / np.log(2.0)]),
    (reciprocal_branch, [-1.0, 0.0, -1 / 16]),
    (divide_branch, [-2.0, 0.0, -2 / 16]),
    (arcsin_branch, [0.0, 0.25, 0.0]),
    (arccosh_branch, [0.0, 0.0, 1 / np.sqrt(15.0)]),
    (power_branch, [0.0, 0.0, 0.25]),
    (power_negative_base, [1.0, 1.0, 3.0]),
    (float_power_branch, [0.0, 0.0, 0.25 * 4.0 ** -0.75]),
    (cbrt_branch, [1 / 3, 0.0, 1 / (3 * 4.0 ** (2 / 3))]),
    (select_branches, [-1.0, 0.0, 0.25]),
    (maximum_guard, [0.0, 0.0, 0.25]),
    (clip_guard, [0.0, 0.0, 0.25]),
    (where_after_where, [0.0, 0.0, 0.5]),
    (masked_mean, [0.0, 0.0, 1 / 12]),
]


@pytest.mark.parametrize("f,expected", CASES, ids=[f.__name__ for f, _ in CASES])
def test_unselected_branch_gives_exact_zero(f, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the forward pass is the user's NumPy
        g = mo.grad(f)(X.copy())
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=0)


def test_backward_pass_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, pb = REGISTRY.function_rule(np.sqrt)(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = pb(np.array([0.0, 0.0, 1.0]))[0]
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.25])


def test_a_real_infinity_is_kept():
    # where the cotangent is not zero, an infinite derivative is the honest answer
    _, pb = REGISTRY.function_rule(np.sqrt)(np.array([0.0, 4.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = pb(np.ones(2))[0]
    assert np.isinf(g[0]) and g[1] == 0.25


def test_helpers():
    assert nan_safe_product(0.0, np.inf) == 0.0
    assert np.isnan(nan_safe_product(np.nan, 1.0))  # a NaN cotangent is not hidden
    g = nan_safe_product(np.array([0.0, 1.0, 0.0]), np.array([np.inf, np.inf, np.nan]))
    np.testing.assert_array_equal(g, [0.0, np.inf, 0.0])
    assert nan_safe_product(np.float32(0), np.float32(np.inf)).dtype == np.float32
    assert type(nan_safe(np.float64(np.nan), 0.0)) is np.float64
    finite = np.ones(3)
    assert nan_safe(finite, np.zeros(3)) is finite  # no extra pass when everything is finite
    z = nan_safe_product(np.array([0j, 1 + 0j]), np.array([complex(np.inf, 1), 2j]))
    np.testing.assert_array_equal(z, [0j, 2j])


def test_maximum_selects_with_exact_zeros():
    # an infinite cotangent must not leak into the unselected operand (inf * 0 = nan)
    _, pb = REGISTRY.function_rule(np.maximum)(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    d1, d2 = pb(np.array([np.inf, 1.0]))
    np.testing.assert_array_equal(d1, [0.0, 1.0])
    np.testing.assert_array_equal(d2, [np.inf, 0.0])
    _, pb = REGISTRY.function_rule(np.where)(np.array([True, False]), np.ones(2), np.zeros(2))
    _, dx, dy = pb(np.array([np.nan, np.nan]))
    assert dx[1] == 0.0 and dy[0] == 0.0


def operator_divide_branch(x):
    return np.sum(np.where(x != 0, 1.0 / x, 0.0))


def operator_power_branch(x):
    return np.sum(np.where(x > 0, x ** 0.5, 0.0))


@pytest.mark.parametrize("f", [operator_divide_branch, operator_power_branch],
                         ids=lambda f: f.__name__)
def test_operators_are_nan_safe(f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = mo.grad(f)(X.copy())
    assert np.all(np.isfinite(g)), g


def test_a_nan_elsewhere_does_not_mask_finite_cotangents_of_scans():
    # cumprod mixes cotangents along its axis: a NaN in another lane once zeroed x[0, 0]'s
    # cotangent, because the zero-cotangent mask was applied to the whole array
    import morula as mo
    x = np.array([[1.0, np.nan, 3.0, -0.5], [2.0, 1.5, -1.0, 0.3]])
    g = mo.vjp(lambda a: np.cumprod(a, axis=0), x)[1](np.array([[0.0, 0, 0, 0], [1.0, 0, 0, 0]]))[0]
    np.testing.assert_allclose(g[:, 0], [2.0, 1.0])
