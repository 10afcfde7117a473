import numpy as np
import pytest

import morula as mo
import morula.rules.numpy_rules  # noqa: F401
from morula.rules.registry import REGISTRY

try:
    from .fd import assert_mirrors, check_float32, check_rule, inner, random_like
except ImportError:
    from fd import assert_mirrors, check_float32, check_rule, inner, random_like

fft = np.fft
NORMS = [None, "backward", "ortho", "forward"]


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


def check(fn, args, kwargs=None):
    """``check_rule`` for ``fn``'s rule; a real input must get a real cotangent of its dtype."""
    return check_rule(rule(fn), fn, args, kwargs)


# -- 1-D ----------------------------------------------------------------------------------------

ONE_D = [((8,), None, -1), ((8,), 5, -1), ((8,), 11, -1), ((7,), None, 0), ((3, 6), None, -1),
         ((3, 6), 4, 0), ((2, 5, 4), 6, 1), ((1,), None, -1)]  # fmt: skip


@pytest.mark.parametrize("shape,n,axis", ONE_D, ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_fft_ifft(shape, n, axis, norm):
    for complex_ in (False, True):
        x = rand(*shape, complex_=complex_)
        check(fft.fft, (x, n, axis, norm))
        check(fft.ifft, (x, n, axis, norm))


@pytest.mark.parametrize("shape,n,axis", ONE_D, ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_rfft_ihfft(shape, n, axis, norm):
    x = rand(*shape)
    check(fft.rfft, (x, n, axis, norm))
    check(fft.ihfft, (x, n, axis, norm))


@pytest.mark.parametrize("shape,n,axis", ONE_D[:-1] + [((2,), None, -1), ((2,), 1, -1)], ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_irfft_hfft(shape, n, axis, norm):
    for complex_ in (False, True):
        c = rand(*shape, complex_=complex_)
        check(fft.irfft, (c, n, axis, norm))
        check(fft.hfft, (c, n, axis, norm))


@pytest.mark.parametrize("n", [6, 7])
def test_irfft_reads_real_parts_of_dc_and_nyquist(n):
    # the imaginary parts of DC (and, for even n, Nyquist) do not reach the output
    c = rand(4, complex_=True)
    _, pb = rule(fft.irfft)(c, n)
    g = pb(np.ones(n))[0]
    assert g[0].imag == 0
    if n % 2 == 0:
        assert g[n // 2].imag == 0


def test_keywords_and_list_and_int_inputs():
    x = rand(3, 8)
    check(fft.fft, (x,), {"axis": 0, "norm": "ortho"})
    check(fft.rfft, (x,), {"n": 6, "norm": "forward"})
    cts = check(fft.fft, ([1.0, 2.0, 0.5],))
    assert type(cts[0]) is list
    _, pb = rule(fft.fft)(np.arange(4))
    assert pb is None


# -- n-D ------------------------------------------------------------------------------------------

ND = [((4, 6), None, None), ((4, 6), None, (0,)), ((3, 4, 6), None, (0, 2)), ((3, 4, 6), (5, 4), (0, 2)),
      ((3, 4, 6), (2, 7), (-1, 1)), ((4, 5), (4, 5), (0, 1)), ((2, 3, 4), (3, 2, 5), (0, 1, 2)),
      ((3, 4, 5), None, (1, 0))]  # fmt: skip


@pytest.mark.parametrize("shape,s,axes", ND, ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_fftn_ifftn_rfftn_irfftn(shape, s, axes, norm):
    x = rand(*shape)
    z = rand(*shape, complex_=True)
    for fn in (fft.fftn, fft.ifftn):
        check(fn, (x, s, axes, norm))
        check(fn, (z, s, axes, norm))
    check(fft.rfftn, (x, s, axes, norm))
    check(fft.irfftn, (z, s, axes, norm))
    check(fft.irfftn, (x, s, axes, norm))


@pytest.mark.parametrize("s", [None, (3, 5), (6, 4)], ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_2d(s, norm):
    x, z = rand(2, 4, 6), rand(2, 4, 6, complex_=True)
    for fn in (fft.fft2, fft.ifft2):
        check(fn, (z, s, (-2, -1), norm))
        check(fn, (x,), {"s": s, "norm": norm})
    check(fft.rfft2, (x, s, (-2, -1), norm))
    check(fft.irfft2, (z, s, (-2, -1), norm))
    check(fft.fft2, (x, s, (0, 2), norm))
    check(fft.irfft2, (z, s, (2, 0), norm))


def test_nd_defaults():
    check(fft.fftn, (rand(3, 4),))
    check(fft.irfftn, (rand(3, 4, complex_=True),))
    check(fft.rfftn, (rand(2, 3, 5),), {"axes": (1,)})


# -- shifts and frequencies ---------------------------------------------------------------------------


@pytest.mark.parametrize("axes", [None, 0, -1, (0, 1), (1,)], ids=str)
def test_shifts(axes):
    for x in (rand(4, 5), rand(4, 5, complex_=True)):
        check(fft.fftshift, (x, axes))
        check(fft.ifftshift, (x, axes))
    check(fft.fftshift, (rand(7),))


def test_freqs():
    for fn in (fft.fftfreq, fft.rfftfreq):
        for n in (5, 8):
            cts = check(fn, (n, 0.3))
            assert cts[0] is None and type(cts[1]) is float
            cts = check(fn, (n, np.float64(2.0)))
            assert isinstance(cts[1], np.float64)
    _, pb = rule(fft.fftfreq)(5, 2)
    assert pb is None


# -- dtypes -------------------------------------------------------------------------------------------


def test_float32_and_complex64():
    x = rand(3, 8).astype(np.float32)
    z = rand(3, 8, complex_=True).astype(np.complex64)
    for fn, args in [(fft.fft, (x,)), (fft.fft, (z, 6)), (fft.ifft, (z,)), (fft.rfft, (x, 5)),
                     (fft.irfft, (z,)), (fft.irfft, (z, 7)), (fft.hfft, (z,)), (fft.ihfft, (x,)),
                     (fft.fftn, (x,)), (fft.rfftn, (x, (2, 6), (0, 1))), (fft.irfftn, (z, (3, 9), (0, 1))),
                     (fft.fft2, (x,)), (fft.fftshift, (x,))]:
        cts = check_float32(rule(fn), args, rtol=1e-4, atol=1e-4)
        assert cts[0].dtype == args[0].dtype


def test_refuses_out():
    from morula.errors import UnsupportedOperationError
    x = rand(8)
    with pytest.raises(UnsupportedOperationError):
        rule(fft.fft)(x, out=np.empty(8, dtype=complex))


# -- through the engine: real-valued losses ------------------------------------------------------------

W = rand(4, 8, seed=9)


def power(x):
    return np.sum(np.abs(np.fft.fft(x, norm="ortho")) ** 2)


def weighted_real(x):
    return np.sum(np.real(np.fft.fft(x)) * W)


def rfft_power(x):
    return np.sum(np.abs(np.fft.rfft(x, n=10)) ** 2)


def rfft_weighted(x):
    f = np.fft.rfft(x, axis=-1, norm="forward")
    return np.sum(np.real(f) * W[:, :5]) + np.sum(np.imag(f) * W[:, 1:6])


def irfft_loss(x):
    return np.sum(np.fft.irfft(np.fft.rfft(x) * 0.5, n=8) * W)


def ifft_loss(x):
    return np.sum(np.abs(np.fft.ifft(x, n=6, axis=0)) ** 2)


def fft2_loss(x):
    return np.sum(np.abs(np.fft.fft2(x, s=(5, 6))) ** 2) + np.sum(np.real(np.fft.ifft2(x)) * W)


def fftn_loss(x):
    return np.sum(np.real(np.fft.ifftn(np.fft.fftn(x, axes=(0, 1)) * W, axes=(0, 1))) ** 2)


def rfftn_loss(x):
    f = np.fft.rfftn(x, s=(4, 8), axes=(0, 1), norm="ortho")
    return np.sum(np.abs(f) ** 2) + np.sum(np.fft.irfftn(f * W[:, :5], s=(4, 8), axes=(0, 1)) * W)


def rfft2_loss(x):
    return np.sum(np.fft.irfft2(np.fft.rfft2(x) ** 2) * W)


def herm_loss(x):
    return np.sum(np.fft.hfft(np.fft.ihfft(x) * 2.0, n=8) * W)


def shift_loss(x):
    return np.sum(np.fft.fftshift(np.fft.fft(x), axes=-1).real * W) + np.sum(np.real(np.fft.ifftshift(x)) * W)


def freq_loss(d):
    return np.sum(np.fft.fftfreq(8, d) ** 2) + np.sum(np.fft.rfftfreq(8, d))


REAL_LOSSES = [power, weighted_real, rfft_power, rfft_weighted, irfft_loss, ifft_loss, fft2_loss, fftn_loss,
               rfftn_loss, rfft2_loss, herm_loss, shift_loss]
COMPLEX_LOSSES = [power, weighted_real, ifft_loss, fft2_loss, fftn_loss, shift_loss]


def fd_grad_check(f, x, seed=0, eps=1e-6, rtol=1e-6, atol=1e-8):
    g = mo.grad(f)(x)
    assert_mirrors(g, x)
    v = random_like(x, np.random.default_rng(seed))
    lhs = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    rhs = inner(g, v)
    assert abs(lhs - rhs) <= atol + rtol * max(abs(lhs), abs(rhs), 1.0), (lhs, rhs)
    return g


@pytest.mark.parametrize("f", REAL_LOSSES, ids=lambda f: f.__name__)
def test_engine_real(f):
    g = fd_grad_check(f, rand(4, 8, seed=1))
    assert g.dtype == np.float64


@pytest.mark.parametrize("f", COMPLEX_LOSSES, ids=lambda f: f.__name__)
def test_engine_complex(f):
    g = fd_grad_check(f, rand(4, 8, seed=2, complex_=True))
    assert g.dtype == np.complex128


def test_engine_parseval_and_freq():
    x = rand(4, 8, seed=3)
    np.testing.assert_allclose(mo.grad(power)(x), 2 * x)   # ortho fft is unitary
    fd_grad_check(freq_loss, 0.7)
    out, pb = mo.vjp(lambda x: np.fft.rfft(x), x)
    dy = rand(4, 5, seed=4, complex_=True)
    (g,) = pb(dy)
    np.testing.assert_allclose(g, rule(fft.rfft)(x)[1](dy)[0])


SWEPT = [fft.fftfreq, fft.rfftfreq]   # test_freqs loops over sizes and spacing types
