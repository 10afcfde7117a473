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
    return found[0]


def rand(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape)


FUNCTION_CASES = [
    (np.reshape, (rand(2, 3), (3, 2))), (np.reshape, (rand(2, 3), (-1,))),
    (np.reshape, (rand(2, 3), (3, 2), "F")), (np.reshape, (rand(6), (2, 3))),
    (np.transpose, (rand(2, 3),)), (np.transpose, (rand(2, 3, 4), (1, 2, 0))),
    (np.transpose, (rand(2, 3, 4), (-1, 0, 1))), (np.squeeze, (rand(1, 3, 1),)),
    (np.squeeze, (rand(1, 3, 1), 2)), (np.squeeze, (rand(1, 3, 1), (0, -1))),
    (np.expand_dims, (rand(2, 3), 1)), (np.expand_dims, (rand(2, 3), (0, -1))),
    (np.broadcast_to, (rand(3), (2, 3))), (np.broadcast_to, (rand(2, 1), (4, 2, 3))),
    (np.ravel, (rand(2, 3),)), (np.ravel, (rand(2, 3), "F")), (np.swapaxes, (rand(2, 3, 4), 0, 2)),
    (np.swapaxes, (rand(2, 3, 4), -1, 1)), (np.moveaxis, (rand(2, 3, 4), 0, -1)),
    (np.moveaxis, (rand(2, 3, 4), (0, 1), (2, 0))), (np.flip, (rand(2, 3),)),
    (np.flip, (rand(2, 3), 1)), (np.flip, (rand(2, 3, 4), (0, 2))), (np.copy, (rand(2, 3),)),
    (np.atleast_1d, (rand(),)), (np.atleast_2d, (rand(3),)), (np.atleast_3d, (rand(2, 3),)),
]  # fmt: skip


@pytest.mark.parametrize("fn,args", FUNCTION_CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_functions(fn, args):
    cts = check_rule(rule(fn), fn, args)
    assert all(c is None for c in cts[1:])
    args32 = (args[0].astype(np.float32),) + tuple(args[1:])
    check_float32(rule(fn), args32)


def test_reshape_keyword_and_python_float():
    check_rule(rule(np.reshape), lambda a, shape: np.reshape(a, shape=shape), (rand(2, 3), (6,)))
    cts = check_rule(rule(np.reshape), np.reshape, ([[1.0, 2.0], [3.0, 4.0]], (4,)))
    assert type(cts[0]) is list and type(cts[0][0]) is list


def test_transpose_complex():
    z = rand(2, 3) + 1j * rand(2, 3, seed=1)
    check_rule(rule(np.transpose), np.transpose, (z,))


METHOD_CASES = [
    ("reshape", (rand(2, 3), 3, 2)), ("reshape", (rand(2, 3), (3, 2))), ("reshape", (rand(2, 3), -1)),
    ("transpose", (rand(2, 3),)), ("transpose", (rand(2, 3, 4), 1, 2, 0)),
    ("transpose", (rand(2, 3, 4), (2, 0, 1))), ("transpose", (rand(2, 3), None)),
    ("ravel", (rand(2, 3),)), ("ravel", (rand(2, 3), "F")), ("flatten", (rand(2, 3),)),
("squeeze", (rand(1, 3),)), ("squeeze", (rand(1, 3, 1), 0)),
    ("copy", (rand(2, 3),)), ("swapaxes", (rand(2, 3), 0, 1)),
]  # fmt: skip


@pytest.mark.parametrize("name,args", METHOD_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_methods(name, args):
    cts = check_rule(method(name), lambda s, *a: getattr(s, name)(*a), args)
    assert all(c is None for c in cts[1:])


@pytest.mark.parametrize("order", ["K", "A", "C", "F"])
@pytest.mark.parametrize("name", ["ravel", "flatten", None])
def test_ravel_memory_orders(name, order):
    # order 'K'/'A' depend on the memory layout: the finite differences keep it Fortran
    x = np.asfortranarray(rand(3, 2))
    if name is None:
        r, f = rule(np.ravel), lambda a, o: np.ravel(np.asfortranarray(a), o)
    else:
        r, f = method(name), lambda a, o: getattr(np.asfortranarray(a), name)(o)
    check_rule(r, f, (x, order))
    # a strided, neither-C-nor-F view with order 'K'
    y = rand(4, 6)[::2, ::3].T
    check_rule(rule(np.ravel), lambda a, o: np.ravel(a, o), (y, "C"))


def _strided(values):
    """``values`` (shape (5, 3, 2)) stored with strides that are neither C nor F order."""
    base = np.zeros((3, 4, 5))
    view = np.transpose(base, (2, 0, 1))[:, :, ::2]
    view[...] = values
    return view


def test_ravel_k_of_strided_view():
    view = _strided(rand(5, 3, 2))
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    check_rule(rule(np.ravel), lambda a, o: np.ravel(_strided(a), o), (view, "K"))


def test_reshape_method_order_keyword():
    x = rand(2, 3)
    check_rule(method("reshape"), lambda s, *a, **k: s.reshape(*a, **k), (x, 3, 2), {"order": "F"})


def test_flatten_is_a_copy_and_ravel_a_view():
    x = rand(2, 3)
    out, _ = method("flatten")(x)
    assert not np.shares_memory(out, x)
    out, _ = method("ravel")(x)
    assert np.shares_memory(out, x)


def test_astype():
    x = rand(2, 3)
    r = method("astype")
    out, pb = r(x, np.float32)
    assert out.dtype == np.float32
    g = pb(np.ones((2, 3), dtype=np.float32))
    assert g[0].dtype == np.float64 and len(g) == 2 and g[1] is None
    out, pb = r(x.astype(np.float32), np.float64)
    assert pb(np.ones((2, 3)))[0].dtype == np.float32
    out, pb = r(x, int)
    assert pb is None
    out, pb = r(np.arange(3), float)
    assert pb is None
    out, pb = r(x, np.complex128)
    g = pb(np.ones((2, 3)) * (1 + 2j))[0]
    assert g.dtype == np.float64 and np.all(g == 1)
    check_rule(r, lambda s, d: s.astype(d), (x, np.float64))


def test_attributes():
    x = rand(2, 3)
    T = REGISTRY.attribute_rule(np.ndarray, "T")
    cts = check_rule(T, lambda o: o.T, (rand(2, 3, 4),))
    assert cts[0].shape == (2, 3, 4)
    mT = REGISTRY.attribute_rule(np.ndarray, "mT")
    check_rule(mT, lambda o: np.swapaxes(o, -1, -2), (rand(5, 2, 3),))
    z = x + 1j * rand(2, 3, seed=1)
    real = REGISTRY.attribute_rule(np.ndarray, "real")
    imag = REGISTRY.attribute_rule(np.ndarray, "imag")
    check_rule(real, lambda o: o.real, (z,))
    check_rule(imag, lambda o: o.imag, (z,))
    check_rule(real, lambda o: o.real, (x,))
    assert imag(x)[1] is None
    assert REGISTRY.attribute_rule(np.float64, "real") is not None


CONCAT_CASES = [
    ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 2)], 1), ([(2, 3), (2, 3)], -1),
    ([(2, 3), (5,)], None), ([(3,), (2,)], 0),
]  # fmt: skip


@pytest.mark.parametrize("shapes,axis", CONCAT_CASES, ids=str)
@pytest.mark.parametrize("container", [list, tuple], ids=lambda c: c.__name__)
def test_concatenate(shapes, axis, container):
    arrays = container(rand(*s, seed=i) for i, s in enumerate(shapes))
    cts = check_rule(rule(np.concatenate), np.concatenate, (arrays, axis))
    assert type(cts[0]) is container and len(cts[0]) == len(shapes)


def test_concatenate_mixed_elements():
    arrays = [rand(3), [1.0, 2.0], np.arange(2)]
    cts = check_rule(rule(np.concatenate), np.concatenate, (arrays,))
    assert type(cts[0][1]) is list and type(cts[0][1][0]) is float
    assert cts[0][2] is None
    check_float32(rule(np.concatenate), ([rand(2).astype(np.float32), rand(3).astype(np.float32)],))


@pytest.mark.parametrize("shape,axis", [((3,), 0), ((3,), 1), ((3,), -1), ((2, 3), 1), ((2, 3), -2),
                                        ((), 0)], ids=str)  # fmt: skip
@pytest.mark.parametrize("container", [list, tuple], ids=lambda c: c.__name__)
def test_stack(shape, axis, container):
    arrays = container(rand(*shape, seed=i) for i in range(3))
    cts = check_rule(rule(np.stack), np.stack, (arrays, axis))
    assert type(cts[0]) is container


def test_stack_python_floats():
    cts = check_rule(rule(np.stack), np.stack, ([1.0, 2.0, rand()],))
    assert type(cts[0][0]) is float and type(cts[0][2]) is np.float64


JOIN_CASES = [
    (np.hstack, [(3,), (2,)]), (np.hstack, [(2, 3), (2, 1)]), (np.hstack, [(), (3,)]),
    (np.hstack, [(2, 3, 2), (2, 1, 2)]), (np.vstack, [(3,), (3,)]), (np.vstack, [(2, 3), (1, 3)]),
    (np.vstack, [(3,), (2, 3)]), (np.vstack, [(2, 3, 2), (1, 3, 2)]), (np.vstack, [(), ()]),
]  # fmt: skip


@pytest.mark.parametrize("fn,shapes", JOIN_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_hstack_vstack(fn, shapes):
    arrays = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    cts = check_rule(rule(fn), fn, (arrays,))
    assert [np.shape(c) for c in cts[0]] == [np.shape(a) for a in arrays]


def test_hstack_scalars_tuple():
    cts = check_rule(rule(np.hstack), np.hstack, ((1.0, rand(2), 3.0),))
    assert type(cts[0]) is tuple and type(cts[0][0]) is float


def test_integer_inputs_constant():
    assert rule(np.reshape)(np.arange(6), (2, 3))[1] is None
    assert rule(np.concatenate)([np.arange(2), np.arange(3)])[1] is None
    assert method("transpose")(np.arange(6).reshape(2, 3))[1] is None


def test_out_rejected():
    with pytest.raises(UnsupportedOperationError):
        rule(np.concatenate)([rand(2), rand(2)], 0, np.empty(4))


EXTRA_CASES = [
    (np.roll, (rand(5), 2)), (np.roll, (rand(2, 3), 1)), (np.roll, (rand(2, 3), -1, 1)),
    (np.roll, (rand(2, 3, 4), (1, 2), (0, 2))), (np.tile, (rand(3), 2)), (np.tile, (rand(2, 3), (2, 1, 2))),
    (np.tile, (rand(2, 3), (3,))), (np.tile, (rand(), (2, 2))), (np.repeat, (rand(3), 2)),
    (np.repeat, (rand(2, 3), 2, 1)), (np.repeat, (rand(2, 3), [1, 0, 3], -1)),
    (np.repeat, (rand(2, 3), [2, 1], 0)), (np.repeat, (rand(2, 2), 3)),
    (np.diagonal, (rand(3, 3),)), (np.diagonal, (rand(3, 4), 1)), (np.diagonal, (rand(4, 3), -2)),
    (np.diagonal, (rand(2, 3, 4), 0, 2, 1)), (np.trace, (rand(3, 3),)), (np.trace, (rand(3, 4), -1)),
    (np.trace, (rand(2, 3, 3), 0, 1, 2)), (np.diag, (rand(3),)), (np.diag, (rand(3), 1)),
    (np.diag, (rand(3, 4),)), (np.diag, (rand(4, 3), -1)), (np.sort, (rand(5),)),
    (np.sort, (rand(3, 4), 0)), (np.sort, (rand(3, 4),)), (np.sort, (rand(3, 4), None)),
    (np.pad, (rand(3), 2)), (np.pad, (rand(2, 3), ((1, 0), (2, 1)))), (np.pad, (rand(2, 3), (1, 2))),
]  # fmt: skip


@pytest.mark.parametrize("fn,args", EXTRA_CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_extra_shape_functions(fn, args):
    check_rule(rule(fn), fn, args)
    check_float32(rule(fn), (args[0].astype(np.float32),) + tuple(args[1:]))


def test_sort_ties_complex_and_methods():
    _, pb = rule(np.sort)(np.array([2.0, 1.0, 2.0]))
    np.testing.assert_array_equal(pb(np.array([10.0, 20.0, 30.0]))[0], [20.0, 10.0, 30.0])
    check_rule(method("repeat"), lambda s, *a: s.repeat(*a), (rand(2, 3), 2, 0))
    check_rule(method("diagonal"), lambda s, *a: s.diagonal(*a), (rand(3, 3), 1))
    check_rule(method("trace"), lambda s, *a: s.trace(*a), (rand(3, 3),))
    z = rand(3, 3) + 1j * rand(3, 3, seed=1)
    check_rule(rule(np.trace), np.trace, (z,))
    check_rule(rule(np.diagonal), np.diagonal, (z,))


@pytest.mark.parametrize("fn", [np.split, np.array_split], ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape,ios,axis", [((6,), 3, 0), ((6,), [1, 4], 0), ((2, 6), 2, 1),
                                            ((4, 3), [1], 0), ((5,), [2, 2], 0)], ids=str)  # fmt: skip
def test_split(fn, shape, ios, axis):
    x = rand(*shape)
    out, pb = rule(fn)(x, ios, axis)
    dys = [rand(*o.shape, seed=i) for i, o in enumerate(out)]
    (g,) = pb(dys)[:1]
    np.testing.assert_allclose(g, np.concatenate(dys, axis=axis))
    dys[0] = None  # a structural zero for one piece
    g = pb(dys)[0]
    assert g.shape == x.shape and not np.any(np.take(g, range(out[0].shape[axis]), axis=axis))


@pytest.mark.parametrize("mode", ["maximum", "minimum", "median", "empty"])
def test_pad_nonlinear_modes_refused(mode):
    with pytest.raises(UnsupportedOperationError, match="np.pad"):
        rule(np.pad)(rand(3), 1, mode)


# -- new shape functions through the engine (the sweeps are in test_numpy_sweeps.py) --------------

import morula as mo  # noqa: E402
from morula.testing import check_grads  # noqa: E402


def rearrange(x):
    y = np.rot90(np.fliplr(x)) + np.flipud(np.rollaxis(x[None], 2, 1)[0].T)
    top, bottom = np.vsplit(np.pad(y, ((1, 2), (0, 1)), mode="reflect"), [2])
    left, right = np.hsplit(bottom, [2])
    z = np.column_stack([left, right]) + np.dstack([bottom])[..., 0]
    return np.sum(np.tril(z) ** 2) + np.sum(np.triu(top, 1)) + np.sum(np.diagflat(x[0]) * 3.0)


def partitioned(x):
    p = np.partition(x, 2)
    return np.sum(p[:2] ** 2) + np.sum(np.append(x, x[:2] * 2.0)) + np.sum(np.delete(x, [0, 3]) ** 3)


def test_shape_functions_through_the_engine():
    x = np.random.default_rng(0).standard_normal((4, 4))
    check_grads(rearrange, (x,))
    check_grads(partitioned, (np.array([0.3, -1.2, 2.5, 0.7, -0.1, 1.9]),))


def test_pad_modes_match_their_matrices():
    # the cotangent of pad equals the transpose of the padding matrix, mode by mode
    x = rand(3, 4)
    for mode in ("edge", "reflect", "symmetric", "wrap", "linear_ramp", "mean"):
        y, pb = rule(np.pad)(x, ((2, 3), (1, 2)), mode)
        dy = rand(*y.shape, seed=1)
        jac = np.stack([np.pad(e.reshape(3, 4), ((2, 3), (1, 2)), mode, **(
            {"end_values": 0} if mode == "linear_ramp" else {})).ravel() for e in np.eye(12)])
        np.testing.assert_allclose(pb(dy)[0].ravel(), jac @ dy.ravel(), rtol=1e-12, atol=1e-12)


def test_partition_ties_and_argpartition():
    x = np.array([2.0, 1.0, 2.0, 0.5])
    y, pb = rule(np.partition)(x, 1)
    g = pb(np.arange(1.0, 5.0))[0]
    # every output entry's cotangent lands on an input entry of the same value, once
    np.testing.assert_array_equal(np.sort(g), [1.0, 2.0, 3.0, 4.0])
    for out_pos, value in enumerate(y):
        assert x[list(g).index(out_pos + 1.0)] == value
    assert rule(np.argpartition)(x, 1)[1] is None
