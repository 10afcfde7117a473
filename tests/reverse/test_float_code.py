"""Straight float arithmetic in generated reverse code (reverse.codegen): numbers no input
reaches are plain Python with no adjoint, and runs of float ops share one type test and one tape
slot, falling back op by op when any number entering the run is not a float. Each case must give
the same derivatives as finite differences and as forward mode, in loops and outside them."""
import contextlib
import threading

import numpy as np
import pytest

import morula as mo
from morula.testing import check_grads


# --- numbers no input reaches (codegen._constant_names): plain Python, no adjoint ----------------

def step_sizes(x, n):
    h = 0.1
    total = 0.0
    for _ in range(n):
        half = 0.5 * h
        total = total + half * x + h ** 2 * x * x
        h = h / 2.0 + 0.01           # rebound, still a number from literals
    half = x * 3.0                   # now bound to a value x reaches: no longer a constant
    return total + half * h


def constant_then_varied_in_loop(x):
    s = 0.0
    for i in range(3):
        t = x * 2.0
        s = s + t * t
        t = 0.5 * 4.0                # same name, a constant binding after a varied one
        s = s + t * x
    return s


def test_constant_numbers_skip_the_tape_and_stay_exact():
    text = mo.source(step_sizes)
    assert "_t9 = h / 2.0\n" in text and "_mo_op_truediv" not in text   # plain arithmetic
    assert "_mo_push((h," not in text and "_mo_push((0.5" not in text   # nothing taped for h
    check_grads(step_sizes, (0.7, 4), modes=("rev", "fwd"), order=2)
    check_grads(constant_then_varied_in_loop, (0.3,), modes=("rev", "fwd"), order=2)
    assert mo.grad(constant_then_varied_in_loop)(0.3) == pytest.approx(3 * (8 * 0.3 + 2.0))


# --- runs of float ops --------------------------------------------------------------------------

def run_outside_loop(a, b):
    t = a * b - a / b + 2 * a ** 3   # outside loops: per-operation code (no run is formed)
    return t * t - (-b) ** 2


def runs_in_a_loop(a, b, n):
    t = 0.0
    for _ in range(n):
        t = a * b - a / b + 2 * a ** 3 + t * 0.5
    return t * t - (-b) ** 2


def run_in_loop(a, b, n):
    x, y = a, b
    for _ in range(n):
        u = x * y + 0.5 * x
        v = u / (1.0 + y * y)
        x, y = v - y, u * 0.25
    return x + y


def run_with_rebinding(a, b):
    y = 0.0
    for _ in range(2):
        x = a * b + y
        x = x * x + a        # writes a name the run read: the run ends before it
        y = x * b - a
    return y * x


def run_with_int_and_array_inputs(a, k, w):
    s = 0.0
    for i in range(k):
        s = s * 0.5 + a * i - i * i * 0.1     # i is an int: every run takes the per-op path
    z = a * w + w * w                         # arrays: per-op path, array rules
    return s + np.sum(z * a)


@pytest.mark.parametrize("f, args", [
    (run_outside_loop, (0.7, 1.3)),
    (runs_in_a_loop, (0.7, 1.3, 3)),
    (run_in_loop, (0.4, 0.9, 5)),
    (run_with_rebinding, (0.8, -1.1)),
    (run_with_int_and_array_inputs, (0.6, 4, np.array([0.5, -1.0, 2.0]))),
])
def test_float_runs(f, args):
    formed = "is not False:" in mo.source(f, file=None)
    assert formed == (f is not run_outside_loop)   # runs only inside loops
    check_grads(f, args, modes=("rev", "fwd"), order=2)


def test_float_runs_with_numpy_scalars_and_mixed_types():
    # np.float64 is a float for the run's test; np.float32 and ints send it op by op
    for a, b in ((np.float64(0.7), 1.3), (np.float32(0.7), 1.3), (0.7, 2)):
        got = mo.grad(runs_in_a_loop)(a, b, 3)
        want = mo.jvp(runs_in_a_loop, (float(a), float(b), 3), (1.0, 0.0, None))[1]
        assert float(got) == pytest.approx(want, rel=1e-5)


class _Scaled:
    def __init__(self, v):
        self.v = v

    def __enter__(self):
        return self.v

    def __exit__(self, *exc):
        return False


def name_rebound_by_a_with_statement(x):
    h = 0.5                        # a literal ...
    with _Scaled(x * x) as h:      # ... then a value x reaches: not a constant
        pass
    return h * x


def test_names_bound_by_with_are_not_constants():
    # h is not a literal-only number (codegen._bound_by sees the `as` target) ...
    from morula.frontend.normalize import normalize
    from morula.frontend.source import function_source
    from morula.reverse.codegen import _constant_names
    core_fn = normalize(function_source(name_rebound_by_a_with_statement), name_rebound_by_a_with_statement)
    assert "h" not in _constant_names(core_fn)


def test_value_bound_by_with_is_differentiated():
    # ... and the value the context manager hands out is differentiated (normalize.entered)
    assert mo.grad(name_rebound_by_a_with_statement)(0.7) == pytest.approx(3 * 0.7 ** 2)
    assert mo.jvp(name_rebound_by_a_with_statement, (0.7,), (1.0,))[1] == pytest.approx(3 * 0.7 ** 2)


class _Recording:
    def __init__(self, v, log, suppress=False):
        self.v, self.log, self.suppress = v, log, suppress

    def __enter__(self):
        self.log.append("enter")
        return self.v * 2.0

    def __exit__(self, kind, value, traceback):
        self.log.append(("exit", kind))
        return self.suppress


def with_exception_inside(x, log, suppress):
    y = x * 1.0
    with _Recording(x, log, suppress) as h:
        y = h * x
        if x > 0:
            raise ValueError("inside the block")
    return y


def test_with_keeps_python_semantics():
    log = []
    with pytest.raises(ValueError):
        mo.grad(with_exception_inside)(0.5, log, False)
    assert log == ["enter", ("exit", ValueError)]      # entered once, exited with the exception
    log.clear()
    # suppressed by __exit__ (y = h * x = 2 x^2 was computed before the raise): reverse mode
    # refuses a block that ended part-way; forward mode follows it
    with pytest.raises(mo.errors.UnsupportedOperationError, match="suppressed an exception"):
        mo.grad(with_exception_inside)(0.5, log, True)
    assert log == ["enter", ("exit", ValueError)]
    assert mo.jvp(lambda x: with_exception_inside(x, [], True), (0.5,), (1.0,))[1] == pytest.approx(4 * 0.5)
    log.clear()
    assert mo.grad(with_exception_inside)(-0.5, log, False) == pytest.approx(4 * -0.5)
    assert log == ["enter", ("exit", None)]


@contextlib.contextmanager
def _scaled(v):
    yield v * 3.0


@contextlib.contextmanager
def _quiet_block():
    yield


_LOCK = threading.Lock()


def library_and_generator_managers(x, path):
    with open(path) as fh:            # a library manager: runs as written
        k = float(fh.read())
    with _LOCK as got:                # C manager handing out a bool
        y = x * k if got else x
    with _quiet_block():              # generator manager, no value
        y = y * x
    return y


def generator_manager_handing_out_a_derivative(x):
    with _scaled(x) as s:             # cannot be differentiated: refused, not made a constant
        y = s * x
    return y


def test_other_managers_run_as_written(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("2.5")
    assert mo.grad(library_and_generator_managers)(0.7, str(path)) == pytest.approx(2 * 2.5 * 0.7)
    assert not _LOCK.locked()
    with pytest.raises(mo.errors.UnsupportedOperationError, match="contextmanager generator"):
        mo.grad(generator_manager_handing_out_a_derivative)(0.7)


# --- one-argument math functions called inline (reverse/scalar_calls.py) -------------------------

import math  # noqa: E402
from math import exp as imported_exp  # noqa: E402


def pendulum(g, theta):
    omega = 0.0
    for _ in range(20):
        omega = omega - 0.05 * g * math.sin(theta)
        theta = theta + 0.05 * omega + 0.01 * imported_exp(-theta * theta) + math.tanh(omega) * 0.01
    return theta * theta + math.sqrt(1.0 + omega * omega)


def test_math_functions_inline_and_exact():
    text = mo.source(pendulum, file=None)
    assert "math.sin is _mo_sf" in text and "imported_exp is _mo_sf" in text
    assert "math.sin is _mo_sf" in mo.source(pendulum, mode="forward", file=None)   # both modes
    check_grads(pendulum, (9.8, 0.4), modes=("rev", "fwd"), order=2)
    # np.float64 arguments take the inline path, np.float32 and ints the general one
    for g, theta in ((np.float64(9.8), 0.4), (9.8, np.float32(0.4)), (9, 0.4)):
        got = mo.grad(pendulum, argnums=1)(g, theta)
        want = mo.jvp(pendulum, (float(g), float(theta)), (0.0, 1.0))[1]
        assert float(got) == pytest.approx(want, rel=1e-5)


def test_rebound_math_name_takes_the_general_call():
    global imported_exp
    original = imported_exp
    try:
        imported_exp = lambda v: 2.0 * math.exp(v)   # noqa: E731
        got = mo.grad(pendulum, argnums=1)(9.8, 0.4)
        want = mo.jvp(pendulum, (9.8, 0.4), (0.0, 1.0))[1]
        assert got == pytest.approx(want, rel=1e-9)
    finally:
        imported_exp = original
