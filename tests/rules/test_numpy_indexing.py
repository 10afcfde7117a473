import operator

import numpy as np
import pytest

from morula.rules.numpy_indexing import ndarray_getitem

try:
    from .fd import check_float32, check_rule
except ImportError:
    from fd import check_float32, check_rule


def rand(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape)


INDICES = [
    ((5,), 2), ((5,), -1), ((5,), slice(1, 4)), ((5,), slice(None, None, -2)), ((5,), Ellipsis),
    ((5,), None), ((3, 4), (1, 2)), ((3, 4), 1), ((3, 4), (slice(None), 2)),
    ((3, 4), (Ellipsis, slice(1, 3))), ((3, 4), (None, 1, slice(None))), ((2, 3, 4), (0, Ellipsis, 1)),
    ((5,), [0, 2, 2, 4]), ((5,), np.array([1, 1, 1])), ((3, 4), ([0, 2, 0], [1, 1, 1])),
    ((3, 4), (slice(None), [3, 0, 3])), ((3, 4), np.array([[0, 0], [2, 1]])),
    ((2, 3, 4), (np.array([0, 1, 0]), slice(None), np.array([3, 3, 3]))),
    ((5,), np.array([True, False, True, True, False])), ((3, 4), rand(3, 4) > 0),
    ((3, 4), (np.array([True, False, True]), slice(1, None))), ((3, 4), (1, [2, 2])),
    ((), ()), ((), Ellipsis),
]  # fmt: skip


@pytest.mark.parametrize("shape,index", INDICES, ids=str)
def test_getitem(shape, index):
    x = rand(*shape)
    cts = check_rule(ndarray_getitem, operator.getitem, (x, index))
    assert cts[1] is None
    check_float32(ndarray_getitem, (x.astype(np.float32), index))


def test_repeated_indices_accumulate():
    x = np.zeros(4)
    _, pb = ndarray_getitem(x, [1, 1, 3, 1])
    g, gi = pb(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(g, [0, 7, 0, 3])
    assert gi is None


def test_complex_and_integer():
    z = rand(4) + 1j * rand(4, seed=1)
    check_rule(ndarray_getitem, operator.getitem, (z, [0, 0, 2]))
    check_rule(ndarray_getitem, operator.getitem, (z, slice(1, 3)))
    out, pb = ndarray_getitem(np.arange(4), 1)
    assert out == 1 and pb is None


def test_scalar_cotangent_for_scalar_element():
    x = rand(3)
    out, pb = ndarray_getitem(x, 1)
    g, _ = pb(2.0)
    np.testing.assert_array_equal(g, [0, 2, 0])


def test_pullback_does_not_alias_input():
    x = rand(3, 4)
    _, pb = ndarray_getitem(x, (slice(None), 1))
    g1, _ = pb(np.ones(3))
    g2, _ = pb(np.ones(3))
    assert g1 is not g2 and not np.shares_memory(g1, x)


import morula.rules.numpy_rules  # noqa: E402,F401
from morula.rules.registry import REGISTRY  # noqa: E402


@pytest.mark.parametrize(
    "args,kwargs",
    [((rand(5), [0, 2, 2]), {}), ((rand(3, 4), [1, 1, 0]), {"axis": 1}),
     ((rand(3, 4), np.array([[0, 2], [2, 2]])), {"axis": 0}), ((rand(3, 4), [5, 0, 5]), {}),
     ((rand(3, 4), [-1, 7]), {"axis": 1, "mode": "wrap"}), ((rand(4), [-3, 9]), {"mode": "clip"}),
     ((rand(3, 4), 2), {"axis": -1})],
)  # fmt: skip
def test_take(args, kwargs):
    r = REGISTRY.function_rule(np.take)
    check_rule(r, np.take, args, kwargs)
    m, _ = REGISTRY.method_rule(np.ndarray, "take")
    check_rule(m, lambda s, *a, **k: s.take(*a, **k), args, kwargs)


@pytest.mark.parametrize(
    "shape,indices,axis",
    [((3, 4), np.array([[0, 0, 3], [1, 2, 2], [3, 3, 3]]), 1), ((3, 4), np.array([[2, 0, 1, 1]]), 0),
     ((3, 4), np.array([[1], [0], [1]]), -1), ((2, 3, 4), np.zeros((2, 3, 1), dtype=int), 2),
     ((6,), np.array([5, 5, 0]), None)],
)  # fmt: skip
def test_take_along_axis(shape, indices, axis):
    r = REGISTRY.function_rule(np.take_along_axis)
    x = rand(*shape)
    check_rule(r, np.take_along_axis, (x, indices, axis))


def test_take_along_axis_with_argsort():
    x = rand(3, 4)
    r = REGISTRY.function_rule(np.take_along_axis)
    check_rule(r, lambda a, i, ax: np.take_along_axis(a, i, ax), (x, np.argsort(x, axis=1), 1))


import morula as mo  # noqa: E402
from morula.testing import check_grads  # noqa: E402


def picks(x, y):
    a = np.compress([True, False, True], x, axis=0)
    b = np.choose(np.array([[0, 1, 1], [1, 0, 2]]), [a, y, 2.0])
    c = np.extract(x > 0, x)
    d = np.take_along_axis(x, np.argsort(x, axis=1), axis=1)
    return np.sum(b ** 2) + np.sum(c) + np.sum(d * np.arange(3.0)) + np.sum(x.compress([False, True], 1))


def test_compress_choose_extract_through_the_engine():
    g = np.random.default_rng(1)
    check_grads(picks, (g.standard_normal((3, 3)), g.standard_normal(3)))


def test_choose_gives_unselected_choices_exact_zeros():
    r = REGISTRY.function_rule(np.choose)
    _, pb = r(np.array([0, 1]), [np.ones(2), np.zeros(2)])
    _, (d0, d1) = pb(np.array([np.inf, 1.0]))
    np.testing.assert_array_equal(d0, [np.inf, 0.0])
    np.testing.assert_array_equal(d1, [0.0, 1.0])
