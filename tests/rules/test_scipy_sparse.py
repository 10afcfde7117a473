"""Rules for products with scipy.sparse matrices and spsolve (loaded lazily once SciPy is imported).

The cotangent of a sparse matrix is an ObjectCotangent whose ``data`` holds one cotangent per
stored value (in ``A.data``'s order)."""

import operator

import numpy as np
import pytest

scipy = pytest.importorskip("scipy")
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spl  # noqa: E402

import morula as mo  # noqa: E402
import morula.rules  # noqa: E402
from morula.errors import UnsupportedOperationError  # noqa: E402
from morula.rules.registry import REGISTRY  # noqa: E402
from morula.tangents import ObjectCotangent  # noqa: E402

try:
    from .fd import check_rule
except ImportError:
    from fd import check_rule

morula.rules.load_pending()

from morula.rules import scipy_sparse  # noqa: E402

FORMATS = ["csr", "csc", "coo", "bsr"]
KINDS = ["matrix", "array"]


def rand(shape, seed=0, complex_=False, dtype=np.float64):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape)
    if complex_:
        x = x + 1j * g.standard_normal(shape)
    return x.astype(np.complex128 if complex_ else dtype)


def sparse(fmt, kind, shape=(4, 6), seed=0, complex_=False, dtype=np.float64, density=0.5):
    g = np.random.default_rng(seed)
    dense = rand(shape, seed, complex_, dtype) * (g.uniform(size=shape) < density)
    cls = getattr(sp, f"{fmt}_{kind}")
    if fmt == "bsr":
        return cls(dense, blocksize=(2, 2))
    return cls(dense)


def with_data(A, data):
    B = A.copy()
    B.data = data
    return B


def inner(a, b):
    if a is None or b is None:
        return 0.0
    return float(np.real(np.sum(np.conj(np.asarray(a)) * np.asarray(b))))


def data_of(ct):
    if ct is None:
        return None
    assert isinstance(ct, ObjectCotangent), type(ct)
    return ct.data


def check_sparse(rule, fn, args, sparse_args, eps=1e-6, rtol=1e-6, atol=1e-9, seed=1):
    """Like fd.check_rule, for positional ``args`` where those in ``sparse_args`` are sparse:
    their cotangents are ObjectCotangent(data=...) and they are perturbed through ``.data``."""
    g = np.random.default_rng(seed)
    out, pb = rule(*args)
    expected = fn(*args)
    if sp.issparse(expected):
        assert type(out) is type(expected)
        np.testing.assert_allclose(out.toarray(), expected.toarray(), rtol=1e-12)
        dy = ObjectCotangent({"data": rand(out.data.shape, seed + 1, np.iscomplexobj(out.data))})
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)
        dy = rand(np.shape(out), seed + 1, np.iscomplexobj(out))
    cts = pb(dy)
    assert len(cts) == len(args)
    for i, (ct, x) in enumerate(zip(cts, args)):
        if i in sparse_args:
            d = data_of(ct)
            assert d.shape == x.data.shape and d.dtype == x.data.dtype, (d.shape, d.dtype)
            base = x.data
        else:
            if ct is None:
                continue
            if type(x) is float:
                assert type(ct) is float
            else:
                assert np.shape(ct) == np.shape(x) and ct.dtype == np.asarray(x).dtype
            base = x
        v = rand(np.shape(base), g.integers(1000), np.iscomplexobj(base))
        plus, minus = list(args), list(args)
        if i in sparse_args:
            plus[i], minus[i] = with_data(x, base + eps * v), with_data(x, base - eps * v)
        else:
            plus[i], minus[i] = base + eps * v, base - eps * v
            if type(x) is float:
                plus[i], minus[i] = float(plus[i]), float(minus[i])
        fp, fm = fn(*plus), fn(*minus)
        if sp.issparse(fp):
            jv = (fp.data - fm.data) / (2 * eps)
            lhs = inner(dy.data, jv)
        else:
            lhs = inner(dy, (fp - fm) / (2 * eps))
        rhs = inner(data_of(ct) if i in sparse_args else ct, v)
        assert abs(lhs - rhs) <= atol + rtol * max(abs(lhs), abs(rhs), 1.0), (i, lhs, rhs)
    return cts


matmul = REGISTRY.functions[operator.matmul]
mul = REGISTRY.functions[operator.mul]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("xshape", [(6,), (6, 3)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_sparse_at_dense(fmt, kind, xshape, complex_):
    A = sparse(fmt, kind, seed=2, complex_=complex_)
    x = rand(xshape, 3, complex_)
    check_sparse(matmul, operator.matmul, (A, x), {0})
    check_sparse(REGISTRY.method_rule(type(A), "dot")[0], lambda A, x: A.dot(x), (A, x), {0})
    # dense @ sparse
    y = rand((4,) if len(xshape) == 1 else (3, 4), 4, complex_)
    check_sparse(matmul, operator.matmul, (y, A), {1})


@pytest.mark.parametrize("fmt", FORMATS)
def test_real_sparse_with_complex_or_float32_dense(fmt):
    A = sparse(fmt, "array", seed=5)
    check_sparse(matmul, operator.matmul, (A, rand((6, 2), 6, True)), {0})
    A32 = sparse(fmt, "matrix", seed=7, dtype=np.float32)
    out, pb = matmul(A32, rand((6,), 8))
    da, dx = pb(np.ones(4))
    assert da.data.dtype == np.float32 and dx.dtype == np.float64
    out, pb = matmul(sparse(fmt, "array", seed=7), rand((6,), 8).astype(np.float32))
    assert pb(np.ones(4))[1].dtype == np.float32


def test_coo_duplicates_and_explicit_zeros():
    A = sp.coo_array((np.array([1.0, 2.0, 0.0, -1.5]), (np.array([0, 0, 1, 2]),
                                                          np.array([1, 1, 0, 2]))), shape=(3, 3))
    assert not A.has_canonical_format
    x = rand((3, 2), 9)
    cts = check_sparse(matmul, operator.matmul, (A, x), {0})
    np.testing.assert_allclose(cts[0].data[0], cts[0].data[1])  # duplicates: same cotangent


@pytest.mark.parametrize("kind", KINDS)
def test_spmatrix_star_is_matmul_and_scalar_scaling(kind):
    A = sparse("csr", kind, seed=10)
    x = rand((6,), 11)
    if kind == "matrix":
        check_sparse(mul, operator.mul, (A, x), {0})
        check_sparse(mul, operator.mul, (rand((2, 4), 12), A), {1})
    else:
        with pytest.raises(UnsupportedOperationError):
            mul(A, x)
    check_sparse(mul, operator.mul, (A, 2.5), {0})
    check_sparse(mul, operator.mul, (np.float64(-1.5), A), {1})
    dot = REGISTRY.method_rule(type(A), "dot")[0]
    check_sparse(dot, lambda A, s: A.dot(s), (A, 0.5), {0})


def test_transpose_toarray_and_conversions():
    for fmt in ("csr", "csc", "coo", "bsr"):
        for kind in KINDS:
            A = sparse(fmt, kind, seed=13)
            if fmt != "bsr":   # transposing BSR is refused (test_bsr_transpose_is_refused)
                transpose = REGISTRY.method_rule(type(A), "transpose")[0]
                check_sparse(transpose, lambda A: A.transpose(), (A,), {0})
            toarray = REGISTRY.method_rule(type(A), "toarray")[0]
            check_sparse(toarray, lambda A: A.toarray(), (A,), {0})
            for name in ("tocsr", "tocsc", "tocoo"):
                conv = REGISTRY.method_rule(type(A), name)[0]
                check_sparse(conv, lambda A, name=name: getattr(A, name)(), (A,), {0})


def test_constructors():
    data = rand((5,), 14)
    row, col = np.array([0, 2, 2, 1, 0]), np.array([1, 0, 3, 3, 1])  # a duplicate (0, 1)
    for fmt in ("csr", "csc", "coo"):
        for kind in KINDS:
            cls = getattr(sp, f"{fmt}_{kind}")
            ctor = REGISTRY.functions[cls]

            def build(data, cls=cls):
                return cls((data, (row, col)), shape=(3, 4))

            out, pb = ctor((data, (row, col)), (3, 4))
            g = ObjectCotangent({"data": rand(out.data.shape, 15)})
            ddata = pb(g)[0][0]
            # <g, d out.data> == <ddata, d data> (same construction: same layout of .data)
            v = rand((5,), 16)
            eps = 1e-6
            jv = (build(data + eps * v).data - build(data - eps * v).data) / (2 * eps)
            assert abs(np.sum(g.data * jv) - np.sum(ddata * v)) < 1e-8
    A = sparse("csr", "array", seed=17)
    ctor = REGISTRY.functions[sp.csr_array]
    out, pb = ctor((A.data, A.indices, A.indptr), A.shape)
    g = ObjectCotangent({"data": rand(out.data.shape, 18)})
    np.testing.assert_array_equal(pb(g)[0][0], g.data)
    dense = rand((3, 4), 19) * np.array([1.0, 0.0, 1.0, 1.0])  # a zero column is not stored
    out, pb = ctor(dense)
    g = ObjectCotangent({"data": rand(out.data.shape, 20)})
    expected = scipy_sparse.as_sparse(g, out).toarray()
    np.testing.assert_array_equal(pb(g)[0], expected)  # the fixed-pattern convention
    assert np.all(pb(g)[0][:, 1] == 0)
    out32, pb32 = REGISTRY.functions[sp.bsr_matrix](dense.astype(np.float32)[:, :4],
                                                  blocksize=(1, 2))
    assert pb32(ObjectCotangent({"data": np.ones_like(out32.data)}))[0].dtype == np.float32
    out, pb = ctor(np.arange(9).reshape(3, 3))
    assert pb is None


@pytest.mark.parametrize("bshape", [(5,), (5, 1), (5, 3)], ids=str)
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_spsolve(bshape, complex_, fmt):
    g = np.random.default_rng(20)
    dense = rand((5, 5), 21, complex_) * (g.uniform(size=(5, 5)) < 0.4) + 5 * np.eye(5)
    A = getattr(sp, f"{fmt}_array")(dense)
    b = rand(bshape, 22, complex_)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sp.SparseEfficiencyWarning)
        check_sparse(REGISTRY.functions[spl.spsolve], spl.spsolve, (A, b), {0})


def test_refusals():
    A = sparse("csr", "array", seed=23)
    with pytest.raises(UnsupportedOperationError):
        matmul(A, A.T)
    with pytest.raises(UnsupportedOperationError):
        matmul(sp.dia_array(A.toarray()), rand((6,), 24))
    with pytest.raises(UnsupportedOperationError):
        REGISTRY.functions[spl.spsolve](sparse("csr", "array", (6, 6), 25, density=1.0) +
                                        sp.eye_array(6), sp.csr_array(np.ones((6, 1))))


def test_dense_operands_still_use_the_previous_rules():
    a, b = rand((2, 3), 26), rand((3,), 27)
    check_rule(matmul, operator.matmul, (a, b))
    check_rule(mul, operator.mul, (a, b))
    out, pb = mul(2.0, 3.0)
    assert out == 6.0 and pb(1.0) == (3.0, 2.0)


def test_as_sparse():
    A = sparse("coo", "matrix", seed=28)
    ct = ObjectCotangent({"data": np.arange(A.nnz, dtype=float)})
    S = scipy_sparse.as_sparse(ct, A)
    assert type(S) is type(A) and S.nnz == A.nnz
    np.testing.assert_array_equal(S.data, ct.data)
    assert scipy_sparse.as_sparse(None, A).nnz == A.nnz


# -- through morula.grad ---------------------------------------------------------------------------


def fd_grad_check(f, A, x, eps=1e-6, rtol=1e-6, seed=29):
    g = np.random.default_rng(seed)
    gA, gx = mo.grad(f, argnums=(0, 1))(A, x)
    assert isinstance(gA, ObjectCotangent) and gA.data.shape == A.data.shape
    assert np.shape(gx) == np.shape(x)
    v = g.standard_normal(A.data.shape)
    lhs = (f(with_data(A, A.data + eps * v), x) - f(with_data(A, A.data - eps * v), x)) / (2 * eps)
    assert lhs == pytest.approx(np.sum(gA.data * v), rel=rtol, abs=1e-8)
    w = g.standard_normal(np.shape(x))
    lhs = (f(A, x + eps * w) - f(A, x - eps * w)) / (2 * eps)
    assert lhs == pytest.approx(np.sum(gx * w), rel=rtol, abs=1e-8)


def products(A, x):
    y = A @ x
    z = A.dot(np.sin(x))
    u = y @ A
    return np.sum(y * y) + np.sum(z) + np.sum(np.cos(u)) + np.sum((2.0 * A) @ x)


def transposed(A, x):
    return np.sum((A.T @ np.arange(4.0)) * x) + np.sum(A.toarray() ** 2) + np.sum(A.data ** 3)


def star(A, x):
    return np.sum(A * x) + np.sum(np.arange(4.0) * A)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_grad_products(fmt, kind):
    A = sparse(fmt, kind, seed=30)
    x = rand((6,), 31)
    fd_grad_check(products, A, x)
    if fmt != "bsr":
        fd_grad_check(transposed, A, x)
    if kind == "matrix":
        fd_grad_check(star, A, x)


def solve(A, b):
    x = spl.spsolve(A, b)
    return np.sum(x ** 2) + np.sum(A @ x)


def test_grad_spsolve():
    g = np.random.default_rng(32)
    A = sp.csc_array(g.standard_normal((5, 5)) * (g.uniform(size=(5, 5)) < 0.4) + 5 * np.eye(5))
    fd_grad_check(solve, A, rand((5,), 33))


def built(data, x):
    rows = np.array([0, 1, 1, 3, 2])
    cols = np.array([0, 2, 5, 1, 1])
    A = sp.csr_array((data, (rows, cols)), shape=(4, 6))
    B = sp.coo_matrix((data * 2.0, (rows, cols)), shape=(4, 6)).tocsc()
    return np.sum((A @ x) ** 2) + np.sum(B @ x)


def test_grad_of_values_of_a_matrix_built_inside():
    data, x = rand((5,), 34), rand((6,), 35)
    gd, gx = mo.grad(built, argnums=(0, 1))(data, x)
    eps = 1e-6
    for i, (arg, gr) in enumerate([(data, gd), (x, gx)]):
        v = rand(arg.shape, 36 + i)
        args_p, args_m = [data, x], [data, x]
        args_p[i], args_m[i] = arg + eps * v, arg - eps * v
        lhs = (built(*args_p) - built(*args_m)) / (2 * eps)
        assert lhs == pytest.approx(np.sum(gr * v), rel=1e-6)


def test_bsr_transpose_is_refused():
    A = sparse("bsr", "array", seed=37)
    with pytest.raises(UnsupportedOperationError):
        REGISTRY.method_rule(type(A), "transpose")[0](A)


# What the loops above sweep (read by scripts/rules_table.py for the "tested" column).
SWEPT = [getattr(sp, f"{fmt}_{kind}") for fmt in ("csr", "csc", "coo", "bsr") for kind in KINDS] + [
    (getattr(sp, f"{fmt}_{kind}"), name) for fmt in ("csr", "csc", "coo", "bsr") for kind in KINDS
    for name in ("dot", "toarray", "tocsr", "tocsc", "tocoo", "transpose")]
