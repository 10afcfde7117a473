"""Small module-level helpers are inlined into their callers' reverse-mode code (reverse.inline);
the inlined code must differentiate exactly like the call it replaces, and every change that
could make the copy stale (rebinding, new code, a rule registered later) must go down the call."""
import traceback

import numpy as np
import pytest

import morula as mo
from morula.reverse import transform
from morula.testing import check_grads

OFFSET = 0.5


def rhs(x, y, a, b):
    return a * x - b * x * y, b * x * y - a * y


def integrate(a, b):
    x, y = 1.0, 1.0
    for _ in range(50):
        dx, dy = rhs(x, y, a, b)
        x, y = x + 0.01 * dx, y + 0.01 * dy
    return x * y


def branchy(x, n):
    total = 0.0
    for i in range(n):
        if x > 0:
            total = total + np.sin(x) * i
        else:
            total = total - x * x
    while total > 10.0:
        total = total / 2.0
    return total + OFFSET


def uses_branchy(x):
    s = 0.0
    for k in range(3):
        s = s + branchy(x * (k + 1.0), 4)
    return s


def array_helper(w, v):
    h = np.tanh(w @ v)
    return np.sum(h ** 2) + OFFSET


def uses_array_helper(w, v):
    return array_helper(w, v) * array_helper(w.T, v)


def scale(x):
    return 2.0 * x


def calls_scale(x):
    return scale(x) + scale(x * x)


def helper_reading_global(x):
    return x * OFFSET


def caller_shadowing_global(x):
    OFFSET = 10.0   # a local of the caller with the name of the helper's global
    return helper_reading_global(x) + OFFSET * x


def with_default(x, k=3.0):
    return k * x


def calls_with_default(x):
    return with_default(x) + with_default(x, 2.0)


def writes_argument(v):
    v[0] = v[0] * 2.0
    return np.sum(v)


def calls_writer(x):
    v = x * 1.0
    return writes_argument(v) + np.sum(v)


def failing(x):
    return x / np.zeros(0).sum().item() if x > 100 else x + undefined_name_in_helper  # noqa: F821


def calls_failing(x):
    return failing(x) * 2.0


def _inlined(f):
    return "_mo_inline" in mo.source(f)


@pytest.mark.parametrize("f, args", [
    (integrate, (1.2, 0.7)),
    (uses_branchy, (0.3,)),
    (uses_branchy, (-0.4,)),
    (uses_array_helper, (np.random.default_rng(0).standard_normal((3, 3)), np.ones(3))),
    (calls_scale, (1.5,)),
])
def test_inlined_helpers_differentiate_like_the_call(f, args):
    assert _inlined(f)
    check_grads(f, args, modes=("rev",))
    check_grads(f, args, modes=("rev", "fwd"), order=2)


def test_inlined_and_called_gradients_agree():
    inlined = mo.grad(integrate, argnums=(0, 1))(1.2, 0.7)
    global rhs
    original = rhs
    try:
        rhs = lambda x, y, a, b: original(x, y, a, b)   # noqa: E731 -- a closure: called, not inlined
        called = mo.grad(integrate, argnums=(0, 1))(1.2, 0.7)
    finally:
        rhs = original
    np.testing.assert_allclose(inlined, called, rtol=1e-13)


def test_rebinding_the_global_goes_down_the_call():
    global scale
    original = scale
    assert mo.grad(calls_scale)(1.5) == pytest.approx(2.0 + 2.0 * 2 * 1.5)
    try:
        def scale(x):   # noqa: F811
            return 5.0 * x
        assert mo.grad(calls_scale)(1.5) == pytest.approx(5.0 + 5.0 * 2 * 1.5)
    finally:
        scale = original


def test_replaced_code_goes_down_the_call():
    original = scale.__code__
    assert mo.grad(calls_scale)(1.5) == pytest.approx(8.0)
    try:
        scale.__code__ = (lambda x: x * x * x).__code__
        assert mo.grad(calls_scale)(1.5) == pytest.approx(3 * 1.5 ** 2 + 6 * 1.5 ** 5)
    finally:
        scale.__code__ = original


def triple(x):
    return 3.0 * x


def calls_triple(x):
    return triple(x) + triple(x * x)


def test_rule_registered_later_is_used():
    assert _inlined(calls_triple)
    assert mo.grad(calls_triple)(1.5) == pytest.approx(3.0 + 3.0 * 2 * 1.5)

    @mo.rrule(triple)   # stays registered: only this test's helper uses it
    def triple_rule(x):
        return 3.0 * x, lambda g: (100.0 * g,)
    assert not _inlined(calls_triple)
    assert mo.grad(calls_triple)(1.5) == pytest.approx(100.0 + 100.0 * 2 * 1.5)


def test_helper_whose_global_is_a_caller_local_is_called():
    assert not _inlined(caller_shadowing_global)
    assert mo.grad(caller_shadowing_global)(2.0) == pytest.approx(OFFSET + 10.0)


def test_defaults_and_in_place_writes_stay_calls():
    text = mo.source(calls_with_default)
    assert "_mo_inline1 " in text and "_mo_inline2 " not in text   # only the call passing k
    assert mo.grad(calls_with_default)(1.0) == pytest.approx(5.0)
    assert not _inlined(calls_writer)
    check_grads(calls_writer, (np.array([1.0, 2.0, 3.0]),))


def test_error_in_inlined_helper_names_the_helpers_line():
    with pytest.raises(NameError) as info:
        mo.grad(calls_failing)(1.0)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(fr.filename == __file__ and "undefined_name_in_helper" in (fr.line or "") for fr in frames)


def test_inlining_is_compiled_once(monkeypatch):
    mo.grad(integrate)(1.0, 1.0)
    calls = []
    real = transform.normalize
    monkeypatch.setattr(transform, "normalize", lambda *a: calls.append(a) or real(*a))
    mo.grad(integrate)(1.1, 1.0)
    assert calls == []


# --- ``a, b = f(...)`` with ``return p, q``: bound directly, except where that would reorder ------

def swap(a, b):
    return b, a


def pair(u):
    return u * 2.0, u * u


def uses_swap(x, y):
    for _ in range(3):
        x, y = swap(x, y)          # parallel assignment: must keep the tuple
        x = x * 1.5 + y
    return x * y


def uses_pair_result_twice(x):
    r = pair(x)
    a, b = r
    return a * b + r[1]


def test_unpacked_tuple_returns():
    assert _inlined(uses_swap) and _inlined(uses_pair_result_twice)
    check_grads(uses_swap, (0.4, 1.3), modes=("rev", "fwd"), order=2)
    check_grads(uses_pair_result_twice, (0.8,), modes=("rev", "fwd"), order=2)
    assert mo.grad(uses_pair_result_twice)(0.8) == pytest.approx(6 * 0.8 ** 2 + 2 * 0.8)


# --- callees with control flow of their own ------------------------------------------------------

def first_above(xs, limit):
    for v in xs:
        if v > limit:
            return v * 2.0          # an early return inside a loop (exit flags, renamed apart)
    return limit


def halve_until_small(v):
    steps = 0
    while v > 1.0:
        v = v / 2.0                 # rebinds its parameter: copied, not substituted
        steps += 1
        if steps > 50:
            break
    return v + steps * 0.0


def checked(v):
    if not isinstance(v, float) and len(np.shape(v)) > 1:
        raise ValueError("unreachable for these inputs")
    print("checked", v > 0)
    return v * v


def uses_control_flow_helpers(x, y):
    total = 0.0
    for k in range(3):
        total = total + first_above([x, y, x * y], 0.5 + k * 0.3)
        total = total + halve_until_small(x * 7.0 + k)
    return total + checked(total)


def test_callees_with_loops_early_returns_and_passthrough(capsys):
    assert _inlined(uses_control_flow_helpers)
    check_grads(uses_control_flow_helpers, (0.9, 1.3), modes=("rev", "fwd"), order=2)
    check_grads(uses_control_flow_helpers, (0.2, 0.4), modes=("rev", "fwd"))
    assert "checked True" in capsys.readouterr().out


# --- forward mode inlines the same way ------------------------------------------------------------

def quadruple(x):
    return 4.0 * x


def calls_quadruple(x):
    return quadruple(x) * quadruple(x + 1.0)


def test_forward_mode_inlines_and_honours_forward_rules():
    assert "_mo_inline" in mo.source(integrate, mode="forward", file=None)
    out, t = mo.jvp(integrate, (1.2, 0.7), (1.0, 0.0))
    assert t == pytest.approx(mo.grad(integrate)(1.2, 0.7), rel=1e-12)
    assert mo.jvp(calls_quadruple, (1.0,), (1.0,))[1] == pytest.approx(4 * 8 + 4 * 4)   # q' q(x+1) + q q'

    @mo.frule(quadruple)   # stays registered: only this test's helper uses it
    def quadruple_frule(primals, tangents):
        return 4.0 * primals[0], 100.0 * tangents[0]
    assert "_mo_inline" not in mo.source(calls_quadruple, mode="forward", file=None)
    assert mo.jvp(calls_quadruple, (1.0,), (1.0,))[1] == pytest.approx(100.0 * 8 + 4 * 100.0)
