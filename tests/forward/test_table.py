"""Forward-mode tangent memory (forward.table): tangents handed to the table (seeds, rules' fresh
results) are adopted as buffers without a copy, and copied before the first in-place write --
so a write never reaches the caller's tangent array or another value's tangent."""
import numpy as np
import pytest

import morula as mo
from morula.forward.table import TangentTable
from morula.rules.numpy_forward import NumpyMemory


def writes_its_argument(x):
    x[0] = x[1] * 3.0
    x *= 2.0
    return np.sum(x ** 2)


def copy_then_write_original(x):
    y = x + 0.0              # the add rule may hand back x's tangent itself for y
    x[1] = 5.0               # a write to x must not change y's tangent
    return np.sum(y * y) + np.sum(x)


def test_seed_tangent_is_not_written():
    x, v = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    v_before = v.copy()
    out, t = mo.jvp(writes_its_argument, (x.copy(),), (v,))
    np.testing.assert_array_equal(v, v_before)
    eps = 1e-6
    fd = (writes_its_argument(x + eps * v) - writes_its_argument(x - eps * v)) / (2 * eps)
    assert abs(t - fd) < 1e-6 * max(1.0, abs(fd))


def test_write_after_an_aliasing_rule_keeps_the_other_tangent():
    x, v = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    mo.testing.check_grads(copy_then_write_original, (x,), modes=("fwd", "rev"))
    out, t = mo.jvp(copy_then_write_original, (x.copy(),), (v,))
    assert abs(t - (2 * np.sum(x * v) + v[0] + v[2])) < 1e-12


def test_one_tangent_for_two_primals():
    def f(a, b):
        a[0] = 0.0           # a's tangent entry becomes 0; b's stays
        return np.sum(a * b)
    x, y, v = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([1.0, 1.0])
    out, t = mo.jvp(f, (x.copy(), y.copy()), (v, v))
    assert abs(t - (1.0 * 4.0 + 2.0 * 1.0)) < 1e-12     # d(a1 * b1) with a0 overwritten
    eps = 1e-6
    fd = (f(x + eps * v, y + eps * v) - f(x - eps * v, y - eps * v)) / (2 * eps)
    assert abs(t - fd) < 1e-6
    np.testing.assert_array_equal(v, [1.0, 1.0])


def test_adopted_buffer_is_copied_on_first_write():
    T = TangentTable()
    x, t = np.zeros(3), np.ones(3)
    T.set_array(x, t, NumpyMemory)
    assert T.array(x, NumpyMemory) is t                 # adopted, no copy
    w = T.array_for_write(x, NumpyMemory)
    assert w is not t and np.array_equal(w, t)
    w[0] = 7.0
    assert t[0] == 1.0                                   # the adopted array is untouched
    view = x[1:]
    T2 = TangentTable()
    T2.set_array(view, np.ones(2), NumpyMemory)          # a view: copied into a root buffer
    assert T2.array(x, NumpyMemory).tolist() == [0.0, 1.0, 1.0]


def test_returned_tangents_never_alias_the_seed():
    v, x = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    for f in (lambda a: a, lambda a: a[1:], lambda a: a.reshape(2, 1)):
        _, t = mo.jvp(f, (x,), (v,))
        assert not np.shares_memory(t, v)
        np.testing.assert_array_equal(t.ravel(), v[-t.size:])


def test_a_buffer_is_never_adopted_by_a_second_array():
    # y = u + 0.0 hands back u's own tangent buffer; adopting it for y would make the later
    # in-place write to u change y's tangent too
    def f(x):
        u = x.copy()
        u *= 2.0           # u's tangent buffer is now the table's own
        w = u + 0.0
        u *= 1.5
        return np.sum(np.sin(w))

    x, v = np.array([0.3, -0.5, 0.8]), np.array([1.0, -2.0, 0.5])
    _, t = mo.jvp(f, (x,), (v,))
    assert t == pytest.approx(np.sum(2.0 * np.cos(2.0 * x) * v), rel=1e-12)
    T = TangentTable()
    a, b = np.zeros(3), np.zeros(3)
    buf = T.array_for_write(a, NumpyMemory)
    T.set_array(b, buf, NumpyMemory)
    assert T.array(b, NumpyMemory) is not buf
