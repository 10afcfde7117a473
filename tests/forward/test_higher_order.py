"""Higher-order and mixed-mode derivatives: grad of grad, Hessians, hvp, jvp of grad, derivatives
inside differentiated functions (meta-learning, Newton solves, physics-informed losses)."""
import math

import numpy as np
import pytest

import morula as mo
from tests.programs import corpus_control as C
from tests.programs import corpus_mutation as M


def fd_hessian(f, x, eps=1e-5):
    """Central differences of morula's (separately tested) gradient."""
    x = np.asarray(x, dtype=float)
    cols = []
    for k in range(x.size):
        e = np.zeros_like(x)
        e.flat[k] = eps
        cols.append((np.asarray(mo.grad(f)(x + e)) - np.asarray(mo.grad(f)(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(x.shape + x.shape)


def test_grad_of_grad_of_scalar_functions():
    f = lambda x: x ** 3 + math.sin(x) * x          # noqa: E731
    x = 0.7
    d2 = 6 * x + 2 * math.cos(x) - x * math.sin(x)
    assert mo.grad(mo.grad(f))(x) == pytest.approx(d2, rel=1e-12)
    d3 = 6 - 3 * math.sin(x) - x * math.cos(x)
    assert mo.grad(mo.grad(mo.grad(f)))(x) == pytest.approx(d3, rel=1e-10)


def test_third_derivative_of_the_taylor_series_sine(capsys):
    x = 0.8
    d3 = mo.grad(mo.grad(mo.grad(C.taylor_sine)))(x)
    assert d3 == pytest.approx(-math.cos(x), abs=1e-9)
    assert mo.jvp(mo.grad(mo.grad(C.taylor_sine)), (x,), (1.0,))[1] == pytest.approx(-math.cos(x), abs=1e-9)


def test_no_perturbation_confusion():
    def outer(x):
        return x * mo.grad(lambda y: x + y)(1.0)
    assert mo.grad(outer)(1.0) == pytest.approx(1.0)
    assert mo.jvp(outer, (1.0,), (1.0,))[1] == pytest.approx(1.0)

    def outer2(x):    # the inner derivative depends on x: d/dx [x * x] = 2x
        return x * mo.grad(lambda y: x * y)(1.0)
    assert mo.grad(outer2)(1.5) == pytest.approx(3.0)
    assert mo.jvp(outer2, (1.5,), (1.0,))[1] == pytest.approx(3.0)


def tanh_energy(x):
    A = np.arange(12.0).reshape(4, 3) / 10.0 - 0.5
    return np.sum(np.tanh(A @ x) ** 2) + x @ x


def loop_branch(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = s + x[i] ** 3
        else:
            s = s + np.sin(x[i]) * x[(i + 1) % x.shape[0]]
    return s


def in_place_writes(x):
    u = x.copy()
    for _ in range(3):
        u[1:-1] += 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2])
        u[0] = u[0] * u[-1]
    out = np.zeros(2)
    out[0] = np.sum(u ** 2)
    out[1] = np.prod(u[:2])
    return out[0] + out[1]


def containers_and_objects(x):
    acc = {"a": x[0], "b": []}
    for v in x:
        acc["b"].append(v * v)
    total = sum(acc["b"]) * acc["a"]
    return total + max(x) ** 2


@pytest.mark.parametrize("f,x", [
    (tanh_energy, np.array([0.3, -0.5, 0.8])),
    (loop_branch, np.array([0.4, -0.7, 1.2, -0.1])),
    (in_place_writes, np.array([0.5, 1.0, -0.3, 0.8])),
    (containers_and_objects, np.array([0.5, 1.2, -0.3])),
    (lambda x: M.heat_in_place(x, 0.1), np.array([0.0, 0.4, 0.9, 0.2, 0.0])),
], ids=["tanh_energy", "loop_branch", "in_place_writes", "containers", "heat_in_place"])
def test_hessian_matches_finite_differences_of_the_gradient(f, x):
    H = mo.hessian(f)(x)
    assert H.shape == x.shape + x.shape
    np.testing.assert_allclose(H, fd_hessian(f, x), rtol=1e-6, atol=1e-7)
    v = np.linspace(-1.0, 1.0, x.size)
    np.testing.assert_allclose(mo.hvp(f, (x,), (v,)), H @ v, rtol=1e-9, atol=1e-10)


def test_hessian_of_several_arguments_and_of_floats():
    def f(a, b):
        return a ** 2 * b + np.sum(np.sin(b * np.array([1.0, 2.0]))) * a
    H = mo.hessian(f, argnums=(0, 1))(0.7, 1.3)
    eps = 1e-5
    g = lambda a, b: np.array(mo.grad(f, argnums=(0, 1))(a, b))      # noqa: E731
    col_a = (g(0.7 + eps, 1.3) - g(0.7 - eps, 1.3)) / (2 * eps)
    col_b = (g(0.7, 1.3 + eps) - g(0.7, 1.3 - eps)) / (2 * eps)
    np.testing.assert_allclose([[H[0][0], H[0][1]], [H[1][0], H[1][1]]],
                               np.stack([col_a, col_b], axis=1), rtol=1e-6)


def test_jvp_of_grad_and_grad_of_jvp():
    x, v = np.array([0.3, -0.5, 0.8]), np.array([1.0, 2.0, -1.0])
    H = fd_hessian(tanh_energy, x)
    np.testing.assert_allclose(mo.jvp(mo.grad(tanh_energy), (x,), (v,))[1], H @ v, rtol=1e-6)
    g = mo.grad(lambda y: mo.jvp(tanh_energy, (y,), (v,))[1])(x)
    np.testing.assert_allclose(g, H @ v, rtol=1e-6)


def test_meta_learning_inner_gradient_step():
    data = np.array([0.5, -1.0, 2.0])

    def inner_loss(w):
        return np.sum((w * data - 1.0) ** 2)

    def outer(w):
        adapted = w - 0.1 * mo.grad(inner_loss)(w)
        return np.sum(np.sin(adapted) ** 2)

    w = np.array([0.2, 0.4, -0.3])
    mo.testing.check_grads(outer, (w,), modes=("rev", "fwd"), rtol=1e-5, atol=1e-7)


def test_newton_iterations_with_nested_derivatives():
    # y(p) solves y**3 + p*y - 2 = 0 by Newton steps whose slope is itself a morula derivative
    def residual(y, p):
        return y ** 3 + p * y - 2.0

    def solve(p):
        y = 1.0
        for _ in range(30):
            y = y - residual(y, p) / mo.grad(residual)(y, p)
        return y

    p = 0.7
    y = solve(p)
    implicit = -y / (3 * y ** 2 + p)          # dy/dp by the implicit function theorem
    assert mo.grad(solve)(p) == pytest.approx(implicit, rel=1e-9)


def test_physics_informed_loss_with_a_derivative_of_the_network():
    xs = np.linspace(-1.0, 1.0, 4)

    def net(w, x):
        return np.tanh(w[0] * x + w[1]) * w[2]

    def loss(w):
        total = 0.0
        for x in xs:
            du = mo.grad(net, argnums=1)(w, x)
            total = total + (du - np.cos(x)) ** 2
        return total

    w = np.array([0.7, -0.2, 1.3])
    mo.testing.check_grads(loss, (w,), modes=("rev", "fwd"), rtol=1e-5, atol=1e-7)


def test_check_grads_order_two():
    mo.testing.check_grads(tanh_energy, (np.array([0.3, -0.5, 0.8]),), modes=("fwd", "rev"), order=2)
    mo.testing.check_grads(loop_branch, (np.array([0.4, -0.7, 1.2, -0.1]),), modes=("fwd", "rev"), order=2)


def test_jacobian_and_jacfwd_inside_grad():
    def f(x):
        J = mo.jacfwd(lambda y: np.sin(y) * x)(x)
        return np.sum(J ** 2)
    x = np.array([0.3, 0.9])
    mo.testing.check_grads(f, (x,), modes=("rev", "fwd"), rtol=1e-5, atol=1e-7)


def test_third_order_with_reverse_outermost_falls_back_to_forward():
    # reverse over (forward over forward) is not supported: hessian/hvp/grad switch to forward mode
    def cube_sum(y):
        return np.sum(y ** 3)

    def f(x):
        return np.sum(mo.grad(cube_sum)(x) * x)      # 3 sum(x^3): H = diag(18 x)
    x = np.array([0.7, -0.4])
    np.testing.assert_allclose(mo.hessian(f)(x), np.diag(18 * x), rtol=1e-10)
    np.testing.assert_allclose(mo.hvp(f, (x,), (np.array([1.0, 0.0]),)), [18 * 0.7, 0.0], rtol=1e-10)

    def fs(t):
        return mo.grad(mo.grad(lambda s: s ** 3))(t) * t   # 6 t^2
    assert mo.grad(mo.grad(fs))(0.7) == pytest.approx(12.0)
    out, pb = mo.vjp(mo.grad(fs), 0.7)          # vjp falls back to forward mode too
    assert out == pytest.approx(12.0 * 0.7) and pb(1.0)[0] == pytest.approx(12.0)


def _hessian_norm(x):
    H = mo.hessian(lambda v: np.sum(v ** 3) + v[0] * v[1])(x)
    return np.sum(H * H)


def _gradient_field(x):
    return mo.grad(lambda v: np.sum(np.sin(v) * v[::-1]))(x) * x


def test_vjp_and_jacobian_of_functions_taking_second_derivatives():
    # reverse mode outermost over a function that takes second derivatives itself: vjp and
    # jacobian fall back to forward mode (as grad, hessian and hvp do)
    x = np.array([0.3, 0.5, -0.4])
    mo.testing.check_grads(_hessian_norm, (x,), modes=("rev", "fwd"))
    out, pb = mo.vjp(_gradient_field, x)
    c = np.array([1.0, -2.0, 0.5])
    J = mo.jacfwd(_gradient_field)(x)
    np.testing.assert_allclose(pb(c)[0], c @ J, rtol=1e-12)
    np.testing.assert_allclose(mo.jacobian(_gradient_field)(x), J, rtol=1e-12)
