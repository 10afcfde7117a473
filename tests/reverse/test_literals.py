"""Number literals of generated code (shadow.register_literals): rules skip their cotangents
(``np.maximum(h, 0.0)``, ``x * 2.0``, ``x ** 2.0``), never when the literal is what an inner
derivative is taken with respect to."""
import numpy as np
import pytest

import morula as mo
from morula.reverse import shadow
from morula.testing import check_grads

H = np.linspace(-1.0, 1.0, 6)


def with_literals(x):
    z = np.maximum(H * x, 0.0) ** 2.0 + (x * H) * 2.0 + 1.0 - H / 3.0
    return np.sum(np.minimum(z, 0.5) * z)


def test_gradients_with_literal_operands():
    check_grads(with_literals, (0.7,), modes=("rev", "fwd"), order=2)
    check_grads(with_literals, (-0.4,), modes=("rev", "fwd"), order=2)


def test_literal_cotangents_are_not_computed(monkeypatch):
    from morula.rules import numpy_elementwise, python_operators
    wanted, literal = [], []
    real_wanted, real_literal = numpy_elementwise.scalar_wanted, python_operators._literal

    def spy_wanted(x):
        w = real_wanted(x)
        if type(x) is float:
            wanted.append((x, w))
        return w

    def spy_literal(x):
        skip = real_literal(x)
        if type(x) is float:
            literal.append((x, skip))
        return skip
    monkeypatch.setattr(numpy_elementwise, "scalar_wanted", spy_wanted)
    monkeypatch.setattr(python_operators, "_literal", spy_literal)
    mo.grad(with_literals)(0.7)
    assert (0.0, False) in wanted and (0.5, False) in wanted      # np.maximum / np.minimum
    assert (2.0, True) in literal and (3.0, True) in literal      # ** 2.0, * 2.0, / 3.0


@mo.nondiff
def _opaque_inner_gradient(v):
    # runs as it is, with the caller's literal 0.5 as the point of an inner gradient
    return mo.grad(lambda t: np.sum(np.maximum(H * t, -1.0) ** 2.0))(v)


def calls_inner_gradient_at_a_literal(x):
    return x * _opaque_inner_gradient(0.5)


def test_a_literal_differentiated_by_an_inner_sweep_is_not_skipped():
    expected = np.sum(2 * (H * 0.5) * H)
    assert mo.grad(calls_inner_gradient_at_a_literal)(1.0) == pytest.approx(expected)


def test_literals_registered_per_compiled_code():
    mo.grad(with_literals)(0.7)
    assert any(type(k) is float and k == 2.0 for k in shadow._LITERALS_KEPT)
