"""np.linalg.norm: every differentiable ord, vectors and (stacked) matrices, axis and keepdims."""
import numpy as np
import pytest

import morula as mo

rng = np.random.default_rng(5)
VECTOR_ORDS = [None, 1, 2, 3, 0.5, -1, -2, np.inf, -np.inf]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
@pytest.mark.parametrize("shape, axis", [((5,), None), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_vector_norms(ord, shape, axis, keepdims):
    x = rng.standard_normal(shape) + 0.1
    if axis is None and len(shape) > 1:
        pytest.skip("ord with axis=None on a matrix is a matrix norm")
    mo.testing.check_rule(np.linalg.norm, x, ord, axis, keepdims)


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
@pytest.mark.parametrize("shape, axis", [((3, 4), None), ((3, 4), (0, 1)), ((3, 4), (1, 0)), ((2, 3, 4), (1, 2)),
                                         ((2, 3, 4), (-1, -3))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norms(ord, shape, axis, keepdims):
    x = rng.standard_normal(shape)
    if axis is None and ord is not None and len(shape) != 2:
        pytest.skip("needs a matrix")
    mo.testing.check_rule(np.linalg.norm, x, ord, axis, keepdims)


def test_norm_through_grad_float32_and_zero():
    def f(x):
        return np.linalg.norm(x) + np.linalg.norm(x, 1)

    g = mo.grad(f)(np.array([3.0, -4.0], dtype=np.float32))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [0.6 + 1, -0.8 - 1], rtol=1e-6)
    np.testing.assert_allclose(mo.grad(f)(np.zeros(3)), np.zeros(3))   # the subgradient of least norm
