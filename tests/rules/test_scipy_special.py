"""Rules for scipy.special (loaded lazily once SciPy is imported)."""

import numpy as np
import pytest

scipy = pytest.importorskip("scipy")
import scipy.special as sc  # noqa: E402

import morula as mo  # noqa: E402
import morula.rules  # noqa: E402
from morula.errors import UnsupportedOperationError  # noqa: E402
from morula.rules.registry import REGISTRY  # noqa: E402

try:
    from .fd import check_float32, check_rule
except ImportError:
    from fd import check_float32, check_rule

morula.rules.load_pending()

SHAPES = [(), (3,), (2, 3)]


def rule(fn):
    r = REGISTRY.function_rule(fn)
    assert r is not None, f"no rule for {fn}"
    return r


def between(lo, hi):
    return lambda shape, gen: gen.uniform(lo, hi, shape)


def normal(shape, gen):
    return gen.standard_normal(shape)


def away_from_zero(shape, gen):
    return gen.uniform(0.3, 2.0, shape) * gen.choice([-1.0, 1.0], shape)


POSITIVE = between(0.5, 3.0)

UNARY = [
    (sc.gamma, between(0.3, 3.0)), (sc.gamma, between(-2.8, -2.2)), (sc.gammaln, POSITIVE),
    (sc.gammaln, between(-1.8, -1.2)), (sc.loggamma, POSITIVE), (sc.rgamma, between(0.3, 3.0)),
    (sc.digamma, POSITIVE), (sc.erf, normal), (sc.erfc, normal), (sc.erfcx, normal),
    (sc.erfinv, between(-0.9, 0.9)), (sc.erfcinv, between(0.1, 1.9)), (sc.ndtr, normal),
    (sc.ndtri, between(0.05, 0.95)), (sc.log_ndtr, between(-8.0, 3.0)), (sc.expit, normal),
    (sc.logit, between(0.05, 0.95)), (sc.log_expit, normal), (sc.expm1, normal),
    (sc.log1p, between(-0.5, 2.0)), (sc.exp2, normal), (sc.exp10, normal),
    (sc.cbrt, away_from_zero), (sc.entr, between(0.1, 2.0)), (sc.i0, normal), (sc.i1, normal),
    (sc.i0e, away_from_zero), (sc.i1e, away_from_zero), (sc.j0, normal), (sc.j1, normal),
    (sc.y0, POSITIVE), (sc.y1, POSITIVE), (sc.k0, POSITIVE), (sc.k1, POSITIVE),
    (sc.k0e, POSITIVE), (sc.k1e, POSITIVE),
]  # fmt: skip

HOLOMORPHIC = [sc.gamma, sc.loggamma, sc.erf, sc.erfc, sc.ndtr, sc.log_ndtr, sc.expm1, sc.log1p]


def _id(p):
    return getattr(p, "__name__", str(p))


def _ids(cases):
    return [f"{_id(f)}-{i}" for i, (f, *_) in enumerate(cases)]


@pytest.mark.parametrize("fn,domain", UNARY, ids=_ids(UNARY))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary(fn, domain, shape):
    gen = np.random.default_rng(0)
    x = domain(shape, gen)
    if shape == ():
        x = np.float64(x)
    check_rule(rule(fn), fn, (x,), rtol=1e-5)


@pytest.mark.parametrize("fn,domain", UNARY, ids=_ids(UNARY))
def test_unary_python_float_and_float32(fn, domain):
    gen = np.random.default_rng(1)
    cts = check_rule(rule(fn), fn, (float(domain((), gen)),), rtol=1e-5)
    assert type(cts[0]) is float
    check_float32(rule(fn), (domain((2, 3), gen).astype(np.float32),), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("fn", HOLOMORPHIC, ids=_id)
def test_unary_complex(fn):
    gen = np.random.default_rng(2)
    z = gen.uniform(0.5, 1.5, (2, 3)) + 1j * gen.uniform(-0.5, 0.5, (2, 3))
    check_rule(rule(fn), fn, (z,), rtol=1e-5)


def test_psi_is_digamma_and_integer_input_is_constant():
    assert rule(sc.psi) is rule(sc.digamma)
    _, pb = rule(sc.gammaln)(np.arange(1, 4))
    assert pb is None


def test_derivatives_at_special_points():
    _, pb = rule(sc.i1)(np.array([0.0]))
    assert pb(np.ones(1))[0][0] == 0.5
    _, pb = rule(sc.i1e)(np.array([0.0]))
    assert pb(np.ones(1))[0][0] == 0.5
    _, pb = rule(sc.j1)(np.array([0.0]))
    assert pb(np.ones(1))[0][0] == 0.5
    _, pb = rule(sc.entr)(np.array([0.0, -1.0]))
    np.testing.assert_array_equal(pb(np.ones(2))[0], [np.inf, 0.0])
    # log_ndtr far in the left tail: the slope ~ -x, no underflow to nan
    _, pb = rule(sc.log_ndtr)(np.array([-40.0]))
    np.testing.assert_allclose(pb(np.ones(1))[0], [40.0], rtol=1e-3)


def test_ufunc_out_is_refused():
    with pytest.raises(UnsupportedOperationError):
        rule(sc.gammaln)(np.ones(3), out=np.empty(3))


# -- binary -------------------------------------------------------------------------------------

PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3))]

BINARY = [
    (sc.beta, POSITIVE, POSITIVE), (sc.betaln, POSITIVE, POSITIVE), (sc.xlogy, normal, POSITIVE),
    (sc.xlog1py, normal, between(-0.5, 2.0)), (sc.rel_entr, POSITIVE, POSITIVE),
    (sc.kl_div, POSITIVE, POSITIVE),
]  # fmt: skip


@pytest.mark.parametrize("fn,d1,d2", BINARY, ids=_ids(BINARY))
@pytest.mark.parametrize("s1,s2", PAIRS, ids=str)
def test_binary(fn, d1, d2, s1, s2):
    gen = np.random.default_rng(3)
    x1, x2 = d1(s1, gen), d2(s2, gen)
    x1 = np.float64(x1) if s1 == () else x1
    check_rule(rule(fn), fn, (x1, x2), rtol=1e-5)
    check_float32(rule(fn), (np.float32(x1), x2.astype(np.float32)), rtol=1e-3, atol=1e-4)


def test_xlogy_complex():
    gen = np.random.default_rng(4)
    x = gen.standard_normal(3) + 1j * gen.standard_normal(3)
    y = gen.uniform(0.5, 2, 3) + 1j * gen.uniform(-0.5, 0.5, 3)
    check_rule(rule(sc.xlogy), sc.xlogy, (x, y), rtol=1e-5)


def test_xlogy_zero_conventions():
    x = np.array([0.0, 0.0, 1.0])
    y = np.array([0.0, 2.0, 2.0])
    out, pb = rule(sc.xlogy)(x, y)
    np.testing.assert_array_equal(out, [0.0, 0.0, np.log(2.0)])
    dx, dy = pb(np.ones(3))
    np.testing.assert_array_equal(dx, [0.0, np.log(2.0), np.log(2.0)])
    np.testing.assert_array_equal(dy, [0.0, 0.0, 0.5])
    out, pb = rule(sc.xlog1py)(x, y - 1)
    dx, dy = pb(np.ones(3))
    np.testing.assert_array_equal(dx, [0.0, np.log(2.0), np.log(2.0)])
    np.testing.assert_array_equal(dy, [0.0, 0.0, 0.5])


def test_entropy_at_zero():
    _, pb = rule(sc.rel_entr)(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    dx, dy = pb(np.ones(2))
    np.testing.assert_array_equal(dx, [-np.inf, 0.0])  # true slope at 0; constant inf at y == 0
    np.testing.assert_array_equal(dy, [0.0, 0.0])
    _, pb = rule(sc.kl_div)(np.array([0.0]), np.array([2.0]))
    dx, dy = pb(np.ones(1))
    np.testing.assert_array_equal(dy, [1.0])


# -- a parameter and an argument --------------------------------------------------------------

PARAMETRIZED = [
    (sc.jv, [0.0, 1.0, 2.5], POSITIVE), (sc.yv, [0.0, 1.0, 2.5], POSITIVE),
    (sc.iv, [0.0, 1.0, 2.5], POSITIVE), (sc.kv, [0.0, 1.0, 2.5], POSITIVE),
    (sc.jve, [0.5, 2.0], POSITIVE), (sc.yve, [0.5, 2.0], POSITIVE),
    (sc.ive, [0.0, 1.0, 3.0], away_from_zero), (sc.kve, [0.5, 2.0], POSITIVE),
    (sc.polygamma, [0, 1, 3], POSITIVE),
]  # fmt: skip


@pytest.mark.parametrize("fn,orders,domain", PARAMETRIZED, ids=_ids(PARAMETRIZED))
def test_parametrized(fn, orders, domain):
    gen = np.random.default_rng(5)
    v = np.array(orders)[:, None]
    x = domain((4,), gen)
    cts = check_rule(rule(fn), fn, (v, x), wrt=[1], rtol=1e-5)
    assert cts[0] is None
    check_rule(rule(fn), fn, (orders[-1], float(x[0])), wrt=[1], rtol=1e-5)
    check_float32(rule(fn), (orders[0], x.astype(np.float32)), rtol=1e-3, atol=1e-4)


def test_bessel_complex_argument():
    gen = np.random.default_rng(6)
    z = gen.uniform(0.5, 2, 3) + 1j * gen.uniform(-0.5, 0.5, 3)
    for fn in (sc.jv, sc.iv, sc.kv, sc.yv):
        check_rule(rule(fn), fn, (1.5, z), wrt=[1], rtol=1e-5)
    with pytest.raises(UnsupportedOperationError):
        rule(sc.jve)(1.5, z)


# -- zeta ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x,q", [(np.array([1.5, 2.0, 3.5, 7.0]), np.array([0.3, 1.0, 2.5, 10.0])),
                                 (np.array([1.2, 4.0, 25.0]), 0.7), (2.5, None)], ids=str)
def test_zeta(x, q):
    if q is None:
        check_rule(rule(sc.zeta), lambda x: sc.zeta(x), (x,), rtol=1e-6)
    else:
        check_rule(rule(sc.zeta), sc.zeta, (x, q), rtol=1e-6)


def test_zeta_exponent_derivative_is_nan_outside_its_domain():
    _, pb = rule(sc.zeta)(np.array([0.5]), np.array([1.0]))
    assert np.isnan(pb(np.ones(1))[0][0])
    # Riemann zeta'(2) = -0.93754825431584...
    _, pb = rule(sc.zeta)(2.0)
    assert pb(1.0)[0] == pytest.approx(-0.9375482543158437, rel=1e-12)


# -- logsumexp / softmax --------------------------------------------------------------------------

LSE_CASES = [
    ((4,), {}), ((2, 3), {}), ((2, 3), {"axis": 1}), ((2, 3, 4), {"axis": (0, 2)}),
    ((2, 3), {"axis": -1, "keepdims": True}), ((2, 3), {"keepdims": True}),
    ((2, 3), {"axis": 0, "return_sign": True}),
]  # fmt: skip


@pytest.mark.parametrize("shape,kwargs", LSE_CASES, ids=str)
def test_logsumexp(shape, kwargs):
    gen = np.random.default_rng(7)
    a = gen.standard_normal(shape)
    check_rule(rule(sc.logsumexp), sc.logsumexp, (a,), kwargs)


@pytest.mark.parametrize("sa,sb,axis", [((2, 3), (2, 3), 1), ((2, 3), (3,), None),
                                        ((3,), (2, 3), 1), ((2, 1), (2, 3), 0)], ids=str)
def test_logsumexp_weights(sa, sb, axis):
    gen = np.random.default_rng(8)
    a, b = gen.standard_normal(sa), gen.uniform(0.5, 2, sb)
    lse = rule(sc.logsumexp)
    check_rule(lse, lambda a, axis, b: sc.logsumexp(a, axis, b), (a, axis, b))
    b = b * np.where(gen.uniform(size=sb) < 0.3, -1, 1)
    check_rule(lse, lambda a, axis, b, k, s: sc.logsumexp(a, axis, b, k, s),
               (a, axis, b, False, True))


def test_logsumexp_float32_and_all_minus_inf():
    gen = np.random.default_rng(9)
    check_float32(rule(sc.logsumexp), (gen.standard_normal((2, 3)).astype(np.float32), 1))
    a = np.array([[-np.inf, -np.inf], [0.0, 1.0]])
    out, pb = rule(sc.logsumexp)(a, 1)
    g = pb(np.ones(2))[0]
    np.testing.assert_array_equal(g[0], [0.0, 0.0])
    np.testing.assert_allclose(g[1].sum(), 1.0)


@pytest.mark.parametrize("fn", [sc.softmax, sc.log_softmax], ids=_id)
@pytest.mark.parametrize("shape,axis", [((4,), None), ((2, 3), None), ((2, 3), 0), ((2, 3, 4), -1),
                                        ((2, 3, 4), (0, 2))], ids=str)
def test_softmax(fn, shape, axis):
    gen = np.random.default_rng(10)
    x = gen.standard_normal(shape)
    check_rule(rule(fn), fn, (x, axis))
    check_float32(rule(fn), (x.astype(np.float32), axis))


# -- through morula.grad -------------------------------------------------------------------------


def fd_check_grad(f, args, argnums=0, eps=1e-6, rtol=1e-5, atol=1e-8):
    """Compare morula.grad(f) with central differences along random directions."""
    gen = np.random.default_rng(11)
    nums = (argnums,) if isinstance(argnums, int) else argnums
    grads = mo.grad(f, argnums=argnums)(*args)
    grads = (grads,) if isinstance(argnums, int) else grads
    for i, g in zip(nums, grads):
        x = args[i]
        v = gen.standard_normal(np.shape(x))
        plus, minus = list(args), list(args)
        plus[i], minus[i] = x + eps * v, x - eps * v
        lhs = (f(*plus) - f(*minus)) / (2 * eps)
        rhs = float(np.sum(np.asarray(g) * v))
        assert abs(lhs - rhs) <= atol + rtol * max(abs(lhs), abs(rhs), 1.0), (lhs, rhs)
        assert np.shape(g) == np.shape(x)
    return grads


def _unary_user(fn):
    def user(x):
        y = fn(x) * np.cos(x)
        return np.sum(y)

    return user


@pytest.mark.parametrize("fn,domain", UNARY, ids=_ids(UNARY))
def test_grad_unary(fn, domain):
    x = domain((3,), np.random.default_rng(12))
    fd_check_grad(_unary_user(fn), (x,))


def _binary_user(fn):
    def user(x, y):
        return np.sum(fn(x, y) * np.sin(y))

    return user


@pytest.mark.parametrize("fn,d1,d2", BINARY, ids=_ids(BINARY))
def test_grad_binary(fn, d1, d2):
    gen = np.random.default_rng(13)
    fd_check_grad(_binary_user(fn), (d1((3,), gen), d2((3,), gen)), argnums=(0, 1))


@pytest.mark.parametrize("fn,orders,domain", PARAMETRIZED, ids=_ids(PARAMETRIZED))
def test_grad_parametrized(fn, orders, domain):
    def user(x):
        total = 0.0
        for v in orders:
            total = total + np.sum(fn(v, x))
        return total

    fd_check_grad(user, (domain((3,), np.random.default_rng(14)),))


def test_grad_zeta_logsumexp_softmax():
    def zeta_user(x, q):
        return np.sum(sc.zeta(x, q) + sc.zeta(x))

    fd_check_grad(zeta_user, (np.array([2.0, 3.0]), np.array([0.5, 1.5])), argnums=(0, 1))

    def lse_user(a, b):
        return sc.logsumexp(a, axis=1, b=b).sum() + sc.logsumexp(a, keepdims=True)[0, 0]

    gen = np.random.default_rng(15)
    fd_check_grad(lse_user, (gen.standard_normal((2, 3)), gen.uniform(0.5, 2, 3)), argnums=(0, 1))

    def softmax_user(x):
        w = np.arange(6.0).reshape(2, 3)
        return np.sum(sc.softmax(x, axis=1) * w) + np.sum(sc.log_softmax(x) * w)

    fd_check_grad(softmax_user, (gen.standard_normal((2, 3)),))


def test_grad_keyword_arguments_and_python_floats():
    def user(x):
        return sc.logsumexp(x, axis=0, keepdims=False).sum() + sc.gammaln(x[0] + 1.5).sum()

    fd_check_grad(user, (np.array([[0.5, 1.0], [2.0, -1.0]]),))

    def scalar_user(x):
        return sc.expit(x) * sc.erf(x) + sc.jv(1, x)

    g = mo.grad(scalar_user)(0.7)
    assert type(g) is float
    h = 1e-6
    assert g == pytest.approx((scalar_user(0.7 + h) - scalar_user(0.7 - h)) / (2 * h), rel=1e-6)


def test_rules_load_lazily_in_a_fresh_process(tmp_path):
    """morula never imports SciPy; the rules arrive the first time differentiated code runs
    after the user imported it, with nothing to call by hand."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "lazy_user.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import morula as mo
        from morula.rules.registry import REGISTRY
        assert "scipy" not in sys.modules, "morula imported scipy"
        import scipy.special as sc
        import scipy.sparse as sp
        assert REGISTRY.function_rule(sc.gammaln) is None

        def f(x):
            return np.sum(sc.gammaln(x)) + np.sum(sp.csr_array(np.eye(2)) @ x)

        g = mo.grad(f)(np.array([1.5, 2.5]))
        assert np.allclose(g, sc.digamma(np.array([1.5, 2.5])) + 1.0), g
        print("ok")
    """))
    src = str(__import__("pathlib").Path(mo.__file__).resolve().parents[1])
    env = dict(__import__("os").environ, PYTHONPATH=src)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
