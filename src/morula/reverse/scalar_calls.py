"""Calls of one-argument scalar functions (``math.sin(x)``, ``exp(x)`` imported from ``math``) made
inline in reverse-mode code.

In: a caller's core form and its function object (after ``inline``). Out: the same core form, where
each such call is a ``core.ScalarCall`` naming the function and its derivative as bound values
(``{name: object}``, returned for the generated factory).

Why: a call through the general dispatch costs a rule lookup, a pullback closure and a tuple of
cotangents -- several times the cost of ``math.sin`` itself in a scalar loop (an ODE right-hand
side). Inline, the forward pass saves ``(x, y)`` and the reverse computes ``g * derivative(x, y)``.

Exact by construction: the generated code tests at run time that the name (``math.sin`` as
written) still is the function seen when compiling and that the argument is a float (``_mo_F``);
otherwise it takes the ordinary call. The derivatives are the rules' own
(``runtime.SCALAR_FUNCTIONS``, filled by ``rules/python_math``); a rule registered later changes
the rules version and recompiles the caller.
"""

import itertools
import types

from ..frontend import core


def inline_scalar_calls(caller_core, caller_fn, bound):
    """Rewrite ``caller_core.body`` in place, adding to ``bound`` the objects the code tests."""
    from .runtime import SCALAR_FUNCTIONS
    taken = set(caller_core.params) | set(caller_core.locals) | set(caller_core.freevars)
    globals_ = caller_fn.__globals__
    builtins = globals_.get("__builtins__")
    builtins = builtins if isinstance(builtins, dict) else getattr(builtins, "__dict__", {})
    numbers = itertools.count(1)

    def resolve(s):
        if s.target is None or s.kwargs or s.argtuple is not None or len(s.args) != 1:
            return None
        if type(s) is core.Call:
            if s.local or not isinstance(s.func, core.Name) or s.func.id in taken:
                return None
            name = s.func.id
            fn = globals_[name] if name in globals_ else builtins.get(name)
            return (name, fn)
        if s.local or s.via_super or not isinstance(s.obj, core.Name) or s.obj.id in taken:
            return None
        module = globals_.get(s.obj.id)
        if type(module) is not types.ModuleType:
            return None
        return (f"{s.obj.id}.{s.name}", getattr(module, s.name, None))

    def rewrite(stmts):
        out = []
        for s in stmts:
            t = type(s)
            if t is core.Call or t is core.Method:
                found = resolve(s)
                derivative = _derivative(SCALAR_FUNCTIONS, found[1]) if found else None
                if derivative is not None:
                    k = next(numbers)
                    function, deriv = f"_mo_sf{k}", f"_mo_sd{k}"
                    bound[function], bound[deriv] = found[1], derivative
                    out.append(core.ScalarCall(s.target, found[0], function, deriv, s.args[0], s, s.line))
                    continue
            for block in ("body", "orelse"):
                if getattr(s, block, None):
                    setattr(s, block, rewrite(getattr(s, block)))
            out.append(s)
        return out

    caller_core.body = rewrite(caller_core.body)
    return bound


def _derivative(table, fn):
    try:
        return table.get(fn)
    except TypeError:   # an unhashable callee: not a registered function
        return None
