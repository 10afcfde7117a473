"""NumPy functions differentiated through re-implementations (rules/numpy_substitutes.py) and the
stride-trick rules, swept through morula.grad against finite differences."""
import numpy as np
import pytest

import morula as mo

rng = np.random.default_rng(11)
X = rng.standard_normal((3, 5))
X_NAN = X.copy()
X_NAN[1, 2] = np.nan


def _scalar_function(a, b):
    return np.sin(a) * b + a * a


_VECTORIZED = np.vectorize(_scalar_function)


def _finite_loss(y):
    return np.sum(np.sin(np.nan_to_num(y)) * 1.3)


CASES = [
    ("nanvar", lambda x: np.nanvar(x), X_NAN), ("nanvar_axis_ddof", lambda x: np.nanvar(x, axis=1, ddof=1), X_NAN),
    ("nanstd_keepdims", lambda x: np.nanstd(x, axis=0, keepdims=True), X_NAN),
    ("nanmedian", lambda x: np.nanmedian(x, axis=1), X_NAN),
    ("nanquantile", lambda x: np.nanquantile(x, [0.2, 0.7], axis=0), X_NAN),
    ("nanpercentile", lambda x: np.nanpercentile(x, 35.0), X_NAN),
    ("cov", lambda x: np.cov(x), X), ("cov_rowvar_bias", lambda x: np.cov(x, rowvar=False, bias=True), X),
    ("corrcoef", lambda x: np.corrcoef(x), X), ("corrcoef_xy", lambda x: np.corrcoef(x[0], x[1]), X),
    ("ediff1d", lambda x: np.ediff1d(x, to_begin=x[0, 0], to_end=[1.0, 2.0]), X),
    ("block", lambda x: np.block([[x[:, :2], x[:, 2:]], [x[:1, :2], x[:1, 2:]]]), X),
    ("broadcast_arrays", lambda x: np.broadcast_arrays(x[0], x[:, :1])[0] * np.broadcast_arrays(x[0], x[:, :1])[1], X),
    ("apply_along_axis", lambda x: np.apply_along_axis(lambda r: np.sum(r ** 2), 1, x), X),
    ("apply_along_axis_vector", lambda x: np.apply_along_axis(lambda r: r[::-1] * 2.0, 0, x), X),
    ("polyfit", lambda x: np.polyfit(np.arange(5.0), x[0], 2), X),
    ("sliding_window_view", lambda x: np.lib.stride_tricks.sliding_window_view(x[0], 3) ** 2, X),
    ("vectorize", lambda x: _VECTORIZED(x, x[0]), X),
    ("sliding_window_view_axis", lambda x: np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(0, 1)), X),
]


@pytest.mark.parametrize("name, fn, x", CASES, ids=[c[0] for c in CASES])
def test_substitute_matches_finite_differences(name, fn, x):
    def loss(x):
        return _finite_loss(fn(x))

    base = np.nan_to_num(x, nan=0.0)
    mask = ~np.isnan(x)
    g = mo.grad(loss)(x)
    eps = 1e-6
    v = rng.standard_normal(x.shape) * mask
    numeric = (loss(np.where(mask, base + eps * v, np.nan)) - loss(np.where(mask, base - eps * v, np.nan))) / (2 * eps)
    assert np.isclose(np.nansum(g * v), numeric, rtol=1e-5, atol=1e-7)


SWEPT = [np.nanvar, np.nanstd, np.nanmedian, np.nanquantile, np.nanpercentile, np.cov, np.corrcoef,
         np.ediff1d, np.block, np.broadcast_arrays, np.apply_along_axis, np.polyfit,
         np.lib.stride_tricks.sliding_window_view]
