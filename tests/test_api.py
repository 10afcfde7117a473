"""The public API contract (DESIGN.md, "Public API")."""
import math
import threading

import numpy as np
import pytest

import morula as mo


def f2(x, y):
    return x * x * y + math.sin(y)


def test_grad_argnums_int_and_tuple():
    assert mo.grad(f2)(2.0, 3.0) == pytest.approx(12.0)
    assert mo.grad(f2, argnums=1)(2.0, 3.0) == pytest.approx(4.0 + math.cos(3.0))
    gx, gy = mo.grad(f2, argnums=(0, 1))(2.0, 3.0)
    assert (gx, gy) == (pytest.approx(12.0), pytest.approx(4.0 + math.cos(3.0)))
    assert mo.grad(f2, argnums=-1)(2.0, 3.0) == pytest.approx(4.0 + math.cos(3.0))


def test_value_and_grad_and_has_aux():
    value, g = mo.value_and_grad(f2)(2.0, 3.0)
    assert value == pytest.approx(f2(2.0, 3.0)) and g == pytest.approx(12.0)

    def with_aux(x):
        y = x * x
        return y * 3.0, {"y": y}

    (value, aux), g = mo.value_and_grad(with_aux, has_aux=True)(2.0)
    assert value == 12.0 and aux == {"y": 4.0} and g == 12.0
    g, aux = mo.grad(with_aux, has_aux=True)(2.0)
    assert g == 12.0 and aux == {"y": 4.0}


def test_grad_keyword_arguments_are_passed_through():
    def f(x, scale=1.0):
        return x * x * scale

    assert mo.grad(f)(3.0, scale=2.0) == 12.0


def test_grad_of_integer_argument_is_a_float():
    assert mo.grad(lambda x: x ** 3)(2) == 12.0
    g = mo.grad(lambda x: np.sum(x ** 2))(np.array([1, 2, 3]))
    assert g.dtype == np.float64 and list(g) == [2.0, 4.0, 6.0]


def test_grad_refuses_non_scalar_output_and_suggests_jacobian():
    with pytest.raises(mo.NonScalarOutputError, match="jacobian"):
        mo.grad(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(TypeError, match="jacobian"):
        mo.grad(lambda x: (x, x))(1.0)


def test_vjp_structure_and_repeated_pullback():
    def f(x, y):
        return {"a": x * y, "b": (x + y, np.sin(x))}

    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    out, pullback = mo.vjp(f, x, y)
    ct = {"a": np.ones(2), "b": (np.array([1.0, 0.0]), np.array([0.0, 2.0]))}
    dx, dy = pullback(ct)
    np.testing.assert_allclose(dx, y + np.array([1.0, 0.0]) + np.array([0.0, 2.0]) * np.cos(x))
    np.testing.assert_allclose(dy, x + np.array([1.0, 0.0]))
    dx2, dy2 = pullback(ct)  # a pullback can be called again
    np.testing.assert_allclose(dx2, dx)
    np.testing.assert_allclose(dy2, dy)


def test_vjp_zero_cotangents_are_real_zeros():
    out, pullback = mo.vjp(lambda x, y: x * 2.0, 1.0, np.ones(3))
    dx, dy = pullback(1.0)
    assert dx == 2.0 and isinstance(dy, np.ndarray) and not dy.any()


def test_jacobian_shapes_and_values():
    A = np.arange(6.0).reshape(2, 3)

    def f(x):
        return np.tanh(A @ x)

    x = np.array([0.1, -0.2, 0.3])
    J = mo.jacobian(f)(x)
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J, (1 - np.tanh(A @ x) ** 2)[:, None] * A)
    assert mo.jacrev is mo.jacobian
    J2 = mo.jacobian(lambda M: M * 2.0)(np.ones((2, 2)))
    assert J2.shape == (2, 2, 2, 2)
    Jx, Jy = mo.jacobian(lambda x, y: x * y, argnums=(0, 1))(np.ones(2), np.full(2, 3.0))
    np.testing.assert_allclose(Jx, 3 * np.eye(2))
    np.testing.assert_allclose(Jy, np.eye(2))


def test_float32_stays_float32():
    def f(x, w):
        return np.sum(np.tanh(x * w) * 2.0) + np.sum(x) * 0.5

    x = np.ones(3, dtype=np.float32)
    w = np.float32(0.5)
    gx, gw = mo.grad(f, argnums=(0, 1))(x, w)
    assert gx.dtype == np.float32
    assert np.asarray(gw).dtype == np.float32


def test_stop_gradient():
    def f(x):
        return x * mo.stop_gradient(x * x)

    assert mo.grad(f)(3.0) == 9.0


def test_checkpoint_recomputes_and_matches():
    calls = []

    def block(x):
        calls.append(1)
        return np.sin(x) * x

    def f(x):
        return np.sum(mo.checkpoint(block)(x) ** 2)

    x = np.array([0.3, 0.7])
    g = mo.grad(f)(x)
    expected = 2 * np.sin(x) * x * (np.cos(x) * x + np.sin(x))
    np.testing.assert_allclose(g, expected)
    assert len(calls) == 2  # forward once, recomputed once in the backward sweep


def test_checkpoint_refuses_a_function_that_writes_its_argument():
    def step(u, k):
        u[1:] += k * u[:-1]
        return u

    def f(u0, k):
        u = u0.copy()
        u = mo.checkpoint(step)(u, k)
        return np.sum(u ** 2)

    with pytest.raises(mo.UnsupportedOperationError, match=r"test_api.py:\d+: .*step changed one of its array"):
        mo.grad(f, argnums=1)(np.array([0.3, -0.5, 0.8]), 0.4)


def test_vjp_takes_an_object_cotangent_like_the_output():
    from dataclasses import dataclass

    @dataclass
    class Out:
        a: float
        b: float

    def f(p):
        return Out(p * 2.0, p * p)

    _, pb = mo.vjp(f, 0.7)
    assert pb(Out(1.0, 1.0))[0] == pytest.approx(3.4)
    assert pb(mo.ObjectCotangent({"a": 1.0}))[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="must be an object like the output"):
        pb(1.0)


def test_vjp_checks_cotangent_shapes():
    _, pb = mo.vjp(np.sin, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(2, 1\) but the output .* shape \(2,\)"):
        pb(np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        pb(np.ones(3))

    def pair(x):
        return x * 2.0, [x, x]

    _, pb = mo.vjp(pair, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="sequence of 2 items"):
        pb((np.ones(2), [np.ones(2)]))
    with pytest.raises(ValueError, match=r"cotangent\[1\]\[0\] has shape \(\)"):
        pb((np.ones(2), [1.0, np.ones(2)]))
    np.testing.assert_allclose(pb((np.ones(2), [None, np.ones(2)]))[0], [3.0, 3.0])


def test_rrule_registers_and_replaces():
    def mystery(x):
        return x * 1.0

    @mo.rrule(mystery)
    def _mystery(x):
        return x, lambda g: (3.0 * g,)

    assert mo.grad(lambda x: mystery(x) * 2.0)(1.0) == 6.0

    @mo.rrule(mystery)
    def _mystery2(x):
        return x, lambda g: (5.0 * g,)

    assert mo.grad(lambda x: mystery(x) * 2.0)(1.0) == 10.0


def test_nondiff_declares_constant():
    def noisy(x):
        return x * 2.0

    mo.nondiff(noisy)
    assert mo.grad(lambda x: noisy(x) + x)(1.0) == 1.0


def test_source_prints_and_returns_code_with_user_lines(capsys):
    text = mo.source(f2)
    assert "# line" in text and "x * x * y + math.sin(y)" in text
    assert "def _mo_back" in text
    assert capsys.readouterr().out == text
    assert mo.source(f2, file=None) == text and capsys.readouterr().out == ""
    compile(text, "<generated>", "exec")   # it is valid Python


def test_check_grads_detects_a_wrong_rule():
    def bad(x):
        return x * 1.0

    @mo.rrule(bad)
    def _bad(x):
        return x, lambda g: (2.0 * g,)

    with pytest.raises(AssertionError, match="finite|differences"):
        mo.testing.check_grads(lambda x: bad(x) * x, (1.5,))


def test_concurrent_grads_from_threads():
    def f(x, k):
        total = 0.0
        for i in range(50):
            total = total + math.sin(x * i) * k
        return total

    def expected(x, k):
        return sum(math.cos(x * i) * i * k for i in range(50))

    results, errors = {}, []

    def worker(t):
        try:
            for j in range(20):
                x = 0.01 * (t + 1) + 0.001 * j
                results[(t, j)] = (mo.grad(f)(x, float(t)), expected(x, float(t)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(results) == 160
    for got, want in results.values():
        assert got == pytest.approx(want)


def test_nested_grad_inside_a_differentiated_function():
    def f(x):
        return mo.grad(lambda y: y * y * x)(x)      # 2 x^2

    assert mo.grad(f)(1.5) == pytest.approx(6.0)


def nested_with_numpy(x):
    return mo.grad(np.sin)(x)


def test_grad_of_a_numpy_function_inside_grad():
    assert mo.grad(nested_with_numpy)(0.3) == pytest.approx(-np.sin(0.3))


def test_stop_gradient_of_an_array_is_a_constant_copy():
    # the same array object would carry x's cotangent (cotangents of arrays are kept by identity)
    def f(x):
        y = mo.stop_gradient(x)
        return np.sum(x * x) + np.sum(y)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(mo.grad(f)(x), 2 * x)
    assert mo.stop_gradient(x) is not x and np.array_equal(mo.stop_gradient(x), x)
    assert mo.stop_gradient(2.5) == 2.5


def test_dict_get_of_a_tuple_holding_an_array_written_later():
    e = np.array([1.0, 0.0])

    def f(x):
        d = {}
        buf = np.zeros(2)
        d[1] = (buf, 0)
        buf[...] = x * e
        return np.sum(d.get(1)[0])
    np.testing.assert_allclose(mo.grad(f)(np.array([1.0, 2.0])), e)


def test_concurrent_grads_with_in_place_array_writes():
    def f(x, k):
        u = x.copy()
        for _ in range(20):
            u[1:-1] += k * (u[2:] - 2 * u[1:-1] + u[:-2])
        out = np.zeros(3)
        for i in range(3):
            out[i] = u[i] * u[i + 1]
        return np.sum(out)

    x0 = np.linspace(0.0, 1.0, 8) ** 2
    expected = {t: mo.grad(f, argnums=(0, 1))(x0 + 0.1 * t, 0.2) for t in range(6)}
    results, errors = {}, []

    def worker(t):
        try:
            for _ in range(5):
                results.setdefault(t, []).append(mo.grad(f, argnums=(0, 1))(x0 + 0.1 * t, 0.2))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for t, runs in results.items():
        for gx, gk in runs:
            np.testing.assert_allclose(gx, expected[t][0], rtol=1e-12)
            assert gk == pytest.approx(expected[t][1], rel=1e-12)


def test_vjp_of_an_array_output_written_in_place_after_it_was_made():
    # the output cotangent must reach the shadow before the reverse of writes through views,
    # out= and callees reads it
    x = np.array([1.0, 2.0, 3.0])

    def a(x):
        y = x.copy()
        z = y[::2]
        z *= 2
        return y

    def b(x):
        y = np.empty_like(x)
        np.multiply(x, x, out=y)
        return y

    def fill(out, x):
        out[:] = x ** 2

    def c(x):
        out = np.zeros(3)
        fill(out, x)
        return out
    np.testing.assert_allclose(mo.vjp(a, x)[1](np.ones(3))[0], [2.0, 1.0, 2.0])
    np.testing.assert_allclose(mo.vjp(b, x)[1](np.ones(3))[0], 2 * x)
    np.testing.assert_allclose(mo.jacobian(c)(x), np.diag(2 * x))
