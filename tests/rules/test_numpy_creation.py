import numpy as np
import pytest

import morula.rules.numpy_rules  # noqa: F401
from morula.rules.registry import REGISTRY

try:
    from .fd import check_float32, check_rule
except ImportError:
    from fd import check_float32, check_rule


def rule(fn):
    r = REGISTRY.function_rule(fn)
    assert r is not None, f"no rule for {fn}"
    return r


def rand(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape)


CONSTRUCTORS = [np.array, np.asarray, np.asanyarray, np.ascontiguousarray]

OBJECTS = [
    rand(2, 3), [1.0, 2.0, 3.0], (1.5, 2.5), [[1.0, 2.0], [3.0, 4.0]], [(1.0, 2.0), (3.0, 4.0)],
    [rand(3), rand(3, seed=1)], (rand(2, 2), [[1.0, 2.0], [3.0, 4.0]]), [1.0, 2, 3.0],
    [np.float64(1.5), np.float32(2.5)], 2.5, [rand(), 1.0],
]  # fmt: skip


@pytest.mark.parametrize("fn", CONSTRUCTORS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: type(o).__name__)
def test_array_constructors(fn, obj):
    # the constructors are linear: a large step keeps float32 leaves accurate
    cts = check_rule(rule(fn), fn, (obj,), eps=1e-2, rtol=1e-4)
    assert len(cts) == 1


def test_structure_of_cotangents():
    obj = [1.0, 2, (3.0, np.float32(4.0)), rand(2)]
    out, pb = rule(np.array)([1.0, 2.0, 3.0], dtype=np.float64)
    (ct,) = pb(np.array([1.0, 2.0, 3.0]))[:1]
    assert ct == [1.0, 2.0, 3.0] and all(type(c) is float for c in ct)
    out, pb = rule(np.array)([[1.0, 2], (3.0, 4)])
    ct = pb(np.ones((2, 2)))[0]
    assert ct == [[1.0, None], (1.0, None)]
    out, pb = rule(np.array)([rand(2), 1.0, np.float32(2.0)][1:])
    ct = pb(np.ones(2))[0]
    assert type(ct[0]) is float and type(ct[1]) is np.float32
    del obj


def test_dtype_ndmin_and_int_inputs():
    x = rand(3)
    cts = check_rule(rule(np.array), np.array, (x,), {"ndmin": 3})
    assert cts[0].shape == (3,)
    cts = check_rule(rule(np.asarray), np.asarray, (x, np.float32), eps=1e-2, rtol=1e-4)
    assert cts[0].dtype == np.float64 and cts[1] is None
    cts = check_rule(rule(np.array), np.array, ([1.0, 2.0], complex))
    assert all(type(c) is float for c in cts[0])
    out, pb = rule(np.array)([1, 2, 3], float)
    assert pb is None  # integer inputs get no gradient
    out, pb = rule(np.asarray)(x, int)
    assert pb is None
    check_float32(rule(np.asarray), (x.astype(np.float32),))


def test_full_and_full_like():
    check_rule(rule(np.full), np.full, ((2, 3), 1.5))
    cts = check_rule(rule(np.full), np.full, ((2, 3), rand(3)))
    assert cts[0] is None
    check_rule(rule(np.full), np.full, ((2, 3), np.float32(1.5), np.float64), eps=1e-2, rtol=1e-4)
    out, pb = rule(np.full)((2, 3), 1.5)
    assert pb(np.ones((2, 3))) == (None, 6.0)
    out, pb = rule(np.full)((2,), 3)
    assert pb is None
    cts = check_rule(rule(np.full_like), np.full_like, (rand(2, 3), 0.5))
    assert cts[0] is None and type(cts[1]) is float
    check_rule(rule(np.full_like), np.full_like, (rand(2, 3), rand(2, 1)))
    out, pb = rule(np.full_like)(np.arange(3), 0.5)
    assert pb is None  # integer output


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((0.5, 2.0), {}), ((0.5, 2.0, 7), {}), ((0.5, 2.0, 7, False), {}), ((1.0, 3.0, 1), {}),
        ((rand(3), rand(3, seed=1), 4), {}), ((rand(2, 1), 2.0, 5), {"axis": 1}),
        ((rand(3), 1.0, 4), {"axis": -1}),
    ],
)  # fmt: skip
def test_linspace(args, kwargs):
    check_rule(rule(np.linspace), np.linspace, args, kwargs)


def test_linspace_retstep():
    check_rule(rule(np.linspace), np.linspace, (0.5, 2.0, 5), {"retstep": True})
    out, pb = rule(np.linspace)(0.0, 1.0, 5, True, True)
    assert pb((None, 1.0))[:2] == (-0.25, 0.25)


@pytest.mark.parametrize(
    "fn,args",
    [(np.zeros, ((2, 3),)), (np.ones, (3,)), (np.empty, (2,)), (np.zeros_like, (rand(2),)),
     (np.ones_like, (rand(2),)), (np.empty_like, (rand(2),)), (np.arange, (0.0, 1.0, 0.25)),
     (np.eye, (3,)), (np.identity, (2,))],
    ids=lambda v: getattr(v, "__name__", ""),
)  # fmt: skip
def test_constants(fn, args):
    out, pb = rule(fn)(*args)
    assert pb is None


# -- meshgrid / vander through the engine ---------------------------------------------------------

import morula as mo  # noqa: E402
from morula.testing import check_grads  # noqa: E402


def grid_energy(x, y):
    X, Y = np.meshgrid(x, y)
    P, Q = np.meshgrid(x, y, indexing="ij", sparse=True)
    return np.sum(np.sin(X) * Y ** 2) + np.sum(P * Q) + np.sum(np.vander(x, 4) @ np.arange(4.0))


def test_meshgrid_and_vander_through_the_engine():
    check_grads(grid_energy, (np.array([0.1, 0.7, -0.4]), np.array([1.5, -0.3])))


def test_meshgrid_cotangents_sum_over_the_repeated_axes():
    r = REGISTRY.function_rule(np.meshgrid)
    x, y = np.arange(3.0), np.arange(2.0)
    (X, Y), pb = r(x, y)
    dx, dy = pb((np.ones((2, 3)), None))
    np.testing.assert_array_equal(dx, [2.0, 2.0, 2.0])
    assert dy is None
