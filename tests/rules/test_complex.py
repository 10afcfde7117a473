"""Complex numbers through the engine (``morula.grad`` / ``morula.vjp``).

Convention (Zygote's, documented in docs/rules_numpy_notes.md):
- for a real-valued ``f`` of a complex ``z = x + iy`` the gradient is ``df/dx + i df/dy``
  (so ``grad(lambda z: abs(z)**2)(z) == 2 z``);
- for a holomorphic ``g`` the pullback of an output cotangent ``w`` is ``w * conj(g'(z))``.

Everything is checked against central differences in ``x`` and ``y`` separately.
"""

import numpy as np
import pytest

import morula as mo

H = 1e-6


def fd_gradient(f, z):
    """``df/dx + i df/dy`` by central differences, entry by entry (``z`` a complex or an array)."""
    if isinstance(z, complex):
        dx = (f(z + H) - f(z - H)) / (2 * H)
        dy = (f(z + 1j * H) - f(z - 1j * H)) / (2 * H)
        return complex(dx, dy)
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[i] = 1
        dx = (f(z + H * e) - f(z - H * e)) / (2 * H)
        dy = (f(z + 1j * H * e) - f(z - 1j * H * e)) / (2 * H)
        g[i] = dx + 1j * dy
    return g


def fd_derivative(g, z):
    """The complex derivative ``g'(z)`` of a holomorphic ``g``, entry by entry (elementwise ``g``)."""
    return (g(z + H) - g(z - H)) / (2 * H)


Z = 1 + 2j
ZS = np.array([1 + 2j, -0.5 + 0.25j, 0.75 - 1.5j])
W = np.array([0.5 - 1j, 2 + 0.5j, -1 + 1j])


# -- real-valued functions of a complex input ---------------------------------------------------


def abs_squared(z):
    return abs(z) ** 2


def np_abs_squared(z):
    return np.sum(np.abs(z) ** 2)


def real_of_product(z):
    return np.sum(np.real(z * np.conj(z) * 0.5 + z * z))


def abs_of_exp(z):
    return np.sum(np.abs(np.exp(z)))


def angle_sum(z):
    return np.sum(np.angle(z))


def imag_of_sin(z):
    return np.sum(np.imag(np.sin(z) * z))


def mean_abs(z):
    return np.mean(np.abs(z - np.mean(z)))


def var_of_complex(z):
    return np.var(z)


def norm_of_cumprod(z):
    return np.sum(np.abs(np.cumprod(z)) ** 2)


def matmul_energy(z):
    m = np.outer(z, np.conj(z))
    return np.real(np.trace(m @ m))


def test_abs_squared_of_python_complex():
    g = mo.grad(abs_squared)(Z)
    assert type(g) is complex
    assert g == 2 + 4j
    assert abs(g - fd_gradient(abs_squared, Z)) < 1e-6


def test_abs_squared_of_complex_array():
    g = mo.grad(np_abs_squared)(ZS)
    assert g.dtype == np.complex128 and g.shape == ZS.shape
    np.testing.assert_allclose(g, 2 * ZS, rtol=1e-12)
    np.testing.assert_allclose(g, fd_gradient(np_abs_squared, ZS), rtol=1e-6)


@pytest.mark.parametrize("f", [np_abs_squared, real_of_product, abs_of_exp, angle_sum, imag_of_sin,
                               mean_abs, var_of_complex, norm_of_cumprod, matmul_energy],
                         ids=lambda f: f.__name__)
def test_real_valued_functions_of_complex_arrays(f):
    g = mo.grad(f)(ZS.copy())
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, fd_gradient(f, ZS), rtol=1e-5, atol=1e-7)


def test_complex64_stays_complex64():
    z = ZS.astype(np.complex64)
    g = mo.grad(np_abs_squared)(z)
    assert g.dtype == np.complex64
    np.testing.assert_allclose(g, 2 * z, rtol=1e-6)


def np_scalar_real_part(z):
    return (z * z).real


def python_real_part(z):
    return (z * z).real


def test_real_part_of_numpy_complex_scalar():
    z = np.complex128(Z)
    g = mo.grad(np_scalar_real_part)(z)
    np.testing.assert_allclose(g, fd_gradient(lambda v: (v * v).real, Z), rtol=1e-6)


def test_real_part_of_python_complex():
    g = mo.grad(python_real_part)(Z)
    assert abs(g - fd_gradient(python_real_part, Z)) < 1e-6


# -- holomorphic functions: the pullback is conj(g'(z)) * w ---------------------------------------


def square(z):
    return z ** 2


def np_square(z):
    return np.square(z)


def exp(z):
    return np.exp(z)


def sin(z):
    return np.sin(z)


def product(z):
    return z * (z + 1.0) * np.cos(z)


def python_polynomial(z):
    return z * z * z - 2.0 * z + 1.0


@pytest.mark.parametrize("g", [square, np_square, exp, sin, product], ids=lambda f: f.__name__)
def test_holomorphic_array_functions(g):
    out, pullback = mo.vjp(g, ZS.copy())
    (ct,) = pullback(W)
    expected = W * np.conj(fd_derivative(g, ZS))
    np.testing.assert_allclose(ct, expected, rtol=1e-6)
    # and in x and y separately: Re <W, g(z + h e)> changes at the rate Re(ct) / Im(ct)
    f = lambda z: float(np.real(np.sum(np.conj(W) * g(z))))  # noqa: E731
    np.testing.assert_allclose(ct, fd_gradient(f, ZS), rtol=1e-5)


def test_holomorphic_python_complex():
    out, pullback = mo.vjp(python_polynomial, Z)
    (ct,) = pullback(1.0 + 0j)
    assert type(ct) is complex
    derivative = 3 * Z ** 2 - 2
    assert abs(ct - np.conj(derivative)) < 1e-12


def bilinear(a, b):
    return np.sum(a * b)


def test_products_of_two_complex_arguments():
    out, pullback = mo.vjp(bilinear, ZS, W)
    da, db = pullback(1.0 + 0j)
    np.testing.assert_allclose(da, np.conj(W))
    np.testing.assert_allclose(db, np.conj(ZS))


def real_times_complex(x, z):
    return np.sum(np.abs(x * z) ** 2)


def test_real_argument_meeting_a_complex_one_gets_a_real_gradient():
    x = np.array([0.5, -1.0, 2.0])
    gx, gz = mo.grad(real_times_complex, argnums=(0, 1))(x, ZS)
    assert gx.dtype == np.float64 and gz.dtype == np.complex128
    np.testing.assert_allclose(gx, 2 * x * np.abs(ZS) ** 2)
    np.testing.assert_allclose(gz, 2 * x ** 2 * ZS)
