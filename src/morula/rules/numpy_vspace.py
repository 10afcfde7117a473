"""NumPy arrays as tangent spaces, and the small helpers every NumPy rule module shares.

In: nothing (importing registers NumPy's ``ndarray`` and ``generic`` with
``morula.tangents.register_vspace``). Out: helpers used by the other
``rules/numpy_*`` modules:

- ``numpy_rule(*fns)`` / ``numpy_method_rule(cls, *names)``: register one rule
  for several functions (methods); the rule's pullback may return cotangents
  for its leading parameters only, and is padded with ``None`` (or cut) to one
  entry per positional argument the rule actually received;
- ``cotangent(g, x)``: reduce a full-shape cotangent ``g`` to operand ``x``
  (``None`` for integer/bool operands, ``unbroadcast`` for arrays and numbers,
  the same nested structure for lists/tuples);
- ``conj(a)``: complex conjugate, free for real values;
- ``inexact(x)``: does ``x`` carry a derivative (floating or complex)?
- ``as_operand(x)``: a list/tuple operand as an array for pullback arithmetic;
- ``check_no_out`` / ``check_ufunc_kwargs``: rules refuse ``out=`` and ufunc
  ``where=`` (writes the engine cannot see) with ``UnsupportedOperationError``
  instead of returning a wrong gradient;
- ``nan_safe(g, dy)`` / ``nan_safe_product(dy, d)``: NaN safety, ``0 * inf := 0``:
  where the incoming cotangent ``dy`` is exactly zero the outgoing one is
  exactly zero, even where the local derivative is infinite or NaN (so
  ``np.where(x > 0, np.sqrt(x), 0)`` has gradient 0, not NaN, at ``x <= 0``);
  costs one ``isfinite`` pass, and a ``where`` only when something is not finite;
- ``as_array``, ``zeros_cotangent``, ``real_if_real``, ``expand_reduced``:
  small helpers shared by the reduction, shape and signal rules;
- ``quiet()``: the floating-point error state pullbacks compute in (no warnings for
  division by zero, overflow, invalid values): set once per backward sweep, so inside one
  it costs nothing.

Other array libraries (Dask, CuPy: anything with ``__array_function__``, a
``dtype`` and a ``shape``) are registered as tangent spaces too, after NumPy's
own types.

Everything here uses dispatching NumPy calls, so the helpers work unchanged on
CuPy and Dask arrays.
"""

import cmath
import contextlib
import functools
import threading

import numpy as np

from morula.errors import UnsupportedOperationError
from morula.reverse.shadow import is_inactive, is_literal, pullback_wrapper
from morula.rules.registry import REGISTRY
from morula.tangents import BATCH, CannotBatch, batch_of, is_inexact, match_dtype, register_vspace, unbroadcast

# -- the vector space --------------------------------------------------------------


def _array_zeros(x):
    """Zeros with ``x``'s shape; floating/complex dtypes are kept, others become float64."""
    if x.dtype.kind in "fc":
        return np.zeros_like(x)
    return np.zeros_like(x, dtype=np.float64)


def _array_inexact(x):
    return x.dtype.kind in "fc"


def _scalar_zeros(x):
    if x.dtype.kind in "fc":
        return x.dtype.type(0)
    return np.float64(0.0)


register_vspace(lambda x: isinstance(x, np.ndarray), _array_zeros, _array_inexact)
register_vspace(lambda x: isinstance(x, np.generic), _scalar_zeros, _array_inexact)


def _is_duck_array(x):
    """Dask, CuPy and other arrays that implement NumPy's dispatch protocol (checked after NumPy's)."""
    t = type(x)
    return (hasattr(t, "__array_function__") and hasattr(x, "shape") and hasattr(x, "dtype")
            and getattr(getattr(x, "dtype", None), "kind", None) is not None)


register_vspace(_is_duck_array, _array_zeros, _array_inexact)


# -- helpers for rules -------------------------------------------------------------


def wanted(x):
    """Does a pullback need to compute the cotangent of operand ``x``? Not for integer/boolean
    values, nor for an array argument nobody asks the gradient of (``shadow.is_inactive``).
    Decide it in the forward rule: a later in-place write makes ``x`` wanted again."""
    return inexact(x) and not is_inactive(x)


def scalar_wanted(x):
    """``inexact(x)``, except for a number literal of generated code (``np.maximum(h, 0.0)``,
    ``x ** 2.0``): no input reaches it, so its cotangent -- a reduction over the whole array
    operand -- is not computed."""
    t = type(x)
    if t is float or t is complex:
        return not is_literal(x)
    return inexact(x)


def inexact(x):
    """True when ``x`` (number, array, or nested list/tuple) holds a float or complex value."""
    t = type(x)
    if t is np.ndarray:
        return x.dtype.kind in "fc"
    if t is float or t is complex:
        return True
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        return getattr(dtype, "kind", None) in ("f", "c")
    if t is list or t is tuple:
        return is_inexact(x)
    return False


def as_operand(x):
    """An operand for arithmetic in pullbacks: a list/tuple as an array, and a Python number as a
    NumPy scalar, so derivatives at singular points follow NumPy (inf, not ZeroDivisionError)."""
    t = type(x)
    if t is float:
        return np.float64(x)
    if t is complex:
        return np.complex128(x)
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    return x


def is_complex(a):
    t = type(a)
    if t is np.ndarray:
        return a.dtype.kind == "c"
    if t is complex:
        return True
    if t is float:
        return False
    dtype = getattr(a, "dtype", None)
    return dtype is not None and getattr(dtype, "kind", None) == "c"


def conj(a):
    """``np.conj(a)`` when ``a`` is complex, ``a`` itself otherwise (no copy for real values)."""
    if is_complex(a):
        return np.conj(a)
    return a


def real_part(a):
    """``a.real`` for complex ``a``; ``a`` for real values."""
    if is_complex(a):
        return np.real(a)
    return a


def shape_of(x):
    """The shape of an operand that may be a Python number or a nested list."""
    shape = getattr(x, "shape", None)
    if shape is not None:
        return shape
    return np.shape(x)


def sum_to_shape(g, shape):
    """Sum broadcast dimensions of ``g`` away so it has ``shape`` (``shape`` broadcasts to ``g.shape``)."""
    gshape = getattr(g, "shape", None)
    shape = tuple(shape)
    if gshape is None:
        return g
    gshape = tuple(gshape)
    if gshape == shape:
        return g
    extra = len(gshape) - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if tuple(g.shape) != shape:
        g = g.reshape(shape)
    return g


def structure_cotangent(g, obj):
    """Map an array cotangent ``g`` (already of ``np.shape(obj)``) onto the nested structure of ``obj``.

    Lists stay lists and tuples stay tuples; Python floats get Python floats,
    complex numbers get complex numbers, NumPy scalars/arrays get values of
    their own dtype and shape; integers and booleans get ``None``.
    """
    t = type(obj)
    if t is list or t is tuple:
        return t(structure_cotangent(g[i], item) for i, item in enumerate(obj))
    if isinstance(obj, (list, tuple)):  # NamedTuple and friends: keep the plain container
        return tuple(structure_cotangent(g[i], item) for i, item in enumerate(obj))
    if not inexact(obj):
        return None
    if t is float:
        return float(real_part(g))
    if t is complex:
        return complex(g)
    return cotangent(g, obj)


def cotangent(g, x):
    """Reduce cotangent ``g`` (of the broadcast result shape) to operand ``x``.

    ``None`` for non-differentiable operands (integers, booleans, strings, None)
    and for a ``None`` cotangent; for arrays and numbers ``unbroadcast`` (shape
    and floating dtype of ``x``); for nested lists/tuples the same structure.
    """
    if g is None or not inexact(x):
        return None
    t = type(x)
    if t is list or t is tuple or isinstance(x, (list, tuple)):
        if BATCH.size is not None:
            raise CannotBatch("a cotangent for a list operand")
        g = sum_to_shape(g, np.shape(x))
        return structure_cotangent(g, x)
    if not is_complex(x):
        g = real_part(g)
    return unbroadcast(g, x)


def with_dtype_of(g, x):
    """Cast ``g`` to ``x``'s floating dtype (shape untouched)."""
    if not is_complex(x):
        g = real_part(g)
    return match_dtype(g, x)


def _given(out):
    if out is None:
        return False
    if type(out) is tuple:
        return any(o is not None for o in out)
    return True


def check_no_out(name, out=None, kwargs=None):
    """Refuse ``out=``: the write into ``out`` would be invisible to morula."""
    if _given(out) or (kwargs and _given(kwargs.get("out"))):
        raise UnsupportedOperationError(
            f"morula cannot differentiate {name}(..., out=...): the write into the output "
            f"array is not visible to the derivative. Fix: write `y = {name}(...)` and, if "
            f"needed, `dest[...] = y`."
        )


def check_ufunc_kwargs(name, out, kwargs):
    """``check_no_out`` plus the ufunc ``where=`` mask (which leaves outputs uninitialized)."""
    check_no_out(name, out, kwargs)
    if kwargs and kwargs.get("where", True) is not True:
        raise UnsupportedOperationError(
            f"morula cannot differentiate the ufunc call {name}(..., where=mask): the output "
            f"is left uninitialized where the mask is False. Fix: use "
            f"np.where(mask, {name}(...), other)."
        )


def _fit(cotangents, n):
    cotangents = tuple(cotangents)
    k = len(cotangents)
    if k == n:
        return cotangents
    if k > n:
        return cotangents[:n]
    return cotangents + (None,) * (n - k)


def pad_cotangents(rule):
    """Wrap ``rule`` so its pullback returns exactly one cotangent per positional argument received.

    The wrapper keeps ``rule``'s signature (``functools.wraps``), so the runtime
    binds keyword arguments by ``rule``'s parameter names.
    """

    @functools.wraps(rule)
    def padded_rule(*args, **kwargs):
        out, pullback = rule(*args, **kwargs)
        if pullback is None:
            return out, None
        n = len(args)

        def padded_pullback(dy):
            return _fit(pullback(dy), n)

        padded_pullback.__name__ = padded_pullback.__qualname__ = getattr(
            pullback, "__name__", "pullback"
        )
        return out, padded_pullback

    return padded_rule


pullback_wrapper(pad_cotangents)


def numpy_rule(*fns):
    """Register one rule for each of ``fns`` (skipping ones this NumPy lacks, given as ``None``)."""

    def register(rule):
        padded = pad_cotangents(rule)
        for fn in fns:
            if fn is not None:
                REGISTRY.add_function(fn, padded)
        return padded

    return register


def numpy_method_rule(cls, *names):
    """Register one method rule (``rule(self, *args)``) for each method name of ``cls``."""

    def register(rule):
        padded = pad_cotangents(rule)
        for name in names:
            REGISTRY.add_method(cls, name, padded)
        return padded

    return register


def numpy_attr_rule(cls, *names):
    def register(rule):
        for name in names:
            REGISTRY.add_attribute(cls, name, rule)
        return rule

    return register


def normalize_axes(axis, ndim):
    """``axis`` (None, int, negative, tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = axis
    else:
        axes = (axis,)
    out = []
    for a in axes:
        a = int(a)
        if a < 0:
            a += ndim
        out.append(a)
    return tuple(sorted(out))


# -- floating-point error state of pullbacks ------------------------------------------------

_sweep = threading.local()
_NOTHING = contextlib.nullcontext()


def quiet():
    """``np.errstate(divide=, invalid=, over="ignore")`` -- or nothing, inside a backward sweep,
    which entered it once for all its pullbacks (``np.errstate`` costs more than a small
    array operation)."""
    if getattr(_sweep, "quiet", False):
        return _NOTHING
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


class _QuietSweep:
    """Entered by every backward sweep (``runtime.SWEEP_CONTEXTS``)."""

    def __enter__(self):
        self.outer = getattr(_sweep, "quiet", False)
        self.state = np.errstate(divide="ignore", invalid="ignore", over="ignore")
        self.state.__enter__()
        _sweep.quiet = True

    def __exit__(self, *exc):
        _sweep.quiet = self.outer
        self.state.__exit__(*exc)


def _register_quiet_sweeps():
    from ..reverse import runtime
    if _QuietSweep not in runtime.SWEEP_CONTEXTS:
        runtime.SWEEP_CONTEXTS.append(_QuietSweep)


_register_quiet_sweeps()


# -- NaN safety ------------------------------------------------------------------------------

_NUMPY_VALUES = (np.ndarray, np.generic)


def nan_safe(g, dy):
    """``g`` (a cotangent computed as ``dy * derivative``) with exact zeros where ``dy == 0``.

    ``0 * inf`` and ``0 * nan`` are NaN in floating point, but a zero cotangent means
    "this value does not influence the result", so the outgoing cotangent must be
    zero there whatever the local derivative is (e.g. the unselected branch of
    ``np.where(x > 0, np.sqrt(x), 0)``). For NumPy values the extra ``where`` runs
    only when ``g`` has a non-finite entry; lazy/device arrays (Dask, CuPy) always
    take it, to avoid forcing a computation or a device sync.
    """
    t = type(g)
    if t is float or t is complex:
        if cmath.isfinite(g):
            return g
        return t(0) if dy == 0 else g
    if isinstance(g, _NUMPY_VALUES):
        finite = np.isfinite(g)
        if finite.all():
            return g
        # only the non-finite entries: a finite g there is a real cotangent even where dy is 0
        # (scans such as cumprod mix dy across positions)
        out = np.where((dy == 0) & ~finite, 0, g)
        if not isinstance(g, np.ndarray) and isinstance(out, np.ndarray):
            out = out[()]
        elif out.dtype != g.dtype:
            out = out.astype(g.dtype)
        return out
    if g is None or not hasattr(g, "dtype"):
        return g
    return np.where((dy == 0) & ~np.isfinite(g), 0, g)


def nan_safe_product(dy, d):
    """``dy * d`` with ``0 * (inf or nan) := 0`` (see ``nan_safe``)."""
    with quiet():
        g = dy * d
    return nan_safe(g, dy)


# -- small shared helpers -------------------------------------------------------------------


def as_array(a):
    """Rules need ``.ndim``/``.shape``: Python numbers and (nested) lists become arrays; arrays stay."""
    if hasattr(a, "ndim") and hasattr(a, "shape"):
        return a
    return np.asarray(a)


def zeros_cotangent(x):
    """Zeros shaped like array ``x``: float/complex dtypes kept, others float64."""
    if x.dtype.kind in "fc":
        return np.zeros_like(x)
    return np.zeros_like(x, dtype=np.float64)


def real_if_real(dy, x):
    """``dy`` for complex ``x``; its real part for real ``x`` (before writing into a real buffer)."""
    return dy if is_complex(x) else real_part(dy)


def expand_reduced(dy, ndim, axes, keepdims):
    """Reinsert reduced ``axes`` (sorted, non-negative) into ``dy`` as size-1 dims unless kept."""
    if keepdims or not axes:
        return dy
    if getattr(dy, "ndim", 0) == 0 and len(axes) == ndim:
        return dy
    return np.expand_dims(dy, axes)


def keep(mask, g):
    """``np.where(mask, g, 0)``: ``g`` where ``mask`` holds, an exact zero elsewhere.

    ``np.where`` on a data-dependent mask is branchy and slow (about 20x a multiply here);
    ``g * mask`` is exact whenever ``g`` is finite, so the slow path runs only when the product
    shows a non-finite entry (where ``inf * 0`` would give NaN instead of the exact zero)."""
    if isinstance(g, (np.ndarray, np.generic)) and isinstance(mask, np.ndarray):
        with np.errstate(invalid="ignore"):
            r = g * mask
        if np.isfinite(r).all():
            return r
    return np.where(mask, g, 0)
