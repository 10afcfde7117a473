"""Rules for Python's operators (the ``operator`` module) on numbers and arrays.

In: operands (Python numbers, NumPy-like arrays, containers). Out: registered
reverse rules. Python floats take a fast path with shared or tiny pullbacks
(the scalar hot path); everything else is duck-typed (``unbroadcast`` reduces
a cotangent to each operand's shape and dtype), so arrays of any library that
implements NumPy's protocols work. Complex numbers follow the convention
cotangent = dout * conj(derivative).
"""

import math
import operator

from ..reverse import shadow
from ..reverse.runtime import record_redo
from ..tangents import unbroadcast
from .registry import nondiff, rrule

_SCALAR = {float, int, bool}
_FLOAT = {float}


def _conj(x):
    t = type(x)
    if t is float or t is int or t is bool:
        return x
    if t is complex:
        return x.conjugate()
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype.kind == "c":
        return x.conjugate()
    return x


def _literal(x):
    """A number literal of generated code (no input reaches it: its cotangent against an
    array operand, a full reduction, is not computed)."""
    t = type(x)
    return (t is float or t is complex) and shadow.is_literal(x)


def _add_scalar_pullback(g):
    return g, g


def _sub_scalar_pullback(g):
    return g, -g


@rrule(operator.add)
def add_rule(a, b):
    out = a + b
    ta, tb = type(a), type(b)
    if ta is float and tb is float:
        return out, _add_scalar_pullback
    if ta is tuple or ta is list or ta is str:
        return out, _concat_pullback(a, b)

    keep_a, keep_b = not _literal(a), not _literal(b)

    def add_pullback(g):
        return (unbroadcast(g, a) if keep_a else None), (unbroadcast(g, b) if keep_b else None)
    return out, add_pullback


def _concat_pullback(a, b):
    n, m, ta, tb = len(a), len(b), type(a), type(b)

    def concat_pullback(g):
        if g is None:
            return None, None
        items = list(g) + [None] * (n + m - len(g))
        return ta(items[:n]), tb(items[n:])
    return concat_pullback


@rrule(operator.sub)
def sub_rule(a, b):
    out = a - b
    if type(a) is float and type(b) is float:
        return out, _sub_scalar_pullback

    keep_a, keep_b = not _literal(a), not _literal(b)

    def sub_pullback(g):
        return (unbroadcast(g, a) if keep_a else None), (unbroadcast(-g, b) if keep_b else None)
    return out, sub_pullback


@rrule(operator.mul)
def mul_rule(a, b):
    out = a * b
    ta, tb = type(a), type(b)
    if ta is float and tb is float:
        def scalar_mul_pullback(g):
            return g * b, g * a
        return out, scalar_mul_pullback
    if ta in (list, tuple, str) or tb in (list, tuple, str):
        return out, _repeat_pullback(a, b)

    keep_a, keep_b = not _literal(a), not _literal(b)

    def mul_pullback(g):
        with _quiet():
            return (unbroadcast(_nan_safe(g * _conj(b), g), a) if keep_a else None,
                    unbroadcast(_nan_safe(g * _conj(a), g), b) if keep_b else None)
    return out, mul_pullback


def _repeat_pullback(a, b):
    seq, times, seq_first = (a, b, True) if isinstance(a, (list, tuple, str)) else (b, a, False)
    n = len(seq)

    def repeat_pullback(g):
        if g is None:
            return None, None
        items = list(g)
        total = [None] * n
        from ..tangents import add
        for i, c in enumerate(items):
            total[i % n] = add(total[i % n], c)
        ct = type(seq)(total) if not isinstance(seq, str) else None
        return (ct, None) if seq_first else (None, ct)
    return repeat_pullback


@rrule(operator.truediv)
def truediv_rule(a, b):
    out = a / b
    if type(a) is float and type(b) is float:
        def scalar_div_pullback(g):
            gb = g / b
            return gb, -gb * out
        return out, scalar_div_pullback

    keep_a, keep_b = not _literal(a), not _literal(b)

    def truediv_pullback(g):
        with _quiet():
            gb = _nan_safe(g / _conj(b), g)
            return (unbroadcast(gb, a) if keep_a else None,
                    unbroadcast(_nan_safe(-gb * _conj(out), g), b) if keep_b else None)
    return out, truediv_pullback


def _nan_safe(ct, g):
    """A zero cotangent stays zero whatever the local derivative (0 * inf := 0), as in the
    NumPy rules: the unselected branch of ``np.where(x != 0, 1 / x, 0)`` gets exact zeros."""
    from .numpy_vspace import nan_safe
    return nan_safe(ct, g)


def _quiet():
    from .numpy_vspace import quiet
    return quiet()


@rrule(operator.floordiv)
def floordiv_rule(a, b):
    # piecewise constant: zero derivative almost everywhere
    return a // b, _zero2


def _zero2(g):
    return None, None


@rrule(operator.mod)
def mod_rule(a, b):
    out = a % b

    def mod_pullback(g):
        return unbroadcast(g, a), unbroadcast(-g * ((a - out) / b), b)
    return out, mod_pullback


@rrule(operator.pow)
def pow_rule(a, b, *modulo):
    out = a ** b
    ta, tb = type(a), type(b)
    if ta in _SCALAR and tb in _SCALAR:
        import numpy as np
        def scalar_pow_pullback(g):
            if b == 0:
                da = 0.0
            elif b == 1:
                da = g
            elif a == 0 and b < 1:   # the slope is infinite there (as NumPy says), not an error
                da = g * b * float(np.float64(a) ** (b - 1)) if g != 0 else 0.0
            else:
                da = g * b * a ** (b - 1)
            if tb is int:
                return da, None  # an integer exponent has no derivative
            db = g * out * math.log(a) if a > 0 else (0.0 if a == 0 and b > 0 else g * math.nan)
            return da, db
        return out, scalar_pow_pullback

    keep_b = tb is not int and not _literal(b)   # x ** 2.0: no log of x for the exponent

    def pow_pullback(g):
        import numpy as np
        with _quiet():
            da = unbroadcast(_nan_safe(g * _conj(b * a ** (b - 1) if not _is_zero_int(b) else 0 * a), g), a)
            if not keep_b:
                return da, None
            base = a + 0 * b
            safe = np.where(base > 0, base, 1) if np.isrealobj(base) else base
            log_a = np.where(base > 0, np.log(safe), 0.0) if np.isrealobj(base) else np.log(base)
            db = unbroadcast(_nan_safe(g * _conj(out * log_a), g), b)
        return da, db
    return out, pow_pullback


def _is_zero_int(b):
    return type(b) is int and b == 0


@rrule(operator.matmul)
def matmul_rule(a, b):
    import numpy as np
    from .registry import REGISTRY
    return REGISTRY.functions[np.matmul](a, b)


@rrule(operator.neg)
def neg_rule(a):
    return -a, _neg_pullback


def _neg_pullback(g):
    return (-g,)


@rrule(operator.pos)
def pos_rule(a):
    return +a, _identity_pullback


def _identity_pullback(g):
    return (g,)


# pullbacks that take a batch of cotangents (leading axis; see morula.tangents.BATCH)
shadow.batch_capable(add_rule, sub_rule, mul_rule, truediv_rule, mod_rule, pow_rule, _neg_pullback,
                     _identity_pullback)

nondiff(operator.invert, operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift,
        operator.lt, operator.le, operator.eq, operator.ne, operator.gt, operator.ge,
        operator.not_, operator.truth, operator.contains, operator.is_, operator.is_not, operator.index)


# --------------------------------------------------------------------------- in place

def _inplace(name, functional, shadow_update):
    """``a <op>= b``. Lists extend in place; arrays update in place: the reverse restores the old
    values (so earlier pullbacks see them), then updates ``a``'s shadow cotangent in place and
    returns ``b``'s (``shadow_update(s, old, b) -> db``, where ``s`` is ``a``'s shadow)."""
    ifn = getattr(operator, name)

    def inplace_rule(a, b):
        if isinstance(a, list) and name in ("iadd", "imul"):
            shadow.EFFECTS[0] += 1
            return _list_inplace(name, a, b)
        if isinstance(a, dict) and name == "ior":
            shadow.EFFECTS[0] += 1
            return _dict_update_inplace(a, b)
        if type(a) not in shadow.ARRAY_TYPES:
            return functional(a, b)
        shadow.activate(a)
        old = a.copy()
        out = ifn(a, b)

        def inplace_pullback(g):
            new = a.copy()
            a[...] = old
            record_redo(lambda: a.__setitem__(Ellipsis, new))
            s = shadow.view(a)
            if s is None:
                return None, None
            if g is not None:
                s += g
            db = unbroadcast(shadow_update(s, old, b), b)
            if type(b) in shadow.ARRAY_TYPES:
                shadow.deposit(b, db)
                db = None
            return None, db
        inplace_pullback.__name__ = f"{name}_pullback"
        # it returns its argument, changed: must run even when nothing reads the result
        # (operator.iadd(a, b) called as a function)
        return out, shadow.ShadowPullback(inplace_pullback, (a, b), out, "effects", 2)

    inplace_rule.__name__ = f"{name}_rule"
    rrule(ifn)(inplace_rule)


def _list_inplace(name, a, b):
    """``a += b`` (extend) and ``a *= k`` (repeat) on a list, in place: the list's cotangent is
    in its shadow (kept by identity), edited at the positions recorded now."""
    n = len(a)
    if name == "iadd":
        added = list(b)
        a += added
        bt = type(b)

        def list_iadd_pullback(g):
            shadow.deposit(a, g)
            tail = shadow.list_truncate(a, n)
            tail += [None] * (len(added) - len(tail))
            tail = [None if shadow.kind(v) is not None else c for v, c in zip(added, tail)]
            if all(c is None for c in tail):
                return None, None
            return None, (tuple(tail) if bt is tuple else tail)
        return a, list_iadd_pullback
    a *= b

    def list_imul_pullback(g):
        shadow.deposit(a, g)
        copies = shadow.list_truncate(a, n)
        for i, c in enumerate(copies):   # every copy's cotangent goes back to its original
            shadow.item_deposit(a, i % n, c)
        return None, None
    return a, list_imul_pullback


def _dict_update_inplace(a, b):
    written = list(b)
    a |= b

    def dict_ior_pullback(g):
        shadow.deposit(a, g)
        d_b = {k: shadow.item_take(a, k) for k in written}
        d_b = {k: v for k, v in d_b.items() if v is not None}
        return None, (d_b or None)
    return a, dict_ior_pullback


@rrule(operator.or_)
def or_rule(a, b):
    out = a | b
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return out, None   # bitwise or of integers/booleans: no derivative

    def dict_union_pullback(g):
        g = g or {}
        return ({k: v for k, v in g.items() if k in a and k not in b} or None,
                {k: v for k, v in g.items() if k in b} or None)
    return out, dict_union_pullback


def _imul_update(s, old, b):
    db = s * _conj(old)
    s *= _conj(b)
    return db


def _itruediv_update(s, old, b):
    db = -s * _conj(old / (b * b))
    s /= _conj(b)
    return db


def _ipow_update(s, old, b):
    db = None if type(b) is int else s * _conj(old ** b * _safe_log(old))
    s *= _conj(b * old ** (b - 1))
    return db


_inplace("iadd", add_rule, lambda s, old, b: s.copy())
_inplace("isub", sub_rule, lambda s, old, b: -s)
_inplace("imul", mul_rule, _imul_update)
_inplace("itruediv", truediv_rule, _itruediv_update)
_inplace("ipow", pow_rule, _ipow_update)
_inplace("ior", or_rule, None)


def _safe_log(x):
    import numpy as np
    return np.where(x > 0, np.log(np.where(x > 0, x, 1)), 0.0)


# --------------------------------------------------------------------------- item assignment called as a function

@rrule(operator.setitem)
def setitem_function_rule(x, index, value):
    from ..reverse.ops import item_assignment
    return item_assignment(x, index, value)
