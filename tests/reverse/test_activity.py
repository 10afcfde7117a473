"""Skipping the cotangents of arguments nobody differentiates (shadow.is_inactive / activate).

Every case compares ``grad(f, argnums=i)`` (where the skip may apply) with the same component of
``grad(f, argnums=all)`` (where it cannot) and with finite differences: a skipped cotangent must
never change a gradient that is asked for.
"""
import numpy as np
import pytest

import morula as mo
from morula.reverse import shadow

RNG = np.random.default_rng(3)
X = RNG.standard_normal((4, 3))
W = RNG.standard_normal((3, 2))


def plain(x, w):
    return np.sum(np.tanh(x @ w))


def dot_and_tensordot(x, w):
    return np.sum(np.dot(x, w) ** 2) + np.sum(np.tensordot(x, w, axes=1)) + np.sum(x.dot(w) * 2.0)


def written_before_read(x, w):
    x[0, 0] = w[1, 1] * 2.0            # x now depends on w: reads of x after this need cotangents
    return np.sum(np.tanh(x @ w))


def written_through_a_view(x, w):
    row = x[1]
    row *= w[0, 0]
    return np.sum((x @ w) ** 2)


def written_by_inplace_operator(x, w):
    x += w[0, 1]
    return np.sum(np.sin(x @ w))


def written_by_copyto_and_fill(x, w):
    np.copyto(x[:, 0], w[:, 0].sum())
    y = x @ w
    x.fill(w[2, 1])
    return np.sum(y ** 2) + np.sum(x @ w)


def written_by_ufunc_at(x, w):
    np.add.at(x, (0, 1), w[0, 0])
    return np.sum(np.cos(x @ w))


def written_by_an_out_argument(x, w):
    np.multiply(x, w[2, 0], out=x)
    return np.sum(np.exp(x @ w))


def written_in_a_helper(x, w):
    fill_first_column(x, w[1, 0])
    return np.sum((x @ w) ** 3)


def fill_first_column(buf, value):
    buf[:, 0] = value


def written_after_read(x, w):
    y = x @ w                          # read before the write: its cotangent of x is not needed
    x[0] = w[:, 0]
    return np.sum(y ** 2) + np.sum(x @ w)


def views_of_the_data(x, w):
    return np.sum(np.tanh(x.T.T @ w)) + np.sum(x[1:] @ w) + np.sum(x.reshape(2, 6)[:, :3] @ w)


def view_written_then_read(x, w):
    top = x[:2]
    top[0, 1] = w[0, 0] ** 2           # a write through a view activates x: later reads need cotangents
    return np.sum(np.tanh(x @ w)) + np.sum(top @ w)


CASES = [plain, dot_and_tensordot, views_of_the_data, view_written_then_read, written_before_read, written_through_a_view, written_by_inplace_operator,
         written_by_copyto_and_fill, written_by_ufunc_at, written_by_an_out_argument, written_in_a_helper, written_after_read]


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_skipping_the_batch_cotangent_keeps_the_gradient(f):
    got = mo.grad(f, argnums=1)(X.copy(), W.copy())
    _, full = mo.grad(f, argnums=(0, 1))(X.copy(), W.copy())
    np.testing.assert_allclose(got, full, rtol=1e-12, atol=1e-12)
    mo.testing.check_grads(lambda w: f(X.copy(), w), (W.copy(),), rtol=1e-5, atol=1e-7)


def test_an_argument_aliasing_a_differentiated_one_is_not_skipped():
    def f(params, x):
        return np.sum((x @ params[0]) ** 2) + np.sum(params[1] ** 2)

    x = X.copy()
    g = mo.grad(f)([W.copy(), x], x)           # x is both data and a parameter
    _, gx = mo.grad(f, argnums=(0, 1))([W.copy(), x], x)
    full = mo.grad(lambda p: f(p, p[1]))([W.copy(), x])
    np.testing.assert_allclose(g[1], full[1])
    assert not np.allclose(g[1], 2 * x)       # the matmul's contribution reached params[1]


def test_a_differentiated_view_of_the_data_is_not_skipped():
    def f(x, v):
        return np.sum((x @ W) ** 2) + np.sum(v)

    x = X.copy()
    v = x[:2]                                 # shares x's memory
    g = mo.grad(f, argnums=1)(x, v)
    _, full = mo.grad(f, argnums=(0, 1))(x, v)
    np.testing.assert_allclose(g, full)


def test_the_skip_applies_only_inside_the_forward_pass():
    seen = []

    def f(x, w):
        seen.append(shadow.is_inactive(x))
        return np.sum(x @ w)

    mo.grad(f, argnums=1)(X.copy(), W.copy())
    assert seen == [True]
    assert not shadow.is_inactive(X)
    mo.grad(f, argnums=(0, 1))(X.copy(), W.copy())
    assert seen == [True, False]


def inactive(x):
    """shadow.is_inactive, run as it is by the differentiated code that calls it."""
    return shadow.is_inactive(x)


mo.nondiff(inactive)


def test_views_of_an_inactive_argument_are_inactive():
    seen = []

    def f(x, w):
        seen.append((inactive(x.T), inactive(x[1:])))
        v = x[2:]
        v[0, 0] = w[0, 0]
        seen.append((inactive(x.T), inactive(v)))
        return np.sum(x @ w)

    mo.grad(f, argnums=1)(X.copy(), W.copy())
    assert seen == [(True, True), (False, False)]


def test_writes_make_an_argument_active_again():
    seen = []

    def g(x, w):
        seen.append(shadow.is_inactive(x))
        x[0, 0] = w[0, 0]
        seen.append(shadow.is_inactive(x))
        return np.sum(x @ w)

    mo.grad(g, argnums=1)(X.copy(), W.copy())
    assert seen == [True, False]


GLOBAL_MATRIX = RNG.standard_normal((5, 5))


def reads_a_global_matrix(x):
    return np.sum(np.tanh(GLOBAL_MATRIX @ x) ** 2) + x @ x


def test_global_matrices_of_a_function_passed_as_an_argument_are_inactive(monkeypatch):
    # mo.hvp / mo.hessian differentiate a wrapper that receives f as an argument: the arrays f
    # reads by global name (like those in its closure) need no cotangent -- a full-size outer
    # product per product with them, before this was taken into account
    from morula.rules import numpy_linalg
    wanted_for_matrix = []
    real = numpy_linalg._matmul_cotangents

    def spy(dy, a, b, need_a=True, need_b=True):
        if a is GLOBAL_MATRIX:
            wanted_for_matrix.append(need_a)
        return real(dy, a, b, need_a, need_b)
    monkeypatch.setattr(numpy_linalg, "_matmul_cotangents", spy)
    x, v = RNG.standard_normal(5), RNG.standard_normal(5)
    hv = mo.hvp(reads_a_global_matrix, (x,), (v,))
    assert wanted_for_matrix and not any(wanted_for_matrix)
    eps = 1e-6
    g = mo.grad(reads_a_global_matrix)
    np.testing.assert_allclose(hv, (g(x + eps * v) - g(x - eps * v)) / (2 * eps), rtol=1e-6, atol=1e-8)
    H = mo.hessian(reads_a_global_matrix)(x)
    np.testing.assert_allclose(H @ v, hv, rtol=1e-10, atol=1e-12)


def test_gradients_never_alias_the_callers_cotangent():
    # the shadow hands its buffers over without a copy only when nothing else refers to them
    def identity(x):
        return x

    def scaled(x):
        return x * 2.0
    x, c = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    for f in (identity, scaled):
        _, pb = mo.vjp(f, x)
        g = pb(c)[0]
        assert not np.shares_memory(g, c) and not np.shares_memory(g, x)
        g[0] = 99.0
        np.testing.assert_array_equal(c, [0.5, -1.0])
