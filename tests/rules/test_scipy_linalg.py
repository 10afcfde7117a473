"""Rules for scipy.linalg (loaded lazily once SciPy is imported)."""

import numpy as np
import pytest

scipy = pytest.importorskip("scipy")
import scipy.linalg as sl  # noqa: E402

import morula as mo  # noqa: E402
import morula.rules  # noqa: E402
from morula.errors import UnsupportedOperationError  # noqa: E402
from morula.rules.registry import REGISTRY  # noqa: E402

try:
    from .fd import check_float32, check_rule
except ImportError:
    from fd import check_float32, check_rule

morula.rules.load_pending()


def rule(fn):
    r = REGISTRY.function_rule(fn)
    assert r is not None, f"no rule for {fn}"
    return r


def gen(seed):
    return np.random.default_rng(seed)


def rand(shape, seed=0, complex_=False):
    g = gen(seed)
    x = g.standard_normal(shape)
    if complex_:
        x = x + 1j * g.standard_normal(shape)
    return x


def well_conditioned(n, batch=(), seed=0, complex_=False):
    return rand(batch + (n, n), seed, complex_) + 3 * n * np.eye(n)


def hermitian_pd(n, batch=(), seed=0, complex_=False):
    x = rand(batch + (n, n), seed, complex_)
    return np.matmul(x, np.swapaxes(x.conj(), -1, -2)) + n * np.eye(n)


def with_garbage(a, lower, seed=99):
    """``a`` with random entries in the triangle a routine must not read (and, if complex,
    a random imaginary part on the diagonal)."""
    junk = rand(a.shape, seed, np.iscomplexobj(a))
    ones = np.ones(a.shape[-2:], bool)
    unread = np.triu(ones, 1) if lower else np.tril(ones, -1)
    out = np.where(unread, junk, a)
    if np.iscomplexobj(a):
        out = out + 1j * np.eye(a.shape[-1]) * rand(a.shape, seed + 1)
    return out


# -- solve ------------------------------------------------------------------------------------------

def _scipy_batches():
    """SciPy >= 1.16 solves stacked matrices; older versions refuse them (and so do the rules)."""
    try:
        sl.solve(np.stack([np.eye(2)] * 2), np.ones((2, 2, 1)))
    except ValueError:
        return False
    return True


_BATCHED = pytest.mark.skipif(not _scipy_batches(), reason="this SciPy has no batched linalg")
SOLVE_SHAPES = [((3, 3), (3,)), ((3, 3), (3, 2)), pytest.param((2, 3, 3), (2, 3, 2), marks=_BATCHED),
                pytest.param((3, 3), (2, 3, 2), marks=_BATCHED), pytest.param((2, 3, 3), (3, 1), marks=_BATCHED)]


@pytest.mark.parametrize("sa,sb", SOLVE_SHAPES, ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_solve_general(sa, sb, complex_):
    a = well_conditioned(sa[-1], sa[:-2], complex_=complex_)
    b = rand(sb, 1, complex_)
    check_rule(rule(sl.solve), sl.solve, (a, b))


@pytest.mark.parametrize("assume_a", ["sym", "symmetric", "pos", "her"])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_solve_structured_reads_one_triangle(assume_a, lower, complex_):
    if assume_a in ("sym", "symmetric") and complex_:
        base = rand((4, 4), 2, True)
        base = base + base.T + 8 * np.eye(4)
    else:
        base = hermitian_pd(4, complex_=complex_)
    a = with_garbage(base, lower)
    b = rand((4, 2), 3, complex_)
    kwargs = {"assume_a": assume_a, "lower": lower}
    check_rule(rule(sl.solve), sl.solve, (a, b), kwargs)


@pytest.mark.parametrize("assume_a", ["diagonal", "tridiagonal", "upper triangular",
                                      "lower triangular", "banded", "gen", None])
def test_solve_other_structures(assume_a):
    a = well_conditioned(4, seed=4)
    if assume_a == "banded":
        a = np.where(np.abs(np.subtract.outer(np.arange(4), np.arange(4))) <= 1, a, 0)
    check_rule(rule(sl.solve), sl.solve, (a, rand((4,), 5)), {"assume_a": assume_a})


def test_solve_transposed_and_float32():
    a, b = well_conditioned(3, seed=6), rand((3, 2), 7)
    check_rule(rule(sl.solve), sl.solve, (a, b), {"transposed": True})
    check_float32(rule(sl.solve), (a.astype(np.float32), b.astype(np.float32)))
    check_float32(rule(sl.solve), (a.astype(np.float32), b))


def test_solve_integer_b_is_not_differentiated():
    a = well_conditioned(3, seed=8)
    cts = check_rule(rule(sl.solve), sl.solve, (a, np.arange(3)))
    assert cts[1] is None


# -- solve_triangular ------------------------------------------------------------------------------


@pytest.mark.parametrize("trans", [0, 1, 2, "N", "T", "C"])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("unit_diagonal", [False, True])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_solve_triangular(trans, lower, unit_diagonal, complex_):
    a = rand((4, 4), 10, complex_) + 4 * np.eye(4)  # the other triangle is read by nobody
    for sb in [(4,), (4, 3)]:
        b = rand(sb, 11, complex_)
        kwargs = {"trans": trans, "lower": lower, "unit_diagonal": unit_diagonal}
        check_rule(rule(sl.solve_triangular), sl.solve_triangular, (a, b), kwargs)


def test_solve_triangular_float32():
    a = (rand((4, 4), 12) + 4 * np.eye(4)).astype(np.float32)
    check_float32(rule(sl.solve_triangular), (a, rand((4, 2), 13).astype(np.float32), 1, True))


# -- inv, det ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [(), pytest.param((2,), marks=_BATCHED)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_inv_det(batch, complex_):
    a = well_conditioned(3, batch, seed=14, complex_=complex_)
    check_rule(rule(sl.inv), sl.inv, (a,))
    check_rule(rule(sl.det), sl.det, (rand(batch + (3, 3), 15, complex_),))


@pytest.mark.parametrize("assume_a,lower", [("pos", False), ("pos", True), ("sym", True),
                                            ("diagonal", False), ("upper triangular", False),
                                            ("lower triangular", False)])
@pytest.mark.skipif("assume_a" not in __import__("inspect").signature(sl.inv).parameters,
                    reason="inv(assume_a=...) needs SciPy >= 1.17")
def test_inv_structures(assume_a, lower):
    a = with_garbage(hermitian_pd(4, seed=16), lower)
    check_rule(rule(sl.inv), sl.inv, (a,), {"assume_a": assume_a, "lower": lower})


def test_inv_det_float32():
    a = well_conditioned(3, seed=17).astype(np.float32)
    check_float32(rule(sl.inv), (a,))
    check_float32(rule(sl.det), (a,), rtol=1e-3)


# -- Cholesky ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("batch", [(), pytest.param((2,), marks=_BATCHED)], ids=str)
def test_cholesky(lower, complex_, batch):
    a = with_garbage(hermitian_pd(4, batch, seed=18, complex_=complex_), lower)
    check_rule(rule(sl.cholesky), sl.cholesky, (a,), {"lower": lower})


def test_cholesky_float32():
    a = hermitian_pd(3, seed=19).astype(np.float32)
    check_float32(rule(sl.cholesky), (a,), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_cho_factor_and_cho_solve(lower, complex_):
    a = with_garbage(hermitian_pd(4, seed=20, complex_=complex_), lower)
    check_rule(rule(sl.cho_factor), sl.cho_factor, (a,), {"lower": lower})
    c_and_lower = sl.cho_factor(a, lower=lower)
    for sb in [(4,), (4, 2)]:
        b = rand(sb, 21, complex_)
        cts = check_rule(rule(sl.cho_solve), sl.cho_solve, (c_and_lower, b))
        assert type(cts[0]) is tuple and cts[0][1] is None


# -- LU ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_lu_factor_and_lu_solve(complex_):
    a = rand((4, 4), 22, complex_)  # pivoting happens
    check_rule(rule(sl.lu_factor), sl.lu_factor, (a,))
    lu_and_piv = sl.lu_factor(a)
    assert not np.array_equal(lu_and_piv[1], np.arange(4))
    for trans in (0, 1, 2):
        for sb in [(4,), (4, 3)]:
            b = rand(sb, 23, complex_)
            check_rule(rule(sl.lu_solve), sl.lu_solve, (lu_and_piv, b), {"trans": trans})


@pytest.mark.parametrize("kwargs", [{}, {"permute_l": True}, {"p_indices": True}], ids=str)
def test_lu(kwargs):
    a = rand((4, 4), 24)
    check_rule(rule(sl.lu), sl.lu, (a,), kwargs)


def test_lu_of_rectangular_matrix_is_refused():
    with pytest.raises(UnsupportedOperationError):
        rule(sl.lu_factor)(rand((3, 4), 25))


# -- expm, sqrtm ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [(), (2,)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_expm(batch, complex_):
    a = rand(batch + (3, 3), 26, complex_)
    check_rule(rule(sl.expm), sl.expm, (a,), rtol=1e-5)


def test_expm_float32():
    check_float32(rule(sl.expm), (rand((3, 3), 27).astype(np.float32) / 3,), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", ["spd", "nonsymmetric", "complex"])
def test_sqrtm(kind):
    if kind == "spd":
        a = hermitian_pd(3, seed=28)
    elif kind == "nonsymmetric":
        a = rand((3, 3), 29) * 0.3 + 2 * np.eye(3)
    else:
        a = rand((3, 3), 30, True) * 0.3 + 2 * np.eye(3)
    check_rule(rule(sl.sqrtm), sl.sqrtm, (a,), rtol=1e-5, primal_rtol=1e-10)


# -- eigh, svd, qr ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lower", [False, True])
def test_eigh_eigenvalues(lower):
    a = with_garbage(hermitian_pd(4, seed=31), lower)
    check_rule(rule(sl.eigvalsh), sl.eigvalsh, (a,), {"lower": lower})
    check_rule(rule(sl.eigh), sl.eigh, (a,), {"lower": lower, "eigvals_only": True})
    check_rule(rule(sl.eigh), sl.eigh, (a,), {"lower": lower, "subset_by_index": [1, 2],
                                              "eigvals_only": True})
    ac = with_garbage(hermitian_pd(4, seed=32, complex_=True), lower)
    check_rule(rule(sl.eigvalsh), sl.eigvalsh, (ac,), {"lower": lower})


def _sign_fixed_eigh(a, **kwargs):
    w, v = sl.eigh(a, **kwargs)
    return w, v * np.sign(v[0])


def test_eigh_vectors_real():
    a = with_garbage(hermitian_pd(4, seed=33), True)
    base = rule(sl.eigh)

    def fixed_rule(a, **kwargs):
        (w, v), pb = base(a, **kwargs)
        s = np.sign(v[0])
        return (w, v * s), lambda d: pb((d[0], d[1] * s))

    check_rule(fixed_rule, _sign_fixed_eigh, (a,))


def test_eigh_refusals():
    a = hermitian_pd(3, seed=34)
    with pytest.raises(UnsupportedOperationError):
        rule(sl.eigh)(a, a)
    with pytest.raises(UnsupportedOperationError):
        rule(sl.eigh)(a, subset_by_index=[0, 1])


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), pytest.param((2, 4, 3), marks=_BATCHED)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_svd_singular_values(shape, complex_):
    a = rand(shape, 35, complex_)
    check_rule(rule(sl.svd), sl.svd, (a,), {"compute_uv": False})


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3)], ids=str)
def test_svd_vectors_real(shape):
    a = rand(shape, 36)
    base = rule(sl.svd)

    def fixed(a, **kwargs):
        u, s, vh = sl.svd(a, **kwargs)
        sign = np.sign(u[0])
        return u * sign, s, vh * sign[:, None]

    def fixed_rule(a, **kwargs):
        (u, s, vh), pb = base(a, **kwargs)
        sign = np.sign(u[0])
        return (u * sign, s, vh * sign[:, None]), lambda d: pb((d[0] * sign, d[1],
                                                              d[2] * sign[:, None]))

    check_rule(fixed_rule, fixed, (a,), {"full_matrices": False})


def test_svd_full_matrices_of_rectangular_is_refused():
    with pytest.raises(UnsupportedOperationError):
        rule(sl.svd)(rand((4, 3), 37))
    out, pb = rule(sl.svd)(rand((3, 3), 37))  # square: full == thin
    assert pb is not None


@pytest.mark.parametrize("shape,mode", [((4, 3), "economic"), ((3, 3), "full"), ((3, 5), "full"),
                                        ((3, 5), "economic"), ((4, 3), "r"), ((3, 5), "r"),
                                        pytest.param((2, 4, 3), "economic", marks=_BATCHED)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_qr(shape, mode, complex_):
    a = rand(shape, 38, complex_)
    check_rule(rule(sl.qr), sl.qr, (a,), {"mode": mode})


def test_qr_refusals_and_float32():
    with pytest.raises(UnsupportedOperationError):
        rule(sl.qr)(rand((4, 3), 39))
    with pytest.raises(UnsupportedOperationError):
        rule(sl.qr)(rand((3, 3), 39), pivoting=True)
    check_float32(rule(sl.qr), (rand((4, 3), 40).astype(np.float32), False, None, "economic"),
                  rtol=1e-3, atol=1e-4)


# -- through morula.grad ------------------------------------------------------------------------------


def fd_check_grad(f, args, argnums=0, eps=1e-6, rtol=1e-5, atol=1e-8, seed=41):
    g = gen(seed)
    nums = (argnums,) if isinstance(argnums, int) else argnums
    grads = mo.grad(f, argnums=argnums)(*args)
    grads = (grads,) if isinstance(argnums, int) else grads
    for i, gr in zip(nums, grads):
        x = args[i]
        v = g.standard_normal(np.shape(x))
        if np.iscomplexobj(x):
            v = v + 1j * g.standard_normal(np.shape(x))
        plus, minus = list(args), list(args)
        plus[i], minus[i] = x + eps * v, x - eps * v
        lhs = (f(*plus) - f(*minus)) / (2 * eps)
        rhs = float(np.real(np.sum(np.conj(gr) * v)))
        assert abs(lhs - rhs) <= atol + rtol * max(abs(lhs), abs(rhs), 1.0), (lhs, rhs)
        assert np.shape(gr) == np.shape(x) and np.asarray(gr).dtype == np.asarray(x).dtype
    return grads


def test_grad_solve_family():
    a, b = well_conditioned(3, seed=42), rand((3, 2), 43)
    w = rand((3, 2), 44)

    def user(a, b):
        x = sl.solve(a, b)
        y = sl.solve(a, b, assume_a="pos", lower=True)
        z = sl.solve_triangular(a, b, lower=True, trans="T")
        return np.sum(w * (x + y + z)) + sl.det(a) + np.sum(sl.inv(a) ** 2)

    fd_check_grad(user, (a, b), argnums=(0, 1))


def test_grad_cholesky_and_cho_solve():
    a, b = with_garbage(hermitian_pd(3, seed=45), False), rand((3,), 46)

    def user(a, b):
        c = sl.cholesky(a)
        factor = sl.cho_factor(a)
        x = sl.cho_solve(factor, b)
        return np.sum(c * c) * 0.1 + np.sum(x * np.arange(3.0))

    fd_check_grad(user, (a, b), argnums=(0, 1))


def test_grad_lu_factor_and_lu_solve():
    a, b = rand((4, 4), 47), rand((4, 2), 48)

    def user(a, b):
        lu_and_piv = sl.lu_factor(a)
        x = sl.lu_solve(lu_and_piv, b)
        y = sl.lu_solve(lu_and_piv, b, trans=1)
        p, l, u = sl.lu(a)
        return np.sum(x * y) + np.sum(l * u)

    fd_check_grad(user, (a, b), argnums=(0, 1))


def test_grad_expm_sqrtm():
    a = rand((3, 3), 49) * 0.5
    s = hermitian_pd(3, seed=50)

    def user(a, s):
        return np.sum(sl.expm(a) * np.arange(9.0).reshape(3, 3)) + np.trace(sl.sqrtm(s) @ a)

    fd_check_grad(user, (a, s), argnums=(0, 1))


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_grad_eigh_gauge_invariant(complex_):
    a = hermitian_pd(4, seed=51, complex_=complex_)
    wts = rand((4, 4), 52)

    def user(a):
        w, v = sl.eigh(a)
        p = np.abs(v) ** 2
        return np.sum(wts * p) + np.sum(w * np.arange(4.0)) + np.sum(sl.eigvalsh(a) ** 2)

    fd_check_grad(user, (a,))


@pytest.mark.parametrize("shape", [(4, 3), (3, 4)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_grad_svd_gauge_invariant(shape, complex_):
    a = rand(shape, 53, complex_)
    w1, w3 = rand((shape[0], 3), 54), rand((3, shape[1]), 55)
    w4 = rand(shape, 56)

    def user(a):
        u, s, vh = sl.svd(a, full_matrices=False)
        rebuilt = (u * np.sin(s)) @ vh
        return (np.sum(w1 * np.abs(u) ** 2) + np.sum(s ** 3) + np.sum(w3 * np.abs(vh) ** 2)
                + np.sum(w4 * np.real(rebuilt)) + np.sum(sl.svd(a, compute_uv=False)))

    fd_check_grad(user, (a,))


def test_grad_qr():
    a = rand((4, 3), 57)

    def user(a):
        q, r = sl.qr(a, mode="economic")
        (r2,) = sl.qr(a.T, mode="r")
        return np.sum(q * np.arange(12.0).reshape(4, 3)) + np.sum(r ** 2) + np.sum(r2)

    fd_check_grad(user, (a,))
