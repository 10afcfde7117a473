"""The runtime ops that core-form operators lower to.

In: operands at run time. Out: ``(out, pullback)``; ``pullback(dout)``
returns one cotangent per operand. Binary operators honour Python's rules:
an operand whose class defines the operator in Python (``__add__``,
``__rmul__``, ...) is differentiated through that method; otherwise the
registered rule for the ``operator`` function is used. Indexing, attributes
and displays (tuple/list/dict literals) of Python containers live here too:
they are the language's own semantics. Array types plug in through
``register_type_op`` (their getitem/setitem rules live in ``rules/``).
"""

import operator
import types

from .. import tangents
from ..errors import MissingRuleError, UnsupportedOperationError
from ..rules.registry import REGISTRY
from . import runtime
from . import shadow
from .shadow import ARRAY_TYPES, ShadowPullback, deposit, same_memory, wrap_call, wrap_rule

_functions = REGISTRY.functions
_FunctionType = types.FunctionType
_add = tangents.add
_PLAIN = {float, int, bool, complex}     # types whose arithmetic is the registered rule
_type_ops = {}                            # (op name, type) -> rule

OPS = {}


def register_plain_type(cls):
    """Arithmetic on ``cls`` goes straight to the ``operator`` rules (no Python-level dunders)."""
    _PLAIN.add(cls)


def register_type_op(name, cls, rule):
    """A rule for op ``name`` ('getitem', 'setitem', 'iterate') on instances of ``cls``."""
    _type_ops[(name, cls)] = rule
    if name == "iterate":
        runtime.register_iteration(cls, rule)


def _type_rule(name, t):
    rule = _type_ops.get((name, t))
    if rule is None:
        for (n, cls), r in _type_ops.items():
            if n == name and issubclass(t, cls):
                return r
    return rule


_dunders = {}


def _python_dunder(t, name):
    """The operator method ``t.name`` when it is user Python code to differentiate through.

    Operators of library classes (array types implemented in Python, such as Dask's) are
    not transformed: their rules are NumPy's, reached through the array protocols."""
    key = (t, name)
    try:
        return _dunders[key]
    except KeyError:
        pass
    m = getattr(t, name, None)
    found = m if type(m) is _FunctionType and not runtime._is_library_code(m.__code__) else None
    _dunders[key] = found
    return found


def _make_binary(fn, dunder, rdunder):
    name = fn.__name__.strip("_")

    def binary_op(a, b):
        if type(a) in _PLAIN and type(b) in _PLAIN:
            out, pb = _functions[fn](a, b)
            return wrap_rule(out, pb, (a, b))
        return _binary_slow(fn, dunder, rdunder, a, b)

    binary_op.__name__ = f"op_{name}"
    return binary_op


def _binary_slow(fn, dunder, rdunder, a, b):
    ta, tb = type(a), type(b)
    forward = _python_dunder(ta, dunder)
    if forward is not None:
        out, pb = runtime._call_python(forward, (a, b), None)
        if out is not NotImplemented:
            return _stripped(out, pb, (a, b))
    reflected = _python_dunder(tb, rdunder) if tb is not ta or forward is None else None
    if reflected is not None:
        out, pb = runtime._call_python(reflected, (b, a), None)
        if out is not NotImplemented:
            if pb is None:
                return out, None

            def reflected_pullback(g):
                _, db, da = pb(g)
                return da, db
            return wrap_call(out, reflected_pullback, (a, b), type(pb) is ShadowPullback)
    rule = _functions.get(fn)
    if rule is None:
        return runtime._call_opaque(fn, (a, b), None)
    out, pb = rule(a, b)
    return wrap_rule(out, pb, (a, b))


def _stripped(out, pb, values):
    """A Python dunder's pullback without its closure cotangent, still always-run if it was."""
    if pb is None:
        return out, None
    return wrap_call(out, _strip_first(pb), values, type(pb) is ShadowPullback)


def _strip_first(pb):
    def dunder_pullback(g):
        return pb(g)[1:]
    return dunder_pullback


def _make_unary(fn, dunder):
    def unary_op(a):
        if type(a) in _PLAIN:
            out, pb = _functions[fn](a)
            return wrap_rule(out, pb, (a,))
        method = _python_dunder(type(a), dunder)
        if method is not None:
            out, pb = runtime._call_python(method, (a,), None)
            return _stripped(out, pb, (a,))
        rule = _functions.get(fn)
        if rule is None:
            return runtime._call_opaque(fn, (a,), None)
        out, pb = rule(a)
        return wrap_rule(out, pb, (a,))
    return unary_op


# (operator, dunder stem): the binary operators generated code calls through OPS (both modes)
BINARY_OPERATORS = [
    (operator.add, "add"), (operator.sub, "sub"), (operator.mul, "mul"), (operator.truediv, "truediv"),
    (operator.floordiv, "floordiv"), (operator.mod, "mod"), (operator.pow, "pow"),
    (operator.matmul, "matmul"), (operator.and_, "and"), (operator.or_, "or"), (operator.xor, "xor"),
    (operator.lshift, "lshift"), (operator.rshift, "rshift"),
]
def fill_operator_table(table, make_binary, make_unary):
    """``table[name]``: the op for every binary and unary operator, made by each mode's factories
    (``make_binary(fn, dunder, rdunder)``, ``make_unary(fn, dunder)``)."""
    for fn, name in BINARY_OPERATORS:
        table[fn.__name__] = make_binary(fn, f"__{name}__", f"__r{name}__")
    for fn in (operator.neg, operator.pos, operator.invert):
        table[fn.__name__] = make_unary(fn, f"__{fn.__name__}__")


fill_operator_table(OPS, _make_binary, _make_unary)


def _make_inplace(ifn, fn, idunder, dunder, rdunder):
    binary = OPS[fn.__name__]

    def inplace_op(a, b):
        t = type(a)
        if t is float or t is int or t is complex or t is tuple or t is str or \
                (t not in ARRAY_TYPES and getattr(t, idunder, None) is None and shadow.kind(a) is None):
            # immutable: the binary operator; generated code runs in-place pullbacks even with a
            # zero cotangent (they may need to undo), so guard the binary one
            out, pb = binary(a, b)
            if pb is None or type(pb) is ShadowPullback:
                return out, pb

            def immutable_inplace_pullback(g):
                return (None, None) if g is None else pb(g)
            return out, immutable_inplace_pullback
        method = _python_dunder(t, idunder)
        if method is not None:
            out, pb = runtime._call_python(method, (a, b), None, self_seeded=True)
            if out is not NotImplemented:
                return _stripped(out, pb, (a, b))
        rule = _functions.get(ifn)
        if rule is not None and getattr(t, idunder, None) is not None:
            return rule(a, b)
        return binary(a, b)   # no in-place version: Python falls back to the binary operator

    return inplace_op


for _fn, _name in BINARY_OPERATORS:
    _base = _fn.__name__.rstrip("_")
    OPS["i" + _base] = _make_inplace(getattr(operator, "i" + _base), _fn, f"__i{_name}__",
                                     f"__{_name}__", f"__r{_name}__")


# --------------------------------------------------------------------------- containers

def _sequence_ct(n, index, g, kind):
    ct = [None] * n
    if isinstance(index, slice):
        for i, c in zip(range(*index.indices(n)), g if g is not None else ()):
            ct[i] = _add(ct[i], c)
    else:
        ct[index] = g
    return ct if kind is list else tuple(ct)


def _read_pullback(x, key, out):
    """Reading ``x[key]`` (or ``x.key``) of a list, dict or object: an immutable value's cotangent
    goes into ``x``'s shadow at ``key``; a mutable value keeps its own shadow (an alias)."""
    if shadow.kind(out) is not None:
        def alias_read_pullback(g):
            shadow.deposit(out, g)
            return None, None
        return alias_read_pullback

    def item_read_pullback(g):
        shadow.item_deposit(x, key, g)
        return None, None
    return item_read_pullback


def getitem(x, index):
    t = type(x)
    if t is list:
        out = x[index]
        if type(index) is slice:
            positions = range(*index.indices(len(x)))

            def list_slice_pullback(g):
                for i, c in zip(positions, g or ()):
                    shadow.item_deposit(x, i, c)
                return None, None
            return wrap_rule(out, list_slice_pullback, (x, index))
        return out, _read_pullback(x, index % len(x) if index < 0 else index, out)
    if t is tuple:
        out = x[index]
        n = len(x)

        def tuple_getitem_pullback(g):
            return _sequence_ct(n, index, g, tuple), None
        return out, tuple_getitem_pullback
    if t is dict:
        out = x[index]
        return out, _read_pullback(x, index, out)
    rule = _type_rule("getitem", t)
    if rule is not None:
        out, pb = rule(x, index)
        return wrap_rule(out, pb, (x, index))
    method = _python_dunder(t, "__getitem__")
    if method is not None:
        out, pb = runtime._call_python(method, (x, index), None)
        return _stripped(out, pb, (x, index))
    if isinstance(x, tuple):  # NamedTuple and other subclasses
        out = x[index]
        n = len(x)

        def subclass_getitem_pullback(g):
            return _sequence_ct(n, index, g, tuple), None
        return out, subclass_getitem_pullback
    if isinstance(x, (list, dict)):
        out = x[index]
        return out, _read_pullback(x, index, out)
    if runtime._PENDING and runtime._load_pending_rules():
        return getitem(x, index)
    out = x[index]
    if runtime.is_constant(out):
        return out, None
    raise MissingRuleError(operator.getitem, runtime._user_site())


def setitem(x, index, value):
    """``x[index] = value``; the op's output is ``x`` itself (rebinding the name)."""
    shadow.EFFECTS[0] += 1
    t = type(x)
    if t is list or t is dict or (isinstance(x, (list, dict)) and _python_dunder(t, "__setitem__") is None):
        if isinstance(x, list) and type(index) is slice:
            return _list_slice_setitem(x, index, value)
        key = index % len(x) if isinstance(x, list) and index < 0 else index
        x[index] = value

        def container_setitem_pullback(g):
            shadow.deposit(x, g)   # a local cotangent of the container after the write
            dvalue = shadow.item_take(x, key)
            if shadow.kind(value) is not None:
                shadow.deposit(value, dvalue)
                dvalue = None
            return None, None, dvalue
        return x, container_setitem_pullback
    rule = _type_rule("setitem", t)
    if rule is not None:
        return rule(x, index, value)
    method = _python_dunder(t, "__setitem__")
    if method is not None:
        _, pb = runtime._call_python(method, (x, index, value), None, self_seeded=True)
        if pb is None:
            return x, None

        def user_setitem_pullback(g):
            cts = pb(None, (g, None, None))
            return cts[1], None, cts[3]
        return x, user_setitem_pullback
    if runtime.is_constant(value):
        x[index] = value
        return x, None
    raise UnsupportedOperationError(
        f"{runtime._user_site()}: morula cannot differentiate item assignment into a "
        f"{t.__name__}; use a list, dict or NumPy array, or register a rule.")


def _list_slice_setitem(x, index, value):
    n = len(x)
    positions = list(range(*index.indices(n)))
    items = list(value)
    if len(items) != len(positions):
        raise UnsupportedOperationError(
            f"{runtime._user_site()}: slice assignment that changes a list's length is not "
            "differentiable yet; build a new list instead.")
    x[index] = items

    def list_slice_setitem_pullback(g):
        shadow.deposit(x, g)
        dvalue = [shadow.item_take(x, i) for i in positions]
        return None, None, (dvalue if type(value) is list else tuple(dvalue))
    return x, list_slice_setitem_pullback


def delitem(x, index):
    shadow.EFFECTS[0] += 1
    t = type(x)
    if t is list and isinstance(index, int):
        position = index % len(x)
        del x[index]

        def list_delitem_pullback(g):
            shadow.deposit(x, g)
            shadow.list_insert(x, position, None)
            return None, None
        return x, list_delitem_pullback
    if t is dict:
        del x[index]

        def dict_delitem_pullback(g):
            shadow.deposit(x, g)
            return None, None
        return x, dict_delitem_pullback
    raise UnsupportedOperationError(
        f"{runtime._user_site()}: morula cannot differentiate `del` on a {t.__name__}"
        f"{' with a slice' if isinstance(index, slice) else ''}; build a new container instead.")


def getattr_op(obj, name):
    t = type(obj)
    if t is types.ModuleType:
        return getattr(obj, name), None
    rule = REGISTRY.attribute_rule(t, name)
    if rule is not None:
        out, pb = rule(obj)
        if pb is None:
            return out, None

        def attribute_rule_pullback(g):
            return pb(g)[0], None
        if type(out) in shadow.ARRAY_TYPES and shadow.is_own_root(out):
            # a fresh array (not a view of obj, as ndarray's .T is): what later operations put in
            # its shadow is part of its cotangent
            return shadow.wrap_rule(out, attribute_rule_pullback, (obj, name))
        return out, attribute_rule_pullback
    descriptor = getattr(t, name, None)
    if isinstance(descriptor, property) and type(descriptor.fget) is _FunctionType:
        out, pb = runtime._call_python(descriptor.fget, (obj,), None)
        if pb is None:
            return out, None
        return wrap_call(out, _strip_first_keep_one(pb), (obj, name), type(pb) is ShadowPullback)
    fallback = _python_dunder(t, "__getattr__")
    if fallback is not None and name not in getattr(obj, "__dict__", {}) and not hasattr(t, name):
        # the attribute comes from the class's own __getattr__: differentiate it
        out, pb = runtime._call_python(fallback, (obj, name), None, self_seeded=True)
        return _stripped(out, pb, (obj, name))
    value = getattr(obj, name)
    if runtime.is_constant(value):
        return value, None
    if type(value) is types.MethodType and value.__self__ is obj:
        def bound_method_attr_pullback(g):
            return g, None   # a bound method's cotangent is its object's
        return value, bound_method_attr_pullback
    if shadow.kind(obj) is shadow.OBJECT:
        return value, _read_pullback(obj, name, value)
    if t.__flags__ & (1 << 9) or isinstance(obj, type):  # other Python objects, class objects
        def attribute_pullback(g):
            return tangents.ObjectCotangent({name: g}), None
        return value, attribute_pullback
    raise MissingRuleError(_AttributeRead(t, name), runtime._user_site())


class _AttributeRead:
    def __init__(self, t, name):
        self.__qualname__ = f"{t.__name__}.{name} (attribute)"
        self.__module__ = t.__module__


def _strip_first_keep_one(pb):
    def property_pullback(g):
        return pb(g)[1], None
    return property_pullback


def setattr_back(obj, name, value):
    """Put back an attribute whose object was just changed in place (``self.items.append(v)``,
    ``a.T[0] = v``): no assignment when it is already that object or a view of its memory."""
    shadow.EFFECTS[0] += 1
    if isinstance(runtime._class_attr(type(obj), name), property):
        # b.p[0] = v through a property: the getter returned the object that was changed in
        # place; reading it again would run the getter twice
        return obj, None
    current = getattr(obj, name, None)
    if current is value or (type(value) in ARRAY_TYPES and type(current) in ARRAY_TYPES
                            and same_memory(current, value)):
        return obj, _setattr_pullback(obj, name, value)
    return setattr_op(obj, name, value)


def _setattr_pullback(obj, name, value):
    if shadow.kind(obj) is not shadow.OBJECT:
        def plain_setattr_pullback(g):
            if isinstance(g, tangents.ObjectCotangent):
                fields = dict(g.fields)
                dvalue = fields.pop(name, None)
                return tangents.ObjectCotangent(fields), None, dvalue
            return g, None, None
        return plain_setattr_pullback

    def setattr_pullback(g):
        shadow.deposit(obj, g)   # a local cotangent of the object after the write
        dvalue = shadow.item_take(obj, name)
        if shadow.kind(value) is not None:
            shadow.deposit(value, dvalue)
            dvalue = None
        return None, None, dvalue
    return setattr_pullback


def setattr_op(obj, name, value):
    shadow.EFFECTS[0] += 1
    descriptor = runtime._class_attr(type(obj), name)
    if isinstance(descriptor, property) and type(descriptor.fset) is _FunctionType:
        # a property setter written in Python: differentiate it (it writes the real fields)
        _, pb = runtime._call_python(descriptor.fset, (obj, value), None, self_seeded=True)
        if pb is None:
            return obj, None

        def property_setter_pullback(g):
            cts = pb(None, (g, None))
            return cts[1], None, cts[2]
        return obj, property_setter_pullback
    setattr(obj, name, value)
    return obj, _setattr_pullback(obj, name, value)


# --------------------------------------------------------------------------- displays

def _display(kind):
    def display(*items):
        out = kind(items)
        n = len(items)

        def display_pullback(g):
            if g is None:
                return (None,) * n
            return tuple(tangents._items(g, n))
        if kind is list:
            return wrap_rule(out, display_pullback, items)
        return out, display_pullback
    return display


def dict_display(*keys_and_values):
    keys = keys_and_values[0::2]
    out = dict(zip(keys, keys_and_values[1::2]))

    def dict_display_pullback(g):
        cts = []
        for k in keys:
            cts.append(None)
            cts.append(g.get(k) if g else None)
        return tuple(cts)
    return wrap_rule(out, dict_display_pullback, keys_and_values)


def dict_merge(*parts):
    """``{**a, 'k': v, **b}`` and keyword dicts of calls: pairs (key or None, value)."""
    out = {}
    for key, value in zip(parts[0::2], parts[1::2]):
        if key is None:
            out.update(value)
        else:
            out[key] = value
    pairs = list(zip(parts[0::2], parts[1::2]))

    def dict_merge_pullback(g):
        g = dict(g or {})
        cts = [None] * len(parts)
        for j in range(len(pairs) - 1, -1, -1):  # the last writer of a key gets its cotangent
            key, value = pairs[j]
            if key is None:
                mine = {k: g.pop(k) for k in list(value) if k in g}
                cts[2 * j + 1] = mine or None
            else:
                cts[2 * j + 1] = g.pop(key, None)
        return tuple(cts)
    return wrap_rule(out, dict_merge_pullback, parts)


def _star_display(kind):
    def star_display(spec, *parts):
        lengths, items = [], []
        for starred, part in zip(spec, parts):
            if starred:
                part = list(part)
                lengths.append(len(part))
                items.extend(part)
            else:
                lengths.append(None)
                items.append(part)
        out = kind(items)
        part_types = [type(p) for p in parts]

        def star_display_pullback(g):
            flat = tangents._items(g, len(items))
            cts, i = [None], 0
            for n, pt in zip(lengths, part_types):
                if n is None:
                    cts.append(flat[i])
                    i += 1
                else:
                    chunk = flat[i:i + n]
                    i += n
                    cts.append(None if all(c is None for c in chunk) else
                               (list(chunk) if pt is list else tuple(chunk)))
            return tuple(cts)
        if kind is tuple:
            return out, star_display_pullback
        return wrap_rule(out, star_display_pullback, (spec,) + parts)
    return star_display


def unpack_rest(seq, start, stop):
    items = list(seq)
    n = len(items)
    end = n + stop if stop < 0 else n if stop == 0 else stop
    out = items[start:end]

    def unpack_rest_pullback(g):
        ct = [None] * n
        for i, c in zip(range(start, end), g or ()):
            ct[i] = c
        if type(seq) in ARRAY_TYPES:   # a, *rest = array: the rows' cotangents as one array
            if all(c is None for c in ct):
                return None, None, None
            whole = tangents.zeros_like(seq)
            for i, c in enumerate(ct):
                if c is not None:
                    whole[i] = c
            return whole, None, None
        return (ct if type(seq) is list else tuple(ct)), None, None
    return wrap_rule(out, unpack_rest_pullback, (seq, start, stop))


def list_append(lst, value):
    shadow.EFFECTS[0] += 1
    position = len(lst)
    lst.append(value)

    def list_append_pullback(g):
        shadow.deposit(lst, g)
        dvalue = shadow.item_take(lst, position)
        shadow.list_truncate(lst, position)
        if shadow.kind(value) is not None:
            shadow.deposit(value, dvalue)
            dvalue = None
        return None, dvalue
    return lst, list_append_pullback


def item_assignment(x, index, value):
    """``operator.setitem(x, i, v)`` / ``x.__setitem__(i, v)``: the ``x[i] = v`` statement's own
    op (with its undo and its shadow bookkeeping), called as a function returning None."""
    _, pb = setitem(x, index, value)
    if pb is None:
        return None, None

    def item_assignment_pullback(g, seed=None):
        return pb(None)
    return None, item_assignment_pullback


OPS.update({
    "getitem": getitem, "setitem": setitem, "delitem": delitem,
    "getattr": getattr_op, "setattr": setattr_op, "setattr_back": setattr_back,
    "tuple": _display(tuple), "list": _display(list), "set": _display(set),
    "dict": dict_display, "dict_merge": dict_merge,
    "tuple_star": _star_display(tuple), "list_star": _star_display(list), "set_star": _star_display(set),
    "unpack_rest": unpack_rest, "list_append": list_append,
})
