"""Compilation is done once per code object and cached; generated code reads live globals."""
import numpy as np

import morula as mo
from morula.frontend import normalize as normalize_module
from morula.reverse import transform

RATE = 2.0


def uses_global(x):
    return x * RATE


def test_second_call_does_not_retransform(monkeypatch):
    def f(x):
        return np.sum(np.sin(x) * x)

    x = np.ones(3)
    mo.grad(f)(x)
    calls = []
    real = transform.normalize
    monkeypatch.setattr(transform, "normalize", lambda *a: calls.append(a) or real(*a))
    mo.grad(f)(x)
    mo.grad(f)(x * 2)
    assert calls == []


def test_new_closure_of_same_code_reuses_compiled_code(monkeypatch):
    def make(k):
        return lambda x: k * x

    mo.grad(make(1.0))(1.0)
    calls = []
    real = transform.normalize
    monkeypatch.setattr(transform, "normalize", lambda *a: calls.append(a) or real(*a))
    assert mo.grad(make(3.0))(1.0) == 3.0   # live closure cell, compiled code reused
    assert calls == []


def test_globals_are_read_live():
    global RATE
    assert mo.grad(uses_global)(1.0) == 2.0
    RATE = 5.0
    try:
        assert mo.grad(uses_global)(1.0) == 5.0
    finally:
        RATE = 2.0


def test_registering_a_rule_invalidates_cached_code():
    def inner(x):
        return x * 2.0

    def outer(x):
        return inner(x) + x

    assert mo.grad(outer)(1.0) == 3.0
    before = transform.compile_function(outer)

    @mo.rrule(inner)
    def _inner(x):
        return x * 2.0, lambda g: (10.0 * g,)

    assert mo.grad(outer)(1.0) == 11.0
    assert transform.compile_function(outer) is not before


def test_user_functions_namespace_is_not_polluted():
    mo.grad(uses_global)(1.0)
    assert not [k for k in globals() if k.startswith("__mo")]


def _library_helper_with_try(x):
    try:
        return len(x)
    except TypeError:
        return 1


def test_unreadable_library_code_is_not_reparsed_on_every_call(monkeypatch):
    """Library code the fence refuses (here: a ``try``) runs as a constant; the refusal is
    remembered, in both modes, instead of re-parsing its source on every call."""
    from morula.reverse import runtime
    monkeypatch.setattr(runtime, "_is_library_code", lambda code: code is _library_helper_with_try.__code__)

    def f(x):
        return x * _library_helper_with_try(x)

    x = np.ones(3)
    assert np.allclose(mo.grad(lambda x: np.sum(f(x)))(x), 3.0)
    assert np.allclose(mo.jvp(f, (x,), (x,))[1], 3.0)
    parsed = []
    real = transform.function_source
    monkeypatch.setattr(transform, "function_source", lambda fn: parsed.append(fn) or real(fn))
    from morula.forward import transform as forward_transform
    monkeypatch.setattr(forward_transform, "function_source", lambda fn: parsed.append(fn) or real(fn),
                        raising=False)
    for _ in range(3):
        mo.grad(lambda x: np.sum(f(x)))(x)
        mo.jvp(f, (x,), (x,))
    assert _library_helper_with_try not in parsed
