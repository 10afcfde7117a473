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


def rand(*shape, seed=0, complex_=False):
    gen = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    x = gen.standard_normal(shape)
    if complex_:
        x = x + 1j * gen.standard_normal(shape)
    return x


MATMUL_SHAPES = [
    ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)), ((1, 2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)), ((5, 2, 3), (3,)),
]  # fmt: skip


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul(sa, sb):
    a, b = rand(*sa), rand(*sb, seed=1)
    check_rule(rule(np.matmul), np.matmul, (a, b))


def test_matmul_complex_float32_and_int():
    a, b = rand(2, 3, complex_=True), rand(3, 4, seed=1, complex_=True)
    check_rule(rule(np.matmul), np.matmul, (a, b))
    check_rule(rule(np.matmul), np.matmul, (rand(2, 3), b))
    check_float32(rule(np.matmul), (rand(5, 2, 3).astype(np.float32), rand(3, 4).astype(np.float32)))
    cts = check_rule(rule(np.matmul), np.matmul, (rand(2, 3), np.arange(12).reshape(3, 4)))
    assert cts[1] is None


DOT_SHAPES = [((), (3,)), ((3,), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
              ((2, 5, 3), (3,)), ((2, 5, 3), (4, 3, 6)), ((3,), (4, 3, 6)), ((2, 3), (4, 3, 2))]  # fmt: skip


@pytest.mark.parametrize("sa,sb", DOT_SHAPES, ids=str)
def test_dot(sa, sb):
    a, b = rand(*sa), rand(*sb, seed=1)
    if sa == ():
        a = float(a)
    check_rule(rule(np.dot), np.dot, (a, b))


def test_dot_method_and_complex():
    r, _ = REGISTRY.method_rule(np.ndarray, "dot")
    check_rule(r, lambda s, o: s.dot(o), (rand(2, 3), rand(3, 4, seed=1)))
    check_rule(rule(np.dot), np.dot, (rand(2, 3, complex_=True), rand(3, seed=1, complex_=True)))


INNER_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)), ((2, 4, 3), (5, 3)), ((), (2, 3))]


@pytest.mark.parametrize("sa,sb", INNER_SHAPES, ids=str)
def test_inner(sa, sb):
    check_rule(rule(np.inner), np.inner, (rand(*sa), rand(*sb, seed=1)))


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((2, 3), (4,)), ((3,), (2, 2)), ((), (3,))], ids=str)
def test_outer(sa, sb):
    a = rand(*sa)
    if sa == ():
        a = float(a)
    check_rule(rule(np.outer), np.outer, (a, rand(*sb, seed=1)))
    check_rule(rule(np.outer), np.outer, (rand(3, complex_=True), rand(2, seed=1, complex_=True)))


TENSORDOT = [
    ((2, 3, 4), (3, 4, 5), 2), ((2, 3), (3, 4), 1), ((2, 3), (4, 5), 0),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])), ((2, 3, 4), (5, 2), (0, 1)),
    ((2, 3, 4), (4, 2), ([-1, 0], [0, -1])), ((3, 4, 2), (2, 5, 3), ((2, 0), (0, 2))),
]  # fmt: skip


@pytest.mark.parametrize("sa,sb,axes", TENSORDOT, ids=str)
def test_tensordot(sa, sb, axes):
    check_rule(rule(np.tensordot), np.tensordot, (rand(*sa), rand(*sb, seed=1), axes))


def test_tensordot_default_axes_and_complex():
    check_rule(rule(np.tensordot), np.tensordot, (rand(2, 3, 4), rand(3, 4, 2, seed=1)))
    check_rule(rule(np.tensordot), np.tensordot,
               (rand(2, 3, complex_=True), rand(3, 2, seed=1, complex_=True), 1))


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((2, 3), (6,)), ((2, 2), (2, 2))], ids=str)
def test_vdot(sa, sb):
    check_rule(rule(np.vdot), np.vdot, (rand(*sa), rand(*sb, seed=1)))
    check_rule(rule(np.vdot), np.vdot, (rand(*sa, complex_=True), rand(*sb, seed=1, complex_=True)))


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("i,i->", [(3,), (3,)]),
    ("i,i", [(3,), (3,)]), ("i,j->ij", [(3,), (4,)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]),
    ("ij->i", [(2, 3)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iij->j", [(3, 3, 2)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]), ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(1, 2, 3), (5, 3, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("i,ij,j->", [(2,), (2, 3), (3,)]), ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ij,kj->ik", [(1, 3), (4, 3)]), ("Ba,aB", [(2, 3), (3, 2)]), ("ii,i->i", [(3, 3), (3,)]),
    ("...i->...", [(2, 3, 4)]), ("i...->...", [(3, 2)]),
    (" ij , jk -> ik ", [(2, 3), (3, 4)]), ("i->", [(0,)]), ("ijk,k->ij", [(2, 3, 4), (4,)]),
]  # fmt: skip


@pytest.mark.parametrize("spec,shapes", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum(spec, shapes):
    ops = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    cts = check_rule(rule(np.einsum), np.einsum, (spec, *ops))
    assert cts[0] is None


def test_einsum_complex_optimize_and_float32():
    ops = [rand(2, 3, seed=1, complex_=True), rand(3, 4, seed=2, complex_=True), rand(4, seed=3)]
    check_rule(rule(np.einsum), np.einsum, ("ij,jk,k->i", *ops))
    check_rule(rule(np.einsum), np.einsum, ("ij,jk,k->i", *ops), {"optimize": True})
    check_float32(rule(np.einsum), ("ij,jk->ik", rand(2, 3).astype(np.float32),
                                    rand(3, 4).astype(np.float32)))


def test_einsum_interleaved():
    a, b = rand(2, 3), rand(3, 4, seed=1)
    cts = check_rule(rule(np.einsum), np.einsum, (a, [0, 1], b, [1, 2], [0, 2]))
    assert cts[1] is None and cts[3] is None and cts[4] is None
    check_rule(rule(np.einsum), np.einsum, (a, [Ellipsis, 1], b, [1, 2]))


def test_einsum_integer_operand():
    cts = check_rule(rule(np.einsum), np.einsum, ("ij,jk->ik", rand(2, 3), np.ones((3, 4), dtype=int)))
    assert cts[2] is None


def test_list_operands():
    cts = check_rule(rule(np.dot), np.dot, ([1.0, 2.0], [3.0, 4.0]))
    assert cts[0] == [3.0, 4.0] or type(cts[0]) is list
    cts = check_rule(rule(np.matmul), np.matmul, ([[1.0, 2.0]], rand(2, 3)))
    assert type(cts[0]) is list and type(cts[0][0]) is list
    check_rule(rule(np.einsum), np.einsum, ("ij,j->i", [[1.0, 2.0], [3.0, 4.0]], rand(2)))
    check_rule(rule(np.einsum), np.einsum, ("i,i->i", rand(2), [1.0, 2.0]))
    check_rule(rule(np.tensordot), np.tensordot, ([[1.0, 2.0]], rand(2, 3), 1))
    check_rule(rule(np.vdot), np.vdot, ([1.0, 2.0], rand(2)))
    check_rule(rule(np.outer), np.outer, ([1.0, 2.0], rand(2)))
    check_rule(rule(np.inner), np.inner, ([1.0, 2.0], rand(2)))


@pytest.mark.skipif(not hasattr(np, "vecdot"), reason="NumPy without vecdot/matvec/vecmat")
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("name, shapes", [("vecdot", [(4,), (4,)]), ("vecdot", [(2, 3, 4), (3, 4)]),
                                          ("matvec", [(3, 4), (4,)]), ("matvec", [(2, 3, 4), (2, 4)]),
                                          ("vecmat", [(3,), (3, 4)]), ("vecmat", [(2, 3), (2, 3, 4)])])
def test_numpy2_vector_gufuncs(name, shapes, dtype):
    from morula.testing import check_rule
    rng = np.random.default_rng(0)
    args = []
    for s in shapes:
        a = rng.standard_normal(s)
        if dtype == np.complex128:
            a = a + 1j * rng.standard_normal(s)
        args.append(a.astype(dtype))
    check_rule(getattr(np, name), *args)


SWEPT = [getattr(np, n) for n in ("vecdot", "matvec", "vecmat") if hasattr(np, n)]   # parametrized by name
