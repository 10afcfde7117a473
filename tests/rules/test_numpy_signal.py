"""Conventions of the signal, polynomial and product rules (numpy_signal, numpy_products), and
``einsum`` over many subscripts; the finite-difference sweeps are in test_numpy_sweeps.py."""

import warnings

import numpy as np
import pytest

import morula.rules.numpy_rules  # noqa: F401
from morula.rules.registry import REGISTRY
from morula.testing import check_grads, check_rule

rng = np.random.default_rng(0)


def rule(fn):
    return REGISTRY.function_rule(fn)


def test_interp_at_knots_and_outside():
    xp = np.array([0.0, 1.0, 3.0])
    fp = np.array([0.0, 2.0, 3.0])
    x = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    y, pb = rule(np.interp)(x, xp, fp)
    dx, dxp, dfp = pb(np.ones(6))[:3]
    # slope to the right at a knot, the last segment's slope at the last knot, 0 outside
    np.testing.assert_array_equal(dx, [0.0, 2.0, 0.5, 0.5, 0.5, 0.0])
    # outside, fp[0] / fp[-1] take the cotangent (left/right not given)
    np.testing.assert_allclose(dfp, [1.0 + 1.0, 1.0 + 0.5, 0.5 + 1.0 + 1.0])
    _, pb = rule(np.interp)(x, xp, fp, -1.0, 7.0)
    cts = pb(np.ones(6))
    assert cts[3] == 1.0 and cts[4] == 1.0 and type(cts[3]) is float


def test_convolve_modes_are_slices_of_full():
    a, v = rng.standard_normal(6), rng.standard_normal(3)
    for mode in ("full", "same", "valid"):
        y, pb = rule(np.convolve)(a, v, mode)
        dy = rng.standard_normal(y.shape)
        jac = np.stack([np.convolve(e, v, mode) for e in np.eye(6)])
        np.testing.assert_allclose(pb(dy)[0], jac @ dy, rtol=1e-12)


def signal_program(a, v, p, y):
    s = np.convolve(a, v, mode="same") + np.correlate(a, v, mode="same")
    t = np.polyval(p, s)
    return np.trapezoid(t * y, dx=0.5) + np.trapezoid(y, x=np.cumsum(np.abs(a) + 0.1))


def test_signal_functions_through_the_engine():
    check_grads(signal_program, (rng.standard_normal(5), rng.standard_normal(3),
                                 rng.standard_normal(3), rng.standard_normal(5)))


def products_program(a, b, u, v):
    return np.sum(np.kron(a, b) ** 2) + np.sum(np.cross(u, v) * u)


def test_products_through_the_engine():
    check_grads(products_program, (rng.standard_normal((2, 2)), rng.standard_normal((3, 1)),
                                   rng.standard_normal((4, 3)), rng.standard_normal(3)))


def test_cross_of_two_2_vectors_is_the_z_part():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        check_rule(np.cross, rng.standard_normal(2), rng.standard_normal(2))
        check_rule(np.cross, rng.standard_normal((3, 2)), rng.standard_normal(3))


EINSUM = [
    ("ij,jk->ik", (3, 4), (4, 2)), ("ij->ji", (3, 4)), ("ii->i", (3, 3)), ("ii", (3, 3)),
    ("ij->", (2, 3)), ("i,i->", (3,), (3,)), ("i,j->ij", (3,), (2,)),
    ("...ij,...jk->...ik", (2, 3, 4), (2, 4, 5)), ("bij,bjk->bik", (2, 3, 4), (2, 4, 2)),
    ("ijk->kji", (2, 3, 4)), ("ij,ij->ij", (2, 3), (2, 3)), ("ij,jk,kl->il", (2, 3), (3, 4), (4, 2)),
    ("iij->j", (2, 2, 3)), ("i...->...", (3, 2, 2)), ("ab,cd->abcd", (2, 2), (3, 2)),
    ("ij,j", (3, 4), (4,)), ("ijj->ij", (2, 3, 3)), ("ba,ab->", (2, 3), (3, 2)),
]  # fmt: skip


@pytest.mark.parametrize("subscripts,shapes", [(c[0], c[1:]) for c in EINSUM], ids=[c[0] for c in EINSUM])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128], ids=lambda d: d.__name__)
def test_einsum_subscripts(subscripts, shapes, dtype):
    ops = []
    for s in shapes:
        x = rng.standard_normal(s)
        if dtype is np.complex128:
            x = x + 1j * rng.standard_normal(s)
        ops.append(x.astype(dtype))
    check_rule(np.einsum, subscripts, *ops)
    check_rule(np.einsum, subscripts, *ops, optimize=True)


def test_einsum_sublist_form():
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    check_rule(np.einsum, a, [0, 1], b, [1, 2], [0, 2])
    check_rule(np.einsum, a, [0, 1], b, [1, 2])
    check_rule(np.einsum, a, [Ellipsis, 1], [1, Ellipsis])
