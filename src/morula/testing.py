"""Public gradient checking: ``check_grads`` compares morula against finite differences.

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
from .api import vjp

__all__ = ["check_grads"]


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

    ``args`` is a tuple of positional arguments. Checks ``directions`` random
    directions. Use float64 arguments: finite differences are too coarse in float32.
    """
    if not isinstance(args, tuple):
        args = (args,)
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = set(modes) - {"rev"}
    if unknown:
        raise NotImplementedError(f"modes {sorted(unknown)} are not available yet (reverse mode only)")
    if order != 1:
        raise NotImplementedError("order > 1 comes with forward mode")
    rng = np.random.default_rng(seed)
    in_leaves = [(i,) + p for i, a in enumerate(args) for p, _ in _leaves(a)]
    if not in_leaves:
        raise ValueError("check_grads: the arguments hold no floating-point values")
    for _ in range(directions):
        out, pullback = vjp(f, *copy.deepcopy(args))
        out_leaves = list(_leaves(out))
        u = {p: _random_like(v, rng) for p, v in out_leaves}
        ct = _build_like(out, u)
        cts = pullback(ct)
        v = {p: _random_like(_get(args, p), rng) for p in in_leaves}
        analytic = sum(_inner(_get(cts, p) if _get(cts, p) is not None else 0.0, v[p]) for p in in_leaves)

        def shifted(scale):
            new = args
            for p in in_leaves:
                new = _perturbed(new, p, scale * v[p])
            return f(*copy.deepcopy(new))

        plus, minus = shifted(eps), shifted(-eps)
        numeric = sum(_inner(u[p], (np.asarray(_get(plus, p)) - np.asarray(_get(minus, p))) / (2 * eps))
                      for p, _ in out_leaves)
        if not np.isclose(analytic, numeric, rtol=rtol, atol=atol):
            raise AssertionError(
                f"check_grads: reverse mode gives <J^T u, v> = {analytic!r} but central differences "
                f"give <u, J v> = {numeric!r} (difference {abs(analytic - numeric):.3g})")


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
