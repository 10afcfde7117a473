"""Errors name the user's file and line and say what to do."""
import os
import traceback

import numpy as np
import pytest

import morula as mo

HERE = os.path.basename(__file__)


def uses_yield(x):
    yield x


def uses_try(x):
    try:
        return x * 2.0
    except ValueError:
        return x


def uses_global_assignment(x):
    global COUNTER
    COUNTER = x
    return x


def uses_walrus(x):
    if (y := x * 2.0) > 1:
        return y
    return x


@pytest.mark.parametrize("fn, what", [(uses_yield, "yield"), (uses_try, "try"),
                                      (uses_global_assignment, "global"), (uses_walrus, ":=")])
def test_unsupported_syntax_is_refused_before_running(fn, what):
    ran = []
    with pytest.raises(mo.UnsupportedSyntaxError) as info:
        mo.grad(fn)(1.0)
    error = info.value
    assert isinstance(error, SyntaxError)
    assert error.filename.endswith(HERE) and error.lineno > 0 and error.offset >= 1
    message = str(error)
    assert f"{HERE}:{error.lineno}:" in message and what in message
    assert not ran


class Opaque:
    """A C-like callable: no Python source to transform."""


def test_missing_rule_names_function_line_and_fix():
    import cmath

    def f(x):
        return cmath.phase(complex(x, 1.0)) * 2.0  # cmath has no rules

    with pytest.raises(mo.MissingRuleError) as info:
        mo.grad(f)(1.0)
    message = str(info.value)
    assert "phase" in message and HERE in message
    assert "@morula.rrule" in message and "morula.nondiff" in message


def test_calls_to_c_functions_returning_constants_are_fine():
    def f(x):
        n = len([1, 2, 3])
        idx = np.argmax(x)
        return x[idx] * n

    g = mo.grad(f)(np.array([1.0, 5.0, 2.0]))
    np.testing.assert_allclose(g, [0.0, 3.0, 0.0])


def test_runtime_error_traceback_points_at_user_line():
    def f(x):
        y = x * 2.0
        z = y / 0.0  # ZeroDivisionError on Python floats
        return z

    with pytest.raises(ZeroDivisionError) as info:
        mo.grad(f)(1.0)
    frames = traceback.extract_tb(info.value.__traceback__)
    user = [fr for fr in frames if fr.filename == __file__]
    assert any("y / 0.0" in (fr.line or "") for fr in user)


def test_source_not_available():
    namespace = {}
    exec("def f(x):\n    return x * 2.0\n", namespace)
    with pytest.raises(mo.errors.MorulaError if hasattr(mo, "errors") else Exception, match="source"):
        mo.grad(namespace["f"])(1.0)


def appends_to_argument(items, v):
    items.append(v * 2.0)


def test_write_into_callers_list_is_differentiated():
    def loss(v):
        items = [1.0]
        appends_to_argument(items, v)
        return items[0] + items[1]

    assert mo.grad(loss)(0.5) == 2.0


def test_untrackable_mutation_of_a_c_container_is_refused():
    import collections

    def loss(v):
        d = collections.deque()
        d.append(v * 2.0)
        return d[0]

    with pytest.raises(mo.UnsupportedOperationError, match="append"):
        mo.grad(loss)(0.5)


def works_on_a_copy(du, u, p):
    du = du.copy()
    du[0] = u[0] * p
    return du


def test_function_that_copies_its_argument_first_is_fine():
    def loss(u, p):
        return np.sum(works_on_a_copy(np.zeros(2), u, p) ** 2)

    assert mo.grad(loss, argnums=1)(np.array([1.0, 2.0]), 0.5) == pytest.approx(2 * 0.5)
