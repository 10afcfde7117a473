"""Derivatives taken inside a function that is itself being differentiated.

In: a call of ``morula.grad(g)``, ``value_and_grad``, ``jvp``, ``jacfwd``,
``jacobian`` or ``hessian`` met while an outer transform (reverse or forward)
runs. Out: the same values, computed by forward-mode code that the outer
transform differentiates in turn -- so ``grad(grad(f))``, ``jvp`` of ``grad``,
Hessians and gradients of functions containing inner gradient steps are
exact, to any order.

Why forward mode inside: the forward runtime and its rules are ordinary Python
(``forward.runtime``, ``forward.table``, the ``*_forward`` rule modules) and
its generated code is registered with ``linecache`` (``nested_jvp_of``), so an
outer transform can read and differentiate all of it. Each inner evaluation
gets its own tangent memory: inner tangents are plain values to the outer
level, which is why there is no perturbation confusion
(``d/dx [x * d/dy (x + y)] = 1``). An inner gradient with respect to an
argument of n numbers costs n forward passes.

Everything here is written so that the transforms can read it: no ``try``,
no generators.
"""

from .forward import runtime as fr
from .forward.table import ARRAY_MEMORY, TangentTable


def jvp_call(f, primals, tangents_in, kwargs=None):
    """``(f(*primals), J tangents)`` by forward mode (the transformable twin of ``morula.jvp``)."""
    T = TangentTable()
    primals = tuple(primals)
    targs = tuple(_seed(T, p, t) for p, t in zip(primals, tuple(tangents_in)))
    tkwargs = {k: None for k in kwargs} if kwargs else None
    out, tout = fr.dispatch(T, f, primals, targs, kwargs or None, tkwargs)
    return out, _extract(T, out, tout)


def _seed(T, x, t):
    if t is None:
        return None
    tx = type(x)
    if tx is list:
        T.set_container(x, [_seed(T, v, c) for v, c in zip(x, t)])
        return T.container(x)
    if tx is tuple:
        return tuple(_seed(T, v, c) for v, c in zip(x, t))
    if tx is dict:
        T.set_container(x, {k: _seed(T, v, t.get(k)) for k, v in x.items()})
        return T.container(x)
    memory = ARRAY_MEMORY.get(tx)
    if memory is not None:
        T.set_array(x, t, memory, True)
        return T.array(x, memory)
    return t


def _extract(T, out, tout):
    t = type(out)
    if t is float:
        return 0.0 if tout is None else tout
    if t is complex:
        return 0j if tout is None else tout
    if tout is None and getattr(out, "shape", None) == () and ARRAY_MEMORY.get(t) is None:
        return 0.0   # a NumPy scalar with a zero tangent
    memory = ARRAY_MEMORY.get(t)
    if memory is not None:
        tv = T.array_to_return(out, memory)
        return memory.zeros_like(out) if tv is None else tv
    if t is tuple or t is list:
        items = fr._items(T.container(out) if t is list else tout, len(out))
        values = [_extract(T, v, c) for v, c in zip(out, items)]
        return tuple(values) if t is tuple else values
    if t is dict:
        items = T.container(out) or {}
        return {k: _extract(T, v, items.get(k)) for k, v in out.items()}
    return tout


def _is_scalar(x):
    return type(x) is float or type(x) is int or (getattr(x, "shape", None) == () and
                                                     ARRAY_MEMORY.get(type(x)) is None)


def _units(x):
    """Unit directions for every element of ``x`` (a float or an array), with ``x``'s structure."""
    if _is_scalar(x):
        return [1.0]
    memory = ARRAY_MEMORY.get(type(x))
    if memory is None:
        from .errors import UnsupportedOperationError
        raise UnsupportedOperationError(
            f"a derivative inside a differentiated function is taken with respect to floats and "
            f"arrays; got a {type(x).__name__}. Pass the array (or float) itself.")
    return memory.units(x)


def _assemble(x, values):
    """The derivative with respect to ``x`` from one value per element of ``x`` (``_units`` order)."""
    if _is_scalar(x):
        return values[0]
    return ARRAY_MEMORY[type(x)].assemble(x, values)


def value_and_grad_call(f, argnums, has_aux, *args, **kwargs):
    """``value_and_grad(f, argnums, has_aux)(*args, **kwargs)``: one forward pass per element."""
    single = type(argnums) is int
    nums = (argnums,) if single else tuple(argnums)
    value = None
    grads = []
    for i in nums:
        pushed = _along_units(f, args, i, kwargs)
        if pushed:
            value = pushed[-1][0]
        grads.append(_assemble(args[i], [t[0] if has_aux else t for _, t in pushed]))
    if value is None:
        value = f(*args, **kwargs)
    g = grads[0] if single else tuple(grads)
    return value, g


def grad_call(f, argnums, has_aux, *args, **kwargs):
    value, g = value_and_grad_call(f, argnums, has_aux, *args, **kwargs)
    if has_aux:
        return g, value[1]
    return g


def jacfwd_call(f, argnums, *args, **kwargs):
    """The Jacobian, ``out.shape + x.shape``, one forward pass per input element."""
    single = type(argnums) is int
    nums = (argnums,) if single else tuple(argnums)
    result = [_jacobian_from_columns(args[i], [t for _, t in _along_units(f, args, i, kwargs)])
              for i in nums]
    return result[0] if single else tuple(result)


def _along_units(f, args, i, kwargs):
    """``jvp_call`` of ``f`` along each unit direction of ``args[i]``: ``[(out, tangent), ...]``."""
    pushed = []
    for e in _units(args[i]):
        directions = tuple(e if j == i else None for j in range(len(args)))
        pushed.append(jvp_call(f, args, directions, kwargs))
    return pushed


def _jacobian_from_columns(x, columns):
    first = columns[0]
    memory = ARRAY_MEMORY.get(type(first)) or ARRAY_MEMORY.get(type(x))
    if memory is None:   # a scalar function of a scalar
        return first
    return memory.jacobian(x, columns)


def hessian_call(f, argnums, *args, **kwargs):
    def gradient(*xs):
        return grad_call(f, argnums, False, *xs, **kwargs)
    return jacfwd_call(gradient, argnums, *args)


def first_derivative(f, directions, *xs):
    """``x -> J(x) v``: the directional derivative, as a function to differentiate again."""
    return jvp_call(f, xs, directions)[1]


def first_derivative_kw(f, directions, kwargs, *xs):
    return jvp_call(f, xs, directions, kwargs)[1]


# -- the API called by name inside differentiated code -------------------------------------------

def grad_inside(f, argnums=0, has_aux=False):
    import functools
    return functools.partial(grad_call, f, argnums, has_aux)


def value_and_grad_inside(f, argnums=0, has_aux=False):
    import functools
    return functools.partial(value_and_grad_call, f, argnums, has_aux)


def jacfwd_inside(f, argnums=0):
    import functools
    return functools.partial(jacfwd_call, f, argnums)


def hessian_inside(f, argnums=0):
    import functools
    return functools.partial(hessian_call, f, argnums)


def jvp_inside(f, primals, tangents):
    return jvp_call(f, primals, tangents)


def hvp_inside(f, primals, tangents):
    n = len(primals)
    nums = 0 if n == 1 else tuple(range(n))

    def gradient(*xs):
        return grad_call(f, nums, False, *xs)
    return jvp_call(gradient, primals, tangents)[1]


def checkpoint_jvp(checkpointed, T, args, targs, kwargs, tkwargs):
    """Forward mode keeps nothing for later: a checkpointed function is the function."""
    return fr.dispatch(T, checkpointed_function(checkpointed), args, targs, kwargs, tkwargs)


def checkpointed_function(checkpointed):
    return checkpointed.f


def register_api_rules(api):
    """Calls of the public API inside differentiated code run these twins (``substitute``)."""
    from .rules.registry import substitute
    substitute(api.grad)(grad_inside)
    substitute(api.value_and_grad)(value_and_grad_inside)
    substitute(api.jacfwd)(jacfwd_inside)
    substitute(api.jacobian)(jacfwd_inside)
    substitute(api.hessian)(hessian_inside)
    substitute(api.jvp)(jvp_inside)
    substitute(api.hvp)(hvp_inside)
    from .forward.derived import FRULES
    FRULES[api.checkpoint] = checkpoint_frule


def checkpoint_frule(T, args, targs, kwargs):
    """Forward mode keeps nothing for later: ``checkpoint(f)`` is ``f`` itself (and, for an
    outer reverse sweep over forward code, a plain closure call instead of a wrapper object)."""
    return args[0], targs[0]


def register_runtime_rules():
    """How an outer transform treats the forward runtime it differentiates: generated code is
    fetched in its readable variant; loops are walked as lists."""
    from .forward import derived, transform
    from .rules.registry import REGISTRY, substitute

    # the readable function shares the user function's closure cells: its closure's cotangent
    # (reverse) or tangents (forward) are the user function's
    def readable_jvp_of_rule(fn):
        out = transform.nested_jvp_of(fn)

        def readable_jvp_of_pullback(g):
            return (g[0] if isinstance(g, tuple) else None,)
        return out, readable_jvp_of_pullback

    def readable_jvp_of_frule(T, args, targs, kwargs):
        fn = args[0]
        out = transform.nested_jvp_of(fn)
        entry = T.closures.get(id(fn))
        if entry is not None and entry[0] is fn and out[0] is not None:
            T.closures[id(out[0])] = (out[0], entry[1])
        return out, None

    REGISTRY.add_function(transform.jvp_of, readable_jvp_of_rule)
    REGISTRY.add_function(transform.nested_jvp_of, readable_jvp_of_rule)   # third order and up
    derived.attach(readable_jvp_of_rule, readable_jvp_of_frule)
    substitute(fr.iterate)(iterate_as_list)

    def no_fast_target_rule(f, args):
        return None, None   # an outer transform takes the general path (readable code)
    REGISTRY.add_function(fr.fast_target, no_fast_target_rule)
    derived.attach(no_fast_target_rule, lambda T, args, targs, kwargs: (None, None))

    def checkpointed_function_rule(checkpointed):
        # the wrapper's cotangent is its function's (as morula.checkpoint's own rule has it)
        return checkpointed.f, lambda g: (g,)
    REGISTRY.add_function(checkpointed_function, checkpointed_function_rule)
    derived.attach(checkpointed_function_rule, lambda T, args, targs, kwargs: (args[0].f, None))

    def partial_parts_rule(p):
        # cotangents of a partial's parts, in the form reverse mode gives a partial's cotangent
        from .tangents import ObjectCotangent

        def partial_parts_pullback(g):
            if g is None:
                return (None,)
            dfunc, dargs, dkw = g
            return (ObjectCotangent({"func": dfunc, "args": dargs, "keywords": dkw or {}}),)
        return (p.func, p.args, p.keywords), partial_parts_pullback
    REGISTRY.add_function(fr.partial_parts, partial_parts_rule)

    def partial_parts_frule(T, args, targs, kwargs):
        p = args[0]
        stored = T.container(p) or {}
        bound = stored.get("args") or (None,) * len(p.args)
        tangent = (None, tuple(bound), dict(stored.get("keywords") or {}))
        return (p.func, p.args, p.keywords), tangent
    derived.attach(partial_parts_rule, partial_parts_frule)
    # lookups whose results are functions, rules, types or flags: run as written
    from .reverse import ops as reverse_ops
    from .reverse import runtime as reverse_runtime
    from .rules.registry import Registry, nondiff, nondiff_method
    nondiff(object.__new__)   # a fresh, empty instance (the forward runtime's constructor)
    import dataclasses
    nondiff(dataclasses.fields, dataclasses.is_dataclass)   # class metadata
    nondiff(reverse_ops._python_dunder, reverse_runtime._class_attr, reverse_runtime.is_constant,
            reverse_runtime._is_library_code, reverse_runtime.user_site, fr._is_object, fr.api_of, fr.is_constant_wrapper,
            fr.lookup, fr.super_function, fr.is_library_function, fr._no_source, fr._is_builtin_method)
    nondiff_method(Registry, "method_rule", "attribute_rule", "function_rule", "bind_keywords")


def iterate_as_list(T, xs, txs):
    values, tans = fr._elements(T, xs, txs)
    return list(zip(values, tans))
