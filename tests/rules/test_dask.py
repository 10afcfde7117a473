"""The NumPy rules on Dask arrays: the same rule code runs through NumPy's dispatch protocols.

For each rule: the primal and the cotangents computed from ``dask.array`` inputs (chunks of 2,
output cotangent also a Dask array) must equal, after ``.compute()``, the ones computed from the
NumPy inputs. Then one user function through the engine.
"""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import morula as mo  # noqa: E402
import morula.rules.numpy_rules  # noqa: E402,F401
from morula.reverse import runtime  # noqa: E402
from morula.rules.numpy_indexing import ndarray_getitem  # noqa: E402
from morula.rules.registry import REGISTRY  # noqa: E402

rng = np.random.default_rng(0)


def arr(*shape):
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


def lazy(x):
    if isinstance(x, np.ndarray):
        return da.from_array(x, chunks=2)
    if isinstance(x, list):
        return [lazy(v) for v in x]
    if isinstance(x, tuple):
        return tuple(lazy(v) for v in x)
    return x


def computed(x):
    if isinstance(x, (list, tuple)):
        return type(x)(computed(v) for v in x)
    return x.compute() if hasattr(x, "compute") else x


def random_like(out):
    if isinstance(out, (list, tuple)):
        return type(out)(random_like(o) for o in out)
    return rng.standard_normal(np.shape(out))


def assert_tree_close(a, b):
    if isinstance(b, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_tree_close(x, y)
        return
    if b is None:
        assert a is None
        return
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


CASES = [
    # elementwise
    (np.sin, (arr(4, 3),), {}), (np.exp, (arr(4, 3),), {}), (np.log, (pos(5),), {}),
    (np.sqrt, (pos(4, 3),), {}), (np.tanh, (arr(4, 3),), {}),
    (np.add, (arr(4, 3), arr(3)), {}), (np.multiply, (arr(4, 3), arr(4, 1)), {}),
    (np.divide, (arr(4, 3), pos(3)), {}), (np.power, (pos(4, 3), arr(4, 3)), {}),
    (np.maximum, (arr(4, 3), arr(4, 3)), {}), (np.where, (arr(4, 3) > 0, arr(4, 3), arr(3)), {}),
    (np.clip, (arr(4, 3), -0.8, 0.8), {}), (np.abs, (arr(5),), {}),
    # reductions with axes
    (np.sum, (arr(4, 3),), {"axis": 0}), (np.sum, (arr(4, 3, 2),), {"axis": (0, 2), "keepdims": True}),
    (np.mean, (arr(4, 3),), {"axis": -1}), (np.max, (arr(4, 3),), {"axis": 1}),
    (np.var, (arr(4, 3),), {"axis": 0, "ddof": 1}), (np.std, (arr(4, 3),), {}),
    (np.prod, (arr(4, 3),), {"axis": 1}), (np.cumsum, (arr(4, 3),), {"axis": 0}),
    # products
    (np.matmul, (arr(4, 3), arr(3, 2)), {}), (np.dot, (arr(4, 3), arr(3)), {}),
    (np.einsum, ("ij,jk->ik", arr(4, 3), arr(3, 2)), {}),
    # shapes
    (np.reshape, (arr(4, 3), (2, 2, 3)), {}), (np.transpose, (arr(4, 3, 2), (2, 0, 1)), {}),
    (np.concatenate, ([arr(4, 3), arr(2, 3)],), {}), (np.concatenate, ((arr(4, 3), arr(4, 1)), 1), {}),
    (np.stack, ([arr(4, 3), arr(4, 3)], 1), {}), (np.expand_dims, (arr(4, 3), 1), {}),
    (np.swapaxes, (arr(4, 3, 2), 0, 2), {}), (np.flip, (arr(4, 3), 0), {}),
    (np.broadcast_to, (arr(3), (4, 3)), {}), (np.diff, (arr(4, 5),), {"axis": 1}),
    (np.pad, (arr(4, 3), 1), {}),
]  # fmt: skip


def _id(case):
    return getattr(case[0], "__name__", str(case[0]))


@pytest.mark.parametrize("fn,args,kwargs", CASES, ids=[_id(c) for c in CASES])
def test_rule_on_dask_matches_numpy(fn, args, kwargs):
    rule = REGISTRY.function_rule(fn)
    out, pullback = rule(*args, **kwargs)
    dy = random_like(out)
    expected = pullback(dy)

    lazy_out, lazy_pullback = rule(*lazy(args), **kwargs)
    assert isinstance(lazy_out, da.Array)
    assert_tree_close(computed(lazy_out), out)
    cts = lazy_pullback(lazy(dy))
    assert len(cts) == len(expected)
    for ct, want, arg in zip(cts, expected, args):
        if want is None:
            assert ct is None
            continue
        if isinstance(arg, np.ndarray):
            assert isinstance(ct, da.Array), type(ct)  # stays lazy
        assert_tree_close(computed(ct), want)


def test_getitem_on_dask_matches_numpy():
    x = arr(4, 3)
    for index in [(slice(1, 3), 0), 2, (Ellipsis, slice(None, None, -1))]:
        out, pb = ndarray_getitem(x, index)
        dy = rng.standard_normal(np.shape(out))
        lazy_out, lazy_pb = ndarray_getitem(lazy(x), index)
        np.testing.assert_allclose(computed(lazy_out), out)
        np.testing.assert_allclose(computed(lazy_pb(lazy(dy))[0]), pb(dy)[0])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a lazy graph warns when it is computed
def test_nan_safety_on_dask():
    # the masked-branch pattern: no eager isfinite pass on a lazy array, still exact zeros
    x = np.array([-1.0, 0.0, 4.0, 9.0])
    rule = REGISTRY.function_rule(np.sqrt)
    with np.errstate(invalid="ignore"):
        _, pb = rule(lazy(x))
    g = pb(lazy(np.array([0.0, 0.0, 1.0, 1.0])))[0]
    assert isinstance(g, da.Array)
    np.testing.assert_array_equal(computed(g), [0.0, 0.0, 0.25, 1 / 6])


def model(x, w):
    h = np.tanh(x @ w) * 2.0 + np.sum(x, axis=1, keepdims=True)
    return np.mean(h ** 2) + np.sum(np.exp(-np.abs(w)))


def test_engine_on_dask_arrays_through_the_runtime():
    x, w = arr(4, 3), arr(3, 2)
    gx, gw = mo.grad(model, argnums=(0, 1))(x, w)
    out, pb = runtime.call(model, lazy(x), lazy(w))
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(computed(out), model(x, w))
    with runtime.backward_scope():
        cts = pb(np.float64(1.0))
    dx, dw = cts[-2], cts[-1]
    assert isinstance(dx, da.Array) and isinstance(dw, da.Array)
    np.testing.assert_allclose(computed(dx), gx, rtol=1e-12)
    np.testing.assert_allclose(computed(dw), gw, rtol=1e-12)


def test_engine_on_dask_arrays_through_grad():
    x, w = arr(4, 3), arr(3, 2)
    gx, gw = mo.grad(model, argnums=(0, 1))(x, w)
    lx, lw = mo.grad(model, argnums=(0, 1))(lazy(x), lazy(w))
    np.testing.assert_allclose(computed(lx), gx, rtol=1e-12)
    np.testing.assert_allclose(computed(lw), gw, rtol=1e-12)
