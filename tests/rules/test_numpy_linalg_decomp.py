import numpy as np
import pytest

import morula as mo
import morula.rules.numpy_rules  # noqa: F401
from morula.errors import UnsupportedOperationError
from morula.rules.registry import REGISTRY
from morula.tangents import ObjectCotangent

try:
    from .fd import assert_mirrors, check_float32, check_rule, inner, random_like
except ImportError:
    from fd import assert_mirrors, check_float32, check_rule, inner, random_like

la = np.linalg


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


def herm(a):
    return (a + np.conj(np.swapaxes(a, -1, -2))) / 2


def wellcond(*shape, seed=0, complex_=False):
    """A random square matrix (stack) far from singular."""
    n = shape[-1]
    return rand(*shape, seed=seed, complex_=complex_) + n * np.eye(n)


def spd(*shape, seed=0, complex_=False):
    n = shape[-1]
    b = rand(*shape, seed=seed, complex_=complex_)
    return herm(b @ np.conj(np.swapaxes(b, -1, -2)) + n * np.eye(n))


def align(v, v0):
    """Columns of ``v`` turned by a phase (sign) so that ``v0_k^H v_k`` is real positive."""
    z = np.sum(np.conj(v0) * v, axis=-2, keepdims=True)
    return v * (np.conj(z) / np.abs(z))


def fd_grad_check(f, x, gen_seed=0, eps=1e-6, rtol=1e-6, atol=1e-8, **kwargs):
    """``mo.grad(f)`` against a central difference of ``f`` along a random direction."""
    g = mo.grad(f)(x, **kwargs)
    assert_mirrors(g, x)
    gen = np.random.default_rng(gen_seed)
    v = random_like(x, gen)
    lhs = (f(x + eps * v, **kwargs) - f(x - eps * v, **kwargs)) / (2 * eps)
    rhs = inner(g, v)
    assert abs(lhs - rhs) <= atol + rtol * max(abs(lhs), abs(rhs), 1.0), (lhs, rhs)
    return g


SQUARE = [(3, 3), (1, 1), (2, 3, 4, 4)]


# -- inv, pinv, det, slogdet -----------------------------------------------------------------


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_inv(shape, complex_):
    check_rule(rule(la.inv), la.inv, (wellcond(*shape, complex_=complex_),))


def test_inv_float32_list_int():
    check_float32(rule(la.inv), (wellcond(2, 3, 3).astype(np.float32),))
    check_rule(rule(la.inv), la.inv, ([[3.0, 1.0], [0.5, 2.0]],))
    _, pb = rule(la.inv)(np.array([[2, 1], [1, 3]]))
    assert pb is None


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 3, 5, 3)], ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_pinv(shape, complex_):
    check_rule(rule(la.pinv), la.pinv, (rand(*shape, complex_=complex_),), rtol=1e-5)


def test_pinv_hermitian_and_float32():
    a = spd(4, 4)
    check_rule(rule(la.pinv), lambda a, rcond=None, hermitian=False: la.pinv(herm(a), hermitian=hermitian),
               (a, None, True))
    check_float32(rule(la.pinv), (rand(5, 3).astype(np.float32),), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_det_slogdet(shape, complex_):
    a = wellcond(*shape, complex_=complex_) / shape[-1]
    check_rule(rule(la.det), la.det, (a,))
    cts = check_rule(rule(la.slogdet), lambda a: tuple(la.slogdet(a)), (a,))
    assert cts[0].shape == a.shape


def test_det_slogdet_float32_and_negative_det():
    a = wellcond(2, 3, 3).astype(np.float32) / 3
    check_float32(rule(la.det), (a,), rtol=1e-3)
    check_float32(rule(la.slogdet), (a,), rtol=1e-3)
    b = np.array([[0.0, 2.0], [1.5, 0.3]])  # det < 0: sign -1
    check_rule(rule(la.slogdet), lambda a: tuple(la.slogdet(a)), (b,))
    # cotangent with only one entry, as a NamedTuple, and as an ObjectCotangent
    out, pb = rule(la.slogdet)(b)
    g = pb((None, 1.0))[0]
    np.testing.assert_allclose(g, la.inv(b).T)
    np.testing.assert_allclose(pb(type(out)(np.float64(0.0), np.float64(1.0)))[0], g)
    np.testing.assert_allclose(pb(ObjectCotangent({"logabsdet": 1.0}))[0], g)
    assert pb(None)[0] is None


# -- solve, lstsq ----------------------------------------------------------------------------

SOLVE = [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 3, 3), (2, 3, 2)),
         ((3, 3), (2, 3, 2)), ((2, 1, 3, 3), (4, 3, 1))]  # fmt: skip


@pytest.mark.parametrize("sa,sb", SOLVE, ids=str)
def test_solve(sa, sb):
    check_rule(rule(la.solve), la.solve, (wellcond(*sa), rand(*sb, seed=1)))


def test_solve_complex_float32_int():
    check_rule(rule(la.solve), la.solve, (wellcond(3, 3, complex_=True), rand(3, 2, seed=1, complex_=True)))
    check_rule(rule(la.solve), la.solve, (wellcond(3, 3), rand(3, seed=1, complex_=True)))
    check_float32(rule(la.solve), (wellcond(2, 3, 3).astype(np.float32), rand(3, seed=1).astype(np.float32)))
    cts = check_rule(rule(la.solve), la.solve, (np.array([[2, 1], [1, 3]]), rand(2)))
    assert cts[0] is None


def _lstsq(a, b, rcond=None):
    return la.lstsq(a, b, rcond=rcond)


@pytest.mark.parametrize("sa,sb", [((5, 3), (5,)), ((5, 3), (5, 2)), ((3, 3), (3, 2)), ((3, 5), (3,)),
                                   ((3, 5), (3, 2))], ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_lstsq(sa, sb, complex_):
    a, b = rand(*sa, complex_=complex_), rand(*sb, seed=1, complex_=complex_)
    cts = check_rule(rule(la.lstsq), _lstsq, (a, b, None), rtol=1e-5)
    assert cts[2] is None


def test_lstsq_entries_and_float32():
    a, b = rand(6, 3), rand(6, 2, seed=1)
    out, pb = rule(la.lstsq)(a, b, rcond=None)
    ga_x, gb_x = pb((np.ones_like(out[0]), None, None, None))
    ga_r, gb_r = pb((None, np.ones(2), None, None))
    ga, gb = pb((np.ones_like(out[0]), np.ones(2), None, None))
    np.testing.assert_allclose(ga, ga_x + ga_r)
    np.testing.assert_allclose(gb, gb_x + gb_r)
    assert pb((None, None, None, None)) == (None, None)
    check_float32(rule(la.lstsq), (a.astype(np.float32), b.astype(np.float32)), rtol=1e-3, atol=1e-4)


# -- cholesky, qr --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(shape, complex_, upper):
    a = spd(*shape, complex_=complex_)
    cts = check_rule(rule(la.cholesky), lambda a, upper=False: la.cholesky(herm(a), upper=upper), (a,),
                     {"upper": upper})
    np.testing.assert_allclose(cts[0], herm(cts[0]))


def test_cholesky_float32():
    check_float32(rule(la.cholesky), (spd(2, 4, 4).astype(np.float32),), rtol=1e-3)


QR = [(5, 3), (3, 3), (3, 5), (4, 1), (1, 4), (2, 3, 5, 3), (2, 3, 5)]


@pytest.mark.parametrize("shape", QR, ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_qr(shape, complex_):
    a = rand(*shape, complex_=complex_)
    check_rule(rule(la.qr), lambda a: tuple(la.qr(a)), (a,))
    check_rule(rule(la.qr), la.qr, (a, "r"))


def test_qr_modes_entries_float32():
    a = rand(3, 3)
    check_rule(rule(la.qr), lambda a, mode: tuple(la.qr(a, mode)), (a, "complete"))
    check_rule(rule(la.qr), lambda a, mode: tuple(la.qr(a, mode)), (rand(3, 5), "complete"))
    with pytest.raises(UnsupportedOperationError):
        rule(la.qr)(rand(5, 3), "complete")
    with pytest.raises(UnsupportedOperationError):
        rule(la.qr)(rand(5, 3), "raw")
    out, pb = rule(la.qr)(rand(5, 3))
    dq = rand(5, 3, seed=3)
    np.testing.assert_allclose(pb((dq, None))[0], pb(ObjectCotangent({"Q": dq}))[0])
    np.testing.assert_allclose(pb((dq, None))[0], pb(type(out)(dq, np.zeros((3, 3))))[0])
    assert pb((None, None))[0] is None
    check_float32(rule(la.qr), (rand(2, 5, 3).astype(np.float32),), rtol=1e-3, atol=1e-4)


# -- eigh, eigvalsh ----------------------------------------------------------------------------


def _eigh_fixed(v0):
    def eigh(a, UPLO="L"):
        w, v = la.eigh(herm(a), UPLO=UPLO)
        return w, align(v, v0)
    return eigh


@pytest.mark.parametrize("shape", [(4, 4), (1, 1), (2, 3, 3, 3)], ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_eigh(shape, complex_):
    a = spd(*shape, complex_=complex_)
    for uplo in ("L", "U"):
        v0 = la.eigh(a, UPLO=uplo)[1]
        cts = check_rule(rule(la.eigh), _eigh_fixed(v0), (a, uplo), rtol=1e-5)
        np.testing.assert_allclose(cts[0], herm(cts[0]))
    check_rule(rule(la.eigvalsh), lambda a: la.eigvalsh(herm(a)), (a,))


def test_eigh_entries_float32():
    a = spd(2, 4, 4)
    out, pb = rule(la.eigh)(a)
    gw = rand(2, 4, seed=2)
    g = pb((gw, None))[0]
    np.testing.assert_allclose(g, pb(ObjectCotangent({"eigenvalues": gw}))[0])
    _, pb2 = rule(la.eigvalsh)(a)
    np.testing.assert_allclose(g, pb2(gw)[0], atol=1e-12)
    check_float32(rule(la.eigvalsh), (a.astype(np.float32),), rtol=1e-3)
    out32, pb32 = rule(la.eigh)(a.astype(np.float32))
    assert_mirrors(pb32(random_like(out32))[0], a.astype(np.float32))


# -- eig, eigvals -------------------------------------------------------------------------------


def _match(w, w0):
    """Indices that put ``w`` in the order of ``w0`` (nearest eigenvalue)."""
    return np.argmin(np.abs(w0[..., :, None] - w[..., None, :]), axis=-1)


def _eig_fixed(w0, v0):
    def eig(a):
        w, v = la.eig(a)
        idx = _match(w, w0)
        w = np.take_along_axis(w, idx, axis=-1)
        v = np.take_along_axis(v, idx[..., None, :], axis=-1)
        return w, align(v, v0)
    return eig


def _eigvals_fixed(w0):
    def eigvals(a):
        w = la.eigvals(a)
        return np.take_along_axis(w, _match(w, w0), axis=-1)
    return eigvals


@pytest.mark.parametrize("shape", [(4, 4), (2, 2), (2, 3, 3, 3)], ids=str)
@pytest.mark.parametrize("kind", ["real", "complex", "real-spectrum"])
def test_eig(shape, kind):
    if kind == "real-spectrum":  # real eigenvalues: NumPy returns real w and v
        p = wellcond(*shape, seed=4)
        a = (p * np.arange(1.0, shape[-1] + 1)) @ la.inv(p)
    else:
        a = rand(*shape, complex_=(kind == "complex"))
    w0, v0 = la.eig(a)
    if kind == "real-spectrum":
        assert w0.dtype.kind == "f"
    check_rule(rule(la.eig), _eig_fixed(w0, v0), (a,), rtol=1e-5)
    check_rule(rule(la.eigvals), _eigvals_fixed(la.eigvals(a)), (a,), rtol=1e-5)


def test_eig_entries_float32():
    a = rand(2, 4, 4)
    out, pb = rule(la.eig)(a)
    gw = random_like(out[0])
    g = pb((gw, None))[0]
    np.testing.assert_allclose(g, pb(ObjectCotangent({"eigenvalues": gw}))[0])
    out32, pb32 = rule(la.eig)(a.astype(np.float32))
    assert_mirrors(pb32(random_like(out32))[0], a.astype(np.float32))
    check_float32(rule(la.eigvals), (a.astype(np.float32),), rtol=1e-3, atol=1e-4)


# -- svd, svdvals ---------------------------------------------------------------------------------


def _svd_fixed(u0, vh0):
    def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
        u, s, vh = la.svd(a, full_matrices=False, hermitian=hermitian)
        # the phase of u_k against u0_k, applied to the pair (u_k, v_k) ...
        z = np.sum(np.conj(u0) * u, axis=-2)
        p = z / np.abs(z)
        u, vh = u * np.conj(p)[..., None, :], vh * p[..., :, None]
        # ... then the symmetric split of what remains between u_k and v_k
        z = np.sum(np.conj(u0) * u, axis=-2) * np.sum(vh0 * np.conj(vh), axis=-1)
        p = np.sqrt(z / np.abs(z))
        return u * np.conj(p)[..., None, :], s, vh * p[..., :, None]
    return svd


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (1, 3), (2, 3, 4, 3)], ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_svd(shape, complex_):
    a = rand(*shape, complex_=complex_)
    u0, _, vh0 = la.svd(a, full_matrices=False)
    check_rule(rule(la.svd), _svd_fixed(u0, vh0), (a, False), rtol=1e-5)
    check_rule(rule(la.svd), lambda a, f, c: la.svd(a, f, c), (a, False, False))
    check_rule(rule(la.svdvals), la.svdvals, (a,))


def test_svd_full_matrices_hermitian_float32():
    a = rand(5, 3)
    out, pb = rule(la.svd)(a)  # full_matrices=True: U is (5, 5)
    assert out[0].shape == (5, 5)
    du = np.zeros((5, 5))
    du[:, :3] = rand(5, 3, seed=2)
    ds, dvh = rand(3, seed=3), rand(3, 3, seed=4)
    fn = _svd_fixed(out[0][:, :3], out[2])
    g = pb((du, ds, dvh))[0]
    v, eps = rand(5, 3, seed=6), 1e-6
    jv = [(p - m) / (2 * eps) for p, m in zip(fn(a + eps * v), fn(a - eps * v))]
    lhs = inner((du[:, :3], ds, dvh), tuple(jv))
    assert abs(lhs - inner(g, v)) <= 1e-6 * max(1.0, abs(lhs))
    du[:, 4] = 1.0
    with pytest.raises(UnsupportedOperationError):
        pb((du, ds, dvh))
    np.testing.assert_allclose(pb((None, ds, None))[0], pb(ObjectCotangent({"S": ds}))[0])
    # square: full_matrices makes no difference
    b = rand(3, 3)
    u0, _, vh0 = la.svd(b)
    check_rule(rule(la.svd), _svd_fixed(u0, vh0), (b,), rtol=1e-5)
    # hermitian=True: singular values of a symmetric matrix
    c = herm(rand(4, 4, seed=5))
    check_rule(rule(la.svd), lambda a, f, c, h: la.svd(herm(a), f, c, h), (c, False, False, True))
    check_float32(rule(la.svd), (a.astype(np.float32), False, False), rtol=1e-3, atol=1e-4)
    out32, pb32 = rule(la.svd)(a.astype(np.float32), False)
    assert_mirrors(pb32(random_like(out32))[0], a.astype(np.float32))


# -- matrix_power, multi_dot ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, -1, -3])
def test_matrix_power(n):
    a = wellcond(3, 3) / 3
    check_rule(rule(la.matrix_power), la.matrix_power, (a, n))
    check_rule(rule(la.matrix_power), la.matrix_power, (wellcond(2, 3, 3, complex_=True) / 3, n))


def test_matrix_power_zero_float32():
    _, pb = rule(la.matrix_power)(rand(3, 3), 0)
    assert pb is None
    check_float32(rule(la.matrix_power), ((wellcond(3, 3) / 3).astype(np.float32), 4), rtol=1e-3)


MULTI_DOT = [[(2, 3), (3, 4)], [(2, 3), (3, 4), (4, 2)], [(3,), (3, 4), (4, 2)], [(2, 3), (3, 4), (4,)],
             [(3,), (3, 4), (4,)], [(2, 3), (3, 1), (1, 5), (5, 2)]]  # fmt: skip


@pytest.mark.parametrize("shapes", MULTI_DOT, ids=str)
def test_multi_dot(shapes):
    arrays = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    cts = check_rule(rule(la.multi_dot), la.multi_dot, (arrays,))
    assert type(cts[0]) is list
    cts = check_rule(rule(la.multi_dot), la.multi_dot, (tuple(arrays),))
    assert type(cts[0]) is tuple


def test_multi_dot_complex_int_float32():
    arrays = [rand(2, 3, complex_=True), rand(3, 4, seed=1), np.ones((4, 2), dtype=int)]
    cts = check_rule(rule(la.multi_dot), la.multi_dot, (arrays,))
    assert cts[0][2] is None
    check_float32(rule(la.multi_dot), ([rand(2, 3).astype(np.float32), rand(3, 4).astype(np.float32)],))


# -- matrix_norm, vector_norm, trace, diagonal ----------------------------------------------------

needs_array_api = pytest.mark.skipif(not hasattr(la, "matrix_norm"), reason="NumPy without linalg.matrix_norm")


@needs_array_api
@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf])
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norm(ord, keepdims):
    x = rand(2, 4, 3)
    kw = {"ord": ord, "keepdims": keepdims}
    check_rule(rule(la.matrix_norm), la.matrix_norm, (x,), kw)
    check_rule(rule(la.matrix_norm), la.matrix_norm, (rand(3, 3, complex_=True),), kw)


@needs_array_api
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (1,)], ids=str)
@pytest.mark.parametrize("ord", [2, 1, np.inf, 3])
def test_vector_norm(axis, ord):
    x = rand(2, 3, 4)
    for keepdims in (False, True):
        check_rule(rule(la.vector_norm), la.vector_norm, (x,), {"axis": axis, "ord": ord, "keepdims": keepdims})
    check_rule(rule(la.vector_norm), la.vector_norm, (rand(2, 3, 4, complex_=True),), {"axis": axis, "ord": ord})


@needs_array_api
def test_norms_float32():
    check_float32(rule(la.matrix_norm), (rand(2, 4, 3).astype(np.float32),), {"ord": "nuc"}, rtol=1e-3)
    check_float32(rule(la.vector_norm), (rand(2, 4, 3).astype(np.float32),), {"axis": (0, 1)})


@needs_array_api
@pytest.mark.parametrize("offset", [0, 1, -2, 3])
def test_linalg_trace_diagonal(offset):
    for shape in [(4, 3), (2, 3, 5)]:
        x = rand(*shape)
        check_rule(rule(la.trace), la.trace, (x,), {"offset": offset})
        check_rule(rule(la.diagonal), la.diagonal, (x,), {"offset": offset})
    check_rule(rule(la.trace), la.trace, (rand(3, 3, complex_=True),), {"offset": offset})
    check_float32(rule(la.diagonal), (rand(2, 3, 3).astype(np.float32),), {"offset": offset})


# -- through the engine ----------------------------------------------------------------------------

W33 = rand(3, 3, seed=11)
W3 = rand(3, seed=12)


def f_inv(a):
    return np.sum(np.linalg.inv(a) * W33)


def f_pinv(a):
    return np.sum(np.linalg.pinv(a) ** 2)


def f_det(a):
    return np.linalg.det(a) ** 2


def f_slogdet_attr(a):
    return np.linalg.slogdet(a).logabsdet


def f_slogdet_unpack(a):
    sign, logdet = np.linalg.slogdet(a)
    return sign * logdet


def f_solve(a):
    return np.sum(np.linalg.solve(a, W3) ** 2)


def f_lstsq(a):
    x, res, rank, s = np.linalg.lstsq(a, np.ones(a.shape[0]), rcond=None)
    return np.sum(x ** 2) + np.sum(res) + np.sum(s)


def f_cholesky(a):
    sym = (a + a.T) / 2
    return np.sum(np.linalg.cholesky(sym) * W33)


def f_qr(a):
    q, r = np.linalg.qr(a)
    return np.sum(q * W33) + np.sum(np.linalg.qr(a).R ** 2)


def f_eigh(a):
    res = np.linalg.eigh((a + a.T) / 2)
    v = res.eigenvectors
    return np.sum(res.eigenvalues * W3) + np.sum((v * v) * W33)


def f_eigvalsh(a):
    return np.sum(np.linalg.eigvalsh((a + a.T) / 2) ** 3)


def f_eig(a):
    w, v = np.linalg.eig(a)
    return np.sum(np.abs(w) ** 2) + np.sum(np.abs(v) * W33)


def f_eigvals(a):
    return np.sum(np.real(np.linalg.eigvals(a)) ** 2)


def f_svd(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return np.sum((u * s) @ vh * W33) + np.sum(s ** 2) + np.sum(np.abs(u) * W33)


def f_svd_values(a):
    return np.sum(np.linalg.svd(a, compute_uv=False)) + np.sum(np.linalg.svdvals(a) ** 2)


def f_matrix_power(a):
    return np.sum(np.linalg.matrix_power(a, 3) * W33) + np.sum(np.linalg.matrix_power(a, -2))


def f_multi_dot(a):
    return np.sum(np.linalg.multi_dot([W3, a, a.T, W3]))


def f_norms(a):
    return (np.linalg.matrix_norm(a, ord="nuc") + np.linalg.vector_norm(a, axis=0, ord=3)[1]
            + np.linalg.trace(a, offset=1) + np.sum(np.linalg.diagonal(a) ** 2))


ENGINE = [f_inv, f_pinv, f_det, f_slogdet_attr, f_slogdet_unpack, f_solve, f_lstsq, f_cholesky, f_qr,
          f_eigh, f_eigvalsh, f_eig, f_eigvals, f_svd, f_svd_values, f_matrix_power, f_multi_dot]


@pytest.mark.parametrize("f", ENGINE
                         + ([f_norms] if hasattr(la, "matrix_norm") else []),
                         ids=lambda f: f.__name__)
def test_engine(f):
    a = spd(3, 3) if f in (f_cholesky, f_eigh, f_eigvalsh) else wellcond(3, 3, seed=3) / 3
    fd_grad_check(f, a)


def test_engine_vjp_complex_and_batched():
    a = wellcond(2, 3, 3, complex_=True)
    out, pb = mo.vjp(lambda a: np.linalg.inv(a), a)
    dy = rand(2, 3, 3, seed=5, complex_=True)
    (g,) = pb(dy)
    np.testing.assert_allclose(g, rule(la.inv)(a)[1](dy)[0])
    out, pb = mo.vjp(lambda a: np.linalg.svd(a, full_matrices=False), rand(2, 4, 3))
    g = pb((None, np.ones((2, 3)), None))
    np.testing.assert_allclose(g[0], out[0] @ out[2])
