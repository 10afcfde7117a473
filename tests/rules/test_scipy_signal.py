"""Rules for scipy.signal convolutions (loaded lazily once SciPy is imported)."""

import numpy as np
import pytest

scipy = pytest.importorskip("scipy")
import scipy.signal as ss  # noqa: E402

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


def rand(shape, seed=0, complex_=False):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape)
    if complex_:
        x = x + 1j * g.standard_normal(shape)
    return x


MODES = ["full", "same", "valid"]
SHAPES = [((7,), (3,)), ((6,), (4,)), ((3,), (6,)), ((4,), (7,)), ((5,), (5,)), ((1,), (4,)),
          ((5, 4), (2, 3)), ((2, 3), (4, 5)), ((4, 5, 3), (2, 3, 2))]
# 'valid' needs one operand at least as large as the other in every dimension
VALID_OK = [s for s in SHAPES if all(a >= b for a, b in zip(*s)) or all(a <= b for a, b in zip(*s))]


def _cases():
    for s1, s2 in SHAPES:
        for mode in MODES:
            if mode == "valid" and (s1, s2) not in VALID_OK:
                continue
            yield s1, s2, mode


CASES = list(_cases())


@pytest.mark.parametrize("s1,s2,mode", CASES, ids=str)
@pytest.mark.parametrize("fn,kwargs", [(ss.convolve, {"method": "direct"}),
                                       (ss.convolve, {"method": "fft"}),
                                       (ss.correlate, {"method": "direct"}),
                                       (ss.correlate, {"method": "fft"}),
                                       (ss.fftconvolve, {}), (ss.oaconvolve, {})],
                         ids=["convolve-direct", "convolve-fft", "correlate-direct",
                              "correlate-fft", "fftconvolve", "oaconvolve"])
def test_convolutions(fn, kwargs, s1, s2, mode):
    a, b = rand(s1, 1), rand(s2, 2)
    check_rule(rule(fn), fn, (a, b, mode), kwargs)


@pytest.mark.parametrize("fn", [ss.convolve, ss.correlate, ss.fftconvolve], ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", MODES)
def test_convolutions_complex(fn, mode):
    for s1, s2 in [((6,), (3,)), ((3,), (5,)), ((4, 3), (2, 2))]:
        a, b = rand(s1, 3, True), rand(s2, 4, True)
        check_rule(rule(fn), fn, (a, b, mode))
        check_rule(rule(fn), fn, (a, rand(s2, 5), mode))  # complex with real


@pytest.mark.parametrize("fn", [ss.convolve, ss.correlate, ss.fftconvolve, ss.oaconvolve],
                         ids=lambda f: f.__name__)
def test_float32_integer_and_lists(fn):
    a, b = rand((8,), 6).astype(np.float32), rand((3,), 7).astype(np.float32)
    check_float32(rule(fn), (a, b, "same"))
    cts = check_rule(rule(fn), fn, (rand((6,), 8), np.arange(1, 4), "valid"))
    assert cts[1] is None
    cts = check_rule(rule(fn), fn, ([0.5, -1.0, 2.0, 0.25], [1.0, 2.0], "full"))
    assert type(cts[0]) is list and type(cts[0][0]) is float
    _, pb = rule(fn)(np.arange(5), np.arange(3))
    assert pb is None


@pytest.mark.parametrize("fn", [ss.fftconvolve, ss.oaconvolve], ids=lambda f: f.__name__)
@pytest.mark.parametrize("s1,s2,axes", [((3, 8), (3, 4), 1), ((3, 8), (1, 4), -1),
                                        ((1, 8), (3, 4), [1]), ((6, 2, 5), (3, 2, 2), (0, 2)),
                                        ((6, 1, 5), (3, 4, 2), (0, 2))], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_fft_axes_with_broadcasting(fn, s1, s2, axes, mode):
    check_rule(rule(fn), fn, (rand(s1, 9), rand(s2, 10), mode, axes))


@pytest.mark.parametrize("s1,s2", [((5, 4), (2, 3)), ((3, 3), (4, 5)), ((4, 6), (4, 2))], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_convolve2d(s1, s2, mode):
    check_rule(rule(ss.convolve2d), ss.convolve2d, (rand(s1, 11), rand(s2, 12), mode))


def test_convolve2d_other_boundaries_are_refused():
    with pytest.raises(UnsupportedOperationError):
        rule(ss.convolve2d)(rand((4, 4), 13), rand((2, 2), 14), "same", "wrap")


def fd_check_grad(f, args, argnums=0, eps=1e-6, rtol=1e-6, atol=1e-8):
    g = np.random.default_rng(15)
    nums = (argnums,) if isinstance(argnums, int) else argnums
    grads = mo.grad(f, argnums=argnums)(*args)
    grads = (grads,) if isinstance(argnums, int) else grads
    for i, gr in zip(nums, grads):
        x = args[i]
        v = g.standard_normal(np.shape(x))
        plus, minus = list(args), list(args)
        plus[i], minus[i] = x + eps * v, x - eps * v
        lhs = (f(*plus) - f(*minus)) / (2 * eps)
        rhs = float(np.sum(gr * v))
        assert abs(lhs - rhs) <= atol + rtol * max(abs(lhs), abs(rhs), 1.0), (lhs, rhs)
        assert np.shape(gr) == np.shape(x)


def test_grad_through_user_function():
    def smooth(signal, kernel):
        a = ss.convolve(signal, kernel, mode="same")
        b = ss.correlate(signal, kernel, mode="valid")
        c = ss.fftconvolve(signal, kernel)
        d = ss.oaconvolve(signal, kernel, mode="same")
        return np.sum(a * a) + np.sum(np.sin(b)) + np.sum(c ** 3) * 0.1 + np.sum(d * signal)

    fd_check_grad(smooth, (rand((9,), 16), rand((4,), 17)), argnums=(0, 1))


def test_grad_images():
    def blur(image, kernel):
        out = ss.convolve2d(image, kernel, mode="same")
        out2 = ss.fftconvolve(image[None], kernel[None], mode="valid", axes=(1, 2))
        return np.sum(out ** 2) + np.sum(out2)

    fd_check_grad(blur, (rand((5, 6), 18), rand((3, 2), 19)), argnums=(0, 1))
