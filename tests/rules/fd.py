"""Finite-difference checks for reverse rules, used by the rule tests.

``check_rule(rule, fn, args, kwargs)`` calls the rule, compares its primal with
``fn(*args, **kwargs)``, draws a random output cotangent ``dy`` and, for every
differentiable positional argument, a random direction ``v``, and checks the
vector-Jacobian identity ``<dy, J v> == <pullback(dy), v>`` with ``J v`` from
central differences. The real inner product ``Re sum(conj(a) b)`` makes the same
check cover complex inputs. It also checks that each cotangent mirrors its
argument (container type, shape, dtype), that integer arguments get ``None``,
and that the pullback mutates neither ``dy`` nor the inputs.
"""

import numpy as np

_rng = np.random.default_rng(1234)


def rng(seed=None):
    return np.random.default_rng(seed) if seed is not None else _rng


def is_leaf_inexact(x):
    if type(x) in (float, complex):
        return True
    if isinstance(x, type):
        return False
    dtype = getattr(x, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind in "fc"


def differentiable(x):
    if isinstance(x, (list, tuple)):
        return any(differentiable(v) for v in x)
    return is_leaf_inexact(x)


def random_like(x, gen=None):
    """A random value with the structure, shape and dtype of ``x`` (``None`` for non-float leaves)."""
    gen = gen or _rng
    if isinstance(x, (list, tuple)):
        return type(x)(random_like(v, gen) for v in x) if type(x) in (list, tuple) else tuple(
            random_like(v, gen) for v in x
        )
    if type(x) is float:
        return float(gen.standard_normal())
    if type(x) is complex:
        return complex(gen.standard_normal(), gen.standard_normal())
    dtype = getattr(x, "dtype", None)
    if isinstance(x, type) or not isinstance(dtype, np.dtype) or dtype.kind not in "fc":
        return None
    shape = np.shape(x)
    v = gen.standard_normal(shape)
    if dtype.kind == "c":
        v = v + 1j * gen.standard_normal(shape)
    v = np.asarray(v, dtype=dtype)
    if isinstance(x, np.generic):
        return dtype.type(v)
    return v


def axpy(alpha, v, x):
    """``x + alpha * v`` over structures (``v`` ``None`` means no change)."""
    if v is None:
        return x
    if isinstance(x, (list, tuple)):
        items = [axpy(alpha, vi, xi) for vi, xi in zip(v, x)]
        return type(x)(items) if type(x) in (list, tuple) else tuple(items)
    if type(x) is float:
        return float(x + alpha * v)
    if type(x) is complex:
        return complex(x + alpha * v)
    out = x + alpha * v
    if isinstance(x, np.generic):
        return x.dtype.type(out)
    return np.asarray(out, dtype=x.dtype)


def sub_scale(a, b, scale):
    """``(a - b) * scale`` over output structures."""
    if isinstance(a, (list, tuple)):
        return type(a)(sub_scale(x, y, scale) for x, y in zip(a, b))
    a = np.asarray(a)
    if a.dtype.kind not in "fc":
        return None
    return (np.asarray(a, dtype=np.complex128 if a.dtype.kind == "c" else np.float64) - b) * scale


def inner(a, b):
    """Real inner product ``Re sum(conj(a) * b)`` over structures (``None`` is zero)."""
    if a is None or b is None:
        return 0.0
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (type(a), type(b))
        return sum(inner(x, y) for x, y in zip(a, b))
    return float(np.real(np.sum(np.conj(np.asarray(a)) * np.asarray(b))))


def copy_tree(x):
    if isinstance(x, (list, tuple)):
        items = [copy_tree(v) for v in x]
        return type(x)(items) if type(x) in (list, tuple) else tuple(items)
    if isinstance(x, np.ndarray):
        return x.copy()
    return x


def assert_tree_equal(a, b):
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_tree_equal(x, y)
        return
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)


def assert_mirrors(ct, x, where="cotangent"):
    """``ct`` has the structure, shape and dtype that a cotangent of ``x`` must have."""
    if not differentiable(x):
        assert ct is None, f"{where}: expected None for non-differentiable {type(x).__name__}, got {ct!r}"
        return
    if ct is None:
        return  # a structural zero is always allowed
    if isinstance(x, (list, tuple)):
        assert type(ct) is type(x) or (not type(x) in (list, tuple) and type(ct) is tuple), (
            f"{where}: {type(ct).__name__} for {type(x).__name__}"
        )
        assert len(ct) == len(x)
        for i, (c, v) in enumerate(zip(ct, x)):
            assert_mirrors(c, v, f"{where}[{i}]")
        return
    if type(x) is float:
        assert type(ct) is float, f"{where}: {type(ct).__name__} for a float"
        return
    if type(x) is complex:
        assert type(ct) is complex, f"{where}: {type(ct).__name__} for a complex"
        return
    assert np.shape(ct) == np.shape(x), f"{where}: shape {np.shape(ct)} for {np.shape(x)}"
    assert ct.dtype == x.dtype, f"{where}: dtype {ct.dtype} for {x.dtype}"


def assert_close_tree(a, b, rtol=1e-10, atol=1e-12):
    if isinstance(b, (list, tuple)):
        assert isinstance(a, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_close_tree(x, y, rtol, atol)
        return
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, equal_nan=True)
    assert np.shape(a) == np.shape(b)


def check_rule(rule, fn, args, kwargs=None, wrt=None, eps=1e-6, rtol=1e-6, atol=1e-8,
               directions=2, gen=None, primal_rtol=1e-12):
    """Check ``rule`` against ``fn`` at ``args``; returns the cotangents for further checks."""
    kwargs = kwargs or {}
    gen = gen or _rng
    before = copy_tree(args)
    out, pullback = rule(*args, **kwargs)
    expected = fn(*args, **kwargs)
    assert_close_tree(out, expected, rtol=primal_rtol, atol=0)
    assert pullback is not None, "the rule says the output is constant"
    dy = random_like(out, gen)
    dy_before = copy_tree(dy)
    cts = pullback(dy)
    assert type(cts) is tuple, type(cts)
    assert len(cts) == len(args), f"{len(cts)} cotangents for {len(args)} positional arguments"
    assert_tree_equal(dy, dy_before)
    assert_tree_equal(args, before)
    for i, (ct, x) in enumerate(zip(cts, args)):
        assert_mirrors(ct, x, f"cotangent {i}")
    indices = range(len(args)) if wrt is None else wrt
    for i in indices:
        if not differentiable(args[i]):
            continue
        for _ in range(directions):
            v = random_like(args[i], gen)
            plus = list(args)
            minus = list(args)
            plus[i] = axpy(eps, v, args[i])
            minus[i] = axpy(-eps, v, args[i])
            jv = sub_scale(fn(*plus, **kwargs), fn(*minus, **kwargs), 1 / (2 * eps))
            lhs = inner(dy, jv)
            rhs = inner(cts[i], v)
            scale = max(abs(lhs), abs(rhs), 1.0)
            assert abs(lhs - rhs) <= atol + rtol * scale, (
                f"argument {i}: <dy, J v> = {lhs!r} but <pullback(dy), v> = {rhs!r}"
            )
    # forward mode: the same rule's forward counterpart satisfies the inner-product identity
    from morula.testing import check_forward_rule
    check_forward_rule(rule, fn, args, kwargs, dy, cts, np.random.default_rng(7), rtol=max(rtol, 1e-6),
                       atol=max(atol, 1e-8))
    return cts


def check_float32(rule, args, kwargs=None, rtol=1e-4, atol=1e-5):
    """The rule on float32 inputs gives float32 cotangents close to the float64 ones."""
    kwargs = kwargs or {}
    out, pullback = rule(*args, **kwargs)
    dy = random_like(out)
    cts = pullback(dy)
    for i, (ct, x) in enumerate(zip(cts, args)):
        assert_mirrors(ct, x, f"cotangent {i}")

    def to64(x):
        if isinstance(x, (list, tuple)):
            return type(x)(to64(v) for v in x)
        if getattr(x, "dtype", None) is not None and x.dtype == np.float32:
            return np.asarray(x, dtype=np.float64) if isinstance(x, np.ndarray) else np.float64(x)
        return x

    out64, pullback64 = rule(*to64(args), **kwargs)
    cts64 = pullback64(to64(dy))
    for ct, ct64 in zip(cts, cts64):
        if ct is not None and ct64 is not None:
            assert_close_tree(to64(ct), ct64, rtol=rtol, atol=atol)
    return cts
