"""Forward rules: how they are declared, and the one derived from any reverse rule.

In: declarations (``frule``, ``linear``, ``bilinear``, or nothing). Out: forward
rules ``frule(T, args, tangents, kwargs) -> (out, tangent)`` where ``tangents``
holds one tangent per positional argument (``None``: zero) and ``kwargs`` are
static.

- ``frule(fn)`` (public): ``@frule(fn) def f(primals, tangents, **kwargs)``;
- ``linear(fn, argnums)``: the tangent is ``fn`` applied to the tangents of
  the arguments at ``argnums`` (zeros for missing ones), others unchanged;
- ``bilinear(fn)``: ``fn(da, b) + fn(a, db)``;
- no declaration: ``frule_for(rrule)`` derives an exact forward rule from the
  reverse rule's pullback. The pullback ``B`` is the adjoint of the Jacobian
  ``J``, so each output element of ``J v`` is ``<B(e_i), v>``: one pullback per
  output element (and a second, ``B(1j e_i)``, for complex outputs, under the
  real inner product ``Re <a, b>``). Exact, but its cost grows with the output
  size: rules on hot paths get a declaration instead.
"""

from .. import tangents as _tangents
from ..errors import UnsupportedOperationError
from ..rules.registry import REGISTRY

FRULES = {}   # callable -> forward rule (checked before the reverse rule's)
VSPACE = []   # [(predicate, adapter)] for array types: zeros, size, basis, inner
DECLARATIONS = []   # [(fn, reverse rule) -> forward rule or None]: declarations made by rule modules


def tangent_sum(*terms):
    """The sum of the tangents that are not None (None when all are: a zero tangent)."""
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


def frule(fn):
    """Register a forward rule: ``@frule(fn) def rule(primals, tangents, **kwargs): return out, tangent``.

    ``tangents`` has one entry per positional argument, ``None`` where it is zero; return
    ``None`` as the output tangent for a zero one."""

    def register(user_rule):
        def user_frule(T, args, targs, kwargs):
            return user_rule(tuple(args), tuple(targs), **kwargs)
        user_frule.__name__ = f"{getattr(user_rule, '__name__', 'rule')}"
        FRULES[fn] = user_frule
        REGISTRY._changed()
        return user_rule

    return register


def attach(rule, forward):
    """Give the reverse rule ``rule`` its forward rule ``forward(T, args, tangents, kwargs)``."""
    try:
        rule.__frule__ = forward
    except (AttributeError, TypeError):
        pass
    return forward


def constant_frule(fn):
    def constant_forward(T, args, targs, kwargs):
        return fn(*args, **kwargs), None
    return constant_forward


# --------------------------------------------------------------------------- the derived rule

_DERIVED = {}   # reverse rule -> its derived forward rule


def frule_for(rule, fn=None):
    forward = getattr(rule, "__frule__", None)
    if forward is not None:
        return forward
    forward = _DERIVED.get(rule)
    if forward is not None:
        return forward
    if fn is not None:
        for declared in DECLARATIONS:
            forward = declared(fn, rule)
            if forward is not None:
                _DERIVED[rule] = forward
                return forward

    def pullback_frule(T, args, targs, kwargs):
        constant = _is_constant_rule(rule)
        if not constant:
            for a in list(args) + list(kwargs.values()):
                if _is_callback(a):
                    # the reverse rule would run the callback outside forward mode: tangents of what
                    # it closes over would be missed
                    raise UnsupportedOperationError(
                        f"forward mode has no rule for {getattr(rule, '__name__', rule)}, which calls "
                        f"{getattr(a, '__name__', 'a function')} it is given; register one with morula.frule")
        before = _fingerprints(args)
        out, pb = rule(*args, **kwargs)
        if before != _fingerprints(args):
            # a rule that writes into its argument: the write's tangent would be lost
            raise UnsupportedOperationError(
                f"forward mode has no rule for {getattr(rule, '__name__', rule)}, which changes its "
                "argument in place; register one with morula.frule")
        if pb is None or all(t is None for t in targs):
            return out, None
        return out, jvp_from_pullback(out, pb, targs)

    pullback_frule.__name__ = f"{getattr(rule, '__name__', 'rule')}_from_pullback"
    pullback_frule.derived = True
    _DERIVED[rule] = pullback_frule
    return pullback_frule


def jvp_from_pullback(out, pb, targs):
    leaves = []
    _leaves(out, (), leaves)
    results = {}
    for path, value in leaves:
        adapter = _adapter(value)
        size = adapter.size(value)
        complex_out = adapter.is_complex(value)
        flat = []
        for j in range(size):
            total = 0.0
            for part in ((1.0, 1j) if complex_out else (1.0,)):
                ct = _basis_cotangent(out, path, adapter.basis(value, j, part))
                cts = pb(ct)
                s = 0.0
                for c, t in zip(cts, targs):
                    s += _inner(c, t)
                total = total + s if part == 1.0 else total + 1j * s
            flat.append(total)
        results[path] = adapter.from_flat(value, flat)
    return _assemble(out, (), results)


def _is_constant_rule(rule):
    name = getattr(rule, "__name__", "")
    return name.startswith("nondiff_") or name == "constant_method"


def _is_callback(a):
    import types
    return isinstance(a, (types.FunctionType, types.MethodType)) or \
        (callable(a) and not isinstance(a, type) and type(getattr(type(a), "__call__", None)) is types.FunctionType)


def _fingerprints(args):
    prints = []
    for a in args:
        for predicate, adapter in VSPACE:
            if predicate(a):
                prints.append(adapter.fingerprint(a))
                break
        else:
            prints.append(len(a) if isinstance(a, (list, dict)) else None)
    return prints


class _ScalarAdapter:
    @staticmethod
    def size(x):
        return 1

    @staticmethod
    def is_complex(x):
        return isinstance(x, complex)

    @staticmethod
    def basis(x, j, part):
        return part if isinstance(x, complex) else 1.0

    @staticmethod
    def from_flat(x, flat):
        return flat[0]


def _adapter(x):
    if isinstance(x, (float, complex, int)):
        return _ScalarAdapter
    for predicate, adapter in VSPACE:
        if predicate(x):
            return adapter
    raise UnsupportedOperationError(f"forward mode: cannot take the tangent of a {type(x).__name__} "
                                    "from a reverse rule; register a forward rule with morula.frule")


def _is_leaf(x):
    if isinstance(x, (float, complex)):
        return True
    if isinstance(x, (bool, int)) or x is None:
        return False
    for predicate, adapter in VSPACE:
        if predicate(x):
            return adapter.inexact(x)
    return False


def _leaves(x, path, found):
    if _is_leaf(x):
        found.append((path, x))
    elif isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            _leaves(v, path + (i,), found)
    elif isinstance(x, dict):
        for k, v in x.items():
            _leaves(v, path + (k,), found)


def _basis_cotangent(out, path, unit):
    """A cotangent of ``out``: ``unit`` at ``path``, zeros at the other leaves."""
    if not path:
        return unit
    if isinstance(out, (tuple, list)):
        items = [(_basis_cotangent(v, path[1:], unit) if i == path[0] else _zero(v)) for i, v in enumerate(out)]
        if isinstance(out, tuple) and hasattr(out, "_fields"):
            return type(out)(*items)
        return type(out)(items) if type(out) in (list, tuple) else tuple(items)
    if isinstance(out, dict):
        return {k: (_basis_cotangent(v, path[1:], unit) if k == path[0] else _zero(v)) for k, v in out.items()}
    raise TypeError(type(out))


def _zero(x):
    if _is_leaf(x):
        return _tangents.zeros_like(x)
    if isinstance(x, (tuple, list)):
        return type(x)(_zero(v) for v in x) if type(x) in (list, tuple) else tuple(_zero(v) for v in x)
    if isinstance(x, dict):
        return {k: _zero(v) for k, v in x.items()}
    return None


def _assemble(out, path, results):
    if path in results:
        return results[path]
    if isinstance(out, (tuple, list)):
        items = [_assemble(v, path + (i,), results) for i, v in enumerate(out)]
        if all(i is None for i in items):
            return None
        return tuple(items) if isinstance(out, tuple) else items
    if isinstance(out, dict):
        return {k: _assemble(v, path + (k,), results) for k, v in out.items()}
    return None


def _inner(c, t):
    """Re <c, t> for a cotangent and a tangent of the same value (None: zero)."""
    if c is None or t is None:
        return 0.0
    if isinstance(c, (float, int, complex)) and isinstance(t, (float, int, complex)):
        return (complex(c).conjugate() * t).real if isinstance(c, complex) or isinstance(t, complex) \
            else float(c) * float(t)
    if isinstance(c, (tuple, list)) and isinstance(t, (tuple, list)):
        return sum(_inner(a, b) for a, b in zip(c, t))
    if isinstance(c, dict) and isinstance(t, dict):
        return sum(_inner(v, t.get(k)) for k, v in c.items())
    if isinstance(c, _tangents.ObjectCotangent):
        fields = t.fields if isinstance(t, _tangents.ObjectCotangent) else t
        return sum(_inner(v, fields.get(k)) for k, v in c.fields.items())
    for predicate, adapter in VSPACE:
        if predicate(c) or predicate(t):
            return adapter.inner(c, t)
    raise UnsupportedOperationError(f"forward mode: cannot pair a {type(c).__name__} cotangent with a "
                                    f"{type(t).__name__} tangent")
