"""Public gradient checking: ``check_grads`` compares morula against finite differences,
``check_rule`` checks one registered rule (function or method) the same way.

In: a function and example arguments (numbers, arrays, and tuples/lists/dicts
or objects of them). Out: nothing when the derivatives agree; an
``AssertionError`` saying how far apart they are otherwise.

Reverse mode is checked in random directions: for random ``v`` in the input
space and random ``u`` in the output space, ``<u, J v>`` by central
differences must equal ``<J^T u, v>`` from ``morula.vjp``.
"""

import copy

import numpy as np

from . import tangents
from .api import jvp, vjp

__all__ = ["check_grads", "check_rule"]


def _leaves(x, path=()):
    """(path, value) for every float/complex leaf of a structure, in a fixed order."""
    t = type(x)
    if t in (float, complex):
        yield path, x
    elif isinstance(x, np.ndarray) or isinstance(x, np.generic):
        if np.asarray(x).dtype.kind in "fc":
            yield path, x
    elif isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            yield from _leaves(v, path + (i,))
    elif isinstance(x, dict):
        for k in x:
            yield from _leaves(x[k], path + (k,))
    elif isinstance(x, tangents.ObjectCotangent):
        for k, v in x.fields.items():
            yield from _leaves(v, path + (k,))
    elif hasattr(x, "__dict__") and not callable(x) and not isinstance(x, type):
        for k, v in vars(x).items():
            yield from _leaves(v, path + (k,))


def _get(x, path):
    for p in path:
        if isinstance(x, (tuple, list, dict)):
            x = x[p]
        elif isinstance(x, tangents.ObjectCotangent):
            x = x.fields.get(p)
        else:
            x = getattr(x, p)
        if x is None:
            return None
    return x


def _perturbed(x, path, delta):
    """A copy of ``x`` with ``delta`` added at ``path``."""
    if not path:
        if isinstance(x, np.ndarray):
            return (x + delta).astype(x.dtype)
        if isinstance(x, np.generic):
            return type(x)(x + delta)
        return x + delta
    head, rest = path[0], path[1:]
    if isinstance(x, tuple):
        items = list(x)
        items[head] = _perturbed(items[head], rest, delta)
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    if isinstance(x, list):
        items = list(x)
        items[head] = _perturbed(items[head], rest, delta)
        return items
    if isinstance(x, dict):
        out = dict(x)
        out[head] = _perturbed(out[head], rest, delta)
        return out
    out = copy.copy(x)
    object.__setattr__(out, head, _perturbed(getattr(x, head), rest, delta))
    return out


def _random_like(value, rng):
    if isinstance(value, (float, complex)) or np.ndim(value) == 0 and not isinstance(value, np.ndarray):
        r = rng.standard_normal()
        if np.iscomplexobj(value):
            r = r + 1j * rng.standard_normal()
        return type(value)(r) if isinstance(value, (float, complex)) else np.asarray(value).dtype.type(r)
    arr = np.asarray(value)
    r = rng.standard_normal(arr.shape)
    if arr.dtype.kind == "c":
        r = r + 1j * rng.standard_normal(arr.shape)
    return r.astype(arr.dtype)


def _inner(a, b):
    """Real inner product <a, b> = Re(sum(conj(a) * b))."""
    return float(np.real(np.sum(np.conj(np.asarray(a, dtype=complex)) * np.asarray(b, dtype=complex))))


def check_grads(f, args, modes=("rev",), order=1, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0, directions=3):
    """Assert that morula's derivatives of ``f`` at ``args`` match central finite differences.

    ``args`` is a tuple of positional arguments. For ``directions`` random input directions ``v``
    and output directions ``u``: reverse mode (``"rev"``) must give ``<J^T u, v>`` and forward mode
    (``"fwd"``) ``<u, J v>`` equal to central differences, and with both modes the two must agree
    with each other (the inner-product identity) to near rounding. ``order=2`` also checks the
    derivatives of the first derivative (``x -> J(x) v``, differentiated again in the same modes).
    Use float64 arguments: finite differences are too coarse in float32.
    """
    if not isinstance(args, tuple):
        args = (args,)
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = set(modes) - {"rev", "fwd"}
    if unknown or not modes:
        raise ValueError(f"check_grads: modes must be drawn from ('rev', 'fwd'), got {modes!r}")
    if order not in (1, 2):
        raise ValueError("check_grads: order must be 1 or 2")
    rng = np.random.default_rng(seed)
    in_leaves = [(i,) + p for i, a in enumerate(args) for p, _ in _leaves(a)]
    if not in_leaves:
        raise ValueError("check_grads: the arguments hold no floating-point values")
    for _ in range(directions):
        out = f(*copy.deepcopy(args))
        out_leaves = list(_leaves(out))
        u = {p: _random_like(v, rng) for p, v in out_leaves}
        v = {p: _random_like(_get(args, p), rng) for p in in_leaves}

        def shifted(scale):
            new = args
            for p in in_leaves:
                new = _perturbed(new, p, scale * v[p])
            return f(*copy.deepcopy(new))

        plus, minus = shifted(eps), shifted(-eps)
        numeric = sum(_inner(u[p], (np.asarray(_get(plus, p)) - np.asarray(_get(minus, p))) / (2 * eps))
                      for p, _ in out_leaves)
        found = {}
        if "rev" in modes:
            out, pullback = vjp(f, *copy.deepcopy(args))
            cts = pullback(_build_like(out, u))
            found["rev"] = sum(_inner(_get(cts, p) if _get(cts, p) is not None else 0.0, v[p]) for p in in_leaves)
        if "fwd" in modes:
            tangents_in = _tangents_like(args, v)
            out, tout = jvp(f, copy.deepcopy(args), tangents_in)
            found["fwd"] = sum(_inner(u[p], _get(tout, p) if _get(tout, p) is not None else 0.0)
                               for p, _ in out_leaves)
        for mode, analytic in found.items():
            if not np.isclose(analytic, numeric, rtol=rtol, atol=atol):
                what = "<J^T u, v>" if mode == "rev" else "<u, J v>"
                raise AssertionError(
                    f"check_grads: {'reverse' if mode == 'rev' else 'forward'} mode gives {what} = "
                    f"{analytic!r} but central differences give <u, J v> = {numeric!r} "
                    f"(difference {abs(analytic - numeric):.3g})")
        if len(found) == 2 and not np.isclose(found["rev"], found["fwd"], rtol=1e-9, atol=1e-12):
            raise AssertionError(
                f"check_grads: forward <u, J v> = {found['fwd']!r} and reverse <J^T u, v> = {found['rev']!r} "
                "differ: the inner-product identity fails")
        if order == 2:
            direction = _tangents_like(args, v)
            _check_second_order(f, args, direction, u, modes, eps, rtol, atol, seed)


def _tangents_like(args, v):
    """The direction ``v`` (by leaf path) as tangents with the arguments' structure."""
    return tuple(_build_like(a, {p[1:]: val for p, val in v.items() if p[0] == i}) if _any_leaf(a) else None
                 for i, a in enumerate(args))


def _any_leaf(a):
    return next(iter(_leaves(a)), None) is not None


def _check_second_order(f, args, direction, u, modes, eps, rtol, atol, seed):
    """The first derivative in direction ``direction`` is itself differentiable: check it."""
    import functools
    from . import nested
    first_derivative = functools.partial(nested.first_derivative_kw, f, direction, None)
    check_grads(first_derivative, args, modes=modes, order=1, eps=eps, rtol=max(rtol, 1e-4),
                atol=max(atol, 1e-5), seed=seed + 1, directions=1)


def _build_like(out, values, path=()):
    t = type(out)
    if path in values:
        return values[path]
    if isinstance(out, tuple) and not hasattr(out, "_fields"):
        return tuple(_build_like(v, values, path + (i,)) for i, v in enumerate(out))
    if isinstance(out, list):
        return [_build_like(v, values, path + (i,)) for i, v in enumerate(out)]
    if isinstance(out, dict):
        return {k: _build_like(v, values, path + (k,)) for k, v in out.items()}
    if isinstance(out, tuple):
        return tuple(_build_like(v, values, path + (i,)) for i, v in enumerate(out))
    if hasattr(out, "__dict__") and not callable(out):
        return tangents.ObjectCotangent({k: _build_like(v, values, path + (k,)) for k, v in vars(out).items()})
    return None


# -- check_rule: one registered rule against finite differences -------------------------------

_CHECK_OPTIONS = ("check_eps", "check_rtol", "check_atol", "check_seed", "check_directions")


def _resolve_rule(fn):
    """(rule, primal callable, description) for a function, a method, or ``(cls, "name")``."""
    from .rules import load_pending
    from .rules.registry import REGISTRY

    load_pending()
    if isinstance(fn, tuple) and len(fn) == 2 and isinstance(fn[0], type) and isinstance(fn[1], str):
        cls, name = fn
        found = REGISTRY.method_rule(cls, name)
        if found is not None:
            rule, mutating = found
            if mutating:
                raise AssertionError(f"check_rule: {cls.__name__}.{name} has a mutating method rule; "
                                     "check_rule handles functions and non-mutating methods")

            def call_method(obj, *args, **kwargs):
                return getattr(obj, name)(*args, **kwargs)
            return rule, call_method, f"{cls.__name__}.{name}"
        rule = REGISTRY.attribute_rule(cls, name)
        if rule is not None:
            return rule, (lambda obj: getattr(obj, name)), f"{cls.__name__}.{name} (attribute)"
        raise AssertionError(f"check_rule: no rule is registered for the method {cls.__name__}.{name}")
    owner = getattr(fn, "__objclass__", None)
    if isinstance(owner, type) and REGISTRY.function_rule(fn) is None:
        return _resolve_rule((owner, fn.__name__))
    rule = REGISTRY.function_rule(fn)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    module = getattr(fn, "__module__", None)
    if module == "numpy" or (module or "").startswith("numpy."):
        name = "np." + getattr(fn, "__name__", name)
    if rule is None:
        raise AssertionError(f"check_rule: no rule is registered for {name}")
    return rule, fn, name


def _is_leaf_inexact(x):
    if type(x) in (float, complex):
        return True
    if isinstance(x, type):
        return False
    dtype = getattr(x, "dtype", None)
    return getattr(dtype, "kind", None) in ("f", "c") and hasattr(x, "shape")


def _differentiable(x):
    if isinstance(x, (list, tuple)):
        return any(_differentiable(v) for v in x)
    return _is_leaf_inexact(x)


def _rand_leaf(x, rng):
    """A random value shaped like inexact leaf ``x`` with its type and dtype; ``None`` otherwise."""
    if type(x) is float:
        return float(rng.standard_normal())
    if type(x) is complex:
        return complex(rng.standard_normal(), rng.standard_normal())
    if not _is_leaf_inexact(x):
        return None
    dtype = np.dtype(x.dtype)
    shape = tuple(x.shape)
    v = rng.standard_normal(shape)
    if dtype.kind == "c":
        v = v + 1j * rng.standard_normal(shape)
    if isinstance(x, np.generic):
        return dtype.type(v)
    return np.asarray(v, dtype=dtype)


def _rand_tree(x, rng):
    """Random like ``x``, zero where ``x`` is NaN (no finite differences through a NaN)."""
    if isinstance(x, (list, tuple)):
        items = [_rand_tree(v, rng) for v in x]
        return list(items) if type(x) is list else tuple(items)
    v = _rand_leaf(x, rng)
    if v is not None and isinstance(x, (np.ndarray, np.generic)):
        nan = np.isnan(x)
        if np.any(nan):
            v = np.where(nan, 0, v).astype(x.dtype)
            v = v[()] if isinstance(x, np.generic) else v
    return v


def _copy_tree(x):
    if isinstance(x, (list, tuple)):
        items = [_copy_tree(v) for v in x]
        return items if type(x) is list else tuple(items)
    if isinstance(x, np.ndarray):
        return x.copy(order="K")
    return x


def _same_tree(a, b):
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_same_tree(x, y) for x, y in zip(a, b)))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    return True


def _upcast(x):
    """Finite differences run in double precision: float16/32 and complex64 leaves become 64/128-bit."""
    if isinstance(x, (list, tuple)):
        items = [_upcast(v) for v in x]
        return items if type(x) is list else tuple(items)
    dtype = getattr(x, "dtype", None)
    double = 8 if getattr(dtype, "kind", None) == "f" else 16
    if isinstance(dtype, np.dtype) and dtype.kind in "fc" and dtype.itemsize < double:
        target = np.float64 if dtype.kind == "f" else np.complex128
        return target(x) if isinstance(x, np.generic) else np.asarray(x, dtype=target)
    return x


def _axpy(alpha, v, x):
    """``x + alpha v`` leaf by leaf (``v`` ``None`` leaves ``x`` alone), keeping ``x``'s types."""
    if v is None:
        return x
    if isinstance(x, (list, tuple)):
        items = [_axpy(alpha, vi, xi) for vi, xi in zip(v, x)]
        return items if type(x) is list else tuple(items)
    if type(x) is float:
        return float(x + alpha * v)
    if type(x) is complex:
        return complex(x + alpha * v)
    out = x + alpha * np.asarray(v, dtype=np.result_type(x.dtype, np.float64))
    if isinstance(x, np.generic):
        return out.dtype.type(out)
    return np.asarray(out)


def _difference(plus, minus, scale):
    """``(plus - minus) * scale`` over output structures (``None`` for non-float leaves)."""
    if isinstance(plus, (list, tuple)):
        return [_difference(a, b, scale) for a, b in zip(plus, minus)]
    a, b = np.asarray(plus), np.asarray(minus)
    if a.shape != b.shape:
        raise AssertionError(f"check_rule: the output's shape changes under a small perturbation "
                             f"({a.shape} vs {b.shape}): the function is not differentiable there")
    if a.dtype.kind not in "fc":
        return None
    wide = np.complex128 if a.dtype.kind == "c" or b.dtype.kind == "c" else np.float64
    return (a.astype(wide) - b.astype(wide)) * scale


def _inner_tree(a, b):
    """Real inner product ``Re sum(conj(a) b)`` over structures (``None`` is zero)."""
    if a is None or b is None:
        return 0.0
    if isinstance(a, (list, tuple)):
        return sum(_inner_tree(x, y) for x, y in zip(a, b))
    a = np.asarray(a, dtype=np.complex128 if np.iscomplexobj(a) else np.float64)
    b = np.asarray(b, dtype=np.complex128 if np.iscomplexobj(b) else np.float64)
    with np.errstate(invalid="ignore"):  # 0 * nan := 0 (NaN outputs get 0, NaN inputs are not moved)
        return float(np.real(np.sum(np.where((a == 0) | (b == 0), 0, np.conj(a) * b))))


def _abs_inner_tree(a, b):
    """``sum |a| |b|``: the size of the terms of ``_inner_tree`` (for a cancellation-aware tolerance)."""
    if a is None or b is None:
        return 0.0
    if isinstance(a, (list, tuple)):
        return sum(_abs_inner_tree(x, y) for x, y in zip(a, b))
    a, b = np.abs(np.asarray(a)), np.abs(np.asarray(b))
    with np.errstate(invalid="ignore"):
        return float(np.sum(np.where((a == 0) | (b == 0), 0, a * b)))


def _assert_close_primal(out, expected, where, rtol):
    if isinstance(expected, (list, tuple)):
        if not isinstance(out, (list, tuple)) or len(out) != len(expected):
            raise AssertionError(f"{where}: the rule returns {type(out).__name__} of length "
                                 f"{len(out) if hasattr(out, '__len__') else '?'}, the function "
                                 f"{type(expected).__name__} of length {len(expected)}")
        for i, (o, e) in enumerate(zip(out, expected)):
            _assert_close_primal(o, e, f"{where}[{i}]", rtol)
        return
    o, e = np.asarray(out), np.asarray(expected)
    if o.shape != e.shape:
        raise AssertionError(f"{where}: the rule's primal has shape {o.shape}, the function's {e.shape}")
    if o.dtype.kind in "fc" or e.dtype.kind in "fc":
        ok = np.allclose(o, e, rtol=rtol, atol=0, equal_nan=True) or np.array_equal(o, e, equal_nan=True)
    else:
        ok = np.array_equal(o, e)
    if not ok:
        raise AssertionError(f"{where}: the rule's primal {o!r} differs from the function's {e!r}")


def _check_mirror(ct, x, where):
    """``ct`` has the structure, type, shape and dtype a cotangent of ``x`` must have."""
    if not _differentiable(x):
        if ct is not None:
            raise AssertionError(f"{where}: expected None for a non-differentiable "
                                 f"{type(x).__name__}, got {type(ct).__name__}")
        return
    if ct is None:
        return  # a structural zero is always allowed
    if isinstance(x, (list, tuple)):
        want = type(x) if type(x) in (list, tuple) else tuple
        if type(ct) is not want or len(ct) != len(x):
            raise AssertionError(f"{where}: a {type(ct).__name__} of length "
                                 f"{len(ct) if hasattr(ct, '__len__') else '?'} for a "
                                 f"{type(x).__name__} of length {len(x)}")
        for i, (c, v) in enumerate(zip(ct, x)):
            _check_mirror(c, v, f"{where}[{i}]")
        return
    if type(x) is float:
        if type(ct) is not float:
            raise AssertionError(f"{where}: a {type(ct).__name__} for a Python float (expected float)")
        return
    if type(x) is complex:
        if type(ct) is not complex:
            raise AssertionError(f"{where}: a {type(ct).__name__} for a Python complex (expected complex)")
        return
    shape, dtype = getattr(ct, "shape", None), getattr(ct, "dtype", None)
    if shape is None or dtype is None:
        raise AssertionError(f"{where}: a {type(ct).__name__} for an array of shape {tuple(x.shape)} "
                             f"and dtype {x.dtype}")
    if tuple(shape) != tuple(x.shape):
        raise AssertionError(f"{where}: shape {tuple(shape)} for an argument of shape {tuple(x.shape)}")
    if dtype != x.dtype:
        raise AssertionError(f"{where}: dtype {dtype} for an argument of dtype {x.dtype}")


def _leaf_dtypes(x):
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _leaf_dtypes(v)
    elif type(x) in (float, complex):
        yield np.dtype(np.float64)
    elif _is_leaf_inexact(x):
        yield np.dtype(x.dtype)


def _precision(values):
    """(rtol, atol, primal rtol, finite-difference step) for the least precise floating dtype."""
    bits = min((d.itemsize * 8 // (2 if d.kind == "c" else 1) for d in _leaf_dtypes(values)),
               default=64)
    if bits >= 64:
        return 1e-6, 1e-8, 1e-12, 1e-6
    if bits >= 32:
        return 2e-3, 1e-4, 1e-5, 1e-3
    return 5e-2, 5e-3, 2e-3, 3e-2


def check_rule(fn, *args, **kwargs):
    """Check the registered reverse rule of ``fn`` at ``fn(*args, **kwargs)``; returns its cotangents.

    ``fn`` is a function with a rule (``np.sin``, ``np.sum``), a method (``np.ndarray.sum``) or
    ``(cls, "name")`` for a method or attribute rule (then ``args[0]`` is the object). Keywords
    naming positional parameters of the rule are moved into position as the runtime does, so
    e.g. ``weights=`` of ``np.average`` is differentiated too. Checks, raising
    ``AssertionError`` with a message on the first failure:

    - the rule's primal output equals ``fn(*args, **kwargs)``;
    - the pullback returns a tuple with one cotangent per positional argument the rule received;
    - each cotangent is ``None`` or mirrors its argument: same shape and dtype (float32 stays
      float32, complex stays complex), a Python float gets a float, a list a list;
      integer/boolean arguments get ``None``;
    - the pullback mutates neither the arguments nor the output cotangent;
    - for a random output cotangent ``u`` and, per differentiable argument, random directions
      ``v``: ``<u, J v>`` by central differences (in double precision) equals
      ``<pullback(u), v>``, with the real inner product ``Re sum(conj(a) b)`` (so complex
      arguments and outputs are covered), and tolerances suited to the least precise dtype.

    Output entries that are NaN get a zero output cotangent, and NaN input entries are not
    perturbed (no finite differences through a NaN). A rule that declares its output constant
    (pullback ``None``) is checked against zero derivatives.

    Options (not passed to ``fn``): ``check_eps`` (the step; default 1e-6, larger when the
    function computes in single or half precision even on double inputs), ``check_rtol`` /
    ``check_atol``, ``check_seed`` (default 0), ``check_directions`` (default 2).
    """
    from .rules.registry import REGISTRY

    options = {k: kwargs.pop(k) for k in _CHECK_OPTIONS if k in kwargs}
    rule, primal, name = _resolve_rule(fn)
    rng = np.random.default_rng(options.get("check_seed", 0))
    directions = options.get("check_directions", 2)

    bound, static, positions = REGISTRY.bind_keywords(rule, args, kwargs)
    origin = {i: ("arg", i) for i in range(len(args))}
    for key, index in positions.items():
        origin[index] = ("kw", key)
    before = _copy_tree((args, tuple(kwargs.values())))
    out, pullback = rule(*bound, **static)
    expected = primal(*_copy_tree(args), **_copy_tree(kwargs))
    rtol, atol, primal_rtol, _ = _precision((bound, out))
    rtol = options.get("check_rtol", rtol)
    atol = options.get("check_atol", atol)
    _assert_close_primal(out, expected, f"check_rule({name}): primal", primal_rtol)

    dy = _rand_tree(out, rng)
    if pullback is None:
        cts = (None,) * len(bound)
    else:
        dy_before = _copy_tree(dy)
        cts = pullback(dy)
        if type(cts) is not tuple:
            raise AssertionError(f"check_rule({name}): the pullback returned a {type(cts).__name__}, "
                                 "not a tuple of cotangents")
        if len(cts) != len(bound):
            raise AssertionError(f"check_rule({name}): the pullback returned {len(cts)} cotangents "
                                 f"for {len(bound)} positional arguments")
        if not _same_tree(dy, dy_before):
            raise AssertionError(f"check_rule({name}): the pullback mutated the output cotangent")
    if not _same_tree((args, tuple(kwargs.values())), before):
        raise AssertionError(f"check_rule({name}): the rule mutated its arguments")
    for i, (ct, x) in enumerate(zip(cts, bound)):
        _check_mirror(ct, x, f"check_rule({name}): cotangent of argument {_describe(origin.get(i), i)}")

    wide_args, wide_kwargs = _upcast(list(args)), _upcast(dict(kwargs))
    eps = options.get("check_eps")
    if eps is None:  # a step suited to the precision the function computes in (in double: 1e-6)
        eps = _precision(primal(*_copy_tree(wide_args), **_copy_tree(wide_kwargs)))[3]
    for i, x in enumerate(bound):
        if i not in origin or not _differentiable(x):
            continue
        kind, key = origin[i]
        for _ in range(directions):
            v = _rand_tree(x, rng)

            def shifted(alpha):
                a, k = list(wide_args), dict(wide_kwargs)
                if kind == "arg":
                    a[key] = _axpy(alpha, v, a[key])
                else:
                    k[key] = _axpy(alpha, v, k[key])
                return primal(*a, **k)

            jv = _difference(shifted(eps), shifted(-eps), 1 / (2 * eps))
            lhs = _inner_tree(dy, jv)
            rhs = _inner_tree(cts[i], v)
            size = max(abs(lhs), abs(rhs), _abs_inner_tree(cts[i], v), _abs_inner_tree(dy, jv), 1.0)
            if not abs(lhs - rhs) <= atol + rtol * size:
                raise AssertionError(
                    f"check_rule({name}): cotangent of argument {_describe(origin[i], i)} is wrong: "
                    f"<u, J v> = {lhs!r} by central differences but <pullback(u), v> = {rhs!r} "
                    f"(difference {abs(lhs - rhs):.3g}, tolerance {atol + rtol * size:.3g})")
    check_forward_rule(rule, primal if not isinstance(fn, tuple) else None, bound, static, dy, cts, rng,
                       rtol, atol, name)
    check_batched_rule(rule, bound, static, rng, rtol, atol, name)
    return cts


def check_batched_rule(rule, bound, static, rng, rtol=1e-6, atol=1e-8, name="rule", batch=3):
    """In a batched backward sweep (``jacobian``; see ``morula.batched_jacobian``) the rule's
    pullback, run as the runtime runs it (through the shadow memory), gives for a batch of output
    cotangents what it gives for each of them alone -- whether it is declared batch-capable or is
    run once per cotangent. Rules that write into their arguments are not batched and skipped."""
    from .reverse import shadow
    out = rule(*_copy_tree(bound), **static)[0]
    if not _batchable_output(out):
        return
    dys = [_rand_tree(out, rng) for _ in range(batch)]
    alone = [_pull_as_runtime(rule, bound, static, dy, None) for dy in dys]
    if alone[0] is None:
        return
    together = _pull_as_runtime(rule, bound, static, _stack_tree(dys), batch)
    if together is None:
        return
    declared = "declared batch-capable" if together[1] else "run one by one"
    for i, got in enumerate(together[0]):
        for b in range(batch):
            want = alone[b][0][i]
            entry = None if got is None else _entry_tree(got, b)
            if want is None and entry is None:
                continue
            want = 0.0 if want is None else want
            entry = 0.0 if entry is None else entry
            if not _close_tree(entry, want, rtol, atol):
                raise AssertionError(
                    f"check_rule({name}): in a batched backward sweep ({declared}) the cotangent of "
                    f"argument {i} for batch entry {b} is {entry!r}, alone it is {want!r}")


def _batchable_output(out):
    if isinstance(out, tuple):
        return len(out) > 0 and all(_batchable_output(o) for o in out)
    return type(out) is float or (isinstance(out, (np.ndarray, np.generic)) and out.dtype.kind in "fc")


def _pull_as_runtime(rule, bound, static, dy, batch):
    """``(cotangents of the arguments, pullback code objects)`` of one backward sweep through the
    rule as the runtime wraps it, in a batched sweep when ``batch``; None for a rule that writes
    into its arguments, a constant rule, or a batched sweep the runtime would abandon."""
    from . import tangents
    from .reverse import runtime, shadow
    args = _copy_tree(bound)
    effects = shadow.EFFECTS[0]
    out, pb = rule(*args, **static)
    if pb is None or shadow.EFFECTS[0] != effects:
        return None
    out, wrapped = shadow.wrap_rule(out, pb, args)
    try:
        with runtime.backward_scope(batch=batch):
            ct = shadow._deposit_structure(out, dy)
            cts = wrapped(ct)
            found = tuple(shadow.total(a, c) if type(a) is np.ndarray else c for a, c in zip(args, cts))
    except tangents.CannotBatch:
        if batch is None:
            raise
        return None
    except Exception:
        # a pullback the runtime calls directly (numbers only, no shadow) may refuse a batch
        # outright: the batched sweep is then abandoned. Wrapped ones must not fail.
        if batch is None or wrapped is not pb:
            raise
        return None
    return found, shadow.takes_batch(pb)


def _stack_tree(values):
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_stack_tree([v[k] for v in values]) for k in range(len(first)))
    return np.stack([np.asarray(v) for v in values])


def _entry_tree(value, b):
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return type(value)(_entry_tree(v, b) for v in value)
    value = np.asarray(value)
    return value[b] if value.ndim else value   # 0-d: a constant for every entry


def _close_tree(a, b, rtol, atol):
    a = 0.0 if a is None else a
    b = 0.0 if b is None else b
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        if not isinstance(a, (tuple, list)):
            a = [a] * len(b)
        if not isinstance(b, (tuple, list)):
            b = [b] * len(a)
        return len(a) == len(b) and all(_close_tree(x, y, rtol, atol) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        return False
    return bool(np.all(np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)))


def check_forward_rule(rule, fn, bound, static, dy, cts, rng, rtol=1e-6, atol=1e-8, name="rule"):
    """The forward rule of ``rule`` (declared, or derived from the pullback) agrees with the reverse
    rule: ``<dy, J v> == <pullback(dy), v>`` for random tangents ``v`` of every differentiable
    positional argument (the inner-product identity). Returns the output tangent."""
    from .forward import runtime as forward_runtime
    from .forward.derived import frule_for
    forward = frule_for(rule, fn)
    tangents_in = tuple(_rand_tree(x, rng) if _differentiable(x) else None for x in bound)
    rhs = sum(_inner_tree(c, v) for c, v in zip(cts, tangents_in))
    T = forward_runtime.new_table()
    args = _copy_tree(bound)
    targs = tuple(forward_runtime.seed(T, a, t) for a, t in zip(args, tangents_in))
    out, tout = forward(T, args, targs, dict(static))
    tout = forward_runtime.extract(T, out, forward_runtime.record(T, out, tout))
    lhs = _inner_tree(dy, tout)
    size = max(abs(lhs), abs(rhs), _abs_inner_tree(dy, tout), 1.0)
    if not abs(lhs - rhs) <= atol + rtol * size:
        raise AssertionError(
            f"check_rule({name}): the forward rule gives <dy, J v> = {lhs!r} but the reverse rule "
            f"<pullback(dy), v> = {rhs!r} (difference {abs(lhs - rhs):.3g})")
    return tout


def _describe(origin, i):
    if origin is None:
        return f"{i} (a default filled in)"
    kind, key = origin
    return f"{key}" if kind == "arg" else f"{key}= (position {i})"
