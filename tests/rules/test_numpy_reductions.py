import numpy as np
import pytest

import morula.rules.numpy_rules  # noqa: F401
from morula.errors import UnsupportedOperationError
from morula.rules.registry import REGISTRY

try:
    from .fd import check_float32, check_rule
except ImportError:
    from fd import check_float32, check_rule


def rule(fn):
    r = REGISTRY.function_rule(fn)
    assert r is not None, f"no rule for {fn}"
    return r


def method(name):
    found = REGISTRY.method_rule(np.ndarray, name)
    assert found is not None, name
    r, mutating = found
    assert not mutating
    return r


CASES = [
    ((), None), ((3,), None), ((3,), 0), ((3,), -1), ((2, 3), None), ((2, 3), 0), ((2, 3), -1),
    ((2, 3), (0, 1)), ((2, 3, 4), None), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (-1, 0)),
]  # fmt: skip

REDUCTIONS = [np.sum, np.mean, np.prod, np.max, np.min, np.amax, np.amin, np.nansum, np.nanmean,
              np.nanmax, np.nanmin, np.var, np.std]  # fmt: skip


def _id(v):
    return getattr(v, "__name__", str(v))


def _input(shape, seed=0):
    gen = np.random.default_rng(seed)
    x = gen.uniform(0.5, 1.5, shape) * gen.choice([-1.0, 1.0], shape)
    return np.float64(x) if shape == () else x


@pytest.mark.parametrize("fn", REDUCTIONS, ids=_id)
@pytest.mark.parametrize("shape,axis", CASES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_sweep(fn, shape, axis, keepdims):
    x = _input(shape)
    check_rule(rule(fn), fn, (x,), {"axis": axis, "keepdims": keepdims})


@pytest.mark.parametrize("fn", REDUCTIONS, ids=_id)
def test_reduction_positional_axis_and_keepdims(fn):
    # how the runtime calls a rule after binding keywords: everything positional
    x = _input((2, 3, 4))
    r = rule(fn)
    if fn in (np.max, np.min, np.amax, np.amin, np.nanmax, np.nanmin):
        args = (x, 1, None, True)  # a, axis, out, keepdims
    elif fn in (np.var, np.std):
        args = (x, 1, None, None, 1, True)  # a, axis, dtype, out, ddof, keepdims
    else:
        args = (x, 1, None, None, True)  # a, axis, dtype, out, keepdims
    cts = check_rule(r, fn, args)
    assert cts[1:] == (None,) * (len(args) - 1)


@pytest.mark.parametrize("fn", REDUCTIONS, ids=_id)
def test_reduction_float32(fn):
    x = _input((2, 3)).astype(np.float32)
    check_float32(rule(fn), (x,), {"axis": 0})
    check_float32(rule(fn), (x,))


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "var", "std", "cumsum"])
@pytest.mark.parametrize("axis", [None, 0, -1])
def test_methods(name, axis):
    x = _input((2, 3), seed=1)
    check_rule(method(name), lambda s, *a, **k: getattr(s, name)(*a, **k), (x, axis))


@pytest.mark.parametrize("fn", [np.sum, np.mean, np.prod, np.var], ids=_id)
def test_complex(fn):
    gen = np.random.default_rng(2)
    z = gen.standard_normal((2, 3)) + 1j * gen.standard_normal((2, 3))
    check_rule(rule(fn), fn, (z,), {"axis": 1})
    check_rule(rule(fn), fn, (z,))


def test_prod_with_zeros():
    for x in (np.array([2.0, 0.0, 3.0]), np.array([0.0, 0.0, 3.0]), np.array([[0.0, 2.0], [3.0, 4.0]])):
        _, pb = rule(np.prod)(x)
        g = pb(1.0)[0]
        flat = x.ravel()
        expected = [np.prod(np.delete(flat, i)) for i in range(flat.size)]
        np.testing.assert_array_equal(g.ravel(), expected)
        check_rule(rule(np.prod), np.prod, (x,), {"axis": -1})
        check_rule(rule(np.prod), np.prod, (x,))


def test_max_ties_share():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    _, pb = rule(np.max)(x, axis=1)
    np.testing.assert_allclose(pb(np.array([1.0, 3.0]))[0], [[0, 0.5, 0.5], [1, 1, 1]])
    _, pb = rule(np.min)(x)
    np.testing.assert_allclose(pb(1.0)[0], [[1, 0, 0], [0, 0, 0]])


def test_max_nan_propagated():
    x = np.array([1.0, np.nan, 3.0])
    _, pb = rule(np.max)(x)
    np.testing.assert_array_equal(pb(1.0)[0], [0, 1, 0])
    _, pb = rule(np.nanmax)(x)
    np.testing.assert_array_equal(pb(1.0)[0], [0, 0, 1])


def test_where_masks():
    x = _input((2, 3), seed=3)
    mask = np.array([[True, False, True], [False, True, True]])
    check_rule(rule(np.sum), np.sum, (x,), {"axis": 1, "where": mask})
    check_rule(rule(np.mean), np.mean, (x,), {"axis": 1, "where": mask})
    check_rule(rule(np.prod), np.prod, (x,), {"axis": 0, "where": mask})
    check_rule(rule(np.max), np.max, (x,), {"axis": 1, "where": mask, "initial": -10.0})
    check_rule(rule(np.var), np.var, (x,), {"axis": 1, "where": mask})


def test_initial():
    x = _input((2, 3), seed=4)
    check_rule(rule(np.sum), np.sum, (x,), {"initial": 2.0})
    check_rule(rule(np.prod), np.prod, (x,), {"axis": 0, "initial": 2.0})
    _, pb = rule(np.max)(x, initial=10.0)
    assert not np.any(pb(1.0)[0])


def test_nan_reductions_skip_nans():
    x = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, np.nan]])
    _, pb = rule(np.nansum)(x, axis=1)
    np.testing.assert_array_equal(pb(np.ones(2))[0], [[1, 0, 1], [1, 1, 0]])
    _, pb = rule(np.nanmean)(x, axis=1)
    np.testing.assert_array_equal(pb(np.ones(2))[0], [[0.5, 0, 0.5], [0.5, 0.5, 0]])


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("fn", [np.var, np.std], ids=_id)
def test_var_std_ddof(fn, ddof):
    x = _input((3, 4), seed=5)
    check_rule(rule(fn), fn, (x,), {"axis": 0, "ddof": ddof})
    check_rule(rule(fn), fn, (x,), {"ddof": ddof, "keepdims": True})


def test_std_of_constant_is_zero():
    _, pb = rule(np.std)(np.ones(3))
    np.testing.assert_array_equal(pb(1.0)[0], np.zeros(3))


@pytest.mark.parametrize("shape,axis", [((4,), None), ((4,), 0), ((2, 3), None), ((2, 3), 0),
                                        ((2, 3), -1), ((2, 3, 4), 1)])  # fmt: skip
def test_cumsum(shape, axis):
    x = _input(shape, seed=6)
    check_rule(rule(np.cumsum), np.cumsum, (x,), {"axis": axis})
    check_float32(rule(np.cumsum), (x.astype(np.float32),), {"axis": axis})


def test_python_list_and_float_inputs():
    cts = check_rule(rule(np.sum), np.sum, ([1.0, 2.0, 3.0],))
    assert type(cts[0]) is list and all(type(c) is float for c in cts[0])
    cts = check_rule(rule(np.mean), np.mean, ((1.0, 2.5),))
    assert type(cts[0]) is tuple
    check_rule(rule(np.max), np.max, ([1.0, 4.0, 2.0],))
    assert rule(np.max)([1.0, 4.0, 2.0])[1](1.0) == ([0.0, 1.0, 0.0],)
    cts = check_rule(rule(np.sum), np.sum, (2.5,))
    assert type(cts[0]) is float


def test_integer_inputs_are_constant():
    for fn in (np.sum, np.mean, np.prod, np.max, np.cumsum):
        out, pb = rule(fn)(np.arange(4))
        if fn is np.mean:
            assert out == 1.5
        assert pb is None


def test_dtype_argument():
    x = _input((2, 3)).astype(np.float32)
    out, pb = rule(np.sum)(x, 0, np.float64)
    assert out.dtype == np.float64
    cts = pb(np.ones(3))
    assert cts[0].dtype == np.float32 and len(cts) == 3


def test_out_rejected():
    with pytest.raises(UnsupportedOperationError):
        rule(np.sum)(np.ones(3), out=np.empty(()))


@pytest.mark.parametrize(
    "fn,kwargs",
    [(np.sum, {"axis": 1, "keepdims": True}), (np.mean, {"keepdims": True}),
     (np.max, {"axis": 0, "keepdims": True}), (np.var, {"ddof": 1}), (np.std, {"axis": -1, "ddof": 1}),
     (np.prod, {"axis": (0, 1)}), (np.sum, {"where": np.array([True, False, True])})],
    ids=lambda v: getattr(v, "__name__", ""),
)  # fmt: skip
def test_keywords_bound_by_the_registry(fn, kwargs):
    # the runtime moves keywords naming positional parameters into position
    r = rule(fn)
    x = _input((2, 3), seed=7)
    args, static, positions = REGISTRY.bind_keywords(r, (x,), kwargs)
    assert set(positions) == set(kwargs)
    cts = check_rule(r, lambda *a, **k: fn(*a, **k), args, static)
    assert len(cts) == len(args)


# -- scans, order statistics, averages (conventions; the sweeps are in test_numpy_sweeps.py) ---------

import morula as mo  # noqa: E402


def test_cumprod_with_zeros_is_exact():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    _, pb = rule(np.cumprod)(x)
    dy = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    g = pb(dy)[0]
    # d/dx_j sum_i dy_i prod_{k<=i} x_k = sum_{i>=j} dy_i prod_{k<=i, k!=j} x_k, by brute force
    expected = [sum(dy[i] * np.prod(np.delete(x[: i + 1], j)) for i in range(j, 5)) for j in range(5)]
    np.testing.assert_array_equal(g, expected)  # [10, 2 + 6*... , ...] exactly, no NaN
    assert np.all(np.isfinite(g))
    _, pb = rule(np.cumprod)(np.zeros((2, 3)), 1)
    np.testing.assert_array_equal(pb(np.ones((2, 3)))[0], [[1, 0, 0], [1, 0, 0]])


def test_median_and_quantile_conventions():
    x = np.array([4.0, 1.0, 3.0, 2.0])
    _, pb = rule(np.median)(x)
    np.testing.assert_array_equal(pb(1.0)[0], [0.0, 0.0, 0.5, 0.5])  # mean of the two middle ones
    _, pb = rule(np.quantile)(x, 0.5, method="lower")
    np.testing.assert_array_equal(pb(1.0)[0], [0.0, 0.0, 0.0, 1.0])
    _, pb = rule(np.quantile)(x, 0.25)  # virtual index 0.75: 0.25 on the 1st, 0.75 on the 2nd
    g, gq = pb(1.0)[:2]
    np.testing.assert_allclose(g, [0.0, 0.25, 0.0, 0.75])
    assert gq == pytest.approx(3.0)  # slope (2 - 1) * (n - 1)
    _, pb = rule(np.median)(np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]]), axis=1)
    np.testing.assert_array_equal(pb(np.array([1.0, 1.0]))[0], [[0, 1, 0], [0, 1, 0]])


@pytest.mark.parametrize("kwargs", [{"method": "inverted_cdf"}, {"method": "closest_observation"},
                                    {"method": "inverted_cdf", "weights": np.ones(4)}])
def test_discontinuous_quantiles_refused(kwargs):
    with pytest.raises(UnsupportedOperationError, match="np.quantile"):
        rule(np.quantile)(np.arange(4.0), 0.5, **kwargs)


def test_unique_values_cotangent_goes_to_every_occurrence():
    x = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0])
    out, pb = rule(np.unique)(x, return_counts=True)
    np.testing.assert_array_equal(out[0], [1.0, 2.0, 3.0])
    g = pb((np.array([10.0, 20.0, 30.0]), None))[0]
    np.testing.assert_array_equal(g, [30.0, 10.0, 30.0, 20.0, 10.0, 30.0])


def logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def logsumexp_rows(x):
    # the shift is a constant (any shift gives the same value): the gradient is the softmax
    m = mo.stop_gradient(np.max(x, axis=1, keepdims=True))
    return np.sum(np.squeeze(m, 1) + np.log(np.sum(np.exp(x - m), axis=1)))


def test_logsumexp_pattern_through_the_engine():
    x = np.array([1.0, 3.0, -2.0, 3.0])
    g = mo.grad(logsumexp)(x)
    np.testing.assert_allclose(g, np.exp(x) / np.sum(np.exp(x)), rtol=1e-12)
    big = np.array([[1000.0, 1001.0, 999.0], [-5.0, 0.0, 5.0]])
    g = mo.grad(logsumexp_rows)(big)
    soft = np.exp(big - big.max(axis=1, keepdims=True))
    np.testing.assert_allclose(g, soft / soft.sum(axis=1, keepdims=True), rtol=1e-12)


def statistics(x, w):
    return (np.median(x) + np.percentile(x, 30.0) + np.quantile(x, [0.2, 0.9], axis=0).sum()
            + np.average(x, axis=1, weights=w).sum() + np.ptp(x, axis=0).sum()
            + np.diff(x, n=2, axis=0, prepend=0.5).sum() + np.cumprod(x, axis=1).sum())


def test_new_reductions_through_the_engine():
    from morula.testing import check_grads
    x = np.random.default_rng(3).uniform(0.5, 1.5, (4, 3)) * np.array([1.0, -1.0, 1.0])
    check_grads(statistics, (x, np.array([0.2, 0.3, 0.5])))
