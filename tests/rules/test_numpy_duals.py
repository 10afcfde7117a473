"""Dual arrays (rules/numpy_duals.py) and the Hessians they compute (batched_hessian.py).

The whole-program cases check the dual sweep *without* its runtime check against the
column-by-column Hessian (reverse over forward): a dual result must be exact or not be given at
all. The operation sweeps check each operation's tangents against central differences.
"""
import io
import contextlib

import numpy as np
import pytest

import morula as mo
from morula import batched_hessian, dual_arrays
from morula.rules import numpy_duals as D
from tests.forward.test_forward_programs import ALL

seeded, parts, recording = dual_arrays.DUALS[0]


@contextlib.contextmanager
def without_duals():
    """The API's column-by-column methods (no dual arrays registered)."""
    saved = list(dual_arrays.DUALS)
    dual_arrays.DUALS.clear()
    try:
        yield
    finally:
        dual_arrays.DUALS.extend(saved)


def _column_hessian(f, args, j):
    """The Hessian block (j, j) by the per-column method (no dual arrays)."""
    with without_duals():
        return mo.hessian(f, argnums=j)(*args)


def _dual_hessian(f, args, j):
    """The dual sweep's block (j, j), unchecked; None when the sweep refuses."""
    found = {}
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            with recording():
                batched_hessian._sweeps(f, args, {}, (j,), lambda g, nums: mo.grad(g, argnums=nums),
                                        seeded, parts, found)
        except Exception:
            return None
    return found.get((j, j))


PROGRAMS = [(name, j) for name, (f, args) in sorted(ALL.items()) for j, a in enumerate(args)
            if type(a) is np.ndarray and a.dtype.kind == "f" and a.size]
_used = []


@pytest.mark.parametrize("name,j", PROGRAMS, ids=[f"{n}[{j}]" for n, j in PROGRAMS])
def test_dual_hessian_of_every_program_is_exact_or_refused(name, j):
    f, args = ALL[name]
    with contextlib.redirect_stdout(io.StringIO()):
        want = _column_hessian(f, args, j)
    got = _dual_hessian(f, args, j)
    if got is None:
        pytest.skip("the dual sweep refuses this program (the Hessian goes column by column)")
    _used.append(name)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_most_programs_take_the_dual_sweep():
    # the others write dual values into plain arrays (preallocate-and-fill), convert them to
    # floats or lists, or call functions duals do not implement: they go column by column
    taken = sum(_dual_hessian(ALL[name][0], ALL[name][1], j) is not None for name, j in PROGRAMS)
    assert taken >= 45, f"only {taken} of {len(PROGRAMS)} programs take the dual sweep"


# --------------------------------------------------------------------------- operations

rng = np.random.default_rng(5)


def _check_tangents(fn, *inputs, dual_at=(0,), k=3, eps=1e-6, rtol=1e-6, atol=1e-8):
    """fn on Duals (tangents: k random directions at the positions ``dual_at``) against central
    differences along each direction."""
    directions = [rng.standard_normal((k,) + np.shape(inputs[i])) for i in dual_at]
    duals = list(inputs)
    for d, i in zip(directions, dual_at):
        duals[i] = seeded(np.asarray(inputs[i], dtype=float), d)
    out = fn(*duals)
    primal, tangents = parts(out, k, np.shape(fn(*inputs)))
    np.testing.assert_allclose(primal, fn(*inputs), rtol=1e-12, atol=1e-12)
    for b in range(k):
        plus, minus = list(inputs), list(inputs)
        for d, i in zip(directions, dual_at):
            plus[i] = inputs[i] + eps * d[b]
            minus[i] = inputs[i] - eps * d[b]
        fd = (np.asarray(fn(*plus)) - np.asarray(fn(*minus))) / (2 * eps)
        np.testing.assert_allclose(tangents[b], fd, rtol=rtol, atol=atol)


SHAPES = [(), (4,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("fn", [np.tanh, np.exp, np.sin, np.log1p, np.sqrt, np.abs, np.negative,
                                lambda x: x ** 3, lambda x: 2.0 ** x, lambda x: -x, lambda x: abs(x)],
                         ids=["tanh", "exp", "sin", "log1p", "sqrt", "abs", "negative", "cube",
                              "rpow", "neg", "builtin_abs"])
def test_unary_elementwise(fn, shape):
    x = rng.uniform(0.5, 1.5, shape)
    _check_tangents(fn, x)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)),
                                    ((), (3,)), ((3,), ())], ids=str)
@pytest.mark.parametrize("fn", [np.add, np.subtract, np.multiply, np.divide, np.power, np.maximum,
                                np.arctan2, lambda a, b: a * b + a / b - b ** 2],
                         ids=["add", "subtract", "multiply", "divide", "power", "maximum", "arctan2",
                              "expression"])
@pytest.mark.parametrize("dual_at", [(0,), (1,), (0, 1)], ids=["first", "second", "both"])
def test_binary_elementwise_with_broadcasting(fn, shapes, dual_at):
    a = rng.uniform(0.5, 1.5, shapes[0])
    b = rng.uniform(0.5, 1.5, shapes[1])
    _check_tangents(fn, a, b, dual_at=dual_at)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)),
                                    ((2, 1, 3, 4), (5, 4, 2))], ids=str)
@pytest.mark.parametrize("dual_at", [(0,), (1,), (0, 1)], ids=["first", "second", "both"])
def test_matmul(shapes, dual_at):
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1])
    _check_tangents(np.matmul, a, b, dual_at=dual_at)
    _check_tangents(lambda p, q: p @ q, a, b, dual_at=dual_at)


@pytest.mark.parametrize("fn", [
    lambda x: np.sum(x), lambda x: np.sum(x, axis=0), lambda x: np.sum(x, axis=(0, 2), keepdims=True),
    lambda x: x.sum(axis=-1), lambda x: np.mean(x, axis=1), lambda x: x.mean(),
    lambda x: np.reshape(x, (4, 6)), lambda x: x.reshape(-1), lambda x: x.T, lambda x: np.transpose(x, (1, 2, 0)),
    lambda x: np.swapaxes(x, 0, 2), lambda x: np.moveaxis(x, 0, -1), lambda x: np.expand_dims(x, 1),
    lambda x: np.squeeze(x[:, :1]), lambda x: np.broadcast_to(x[0], (5, 3, 4)), lambda x: x.ravel(),
    lambda x: x[1], lambda x: x[:, 1:3, ::2], lambda x: x[..., 0], lambda x: x[None, 0],
    lambda x: x[np.array([1, 0, 1])], lambda x: x[x > 0.5], lambda x: x.copy(),
    lambda x: np.concatenate([x, 2 * x], axis=1), lambda x: np.concatenate([x, np.ones((2, 3, 4))]),
    lambda x: np.stack([x, x * x], axis=-1), lambda x: np.where(x > 0.5, x, -x * x),
    lambda x: np.where(x > 0.5, x, 0.0), lambda x: np.dot(x[0], x[1].T), lambda x: np.outer(x[0, 0], x[1, 1]),
    lambda x: np.inner(x[0, 0], x[1, 1]), lambda x: np.vdot(x[0], x[1]), lambda x: x.astype(np.float64),
    lambda x: sum(x), lambda x: [r for r in x][1], lambda x: np.max(x, axis=1), lambda x: x.min(),
    lambda x: np.max(np.round(x, 1), axis=(0, 2), keepdims=True), lambda x: np.clip(x, 0.3, 0.7),
    lambda x: np.tensordot(x, x, axes=([1, 2], [1, 2])), lambda x: np.einsum("ijk,ilk->jl", x, x),
    lambda x: np.cumsum(x, axis=1), lambda x: np.cumsum(x), lambda x: np.trace(x[0, :, :3]),
    lambda x: np.var(x, axis=0, ddof=1), lambda x: x.std(), lambda x: np.linalg.norm(x[0, 0]),
    lambda x: x[0][:, np.argsort(x[0, 0])], lambda x: x.ravel()[x.argmax()] * x[1],
    lambda x: x * np.isclose(x, 0.5, atol=0.2), lambda x: x[1, :, np.searchsorted([0.3, 0.6], x[0, 0, 0])],
    lambda x: np.flip(x, axis=1), lambda x: np.flip(x), lambda x: np.hstack([x[0], x[1]]),
    lambda x: np.vstack([x[0, 0], x[1, 1]]), lambda x: np.column_stack([x[0, 0], x[0, 1]]),
    lambda x: np.hstack([x[0, 0], np.ones(2)]), lambda x: np.diff(x, axis=1), lambda x: np.diff(x, n=2),
    lambda x: np.prod(x, axis=2), lambda x: np.prod(x[0]),
    lambda x: np.linalg.inv(x[0, :, :3] + 3 * np.eye(3)), lambda x: np.linalg.det(x[0, :, :3] + np.eye(3)),
    lambda x: np.linalg.solve(x[0, :, :3] + 3 * np.eye(3), x[1, 0, :3]),
    lambda x: np.linalg.solve(x[0, :, :3] + 3 * np.eye(3), x[1, :, :2]), lambda x: np.diag(x[0, 0]), lambda x: np.diag(x[0, :, :3], 1), lambda x: np.sign(x) * x,
], ids=lambda f: None)
def test_linear_and_structural_functions(fn):
    x = rng.uniform(0.1, 1.0, (2, 3, 4))
    _check_tangents(fn, x, atol=1e-6)


def test_views_share_memory_like_ndarray_views():
    d = seeded(np.arange(6.0).reshape(2, 3), np.ones((2, 2, 3)))
    row, column, flat = d[1], d.T[0], d.reshape(-1)
    assert row.base is d and column.base.base is d and flat.base is d and D._root(column) is d
    row += 10.0
    column *= 2.0
    assert d.primal.tolist() == [[0.0, 1.0, 2.0], [26.0, 14.0, 15.0]]
    assert d.tangent[:, 1, 0].tolist() == [2.0, 2.0] and d.tangent[:, 0, 1].tolist() == [1.0, 1.0]
    copy = d[np.array([0, 1])]
    broadcast = np.broadcast_to(d[0], (4, 3))
    assert copy.base is None and broadcast.base is None


def test_results_never_share_an_operands_tangents():
    d = seeded(np.arange(3.0), np.eye(3))
    for y in (d + 1.0, 1.0 - d, +d, d * 1, d.conj(), d.astype(np.float64), np.positive(d)):
        if y is d:
            continue
        assert not np.may_share_memory(y.tangent, d.tangent)
        y += seeded(np.ones(3), np.ones((3, 3)))
    np.testing.assert_array_equal(d.tangent, np.eye(3))
    np.testing.assert_array_equal(d.primal, np.arange(3.0))


def test_refusals_raise_instead_of_dropping_tangents():
    d = seeded(np.ones(3), np.eye(3))
    for attempt in (lambda: float(d[0]), lambda: np.asarray(d), lambda: np.array(d), lambda: d.item(),
                    lambda: bool(d[0]), lambda: int(d[0]), lambda: d.tolist(), lambda: np.cumprod(d),
                    lambda: np.exp(d, out=np.empty(3))):
        with pytest.raises(TypeError):
            attempt()
    plain = np.zeros(3)
    with pytest.raises((TypeError, ValueError)):
        plain += d
    with pytest.raises((TypeError, ValueError)):
        plain[0] = d[0]


# --------------------------------------------------------------------------- the Hessian API

def test_hessian_takes_one_dual_sweep_and_checks_it_once(monkeypatch):
    A = rng.standard_normal((6, 6))

    def f(x):
        return np.sum(np.tanh(A @ x) ** 2) + x @ x

    dual_arrays.CHECKED.clear()
    checks = []
    original = batched_hessian._agrees
    monkeypatch.setattr(batched_hessian, "_agrees", lambda *a: checks.append(1) or original(*a))
    x = rng.standard_normal(6)
    H1 = mo.hessian(f)(x)
    H2 = mo.hessian(f)(x + 1.0)   # the same computation on other numbers: not checked again
    assert checks == [1]
    for H, at in ((H1, x), (H2, x + 1.0)):
        np.testing.assert_allclose(H, _column_hessian(f, (at,), 0), rtol=1e-12, atol=1e-12)


def test_a_wrong_dual_result_is_caught_and_the_columns_are_used(monkeypatch):
    def f(x):
        return np.sum(np.sin(x) * x[::-1])

    x = rng.standard_normal(5)
    want = _column_hessian(f, (x,), 0)
    dual_arrays.CHECKED.clear()
    real = D._times
    monkeypatch.setattr(D, "_times", lambda d, t: real(d, t) * 1.001)   # a subtly wrong tangent
    H = mo.hessian(f)(x)
    np.testing.assert_allclose(H, want, rtol=1e-12, atol=1e-12)
    assert list(dual_arrays.CHECKED.values()) == [False]


def test_hessian_blocks_of_several_array_arguments():
    def f(a, b):
        return np.sum(np.exp(a[:, None] * b[None, :])) + a @ a * np.sum(b ** 3)

    a, b = rng.standard_normal(3), rng.standard_normal(4)
    H = mo.hessian(f, argnums=(0, 1))(a, b)
    with without_duals():
        want = mo.hessian(f, argnums=(0, 1))(a, b)
    for i in range(2):
        for j in range(2):
            assert H[i][j].shape == want[i][j].shape
            np.testing.assert_allclose(H[i][j], want[i][j], rtol=1e-12, atol=1e-12)


def test_hessian_of_float32_arguments_stays_float32():
    def f(x):
        return np.sum(np.tanh(x) ** 2)

    x = rng.standard_normal(4).astype(np.float32)
    H = mo.hessian(f)(x)
    assert H.dtype == np.float32
    np.testing.assert_allclose(H, _column_hessian(f, (x,), 0), rtol=1e-5, atol=1e-6)


def test_chunks_of_directions(monkeypatch):
    monkeypatch.setattr(batched_hessian, "CHUNK_ELEMENTS", 20)   # 10 elements: chunks of 2

    def f(x):
        return np.sum(np.cos(x) * np.cumprod(np.ones(10))) + np.prod(x[:3])

    x = rng.standard_normal(10)
    np.testing.assert_allclose(mo.hessian(f)(x), _column_hessian(f, (x,), 0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bshape", [(3,), (3, 2)], ids=str)
@pytest.mark.parametrize("dual_at", [(0,), (1,), (0, 1)], ids=["matrix", "right-hand side", "both"])
def test_solve(dual_at, bshape):
    A = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    b = rng.standard_normal(bshape)
    _check_tangents(np.linalg.solve, A, b, dual_at=dual_at)


def test_stacked_determinants_and_inverses():
    A = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    _check_tangents(np.linalg.det, A)
    _check_tangents(np.linalg.inv, A)


def test_views_of_a_constant_built_inside_the_function():
    # c is a plain array; the cotangents its views receive carry tangents (its shadow becomes a
    # Dual buffer): the dual sweep must still be exact
    def f(x):
        c = np.linspace(0.5, 1.5, 6)
        scaled = c[1::2] * x[3:]
        return np.sum(np.sin(x[:3] * c[::2])) + scaled @ x[3:] + np.sum(c.reshape(2, 3).T[0] * x[:2] ** 3)

    x = rng.standard_normal(6)
    got = _dual_hessian(f, (x,), 0)
    assert got is not None
    np.testing.assert_allclose(got, _column_hessian(f, (x,), 0), rtol=1e-12, atol=1e-12)


def test_writes_into_copies_and_views_of_the_argument():
    def f(x):
        u = x.copy()
        inner = u[1:-1]            # a view: the writes reach u
        inner *= 2.0
        inner += u[:-2] ** 2
        u[0] = u[-1] * x[2]
        return np.sum(np.tanh(u) * x)

    x = rng.standard_normal(6)
    got = _dual_hessian(f, (x,), 0)
    assert got is not None
    np.testing.assert_allclose(got, _column_hessian(f, (x,), 0), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- jacfwd

from morula import batched_jacfwd  # noqa: E402


def _dual_jacfwd(f, args, j):
    """The dual run's Jacobian for argument j, unchecked; None when it refuses."""
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            with recording():
                found = batched_jacfwd._columns(f, args, {}, j, seeded, parts)
        except Exception:
            return None
    return None if found is None else batched_jacfwd._assemble(*found, args[j])


def _column_jacfwd(f, args, j):
    with without_duals(), contextlib.redirect_stdout(io.StringIO()):
        return mo.jacfwd(f, argnums=j)(*args)


def _same_tree(got, want):
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _same_tree(g, w)
    elif isinstance(want, dict):
        assert set(got) == set(want)
        for key in want:
            _same_tree(got[key], want[key])
    else:
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


# a dual array is not an np.ndarray: code that branches on isinstance(x, np.ndarray) computes
# something else on it, which only the run-time check can catch (and does: the API's answer is
# still the column method's)
TAKES_ANOTHER_BRANCH = {"test_typical_programs::isinstance_array_branch"}


@pytest.mark.parametrize("name,j", PROGRAMS, ids=[f"{n}[{j}]" for n, j in PROGRAMS])
def test_dual_jacfwd_of_every_program_is_exact_or_refused(name, j):
    f, args = ALL[name]
    want = _column_jacfwd(f, args, j)
    if name in TAKES_ANOTHER_BRANCH:
        dual_arrays.CHECKED.clear()
        with contextlib.redirect_stdout(io.StringIO()):
            _same_tree(mo.jacfwd(f, argnums=j)(*args), want)
        return
    got = _dual_jacfwd(f, args, j)
    if got is None:
        pytest.skip("the dual run refuses this program (jacfwd goes column by column)")
    _same_tree(got, want)


def test_jacfwd_of_container_outputs_and_several_arguments():
    def f(a, b):
        return {"y": np.tanh(a[:, None] * b[None, :]), "s": np.sum(a ** 2) * b[0]}, (a @ a, b * 2.0)

    a, b = rng.standard_normal(3), rng.standard_normal(4)
    got = mo.jacfwd(f, argnums=(0, 1))(a, b)
    with without_duals():
        want = mo.jacfwd(f, argnums=(0, 1))(a, b)
    _same_tree(got, want)


def test_jacfwd_checks_each_computation_once_and_catches_a_wrong_one(monkeypatch):
    def f(x):
        return np.sin(x) * x[::-1]

    x = rng.standard_normal(5)
    dual_arrays.CHECKED.clear()
    want = _column_jacfwd(f, (x,), 0)
    np.testing.assert_allclose(mo.jacfwd(f)(x), want, rtol=1e-12)
    assert list(dual_arrays.CHECKED.values()) == [True]
    dual_arrays.CHECKED.clear()
    real = D._times
    monkeypatch.setattr(D, "_times", lambda d, t: real(d, t) * 1.001)
    np.testing.assert_allclose(mo.jacfwd(f)(x), want, rtol=1e-12)
    assert list(dual_arrays.CHECKED.values()) == [False]


def test_hessians_and_jacobians_from_several_threads():
    import threading

    def f(x):
        return np.sum(np.tanh(x[:, None] * x[None, :]) ** 2) + np.sum(np.sin(x) * x[::-1])

    points = [rng.standard_normal(6) for _ in range(8)]
    want = [(_column_hessian(f, (p,), 0), _column_jacfwd(lambda v: np.sin(v) * v.sum(), (p,), 0)) for p in points]
    dual_arrays.CHECKED.clear()
    got = [None] * len(points)

    def work(i):
        got[i] = (mo.hessian(f)(points[i]), mo.jacfwd(lambda v: np.sin(v) * v.sum())(points[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(points))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (H, J), (H0, J0) in zip(got, want):
        np.testing.assert_allclose(H, H0, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(J, J0, rtol=1e-12, atol=1e-12)
    assert dual_arrays.CHECKED and all(dual_arrays.CHECKED.values())   # the dual runs were taken
