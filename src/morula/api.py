"""The public differentiation API (reverse mode).

In: user functions and their arguments. Out: gradients, vector-Jacobian
products and Jacobians whose structure mirrors the inputs (``tangents``).
Everything here is a thin layer over ``reverse.runtime``: a top-level call is
dispatched exactly like a call inside differentiated code.
"""

import functools
import sys

from . import batched_hessian, batched_jacfwd, batched_jacobian, nested, tangents
from .errors import NonScalarOutputError, ReverseOverNestedForwardError
from .reverse import runtime, shadow
from .reverse.transform import generated_source

__all__ = ["grad", "value_and_grad", "vjp", "jacobian", "jacrev", "stop_gradient", "checkpoint",
           "source"]


def _promote(x):
    """An integer argument being differentiated is treated as the float it stands for."""
    t = type(x)
    if t is int:
        return float(x)
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype.kind in "iub" and hasattr(x, "astype"):
        return x.astype(float)
    return x


# Transformed code runs several Python frames per user call, and a derivative of a derivative
# runs the outer transform over the inner one: deep but legitimate stacks (CPython 3.11+ does
# not use the C stack for Python-to-Python calls).
_RECURSION_LIMIT = 12000


def _deep_enough():
    if sys.getrecursionlimit() < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)


_deep_enough()   # once, when morula is imported (not in the middle of someone's test)


def _run(f, args, kwargs, differentiated=None):
    _deep_enough()
    if differentiated is not None:
        with shadow.inactive_scope(args, differentiated, kwargs, f):
            return _run(f, args, kwargs)
    with runtime.gc_paused(), shadow.sweep():
        if kwargs:
            names = tuple(kwargs)
            return runtime.callk(f, names, *args, *kwargs.values())
        return runtime.call(f, *args)


def _argnums_tuple(argnums, nargs):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -nargs <= n < nargs:
            raise IndexError(f"argnums={argnums!r} but the function was called with {nargs} positional arguments")
    return tuple(n % nargs for n in nums)


class _Snapshot:
    """The container structure of an argument as it was passed (``f`` may append to or pop
    from it): gradients mirror the argument as given, not as ``f`` left it."""

    __slots__ = ("obj", "items")

    def __init__(self, obj):
        self.obj = obj
        t = type(obj)
        if t is list or t is tuple:
            self.items = [_Snapshot(v) for v in obj]
        elif t is dict:
            self.items = {k: _Snapshot(v) for k, v in obj.items()}
        else:
            self.items = None


def _snapshots(args):
    return tuple(_Snapshot(a) for a in args)


def _materialize(ct, snap):
    obj, items = snap.obj, snap.items
    if items is None:
        return tangents.materialize(ct, obj, leaf=shadow.total)
    ct = shadow.total(obj, ct)
    if type(items) is dict:
        ct = ct if type(ct) is dict else {}
        return {k: _materialize(ct.get(k), s) for k, s in items.items()}
    values = [_materialize(c, s) for c, s in zip(tangents._items(ct, len(items)), items)]
    return values if type(obj) is list else tuple(values)


def _pull(pb, ct, args, snapshots=None, out=None):
    """Run a top-level pullback; returns the materialized cotangent of every positional arg.

    ``out``: the output the cotangent belongs to. Its arrays' (and containers') cotangents go to
    the shadow memory first: the function may have written into them in place after creating
    them (through a view, ``out=``, a callee), and the reverse of those writes reads the shadow."""
    if pb is None or ct is None:
        return tuple(tangents.materialize(None, a) for a in args)
    snapshots = snapshots or _snapshots(args)
    with runtime.gc_paused(), runtime.backward_scope():
        if out is not None and type(out) is not float:
            ct = shadow._deposit_structure(out, ct)
        cts = pb(ct)
        # cotangents of mutable values may sit in the shadow memory (kept by identity)
        return tuple(_materialize(c, snap) for c, snap in zip(cts[1:1 + len(args)], snapshots))


def vjp(f, *primals, has_aux=False):
    """Return ``(out, pullback)``; ``pullback(cotangent)`` gives one cotangent per primal.

    With ``has_aux=True``, ``f`` returns ``(out, aux)`` and ``vjp`` returns ``(out, pullback, aux)``.
    """
    snapshots = _snapshots(primals)
    try:
        out, pb = _run(f, primals, None)
    except ReverseOverNestedForwardError:
        # f takes derivatives of derivatives itself: the Jacobian by forward mode instead
        return _vjp_by_forward(f, primals, has_aux)
    aux = None
    if has_aux:
        out, aux = _split_aux(out)

    fingerprints = _fingerprints(primals)

    def pullback(cotangent):
        _check_unchanged(primals, fingerprints)
        ct = tangents.from_user(cotangent, out)
        ct = (ct, None) if has_aux else ct
        return _pull(pb, ct, primals, snapshots, (out, aux) if has_aux else out)

    pullback.__morula_api__ = True

    return (out, pullback, aux) if has_aux else (out, pullback)


def _vjp_by_forward(f, primals, has_aux):
    """``vjp`` of a function that takes second derivatives itself: the Jacobian of every
    argument by forward mode (one pass per input element), contracted with the cotangent. For
    float and array arguments and outputs; anything else raises as before."""
    import numpy as np
    value = f(*primals)
    out, aux = _split_aux(value) if has_aux else (value, None)
    simple = all(type(p) is float or (type(p) is np.ndarray and p.dtype.kind == "f") for p in primals)
    if not simple or not isinstance(out, (float, np.floating, np.ndarray)):
        raise ReverseOverNestedForwardError(
            "morula.vjp of a function that itself takes derivatives of derivatives needs float or "
            "array arguments and output (it is computed by forward mode); use mo.jvp / mo.jacfwd.")
    inner = (lambda *a: f(*a)[0]) if has_aux else f
    jacobians = jacfwd(inner, argnums=tuple(range(len(primals))))(*primals)

    def pullback(cotangent):
        c = np.asarray(cotangent, dtype=float)
        cts = []
        for p, J in zip(primals, jacobians):
            g = np.tensordot(c, np.asarray(J), axes=c.ndim)
            cts.append(float(g) if type(p) is float else g.reshape(np.shape(p)))
        return tuple(cts)

    pullback.__morula_api__ = True
    return (out, pullback, aux) if has_aux else (out, pullback)


def _fingerprints(args):
    """Checksums of the array arguments as the forward pass left them (see ``_check_unchanged``)."""
    import zlib
    prints = []
    for a in args:
        if type(a) in shadow.ARRAY_TYPES and hasattr(a, "tobytes"):
            data = a if getattr(a, "flags", None) is not None and a.flags.c_contiguous else a.tobytes()
            prints.append(zlib.adler32(memoryview(data).cast("B")) if a.size else 0)
        else:
            prints.append(None)
    return prints


def _check_unchanged(args, fingerprints):
    """A pullback reads the argument arrays the forward pass read; refuse to run it on an array the
    caller has changed in place since ``vjp`` (its gradient would be for the new values)."""
    for i, (a, fp) in enumerate(zip(args, _fingerprints(args))):
        if fp != fingerprints[i]:
            from .errors import UnsupportedOperationError
            raise UnsupportedOperationError(
                f"argument {i} of the function given to morula.vjp was changed in place after vjp "
                "returned; the pullback would compute the gradient at the new values. Call vjp "
                "again, or pass a copy (x.copy()) if you need to change the array.")


def _split_aux(out):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("with has_aux=True the function must return a pair (output, aux)")
    return out[0], out[1]


def _scalar_seed(out, fname):
    t = type(out)
    if t is float or t is int:
        return 1.0
    dtype = getattr(out, "dtype", None)
    shape = getattr(out, "shape", None)
    if dtype is not None and shape == () and dtype.kind in "iub":   # an integer result: constant
        return 1.0
    if dtype is not None and shape == () and dtype.kind == "f":
        import numpy as np
        return dtype.type(1) if isinstance(out, np.generic) else np.ones_like(out)
    what = f"an array of shape {shape}" if shape is not None else f"a {t.__name__}"
    if dtype is not None and dtype.kind == "c" or t is complex:
        what = "a complex number"
    raise NonScalarOutputError(
        f"grad requires {fname} to return a real scalar, but it returned {what}. "
        f"For vector outputs use morula.jacobian({fname}) (or morula.vjp with a cotangent); "
        f"to differentiate a sum, return its .sum().")


def value_and_grad(f, argnums=0, has_aux=False):
    """``value_and_grad(f)(*args)`` -> ``(value, gradient)`` (``((value, aux), gradient)`` with has_aux)."""
    name = getattr(f, "__name__", "f")

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        args = tuple(_promote(a) if i in nums else a for i, a in enumerate(args))
        snapshots = _snapshots(args)
        # one pause of the collector for both sweeps, ending after the tape is freed: resuming
        # it in between would make it scan every tape entry once (a third of a scalar loop's time)
        with runtime.gc_paused():
            try:
                out, pb = _run(f, args, kwargs, nums)
            except ReverseOverNestedForwardError:
                # f takes derivatives of derivatives itself: the gradient by forward mode instead
                return nested.value_and_grad_call(f, argnums, has_aux, *args, **kwargs)
            value, aux = _split_aux(out) if has_aux else (out, None)
            seed = _scalar_seed(value, name)
            ct = (seed, None) if has_aux else seed
            grads = _pull(pb, ct, args, snapshots)
            del pb
        picked = grads[nums[0]] if isinstance(argnums, int) else tuple(grads[i] for i in nums)
        return ((value, aux) if has_aux else value), picked

    value_and_grad_f.__morula_api__ = functools.partial(nested.value_and_grad_call, f, argnums, has_aux)
    return value_and_grad_f


def grad(f, argnums=0, has_aux=False):
    """``grad(f)(*args)``: the gradient of real-scalar-valued ``f`` with respect to ``args[argnums]``.

    ``argnums`` may be a tuple (then a tuple of gradients). With ``has_aux=True``
    ``f`` returns ``(value, aux)`` and the result is ``(gradient, aux)``.
    """
    inner = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        value, g = inner(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    grad_f.__morula_api__ = functools.partial(nested.grad_call, f, argnums, has_aux)
    return grad_f


def jacobian(f, argnums=0):
    """``jacobian(f)(*args)`` has shape ``out.shape + x.shape`` (reverse mode).

    One forward sweep; the backward sweep pulls back many output cotangents at once where it can
    (see ``batched_jacobian``), else one output element at a time."""
    import numpy as np

    @functools.wraps(f)
    def jacobian_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        args = tuple(_promote(a) if i in nums else a for i, a in enumerate(args))
        snapshots = _snapshots(args)
        writes = shadow.ARRAY_WRITES[0]
        try:
            out, pb = _run(f, args, kwargs, nums)
        except ReverseOverNestedForwardError:
            # f takes derivatives of derivatives itself: the Jacobian by forward mode instead
            return jacfwd(f, argnums)(*args, **kwargs)
        if shadow.ARRAY_WRITES[0] == writes:   # no array written in place (nothing to undo)
            blocks = batched_jacobian.rows(pb, out, args, nums, snapshots)
            if blocks is not None:
                return blocks[0] if isinstance(argnums, int) else tuple(blocks)
        out_arr = np.asarray(out)
        rows = {i: [] for i in nums}
        scalar_out = not hasattr(out, "shape") or out_arr.ndim == 0
        for k in range(max(out_arr.size, 1) if out_arr.size else 0):
            basis = np.zeros(out_arr.shape, dtype=out_arr.dtype if out_arr.dtype.kind in "fc" else float)
            basis.flat[k] = 1
            ct = float(basis) if scalar_out and type(out) is float else (basis if not scalar_out else basis[()])
            grads = _pull(pb, ct, args, snapshots, out)
            for i in nums:
                rows[i].append(np.asarray(grads[i]))
        result = []
        for i in nums:
            xshape = np.shape(args[i])
            stacked = np.stack(rows[i]) if rows[i] else np.zeros((0,) + xshape)
            result.append(stacked.reshape(out_arr.shape + xshape))
        return result[0] if isinstance(argnums, int) else tuple(result)

    jacobian_f.__morula_api__ = functools.partial(nested.jacfwd_call, f, argnums)
    return jacobian_f


jacrev = jacobian


def stop_gradient(x):
    """``x``'s value, with no derivative flowing through it.

    Numbers come back as they are; arrays, containers and objects come back as copies: morula
    keeps the derivatives of mutable values by identity, so the same object would carry ``x``'s
    derivative along (and an in-place write to the result would change ``x``)."""
    t = type(x)
    if t is float or t is int or t is complex or t is bool or x is None:
        return x
    if hasattr(x, "copy") and hasattr(x, "shape"):
        return x.copy()
    import copy
    return copy.deepcopy(x)


class Checkpointed:
    """``checkpoint(f)``: ``f`` whose forward sweep is recomputed during the backward sweep.

    Only the inputs are kept between the sweeps, trading compute for memory.
    """

    def __init__(self, f):
        self.f = f
        # name and docs of f, not functools.update_wrapper: that also copies f.__dict__ (morula's
        # compile caches among it), which a derivative of a derivative would then differentiate
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            value = getattr(f, name, None)
            if value is not None:
                setattr(self, name, value)
        self.__wrapped__ = f

    def __call__(self, *args, **kwargs):
        return self.f(*args, **kwargs)

    __morula_jvp__ = nested.checkpoint_jvp   # forward mode runs f itself

    @staticmethod
    def __morula_call__(self, args, kwargs):
        f = self.f
        values = tuple(args) + tuple((kwargs or {}).values())
        before = _fingerprints(values)
        out = f(*args, **(kwargs or {}))
        if _fingerprints(values) != before:
            _refuse_checkpoint_write(f)
        plan = shadow.output_plan(out, values)

        def checkpoint_pullback(g, seed=None):
            # the recomputed output is a new object: bring the original's shadow cotangent along
            g, needed = shadow._collect_output(out, values, g, plan)
            _, pb = _run(f, args, kwargs)
            if pb is None or not needed:
                return (seed,) + (None,) * len(values)
            cts = pb(g)
            # the wrapper's cotangent (f's captured variables) from later calls comes in as seed
            return (tangents.add(seed, cts[0]),) + tuple(cts[1:])
        return out, checkpoint_pullback


def _refuse_checkpoint_write(f):
    # the forward sweep of a checkpointed function is not recorded, so an in-place write to an
    # argument could be neither undone nor replayed: the recomputation would see the new values
    from .errors import UnsupportedOperationError
    code = getattr(f, "__code__", None)
    where = f"{code.co_filename}:{code.co_firstlineno}: " if code is not None else ""
    name = getattr(f, "__qualname__", repr(f))
    raise UnsupportedOperationError(
        f"{where}the checkpointed function {name} changed one of its array arguments in place; "
        "its recomputation during the backward sweep would start from the changed values. "
        "Return a new array instead (u = u + ... rather than u += ...), or copy the argument "
        "first (u = u.copy()).")


def checkpoint(f):
    """``f`` whose forward sweep is recomputed in the backward sweep (saves memory).

    ``f`` must not change its array arguments in place (that is detected and refused).
    """
    return Checkpointed(f)


def _checkpoint_rule(f):
    # the cotangent of the checkpointed function (a closure's captured variables) is f's
    return Checkpointed(f), lambda g: (g,)


class GeneratedSource(str):
    """Generated code (a ``str``); it has already been printed, so the REPL echo stays short."""

    def __repr__(self):
        first = self.split("\n", 2)[:2]
        return f"<morula generated code, {self.count(chr(10))} lines: {first[-1].strip()[:60]} ...>"


_STDOUT = object()


def source(f, mode="reverse", *, file=_STDOUT):
    """Print the derivative code morula generates for ``f`` (readable Python, with the user's
    lines as comments) and return it as a string. ``mode="reverse"`` (``grad``, ``vjp``) or
    ``"forward"`` (``jvp``, ``jacfwd``). ``file=None`` only returns it."""
    if mode not in ("reverse", "forward"):
        raise ValueError(f"mode must be 'reverse' or 'forward', got {mode!r}")
    target = getattr(f, "__func__", f)
    if isinstance(target, Checkpointed):
        target = target.f
    if mode == "forward":
        from .forward.transform import generated_source as forward_generated
        text = GeneratedSource(forward_generated(target))
    else:
        text = GeneratedSource(generated_source(target))
    if file is not None:
        print(text, file=sys.stdout if file is _STDOUT else file, end="")
    return text


# =========================================================================== forward mode

def _forward(f, primals, tangents_in, kwargs=None):
    """Run ``f`` in forward mode from user tangents; returns ``(out, tangent_out)`` (API form)."""
    from .forward import runtime as forward_runtime
    _deep_enough()
    T = forward_runtime.new_table()
    targs = []
    for i, (p, t) in enumerate(zip(primals, tangents_in)):
        internal = tangents.from_user(t, p, f"tangents[{i}]", f"the primal (argument {i})") \
            if t is not None else None
        targs.append(forward_runtime.seed(T, p, internal))
    with runtime.gc_paused():
        out, tout = forward_runtime.dispatch(T, f, tuple(primals), tuple(targs), kwargs or None,
                                             {k: None for k in kwargs} if kwargs else None)
    return out, forward_runtime.extract(T, out, tout)


def jvp(f, primals, tangents_in):
    """``jvp(f, primals, tangents) -> (f(*primals), J tangents)``: forward mode.

    ``primals`` and ``tangents`` are tuples with one entry per positional argument; each tangent
    has its primal's structure (a float for a float, an array of the same shape, a matching
    container or object). The output tangent mirrors the output.
    """
    primals, tangents_in = tuple(primals), tuple(tangents_in)
    if len(primals) != len(tangents_in):
        raise ValueError(f"jvp got {len(primals)} primals but {len(tangents_in)} tangents")
    primals = tuple(_promote(p) if t is not None else p for p, t in zip(primals, tangents_in))
    return _forward(f, primals, tangents_in)


def _basis_directions(x):
    """Unit tangents for every element of ``x`` (a float or an array), with ``x``'s structure."""
    import numpy as np
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        return [1.0]
    arr = np.asarray(x)
    dtype = arr.dtype if arr.dtype.kind in "fc" else np.dtype(float)
    out = []
    for k in range(arr.size):
        e = np.zeros(arr.shape, dtype)
        e.flat[k] = 1
        out.append(e if isinstance(x, np.ndarray) else e[()])
    return out


def jacfwd(f, argnums=0):
    """``jacfwd(f)(*args)``: the Jacobian by forward mode, shape ``out.shape + x.shape`` (a tuple
    of Jacobians for tuple ``argnums``). An output that is a tuple, list or dict gives the same
    container of Jacobians, one per entry. Floating NumPy array arguments take one run of ``f``
    on dual arrays carrying every column (``batched_jacfwd``); otherwise one ``jvp`` per input
    element."""

    @functools.wraps(f)
    def jacfwd_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        args = tuple(_promote(a) if i in nums else a for i, a in enumerate(args))
        found = batched_jacfwd.jacobians(f, args, kwargs, nums,
                                         lambda directions: _forward(f, args, directions, kwargs))
        if found is not None:
            return found[0] if isinstance(argnums, int) else tuple(found)
        result = []
        for i in nums:
            columns, out = [], None
            for e in _basis_directions(args[i]):
                ts = tuple(e if j == i else None for j in range(len(args)))
                out, t = _forward(f, args, ts, kwargs)
                columns.append(t)
            if out is None:
                out = f(*args, **kwargs)
            result.append(_stack_columns(out, columns, args[i]))
        return result[0] if isinstance(argnums, int) else tuple(result)

    jacfwd_f.__morula_api__ = functools.partial(nested.jacfwd_call, f, argnums)
    return jacfwd_f


def _stack_columns(out, columns, x):
    """Jacobian columns (output tangents, one per element of ``x``) stacked leaf by leaf."""
    import numpy as np
    if isinstance(out, (tuple, list)) and not hasattr(out, "shape"):
        parts = [_stack_columns(o, [c[k] for c in columns], x) for k, o in enumerate(out)]
        return type(out)(parts) if type(out) in (tuple, list) else tuple(parts)
    if isinstance(out, dict):
        return {k: _stack_columns(o, [c[k] for c in columns], x) for k, o in out.items()}
    out_shape, xshape = np.shape(out), np.shape(x)
    if not columns:
        return np.zeros(out_shape + xshape)
    return np.stack([np.asarray(c) for c in columns], axis=-1).reshape(out_shape + xshape)


def hvp(f, primals, tangents_in):
    """The Hessian-vector product of real-scalar ``f`` at ``primals`` along ``tangents``.

    Reverse mode over forward mode: ``grad`` of ``x -> <grad f(x), v>`` computed as the gradient of
    the directional derivative ``x -> J(x) v``. Returns ``H v`` with the structure of the primal
    (a tuple, one entry per primal, when there are several).
    """
    primals, tangents_in = tuple(primals), tuple(tangents_in)
    if len(primals) != len(tangents_in):
        raise ValueError(f"hvp got {len(primals)} primals but {len(tangents_in)} tangents")
    primals = tuple(_promote(p) for p in primals)
    # f and the direction are arguments nobody differentiates: arrays they hold (f's constant
    # matrices) need no cotangents (see shadow.inactive_scope)
    nums = 3 if len(primals) == 1 else tuple(range(3, 3 + len(primals)))
    try:
        return grad(nested.first_derivative_kw, argnums=nums)(f, tangents_in, None, *primals)
    except ReverseOverNestedForwardError:
        # f takes derivatives itself: forward over forward (one pass per element of the primals)
        return nested.hvp_inside(f, primals, tangents_in)


def hessian(f, argnums=0):
    """``hessian(f)(*args)``: second derivatives of real-scalar ``f``, shape ``x.shape + x.shape``.

    Reverse over forward: one reverse pass per element of ``x`` (each the gradient of a directional
    derivative). A tuple ``argnums`` gives the blocks ``H[i][j]`` (shape ``xi.shape + xj.shape``).
    """
    import numpy as np

    @functools.wraps(f)
    def hessian_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        args = tuple(_promote(a) if i in nums else a for i, a in enumerate(args))

        def hvp_rows(directions):
            return grad(nested.first_derivative_kw, argnums=tuple(3 + i for i in nums))(
                f, directions, kwargs, *args)

        try:
            blocks = batched_hessian.blocks(f, args, kwargs, nums, _gradients, hvp_rows)
        except ReverseOverNestedForwardError:
            return _forward_hessian(f, argnums, args, kwargs)
        if blocks is not None:
            if isinstance(argnums, int):
                return blocks[(nums[0], nums[0])]
            return tuple(tuple(blocks[(i, j)] for j in nums) for i in nums)
        blocks = {}
        for j in nums:
            columns = []
            for e in _basis_directions(args[j]):
                directions = tuple(e if k == j else None for k in range(len(args)))
                try:
                    row = grad(nested.first_derivative_kw, argnums=tuple(3 + i for i in nums))(
                        f, directions, kwargs, *args)
                except ReverseOverNestedForwardError:
                    return _forward_hessian(f, argnums, args, kwargs)
                columns.append(row)
            for i_pos, i in enumerate(nums):
                parts = [np.asarray(c[i_pos]) for c in columns]
                shape_i, shape_j = np.shape(args[i]), np.shape(args[j])
                stacked = np.stack(parts, axis=-1) if parts else np.zeros(shape_i + (0,))
                blocks[(i, j)] = stacked.reshape(shape_i + shape_j)
        if isinstance(argnums, int):
            return blocks[(nums[0], nums[0])]
        return tuple(tuple(blocks[(i, j)] for j in nums) for i in nums)

    hessian_f.__morula_api__ = functools.partial(nested.hessian_call, f, argnums)
    return hessian_f


def _gradients(f, nums):
    """The gradients of ``f`` with respect to ``nums`` (a tuple), for ``batched_hessian``."""
    return grad(f, argnums=tuple(nums))


def _forward_hessian(f, argnums, args, kwargs):
    """The Hessian by forward over forward (for functions that take derivatives themselves)."""
    import numpy as np
    H = nested.hessian_call(f, argnums, *args, **(kwargs or {}))
    if isinstance(argnums, int):
        return np.asarray(H).reshape(np.shape(args[argnums]) * 2)
    raise ReverseOverNestedForwardError(
        "mo.hessian with a tuple argnums of a function that takes derivatives itself is not "
        "supported yet; use mo.jacfwd(mo.jacfwd(f)) per pair of arguments")
