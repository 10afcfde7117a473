import numpy as np
import pytest

import morula.rules.numpy_rules  # noqa: F401
from morula.errors import UnsupportedOperationError
from morula.rules.registry import REGISTRY

try:
    from .fd import check_float32, check_rule
except ImportError:
    from fd import check_float32, check_rule

SHAPES = [(), (3,), (2, 3), (2, 3, 4)]


def rule(fn):
    r = REGISTRY.function_rule(fn)
    assert r is not None, f"no rule for {fn}"
    return r


def normal(shape, gen):
    return gen.standard_normal(shape)


def between(lo, hi):
    return lambda shape, gen: gen.uniform(lo, hi, shape)


def away_from_zero(shape, gen):
    return gen.uniform(0.5, 2.0, shape) * gen.choice([-1.0, 1.0], shape)


POSITIVE = between(0.5, 2.0)

UNARY = [
    (np.exp, normal), (np.exp2, normal), (np.expm1, normal),
    (np.log, POSITIVE), (np.log2, POSITIVE), (np.log10, POSITIVE), (np.log1p, between(-0.5, 2.0)),
    (np.sqrt, POSITIVE), (np.cbrt, away_from_zero), (np.square, normal),
    (np.reciprocal, away_from_zero), (np.sin, normal), (np.cos, normal),
    (np.tan, between(-1.2, 1.2)), (np.sinh, normal), (np.cosh, normal), (np.tanh, normal),
    (np.arcsin, between(-0.9, 0.9)), (np.arccos, between(-0.9, 0.9)), (np.arctan, normal),
    (np.arcsinh, normal), (np.arccosh, between(1.2, 3.0)), (np.arctanh, between(-0.9, 0.9)),
    (np.deg2rad, normal), (np.radians, normal), (np.rad2deg, normal), (np.degrees, normal),
    (np.absolute, away_from_zero), (np.fabs, away_from_zero), (np.negative, normal),
    (np.positive, normal), (np.conjugate, normal), (np.real, normal), (np.sinc, away_from_zero),
]  # fmt: skip

HOLOMORPHIC = [
    np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10, np.log1p, np.sqrt, np.square,
    np.reciprocal, np.sin, np.cos, np.tan, np.sinh, np.cosh, np.tanh, np.arcsin, np.arccos,
    np.arctan, np.arcsinh, np.arccosh, np.arctanh, np.negative, np.positive,
]  # fmt: skip


def _id(p):
    return getattr(p, "__name__", str(p))


@pytest.mark.parametrize("fn,domain", UNARY, ids=[_id(f) for f, _ in UNARY])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary(fn, domain, shape):
    gen = np.random.default_rng(0)
    x = domain(shape, gen)
    if shape == ():
        x = np.float64(x)
    check_rule(rule(fn), fn, (x,))


@pytest.mark.parametrize("fn,domain", UNARY, ids=[_id(f) for f, _ in UNARY])
def test_unary_python_float_and_float32(fn, domain):
    gen = np.random.default_rng(1)
    x = float(domain((), gen))
    cts = check_rule(rule(fn), fn, (x,))
    assert type(cts[0]) is float
    x32 = domain((2, 3), gen).astype(np.float32)
    check_float32(rule(fn), (x32,))


def _complex(shape, gen):
    return gen.uniform(0.3, 0.8, shape) + 1j * gen.uniform(0.2, 0.6, shape)


@pytest.mark.parametrize("fn", HOLOMORPHIC, ids=_id)
def test_unary_complex(fn):
    gen = np.random.default_rng(2)
    check_rule(rule(fn), fn, (_complex((2, 3), gen),))


@pytest.mark.parametrize("fn", [np.absolute, np.conjugate, np.real, np.imag], ids=_id)
def test_complex_non_holomorphic(fn):
    gen = np.random.default_rng(3)
    z = _complex((4,), gen)
    check_rule(rule(fn), fn, (z,))
    check_rule(rule(fn), fn, (complex(z[0]),))


def test_imag_of_real_is_constant():
    out, pb = rule(np.imag)(np.ones(3))
    assert pb is None
    np.testing.assert_array_equal(out, np.zeros(3))


def test_integer_input_is_constant():
    out, pb = rule(np.sin)(np.arange(3))
    np.testing.assert_allclose(out, np.sin(np.arange(3)))
    assert pb is None
    out, pb = rule(np.multiply)(np.arange(3), 2)
    assert pb is None


def test_abs_at_zero_is_zero():
    x = np.array([-1.0, 0.0, 2.0])
    _, pb = rule(np.absolute)(x)
    np.testing.assert_array_equal(pb(np.ones(3))[0], [-1.0, 0.0, 1.0])
    _, pb = rule(np.absolute)(np.array([0j, 3 + 4j]))
    np.testing.assert_allclose(pb(np.ones(2))[0], [0, 0.6 + 0.8j])


def test_sqrt_at_zero_is_inf():
    _, pb = rule(np.sqrt)(np.array([0.0, 4.0]))
    with np.errstate(divide="ignore"):
        g = pb(np.ones(2))[0]
    assert np.isinf(g[0]) and g[1] == 0.25


def test_sinc_at_zero():
    x = np.array([0.0, 0.5])
    _, pb = rule(np.sinc)(x)
    g = pb(np.ones(2))[0]
    assert g[0] == 0.0
    check_rule(rule(np.sinc), np.sinc, (np.array([1e-3, 0.5, -1.5]),))


# -- binary -----------------------------------------------------------------------------------

PAIRS = [((2, 3), (2, 3)), ((3,), (2, 3)), ((2, 3), (3,)), ((1, 3), (2, 1)), ((), (2, 3)),
         ((2, 3), ()), ((2, 1, 4), (3, 1))]  # fmt: skip

BINARY = [
    (np.add, normal, normal), (np.subtract, normal, normal), (np.multiply, normal, normal),
    (np.divide, normal, away_from_zero), (np.power, POSITIVE, normal),
    (np.float_power, POSITIVE, normal), (np.arctan2, away_from_zero, away_from_zero),
    (np.hypot, away_from_zero, away_from_zero), (np.logaddexp, normal, normal),
    (np.logaddexp2, normal, normal), (np.maximum, normal, normal), (np.minimum, normal, normal),
    (np.fmax, normal, normal), (np.fmin, normal, normal),
    (np.remainder, between(0.1, 0.9), between(1.0, 2.0)),
    (np.fmod, between(-0.9, 0.9), between(1.0, 2.0)),
    (np.copysign, away_from_zero, away_from_zero),
]  # fmt: skip


@pytest.mark.parametrize("fn,d1,d2", BINARY, ids=[_id(b[0]) for b in BINARY])
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_binary_broadcasting(fn, d1, d2, shapes):
    gen = np.random.default_rng(4)
    x1, x2 = d1(shapes[0], gen), d2(shapes[1], gen)
    check_rule(rule(fn), fn, (x1, x2))


@pytest.mark.parametrize("fn,d1,d2", BINARY, ids=[_id(b[0]) for b in BINARY])
def test_binary_python_scalars_and_float32(fn, d1, d2):
    gen = np.random.default_rng(5)
    x1, x2 = float(d1((), gen)), d2((3,), gen)
    cts = check_rule(rule(fn), fn, (x1, x2))
    assert cts[0] is None or type(cts[0]) is float
    check_rule(rule(fn), fn, (d1((3,), gen), float(d2((), gen))))
    check_float32(rule(fn), (d1((2, 3), gen).astype(np.float32), d2((3,), gen).astype(np.float32)))


@pytest.mark.parametrize("fn", [np.add, np.subtract, np.multiply, np.divide, np.power], ids=_id)
def test_binary_complex(fn):
    gen = np.random.default_rng(6)
    check_rule(rule(fn), fn, (_complex((2, 3), gen), _complex((3,), gen)))
    # real operand meeting a complex one gets a real cotangent
    check_rule(rule(fn), fn, (gen.uniform(0.5, 1.5, (3,)), _complex((2, 3), gen)))


def test_integer_partner_gets_none():
    x = np.array([1.0, 2.0, 3.0])
    for fn in (np.add, np.multiply, np.power, np.divide, np.maximum):
        cts = check_rule(rule(fn), fn, (x, np.array([1, 2, 3])))
        assert cts[1] is None
    cts = check_rule(rule(np.power), np.power, (x, 2))
    assert cts[1] is None


def test_power_special_points():
    x = np.array([0.0, -2.0, 3.0, 0.0])
    y = np.array([2.0, 2.0, 2.0, 0.0])
    _, pb = rule(np.power)(x, y)
    with np.errstate(all="raise"):
        dx, dyy = pb(np.ones(4))
    np.testing.assert_allclose(dx, [0.0, -4.0, 6.0, 0.0])
    np.testing.assert_allclose(dyy, [0.0, 0.0, 9 * np.log(3.0), 0.0])
    _, pb = rule(np.power)(0.0, 0.0)
    assert pb(1.0) == (0.0, 0.0)


def test_maximum_ties_split():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 1.0, 4.0])
    for fn in (np.maximum, np.fmax):
        _, pb = rule(fn)(x, y)
        dx, dy = pb(np.ones(3))
        np.testing.assert_array_equal(dx, [0.5, 1.0, 0.0])
        np.testing.assert_array_equal(dy, [0.5, 0.0, 1.0])
    _, pb = rule(np.minimum)(x, y)
    dx, dy = pb(np.ones(3))
    np.testing.assert_array_equal(dx, [0.5, 0.0, 1.0])


def test_fmax_ignores_nan():
    x = np.array([np.nan, 2.0])
    y = np.array([1.0, np.nan])
    _, pb = rule(np.fmax)(x, y)
    dx, dy = pb(np.ones(2))
    np.testing.assert_array_equal(dx, [0.0, 1.0])
    np.testing.assert_array_equal(dy, [1.0, 0.0])


# -- clip / where ---------------------------------------------------------------------------------


def test_clip_sweep():
    gen = np.random.default_rng(7)
    x = gen.standard_normal((3, 4))
    check_rule(rule(np.clip), np.clip, (x, -0.5, 0.5))
    check_rule(rule(np.clip), np.clip, (x, gen.uniform(-1, -0.2, (4,)), gen.uniform(0.2, 1, (3, 1))))
    check_rule(rule(np.clip), np.clip, (x, None, 0.3))
    check_rule(rule(np.clip), np.clip, (x, -0.3, None))
    check_float32(rule(np.clip), (x.astype(np.float32), np.float32(-0.5), np.float32(0.5)))
    cts = check_rule(rule(np.clip), np.clip, (x, -1, 1))
    assert cts[1] is None and cts[2] is None


def test_clip_convention_at_bounds():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    _, pb = rule(np.clip)(x, -1.0, 1.0)
    dx, dlo, dhi = pb(np.ones(5))
    np.testing.assert_array_equal(dx, [0, 1, 1, 1, 0])
    assert dlo == 1.0 and dhi == 1.0


def test_clip_method_and_keywords():
    x = np.array([-2.0, 0.0, 2.0])
    r, _ = REGISTRY.method_rule(np.ndarray, "clip")
    check_rule(r, lambda s, lo, hi: s.clip(lo, hi), (x, -1.0, 1.0))
    _, pb = r(x, -1.0, 1.0)
    dx, dlo, dhi = pb(np.ones(3))
    assert dx.tolist() == [0, 1, 0] and dlo == 1.0 and dhi == 1.0
    # min=/max= keywords are static: only x gets a cotangent
    out, pb = rule(np.clip)(x, min=-1.0, max=1.0)
    np.testing.assert_array_equal(out, [-1, 0, 1])
    assert pb(np.ones(3))[0].tolist() == [0, 1, 0]


def test_where():
    gen = np.random.default_rng(8)
    cond = gen.standard_normal((2, 3)) > 0
    check_rule(rule(np.where), np.where, (cond, gen.standard_normal((2, 3)), gen.standard_normal((3,))))
    check_rule(rule(np.where), np.where, (cond, gen.standard_normal((2, 3)), 0.0))
    cts = check_rule(rule(np.where), np.where, (cond, 1.5, gen.standard_normal((2, 1))))
    assert cts[0] is None and type(cts[1]) is float
    out, pb = rule(np.where)(cond)
    assert pb is None


def test_divmod():
    gen = np.random.default_rng(9)
    f = rule(np.divmod)
    x1, x2 = gen.uniform(0.1, 0.9, (3,)) + 2, gen.uniform(1, 2, (3,))
    out, pb = f(x1, x2)
    d1, d2 = pb((None, np.ones(3)))
    np.testing.assert_allclose(d1, np.ones(3))
    np.testing.assert_allclose(d2, -np.floor_divide(x1, x2))
    assert pb((np.ones(3), None)) == (None, None)


def test_out_and_where_kwargs_rejected():
    x = np.ones(3)
    with pytest.raises(UnsupportedOperationError):
        rule(np.sin)(x, out=np.empty(3))
    with pytest.raises(UnsupportedOperationError):
        rule(np.add)(x, x, np.empty(3))
    with pytest.raises(UnsupportedOperationError):
        rule(np.multiply)(x, x, where=x > 0)


def test_dtype_kwarg_passes_through():
    x = np.ones(3, dtype=np.float32)
    out, pb = rule(np.exp)(x, dtype=np.float64)
    assert out.dtype == np.float64
    assert pb(np.ones(3))[0].dtype == np.float32


# -- nondiff ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,args",
    [
        (np.floor, (np.ones(3) * 1.5,)), (np.ceil, (np.ones(3) * 1.5,)), (np.round, (np.ones(3) * 1.5,)),
        (np.around, (np.ones(3) * 1.5,)), (np.trunc, (np.ones(3),)), (np.rint, (np.ones(3),)),
        (np.sign, (np.ones(3),)), (np.isnan, (np.ones(3),)), (np.isfinite, (np.ones(3),)),
        (np.isinf, (np.ones(3),)), (np.argmax, (np.ones(3),)), (np.argmin, (np.ones(3),)),
        (np.argsort, (np.ones(3),)), (np.greater, (np.ones(3), 0.5)), (np.less, (np.ones(3), 0.5)),
        (np.equal, (np.ones(3), 1.0)), (np.not_equal, (np.ones(3), 1.0)),
        (np.greater_equal, (np.ones(3), 1.0)), (np.less_equal, (np.ones(3), 1.0)),
        (np.logical_and, (np.ones(3), 1.0)), (np.logical_or, (np.ones(3), 0.0)),
        (np.logical_not, (np.ones(3),)), (np.random.rand, (3,)), (np.random.randn, (3,)),
        (np.random.normal, (0.0, 1.0, 3)), (np.random.uniform, (0.0, 1.0, 3)),
        (np.random.random, (3,)), (np.random.default_rng, (0,)),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else "",
)  # fmt: skip
def test_nondiff(fn, args):
    out, pb = rule(fn)(*args)
    assert pb is None


def test_generator_methods_nondiff():
    g = np.random.default_rng(0)
    for name in ("normal", "uniform", "random", "standard_normal", "integers", "choice", "permutation"):
        found = REGISTRY.method_rule(np.random.Generator, name)
        assert found is not None, name
    r, mutating = REGISTRY.method_rule(np.random.Generator, "normal")
    out, pb = r(g, 0.0, 1.0, 3)
    assert pb is None and out.shape == (3,)


@pytest.mark.parametrize("fn", [np.sin, np.log, np.reciprocal, np.square, np.absolute, np.sqrt], ids=_id)
def test_unary_list_input(fn):
    cts = check_rule(rule(fn), fn, ([0.5, 1.5],))
    assert type(cts[0]) is list and all(type(c) is float for c in cts[0])


@pytest.mark.parametrize("fn", [np.add, np.subtract, np.multiply, np.divide, np.power, np.maximum,
                                np.arctan2, np.hypot], ids=_id)  # fmt: skip
def test_binary_list_inputs(fn):
    cts = check_rule(rule(fn), fn, ([0.5, 1.5], (2.0, 3.0)))
    assert type(cts[0]) is list and type(cts[1]) is tuple
    check_rule(rule(fn), fn, (2.0, [0.5, 1.5]))
    check_rule(rule(fn), fn, ([[0.5], [1.5]], np.array([0.7, 1.1, 1.3])))


def test_clip_list_input():
    check_rule(rule(np.clip), np.clip, ([0.2, 1.5, -3.0], -1.0, 1.0))


@pytest.mark.parametrize("fn, args", [
    (np.frexp, (np.array([0.3, -5.5, 12.0]),)),
    (np.modf, (np.array([0.3, -5.5, 12.25]),)),
    (np.ldexp, (np.array([0.3, -5.5, 12.0]), np.array([1, -2, 3]))),
    (np.nextafter, (np.array([0.3, -5.5, 12.0]), np.array([1.0, 0.0, 20.0]))),
])
def test_remaining_floating_ufuncs(fn, args):
    from morula.testing import check_rule
    check_rule(fn, *args)


def test_every_floating_ufunc_has_a_rule():
    from morula.rules.registry import REGISTRY
    missing = []
    for name in dir(np):
        f = getattr(np, name)
        if isinstance(f, np.ufunc) and any(t.split("->")[1][:1] in "efdgFDG" for t in f.types):
            if f not in REGISTRY.functions:
                missing.append(name)
    assert not missing, f"floating ufuncs without a rule: {missing}"


def relu_literal(h):
    return np.maximum(h, 0.0)   # a literal bound: the rule's ReLU fast path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_with_literal_bound_matches_the_general_rule(dtype):
    import morula as mo
    gen = np.random.default_rng(3)
    h = gen.standard_normal((6, 5)).astype(dtype)
    ct = gen.standard_normal((6, 5)).astype(dtype)
    cases = {
        "plain": (h, ct, np.where(h > 0, ct, 0)),
        "tie": (np.where(np.arange(30).reshape(6, 5) % 4 == 0, 0, h).astype(dtype), ct, None),
        "nan": (np.where(np.arange(30).reshape(6, 5) == 7, np.nan, h).astype(dtype), ct, None),
        "inf input": (np.where(np.arange(30).reshape(6, 5) == 3, np.inf, h).astype(dtype), ct, None),
        "inf cotangent": (h, np.where(h < 0, np.inf, ct).astype(dtype), np.where(h > 0, ct, 0)),
    }
    for name, (x, c, want) in cases.items():
        _, pb = mo.vjp(relu_literal, x)
        (got,) = pb(c)
        assert got.dtype == dtype, name
        if want is None:   # the general rule's answer, the bound passed as an array (no fast path)
            _, general = REGISTRY.function_rule(np.maximum)(x, np.zeros_like(x))
            want = general(c)[0]
        np.testing.assert_array_equal(got, want, err_msg=name)
    tie = cases["tie"][0]
    (got,) = mo.vjp(relu_literal, tie)[1](np.ones_like(tie))
    assert set(np.unique(got[tie == 0])) == {0.5}
