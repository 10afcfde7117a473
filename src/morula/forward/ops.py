"""Forward-mode operators, indexing, attributes and displays (the core form's ``Op`` statements).

In: the tangent memory ``T`` and operands interleaved with their tangents
(``op(T, a, ta, b, tb)``). Out: ``(value, tangent)``. Arithmetic takes the
forward rule of the ``operator`` function unless an operand's class defines
the operator in Python (then that method is run transformed). In-place forms
and item/attribute writes change the tangent memory with the value.
"""

import operator
import types

from ..errors import UnsupportedOperationError
from ..reverse import runtime as _rev
from ..reverse.ops import BINARY_OPERATORS, _AttributeRead, _python_dunder, fill_operator_table
from ..rules.registry import REGISTRY
from . import runtime
from .runtime import dispatch, record, stored, tangent_of
from .table import ARRAY_MEMORY

_FunctionType = types.FunctionType
_IMMUTABLE = {float, int, bool, complex, str, bytes, tuple, frozenset, type(None)}
OPS = {}


def _make_binary(fn, dunder, rdunder):
    def binary_op(T, a, ta, b, tb):
        tA, tB = type(a), type(b)
        if tA not in _IMMUTABLE or tB not in _IMMUTABLE:
            forward = _python_dunder(tA, dunder)
            if forward is not None:
                out, tout = runtime.call_python(T, forward, (a, b), (tangent_of(T, a, ta), tangent_of(T, b, tb)),
                                                None, None)
                if out is not NotImplemented:
                    return out, record(T, out, tout)
            reflected = _python_dunder(tB, rdunder) if tB is not tA or forward is None else None
            if reflected is not None:
                out, tout = runtime.call_python(T, reflected, (b, a), (tangent_of(T, b, tb), tangent_of(T, a, ta)),
                                                None, None)
                if out is not NotImplemented:
                    return out, record(T, out, tout)
        return dispatch(T, fn, (a, b), (ta, tb), None, None)
    binary_op.__name__ = f"forward_{fn.__name__.strip('_')}"
    return binary_op


def _make_unary(fn, dunder):
    def unary_op(T, a, ta):
        if type(a) not in _IMMUTABLE:
            method = _python_dunder(type(a), dunder)
            if method is not None:
                out, tout = runtime.call_python(T, method, (a,), (tangent_of(T, a, ta),), None, None)
                return out, record(T, out, tout)
        return dispatch(T, fn, (a,), (ta,), None, None)
    return unary_op


fill_operator_table(OPS, _make_binary, _make_unary)


def _list_inplace(T, ifn, lst, b, tb):
    """``lst += b`` (extend) and ``lst *= n`` (repeat), tangents alongside."""
    if ifn is operator.iadd:
        values, tans = runtime._elements(T, b, tb)
        items = T.list_for_write(lst)
        lst.extend(values)
        items.extend(tans)
        return lst, items
    items = list(T.list_for_write(lst))
    ifn(lst, b)
    T.set_container(lst, items * b if b > 0 else [])
    return lst, T.container(lst)


def _dict_update(T, d, other):
    """``d |= other``, tangents alongside."""
    items = T.dict_for_write(d)
    tother = T.container(other) if type(other) is dict else None
    for k, v in other.items():
        d[k] = v
        runtime.store_item(items, k, v, tangent_of(T, v, tother.get(k) if tother else None))
    return d, items


def _make_inplace(ifn, fn, idunder):
    binary = OPS[fn.__name__]

    def inplace_op(T, a, ta, b, tb):
        t = type(a)
        if t in _IMMUTABLE:
            return binary(T, a, ta, b, tb)
        method = _python_dunder(t, idunder)
        if method is not None:
            out, tout = runtime.call_python(T, method, (a, b), (tangent_of(T, a, ta), tangent_of(T, b, tb)), None, None)
            if out is not NotImplemented:
                return out, record(T, out, tout)
        if t is list and (ifn is operator.iadd or ifn is operator.imul and isinstance(b, int)):
            return _list_inplace(T, ifn, a, b, tb)
        if t is dict and ifn is operator.ior:
            return _dict_update(T, a, b)
        memory = ARRAY_MEMORY.get(t)
        if memory is not None and getattr(t, idunder, None) is not None:
            # the new value and its tangent first (from the old value), then both written in place
            value, tvalue = dispatch(T, fn, (a, b), (ta, tb), None, None)
            if tvalue is None and not T.has_array(a, memory):
                memory.assign(a, value)
                return a, None
            target = T.array_for_write(a, memory)
            memory.assign(a, value)   # a @= b writes a @ b into a (as a plain write, for any op)
            if target is not None:
                memory.assign(target, tvalue if tvalue is not None else 0)
            return a, T.array(a, memory)
        if getattr(t, idunder, None) is not None and not _rev.is_constant(a):
            raise UnsupportedOperationError(
                f"{_rev.user_site() or ''}: forward mode cannot follow the in-place operator {idunder} "
                f"of {t.__name__}")
        return binary(T, a, ta, b, tb)
    return inplace_op


for _fn, _name in BINARY_OPERATORS:
    _base = _fn.__name__.rstrip("_")
    OPS["i" + _base] = _make_inplace(getattr(operator, "i" + _base), _fn, f"__i{_name}__")


# --------------------------------------------------------------------------- items

def getitem(T, x, tx, index, tindex):
    t = type(x)
    if t is list or (isinstance(x, list) and _python_dunder(t, "__getitem__") is None):
        out = x[index]
        items = T.container(x)
        if isinstance(index, slice):
            if items is None:
                return out, None
            T.set_container(out, list(items[index]))
            return out, T.container(out)
        return out, tangent_of(T, out, items[index] if items is not None else None)
    if t is tuple or (isinstance(x, tuple) and _rev._class_attr(t, "__getitem__") is tuple.__getitem__):
        out = x[index]
        if tx is None:
            return out, None if isinstance(index, slice) else tangent_of(T, out, None)
        items = tuple(tx) if isinstance(tx, (tuple, list)) else tuple(tx.fields.values())
        if isinstance(index, slice):
            return out, items[index]
        return out, tangent_of(T, out, items[index])
    if isinstance(x, dict) and _python_dunder(t, "__getitem__") is None and \
            (t is dict or _rev._class_attr(t, "__missing__") is None or index in x):
        out = x[index]
        items = T.container(x)
        return out, tangent_of(T, out, _item_tangent(items, index))
    if t not in ARRAY_MEMORY:
        method = _python_dunder(t, "__getitem__")
        if method is not None:
            return dispatch(T, method, (x, index), (tangent_of(T, x, tx), None), None, None)
    return dispatch(T, operator.getitem, (x, index), (tx, None), None, None)


def setitem(T, x, tx, index, tindex, value, tvalue):
    t = type(x)
    tvalue = tangent_of(T, value, tvalue)
    if t is list or (isinstance(x, list) and _python_dunder(t, "__setitem__") is None):
        items = T.list_for_write(x)
        if isinstance(index, slice):
            values, tans = runtime._elements(T, value, tvalue)
            x[index] = values
            items[index] = tans
        else:
            x[index] = value
            runtime.store_item(items, index, value, tvalue)
        return x, items
    if isinstance(x, dict) and _python_dunder(t, "__setitem__") is None:
        items = T.dict_for_write(x)
        x[index] = value
        runtime.store_item(items, index, value, tvalue)
        return x, items
    memory = ARRAY_MEMORY.get(t)
    if memory is not None:
        if tvalue is None and not T.has_array(x, memory):
            x[index] = value
            return x, None
        target = T.array_for_write(x, memory)
        x[index] = value
        if target is not None:
            memory.setitem(target, index, tvalue, value)
        return x, T.array(x, memory)
    method = _python_dunder(t, "__setitem__")
    if method is not None:
        dispatch(T, method, (x, index, value), (tangent_of(T, x, tx), None, tvalue), None, None)
        return x, tangent_of(T, x, tx)
    if tvalue is not None:
        raise UnsupportedOperationError(
            f"{_rev.user_site() or ''}: forward mode cannot write an item with a derivative into a "
            f"{t.__name__}")
    x[index] = value
    return x, tx


def delitem(T, x, tx, index, tindex):
    t = type(x)
    if t is list:
        items = T.list_for_write(x)
        del x[index]
        del items[index]
        return x, items
    if t is dict:
        items = T.dict_for_write(x)
        del x[index]
        items.pop(index, None)
        return x, items
    method = _python_dunder(t, "__delitem__")
    if method is not None:
        dispatch(T, method, (x, index), (tangent_of(T, x, tx), None), None, None)
        return x, tangent_of(T, x, tx)
    del x[index]
    return x, tx


# --------------------------------------------------------------------------- attributes

def getattr_op(T, obj, tobj, name, tname):
    t = type(obj)
    if t is types.ModuleType:
        return getattr(obj, name), None
    rule = REGISTRY.attribute_rule(t, name)
    if rule is not None:
        frule = getattr(rule, "__frule__", None)
        if frule is None:
            from .derived import frule_for
            frule = frule_for(rule)
        out, tout = frule(T, (obj,), (tangent_of(T, obj, tobj),), {})
        return out, record(T, out, tout)
    descriptor = _rev._class_attr(t, name)
    if isinstance(descriptor, property) and type(descriptor.fget) is _FunctionType:
        return dispatch(T, descriptor.fget, (obj,), (tangent_of(T, obj, tobj),), None, None)
    fallback = _python_dunder(t, "__getattr__")
    if fallback is not None and name not in getattr(obj, "__dict__", {}) and not hasattr(t, name):
        return dispatch(T, fallback, (obj, name), (tangent_of(T, obj, tobj), None), None, None)
    value = getattr(obj, name)
    if name == "__dict__" and isinstance(value, dict):
        return value, attribute_dict(T, obj, value)
    if _rev.is_constant(value):
        return value, None
    if t in ARRAY_MEMORY:   # x.flat and other array attributes without a rule
        from ..errors import MissingRuleError
        raise MissingRuleError(_AttributeRead(t, name), _rev.user_site())
    if isinstance(obj, tuple) and hasattr(obj, "_fields") and name in obj._fields:
        i = obj._fields.index(name)
        items = tobj if tobj is None or isinstance(tobj, (tuple, list)) else None
        return value, tangent_of(T, value, items[i] if items is not None else None)
    fields = T.container(obj)
    if isinstance(fields, dict) or fields is None:
        return value, tangent_of(T, value, fields.get(name) if fields else None)
    return value, tangent_of(T, value, None)


def attribute_dict(T, obj, d):
    """``obj.__dict__`` / ``vars(obj)``: the same tangents as ``obj``'s attributes (writes through
    the dict are attribute writes)."""
    fields = T.dict_for_write(obj)
    earlier = T.container(d)
    if earlier is not None and earlier is not fields:
        fields.update({k: v for k, v in earlier.items() if v is not None})
    T.set_container(d, fields)
    return fields


def setattr_op(T, obj, tobj, name, tname, value, tvalue):
    descriptor = _rev._class_attr(type(obj), name)
    tvalue = tangent_of(T, value, tvalue)
    if type(obj) in ARRAY_MEMORY:
        # z.real = v is z.real[...] = v: a write into a view of z
        view = getattr(obj, name)
        if type(view) not in ARRAY_MEMORY:
            raise UnsupportedOperationError(
                f"{_rev.user_site() or ''}: forward mode cannot follow assigning {type(obj).__name__}.{name}")
        setitem(T, view, None, Ellipsis, None, value, tvalue)
        return obj, T.array(obj, ARRAY_MEMORY[type(obj)])
    if isinstance(descriptor, property) and type(descriptor.fset) is _FunctionType:
        dispatch(T, descriptor.fset, (obj, value), (tangent_of(T, obj, tobj), tvalue), None, None)
        return obj, T.container(obj)
    setattr(obj, name, value)
    fields = T.dict_for_write(obj)
    runtime.store_item(fields, name, value, tvalue)
    return obj, fields


def setattr_back(T, obj, tobj, name, tname, value, tvalue):
    if isinstance(_rev._class_attr(type(obj), name), property):
        return obj, tangent_of(T, obj, tobj)
    current = getattr(obj, name, None)
    if current is value:
        return obj, tangent_of(T, obj, tobj)
    memory = ARRAY_MEMORY.get(type(value))
    if memory is not None and type(current) is type(value) and memory.root_id(current) == memory.root_id(value):
        return obj, tangent_of(T, obj, tobj)   # a view of the attribute's memory, changed in place
    return setattr_op(T, obj, tobj, name, tname, value, tvalue)


# --------------------------------------------------------------------------- displays

def _pairs(flat):
    return flat[0::2], flat[1::2]


def tuple_display(T, *flat):
    values, tans = _pairs(flat)
    if runtime._all_numbers(values):
        return tuple(values), (tuple(tans) if any(c is not None for c in tans) else None)
    out = tuple(values)
    tans = tuple(tangent_of(T, v, c) for v, c in zip(values, tans))
    return out, tans if any(c is not None for c in tans) else None


def list_display(T, *flat):
    values, tans = _pairs(flat)
    out = list(values)
    T.set_container(out, [tangent_of(T, v, c) for v, c in zip(values, tans)])
    return out, T.container(out)


def set_display(T, *flat):
    return set(flat[0::2]), None


def dict_display(T, *flat):
    out, tout = {}, {}
    for i in range(0, len(flat), 4):
        key, value, tvalue = flat[i], flat[i + 2], flat[i + 3]
        out[key] = value
        tout[key] = stored(value, tangent_of(T, value, tvalue))
    T.set_container(out, tout)
    return out, tout


def dict_merge(T, *flat):
    values, tans = _pairs(flat)
    out, tout = {}, {}
    for key, value, tvalue in zip(values[0::2], values[1::2], tans[1::2]):
        if key is None:
            out.update(value)
            inner = T.container(value) if type(value) is dict else None
            for k, v in value.items():
                tout[k] = tangent_of(T, v, inner.get(k) if inner else None)
        else:
            out[key] = value
            tout[key] = tangent_of(T, value, tvalue)
    T.set_container(out, tout)
    return out, tout


def _star_display(kind):
    def star_display(T, spec, tspec, *flat):
        values, tans = _pairs(flat)
        items, titems = [], []
        for starred, part, tpart in zip(spec, values, tans):
            if starred:
                v, t = runtime._elements(T, part, tpart)
                items.extend(v)
                titems.extend(t)
            else:
                items.append(part)
                titems.append(tangent_of(T, part, tpart))
        out = kind(items)
        if kind is list:
            T.set_container(out, titems)
            return out, titems
        if kind is tuple:
            return out, tuple(titems) if any(t is not None for t in titems) else None
        return out, None
    return star_display


def unpack_rest(T, seq, tseq, start, tstart, stop, tstop):
    values, tans = runtime._elements(T, seq, tseq)
    n = len(values)
    end = n + stop if stop < 0 else n if stop == 0 else stop
    out = values[start:end]
    T.set_container(out, list(tans[start:end]))
    return out, T.container(out)


def list_append(T, lst, tlst, value, tvalue):
    items = T.list_for_write(lst)
    lst.append(value)
    items.append(tangent_of(T, value, tvalue))
    return lst, items


OPS.update({
    "getitem": getitem, "setitem": setitem, "delitem": delitem,
    "getattr": getattr_op, "setattr": setattr_op, "setattr_back": setattr_back,
    "tuple": tuple_display, "list": list_display, "set": set_display,
    "dict": dict_display, "dict_merge": dict_merge,
    "tuple_star": _star_display(tuple), "list_star": _star_display(list), "set_star": _star_display(set),
    "unpack_rest": unpack_rest, "list_append": list_append,
})


def _item_tangent(items, key):
    """The tangent a container's tangent keeps for ``key`` (None: zero, or kept by identity)."""
    if type(items) is not dict or key not in items:
        return None
    t = items[key]
    return t if runtime.stored_is_immutable(t) else None
