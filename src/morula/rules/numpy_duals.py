"""Dual arrays: NumPy arrays that carry a batch of tangents (forward mode by overloading).

In: a primal array ``p`` and ``k`` tangents of it stacked along a leading axis, shape
``(k,) + p.shape``. Out: a ``Dual`` that NumPy's ufuncs, the array functions listed in
``FUNCTIONS``, indexing and the arithmetic operators propagate: every result carries ``k``
tangents, one per direction, computed exactly (elementwise functions from the derivatives of
``numpy_elementwise.ELEMENTWISE``, the reverse rules' own table; linear functions applied to the
tangents; products by the product rule; a few linalg functions by their formulas). Views
(basic indexing, reshape, transpose, ...) share their base's memory as ndarray views do, so
writes through them reach the base.

What it is for: ``hessian`` runs the ordinary reverse sweep once on a ``Dual`` argument whose
tangents are the unit directions (``morula.batched_hessian``): the gradient comes back as a
``Dual`` whose tangents are the Hessian's columns -- forward over reverse, every column in one
sweep, the reverse rules' pullbacks themselves differentiated by the overloading. ``jacfwd``
runs the function itself on one (``morula.batched_jacfwd``).

Anything a ``Dual`` cannot carry exactly raises ``TypeError`` instead of dropping tangents:
conversion to a plain array or number (``np.asarray``, ``float``), writing a ``Dual`` into a
plain array, functions without a batched implementation, ufunc ``out=``. The caller then
computes the derivative another way.
"""

import threading

import numpy as np

from .. import dual_arrays, tangents
from ..forward.derived import tangent_sum
from ..reverse import ops, runtime, shadow
from .numpy_elementwise import ELEMENTWISE
from . import numpy_glue as _glue
from .numpy_glue import _batch_index
from .numpy_indexing import ndarray_getitem
from .numpy_linalg import _normalize_tensordot_axes
from .numpy_vspace import normalize_axes

FUNCTIONS = {}   # NumPy function -> implementation on Duals (and plain arrays among the arguments)

# What ran on Duals, for the caller's record of sweeps it has checked (``batched_hessian``): each
# operation notes its kind, its operands' shapes and which of them carried tangents, and any
# branch it took on values, so two sweeps with equal records ran the same computation.
_trace = threading.local()


def _note(*entry):
    ops = getattr(_trace, "ops", None)
    if ops is not None:
        ops.append(entry)


class recording:
    """``with recording() as ops:`` collects the record of the Dual operations run inside."""

    def __enter__(self):
        self.saved = getattr(_trace, "ops", None)
        _trace.ops = []
        return _trace.ops

    def __exit__(self, *exc):
        _trace.ops = self.saved
        return False


def _layout(v):
    return (np.shape(_primal(v)), type(v) is Dual)


class Dual:
    """``primal`` (an ndarray) with ``tangent`` of shape ``(k,) + primal.shape``."""

    __slots__ = ("primal", "tangent", "base", "replay")
    __array_priority__ = 1e6   # NumPy defers binary operators with ndarrays to ours

    def __init__(self, primal, tangent, base=None, replay=None):
        self.primal = primal
        self.tangent = tangent
        # a view (its primal and tangents are NumPy views of base's): ``replay`` makes the same
        # view of another Dual shaped like base (the shadow memory views its buffers that way)
        self.base = base
        self.replay = replay

    # -- what code reads from arrays ----------------------------------------------------------
    shape = property(lambda self: self.primal.shape)
    dtype = property(lambda self: self.primal.dtype)
    ndim = property(lambda self: self.primal.ndim)
    size = property(lambda self: self.primal.size)
    strides = property(lambda self: self.primal.strides)
    itemsize = property(lambda self: self.primal.itemsize)
    T = property(lambda self: transpose(self))
    real = property(lambda self: _real_only(self, "real"))

    @property
    def imag(self):
        _real_only(self, "imag")
        return np.zeros(self.shape, self.dtype)

    def __len__(self):
        return len(self.primal)

    def __iter__(self):
        for i in range(len(self.primal)):
            yield self[i]

    def __repr__(self):
        return f"Dual({self.primal!r}, {self.tangent.shape[0]} tangents)"

    def __str__(self):   # what the function prints while it is differentiated: its values
        return str(self.primal)

    def __format__(self, spec):
        return format(self.primal[()] if self.primal.ndim == 0 else self.primal, spec)

    def __setitem__(self, index, value):
        # in differentiated code through ndarray's setitem rule (which records the undo), in rules
        # directly (a pullback scattering a cotangent into zeros)
        _scatter(self, index, value, "set")

    # -- refused: every one of these would drop the tangents ---------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("a morula Dual cannot become a plain array (its tangents would be lost)")

    def __float__(self):
        raise TypeError("a morula Dual cannot become a float (its tangents would be lost)")

    __int__ = __complex__ = __index__ = __float__

    def __bool__(self):
        raise TypeError("the truth value of a morula Dual is not defined; compare its values")

    def item(self, *args):
        raise TypeError("a morula Dual cannot become a number (its tangents would be lost)")

    def __getattr__(self, name):
        # ndarray methods declared without derivative (argmax, argsort, nonzero, ...): the primal's
        if _NONDIFF_METHODS.get(name):
            return getattr(self.primal, name)
        raise AttributeError(f"morula Dual has no attribute {name!r}")

    tolist = item

    # -- NumPy protocols --------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "at" and ufunc is np.add and type(inputs[0]) is Dual and not kwargs:
            return _scatter(*inputs, "add")
        if method != "__call__" or kwargs.get("out") is not None or kwargs.get("where", True) is not True:
            return NotImplemented
        kwargs = {k: v for k, v in kwargs.items() if k not in ("out", "where")}
        if set(kwargs) - {"dtype", "casting"}:
            return NotImplemented
        if ufunc is np.matmul:
            return matmul(*inputs)
        return _ufunc(ufunc, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        impl = FUNCTIONS.get(func)
        if impl is None:
            return NotImplemented
        return impl(*args, **kwargs)

    # -- indexing ----------------------------------------------------------------------------
    def __getitem__(self, index):
        if type(index) is Dual or type(index) is tuple and any(type(i) is Dual for i in index):
            raise TypeError("a morula Dual cannot index an array")
        batched = _batch_index(index)
        _note("getitem", self.shape, _index_layout(index))
        if batched is None:
            raise TypeError("morula Duals support this index only without its batch axis moving")
        return _view(self, self.primal[index], self.tangent[batched], ("index", index))

    # -- operators ----------------------------------------------------------------------------
    def __add__(self, other): return _ufunc(np.add, (self, other), {})
    def __radd__(self, other): return _ufunc(np.add, (other, self), {})
    def __sub__(self, other): return _ufunc(np.subtract, (self, other), {})
    def __rsub__(self, other): return _ufunc(np.subtract, (other, self), {})
    def __mul__(self, other): return _ufunc(np.multiply, (self, other), {})
    def __rmul__(self, other): return _ufunc(np.multiply, (other, self), {})
    def __truediv__(self, other): return _ufunc(np.divide, (self, other), {})
    def __rtruediv__(self, other): return _ufunc(np.divide, (other, self), {})
    def __pow__(self, other): return _ufunc(np.power, (self, other), {})
    def __rpow__(self, other): return _ufunc(np.power, (other, self), {})
    def __matmul__(self, other): return matmul(self, other)
    def __rmatmul__(self, other): return matmul(other, self)
    def __neg__(self): return _ufunc(np.negative, (self,), {})
    def __pos__(self): return _ufunc(np.positive, (self,), {})
    def __abs__(self): return _ufunc(np.absolute, (self,), {})
    def __lt__(self, other): return self.primal < _primal(other)
    def __le__(self, other): return self.primal <= _primal(other)
    def __gt__(self, other): return self.primal > _primal(other)
    def __ge__(self, other): return self.primal >= _primal(other)
    def __eq__(self, other): return self.primal == _primal(other)
    def __ne__(self, other): return self.primal != _primal(other)
    __hash__ = None

    def __iadd__(self, other):
        # accumulation into a buffer (the shadow memory adds cotangents in place)
        p, t = _split(other)
        _note("iadd", _layout(self), _layout(other))
        self.primal += p
        if t is not None:
            self.tangent += _aligned(t, self.primal.ndim)
        return self

    def __isub__(self, other):
        return self.__iadd__(-other)

    def _update(self, ufunc, other):
        """``self <op>= other`` in place (the result keeps self's shape, as NumPy's does)."""
        result = _ufunc(ufunc, (self, other), {})
        p, t = _split(result)
        if np.shape(p) != self.shape:
            raise ValueError(f"non-broadcastable output operand with shape {self.shape}")
        self.primal[...] = p
        self.tangent[...] = 0 if t is None else t
        return self

    def __imul__(self, other): return self._update(np.multiply, other)
    def __itruediv__(self, other): return self._update(np.divide, other)
    def __ipow__(self, other): return self._update(np.power, other)

    # -- methods -----------------------------------------------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return sum_(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return mean(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def reshape(self, *shape, order="C"):
        return reshape(self, shape[0] if len(shape) == 1 else shape, order=order)

    def transpose(self, *axes):
        return transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def swapaxes(self, a, b):
        return swapaxes(self, a, b)

    def squeeze(self, axis=None):
        return squeeze(self, axis)

    def ravel(self, order="C"):
        return reshape(self, (-1,), order=order)

    flatten = ravel

    def copy(self, order="K"):
        _note("copy", self.shape)
        return Dual(self.primal.copy(order=order), self.tangent.copy())

    def astype(self, dtype, copy=True, **kwargs):
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError("a morula Dual converts only to floating dtypes")
        if dtype == self.dtype and not copy:
            return self   # as NumPy: the same array, not a second one sharing its memory
        _note("astype", self.shape, self.dtype, dtype)
        return Dual(self.primal.astype(dtype), self.tangent.astype(dtype))

    def conj(self):
        return _real_only(self, "conj").copy()   # a new array, as NumPy's conj of a real one

    conjugate = conj

    def dot(self, other):
        return dot(self, other)

    def max(self, axis=None, out=None, keepdims=False):
        return amax(self, axis=axis, out=out, keepdims=keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        return amin(self, axis=axis, out=out, keepdims=keepdims)

    def clip(self, min=None, max=None):
        return clip(self, min, max)

    def cumsum(self, axis=None, dtype=None):
        return cumsum(self, axis, dtype)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None):
        return trace(self, offset, axis1, axis2, dtype)

    def var(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return var(self, axis, dtype, None, ddof, keepdims)

    def std(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return std(self, axis, dtype, None, ddof, keepdims)


def _index_layout(index):
    parts = index if type(index) is tuple else (index,)
    return tuple((type(i).__name__, np.shape(i), getattr(i, "dtype", None)) if not isinstance(i, slice)
                 else ("slice", i.start, i.stop, i.step) for i in parts)


def _real_only(d, what):
    if d.primal.dtype.kind == "c":
        raise TypeError(f"morula Duals are real; .{what} of a complex Dual is not supported")
    return d


# --------------------------------------------------------------------------- helpers

def _primal(v):
    return v.primal if type(v) is Dual else v


def _split(v):
    if type(v) is Dual:
        return v.primal, v.tangent
    return v, None


def _make(primal, tangent):
    """A Dual, or the plain primal when no tangent reaches it (or it is not floating)."""
    if tangent is None:
        return primal
    primal = np.asarray(primal)
    if primal.dtype.kind != "f":
        return primal if primal.ndim else primal[()]
    if tangent.dtype != primal.dtype:
        tangent = tangent.astype(primal.dtype)
    return Dual(primal, tangent)


def _aligned(t, ndim):
    """Tangents ``(k,) + s`` reshaped to broadcast against a result of ``ndim`` dimensions."""
    extra = ndim - (t.ndim - 1)
    if extra <= 0:
        return t
    return t.reshape((t.shape[0],) + (1,) * extra + t.shape[1:])


def _into(out, term, owned):
    """``out + term``, written into ``out`` when this operation made it and it has the result's
    shape and dtype (a third array of k tangents costs page faults, not just arithmetic)."""
    if owned and out.shape == np.broadcast_shapes(out.shape, term.shape) \
            and np.result_type(out, term) == out.dtype:
        out += term
        return out
    return out + term


def _batch_size(values):
    for v in values:
        if type(v) is Dual:
            return v.tangent.shape[0]
    return None


def _zero_tangent(v, k):
    dtype = np.asarray(v).dtype
    return np.zeros((k,) + np.shape(v), dtype if dtype.kind in "fc" else np.float64)


# --------------------------------------------------------------------------- elementwise

_PIECEWISE_CONSTANT = {np.sign, np.floor, np.ceil, np.trunc, np.rint, np.heaviside}


def _ufunc(ufunc, inputs, kwargs):
    primals = [_primal(v) for v in inputs]
    y = ufunc(*primals, **kwargs)
    if np.asarray(y).dtype.kind != "f":   # comparisons, isnan, ...: no tangent
        return y
    entry = ELEMENTWISE.get(ufunc)
    if entry is None and ufunc in _PIECEWISE_CONSTANT:
        return np.asarray(y) if np.ndim(y) else y   # derivative zero: a constant
    if entry is None:
        raise TypeError(f"morula Duals do not support np.{ufunc.__name__}")
    _note(ufunc, tuple(_layout(v) for v in inputs), tuple(sorted(kwargs.items())))
    ndim = np.ndim(y)
    out = None
    owned = False   # is out an array this operation made (not an operand's own tangents)?
    with np.errstate(all="ignore"):
        if entry[0] == "unary":
            x, t = _split(inputs[0])
            if t is not None:
                t = _aligned(t, ndim)
                out = _times(entry[1](x, y), t)
                owned = out is not t   # _times returns the tangents themselves for d = 1
        else:
            for i, derivative in ((0, entry[1]), (1, entry[2])):
                t = _split(inputs[i])[1]
                if t is not None:
                    t = _aligned(t, ndim)
                    term = _times(derivative(primals[0], primals[1], y), t)
                    if out is None:
                        out, owned = term, term is not t
                    else:
                        out, owned = _into(out, term, owned), True
    if out is not None and out.shape[1:] != np.shape(y):   # a derivative of 1 did not broadcast
        out, owned = np.broadcast_to(out, out.shape[:1] + np.shape(y)).copy(), True
    if out is not None and not owned:   # never hand out an operand's tangents as the result's
        out = out.copy()
    return _make(y, out)


def _times(d, t):
    """``d * t`` with exact zeros where a tangent is zero (``inf * 0`` is not NaN here). The
    derivative ``d`` is checked (it is the size of one result, ``t`` is ``k`` of them)."""
    if type(d) is int:
        if d == 1:
            return t
        if d == -1:
            return -t
    g = d * t
    if type(d) is float or type(d) is int:
        finite = d - d == 0
    else:
        dd = np.asarray(d)
        finite = np.isfinite(np.vdot(dd, dd)) if dd.dtype.kind == "f" else bool(np.isfinite(dd).all())
    if finite:
        return g
    _note("non-finite derivative")
    return np.where(t == 0, 0, g).astype(g.dtype)


# --------------------------------------------------------------------------- products

def matmul(a, b):
    pa, ta = _split(a)
    pb, tb = _split(b)
    _note(np.matmul, _layout(a), _layout(b))
    y = np.matmul(pa, pb)
    na, nb = np.ndim(pa), np.ndim(pb)
    stack = np.broadcast_shapes(np.shape(pa)[:-2], np.shape(pb)[:-2]) if na >= 2 and nb >= 2 else ()
    out = None
    if ta is not None:   # ta @ b
        if na >= 2 and nb >= 2:
            ta = _aligned_stack(ta, na, len(stack))
        out = np.matmul(ta, pb)
    if tb is not None:   # a @ tb
        if nb == 1:
            # (k, n): a @ v for each row v is v @ a^T
            term = np.matmul(tb, np.swapaxes(pa, -1, -2)) if na >= 2 else np.matmul(tb, pa)
        else:
            if na >= 2:
                tb = _aligned_stack(tb, nb, len(stack))
            term = np.matmul(pa, tb)
        out = term if out is None else _into(out, term, owned=True)
    return _make(y, out)


def _aligned_stack(t, nd, nstack):
    """Tangents of a (stacked) matrix with their stack axes lined up against ``nstack`` axes."""
    extra = nstack - (nd - 2)
    if extra <= 0:
        return t
    return t.reshape((t.shape[0],) + (1,) * extra + t.shape[1:])


def dot(a, b):
    pa, pb = _primal(a), _primal(b)
    if np.ndim(pa) <= 2 and np.ndim(pb) <= 2 and np.ndim(pa) > 0 and np.ndim(pb) > 0:
        return matmul(a, b)
    if np.ndim(pa) == 0 or np.ndim(pb) == 0:
        return _ufunc(np.multiply, (a, b), {})
    raise TypeError("morula Duals support np.dot of vectors and matrices only")


def inner(a, b):
    if np.ndim(_primal(a)) <= 1 and np.ndim(_primal(b)) <= 1:
        return dot(a, b)
    raise TypeError("morula Duals support np.inner of vectors only")


def outer(a, b):
    return _ufunc(np.multiply, (reshape(a, (-1, 1)), reshape(b, (1, -1))), {})


def vdot(a, b):
    return matmul(reshape(a, (-1,)), reshape(b, (-1,)))


# --------------------------------------------------------------------------- linear functions

def sum_(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    if out is not None or kwargs.get("where", True) is not True or set(kwargs) - {"where", "initial"} \
            or kwargs.get("initial") not in (None, 0):
        raise TypeError("morula Duals support np.sum with axis=, dtype=, keepdims= only")
    p, t = _split(a)
    y = np.sum(p, axis=axis, dtype=dtype, keepdims=keepdims)
    if t is None:
        return y
    _note(np.sum, _layout(a), axis if not isinstance(axis, list) else tuple(axis), dtype, keepdims)
    axes = tuple(i + 1 for i in normalize_axes(axis, np.ndim(p)))
    return _make(y, np.sum(t, axis=axes, dtype=dtype, keepdims=keepdims) if axes else t.copy())


def mean(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    p = _primal(a)
    count = 1
    for i in normalize_axes(axis, np.ndim(p)):
        count *= np.shape(p)[i]
    s = sum_(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kwargs)
    return s / count if count else s * np.nan


def _linear(fn):
    """``fn(a, ...)`` applied to the primal and, with its axes shifted, to the tangents."""
    def apply(a, *args, **kwargs):
        p, t = _split(a)
        y = fn(p, *args, **kwargs)
        if t is None:
            return y
        _note(fn, _layout(a), repr(args), repr(sorted(kwargs.items())))
        tangent = _shifted(fn, t, np.ndim(p), args, kwargs)
        if type(a) is Dual:
            return _view(a, y, tangent, (fn, args, kwargs))
        return _make(y, tangent)
    return apply


def _shifted(fn, t, ndim, args, kwargs):
    k = t.shape[0]
    if fn is np.reshape:
        shape = args[0] if args else kwargs.get("shape", kwargs.get("newshape"))
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        order = kwargs.get("order", "C")
        if order not in ("C", "A") or t.shape[1:] and not t.flags.c_contiguous and order == "A":
            raise TypeError("morula Duals reshape in C order only")
        return np.reshape(t, (k,) + shape)
    if fn is np.transpose:
        axes = args[0] if args else kwargs.get("axes")
        axes = tuple(range(ndim))[::-1] if axes is None else tuple(int(a) % ndim for a in axes)
        return np.transpose(t, (0,) + tuple(a + 1 for a in axes))
    if fn is np.swapaxes:
        a, b = (int(v) % ndim for v in args)
        return np.swapaxes(t, a + 1, b + 1)
    if fn is np.moveaxis:
        src, dst = args
        src = [s % ndim + 1 for s in np.atleast_1d(src)]
        dst = [d % ndim + 1 for d in np.atleast_1d(dst)]
        return np.moveaxis(t, src, dst)
    if fn is np.expand_dims:
        axis = args[0] if args else kwargs["axis"]
        out_ndim = ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1)
        return np.expand_dims(t, tuple(a % out_ndim + 1 for a in _as_tuple(axis)))
    if fn is np.squeeze:
        axis = args[0] if args else kwargs.get("axis")
        if axis is None:
            axis = tuple(i for i, n in enumerate(t.shape[1:]) if n == 1)
        return np.squeeze(t, tuple(a % ndim + 1 for a in _as_tuple(axis)))
    if fn is np.broadcast_to:
        shape = args[0] if args else kwargs["shape"]
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return np.broadcast_to(_aligned(t, len(shape)), (k,) + shape)
    if fn is np.flip:
        axis = args[0] if args else kwargs.get("axis")
        axes = tuple(range(ndim)) if axis is None else tuple(a % ndim for a in _as_tuple(axis))
        return np.flip(t, tuple(a + 1 for a in axes))
    if fn is np.ravel:
        return np.reshape(t, (k, -1))
    if fn is np.copy or fn is np.ascontiguousarray:
        return t.copy()
    if fn is np.real or fn is np.conjugate:
        return t
    raise TypeError(f"morula Duals do not support {fn.__name__}")


def _as_tuple(axis):
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


reshape = _linear(np.reshape)
transpose = _linear(np.transpose)
swapaxes = _linear(np.swapaxes)
squeeze = _linear(np.squeeze)


def _joined(fn):
    """concatenate / stack: plain arrays among the pieces get zero tangents."""
    def apply(arrays, axis=0, **kwargs):
        if set(kwargs) - {"dtype", "casting"} or kwargs.get("out") is not None:
            raise TypeError(f"morula Duals support np.{fn.__name__} with axis= only")
        arrays = list(arrays)
        k = _batch_size(arrays)
        y = fn([_primal(v) for v in arrays], axis=axis, **kwargs)
        if k is None:
            return y
        _note(fn, tuple(_layout(v) for v in arrays), axis)
        ts = [v.tangent if type(v) is Dual else _zero_tangent(v, k) for v in arrays]
        if fn is np.concatenate:
            if axis is None:
                return _make(y, np.concatenate([t.reshape(k, -1) for t in ts], axis=1))
            return _make(y, np.concatenate(ts, axis=int(axis) % np.ndim(_primal(arrays[0])) + 1))
        return _make(y, np.stack(ts, axis=int(axis) % np.ndim(y) + 1))
    return apply


def where(condition, x=None, y=None):
    if x is None or y is None:
        raise TypeError("morula Duals support np.where(condition, x, y) only")
    c = _primal(condition)
    if type(condition) is Dual:
        raise TypeError("a morula Dual cannot be a condition")
    out = np.where(c, _primal(x), _primal(y))
    k = _batch_size((x, y))
    if k is None:
        return out
    _note(np.where, np.shape(c), _layout(x), _layout(y))
    nd = np.ndim(out)
    tx = _aligned(x.tangent, nd) if type(x) is Dual else 0
    ty = _aligned(y.tangent, nd) if type(y) is Dual else 0
    t = np.where(_aligned(np.asarray(c)[None], nd), tx, ty)
    if t.shape != (k,) + np.shape(out):
        t = np.broadcast_to(t, (k,) + np.shape(out)).copy()
    return _make(out, t)


def _extremum(fn):
    """max / min: the tangent of the selected entries (the mean over ties: the reverse rule
    shares a cotangent equally among them)."""
    def apply(a, axis=None, out=None, keepdims=False, **kwargs):
        if out is not None or kwargs:
            raise TypeError(f"morula Duals support np.{fn.__name__} with axis=, keepdims= only")
        p, t = _split(a)
        y = fn(p, axis=axis, keepdims=keepdims)
        if t is None:
            return y
        _note(fn, _layout(a), axis if not isinstance(axis, list) else tuple(axis), keepdims)
        axes = normalize_axes(axis, np.ndim(p))
        hit = p == fn(p, axis=axis, keepdims=True)
        count = np.sum(hit, axis=axes, keepdims=True)
        if np.isnan(y).any():
            raise TypeError("morula Duals: a NaN reached np.max/np.min")
        shifted = tuple(i + 1 for i in axes)
        tangent = np.sum(np.where(hit[None], t, 0), axis=shifted, keepdims=keepdims) \
            / (count if keepdims else np.squeeze(count, axis=axes) if axes else count)
        return _make(y, tangent.astype(p.dtype, copy=False))
    return apply


amax, amin = _extremum(np.max), _extremum(np.min)


def clip(a, a_min=None, a_max=None, out=None, **kwargs):
    """The reverse rule's convention: ``a`` where lo <= a <= hi (bounds included), else the bound."""
    if out is not None or set(kwargs) - {"min", "max"}:
        raise TypeError("morula Duals support np.clip(a, lo, hi) only")
    lo = kwargs.get("min", a_min)
    hi = kwargs.get("max", a_max)
    result = a
    if lo is not None:
        result = where(_primal(a) >= _primal(lo), result, lo) if _batch_size((a, lo)) else \
            np.where(_primal(a) >= _primal(lo), _primal(a), _primal(lo))
    if hi is not None:
        p = _primal(result)
        result = where(p <= _primal(hi), result, hi) if _batch_size((result, hi)) else \
            np.where(p <= _primal(hi), p, _primal(hi))
    if lo is not None and hi is not None and np.any(_primal(lo) > _primal(hi)):
        raise TypeError("morula Duals: np.clip with lo > hi")
    return result


def tensordot(a, b, axes=2):
    pa, ta = _split(a)
    pb, tb = _split(b)
    y = np.tensordot(pa, pb, axes=axes)
    if ta is None and tb is None:
        return y
    ax_a, ax_b = _normalize_tensordot_axes(axes, np.ndim(pa), np.ndim(pb))
    _note(np.tensordot, _layout(a), _layout(b), tuple(ax_a), tuple(ax_b))
    out = None
    if ta is not None:
        out = np.tensordot(ta, pb, axes=([i + 1 for i in ax_a], ax_b))
    if tb is not None:
        term = np.tensordot(pa, tb, axes=(ax_a, [i + 1 for i in ax_b]))
        term = np.moveaxis(term, np.ndim(pa) - len(ax_a), 0)
        out = term if out is None else _into(out, term, owned=True)
    return _make(y, out)


def einsum(subscripts, *operands, **kwargs):
    """Explicit subscripts (``"ij,jk->ik"``) without ellipses: a batch letter added per Dual."""
    if not isinstance(subscripts, str) or "->" not in subscripts or "." in subscripts \
            or set(kwargs) - {"optimize"}:
        raise TypeError("morula Duals support np.einsum with explicit '->' subscripts only")
    inputs, output = subscripts.replace(" ", "").split("->")
    inputs = inputs.split(",")
    primals = [_primal(v) for v in operands]
    y = np.einsum(subscripts, *primals, **kwargs)
    if _batch_size(operands) is None:
        return y
    _note(np.einsum, subscripts, tuple(_layout(v) for v in operands))
    free = next(c for c in "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba" if c not in subscripts)
    out = None
    for i, v in enumerate(operands):
        if type(v) is Dual:
            spec = ",".join(free + s if m == i else s for m, s in enumerate(inputs)) + "->" + free + output
            args = [v.tangent if m == i else primals[m] for m in range(len(operands))]
            out = tangent_sum(out, np.einsum(spec, *args, **kwargs))
    return _make(y, out)


def diag(v, k=0):
    p, t = _split(v)
    y = np.diag(p, k)
    if t is None:
        return y
    _note(np.diag, _layout(v), k)
    if np.ndim(p) == 2:
        return _make(y, np.diagonal(t, k, axis1=1, axis2=2).copy())
    if np.ndim(p) != 1:
        raise TypeError("np.diag takes a 1-D or 2-D array")
    out = np.zeros((t.shape[0],) + y.shape, dtype=t.dtype)
    n = p.shape[0]
    rows = np.arange(n) + max(-k, 0)
    cols = np.arange(n) + max(k, 0)
    out[:, rows, cols] = t
    return _make(y, out)


def _stacked(fn):
    """hstack / vstack / column_stack: NumPy's own definitions over atleast_*d and concatenate."""
    def apply(tup, **kwargs):
        if kwargs:
            raise TypeError(f"morula Duals support np.{fn.__name__} without keywords")
        arrays = list(tup)
        if fn is np.vstack:
            return _joined(np.concatenate)([_at_least(a, 2) for a in arrays], axis=0)
        if fn is np.hstack:
            arrays = [_at_least(a, 1) for a in arrays]
            return _joined(np.concatenate)(arrays, axis=0 if np.ndim(_primal(arrays[0])) == 1 else 1)
        columns = [reshape(a, (-1, 1)) if np.ndim(_primal(a)) < 2 else a for a in arrays]
        return _joined(np.concatenate)(columns, axis=1)
    return apply


def _at_least(a, nd):
    """np.atleast_1d / 2d of one array (a row for 2-D, as NumPy does)."""
    shape = np.shape(_primal(a))
    if len(shape) >= nd:
        return a
    return reshape(a, (1,) * (nd - len(shape)) + shape)


def diff(a, n=1, axis=-1):
    for _ in range(n):
        nd = np.ndim(_primal(a))
        ax = axis % nd
        upper = tuple(slice(1, None) if i == ax else slice(None) for i in range(nd))
        lower = tuple(slice(None, -1) if i == ax else slice(None) for i in range(nd))
        a = a[upper] - a[lower]
    return a


def prod(a, axis=None, dtype=None, out=None, keepdims=False):
    """The product rule: d prod = prod * sum(t / a); refused at zeros (use the column path)."""
    if out is not None:
        raise TypeError("morula Duals support np.prod without out=")
    p, t = _split(a)
    y = np.prod(p, axis=axis, dtype=dtype, keepdims=keepdims)
    if t is None:
        return y
    if np.any(p == 0):
        raise TypeError("morula Duals: np.prod of an array with zeros")
    _note(np.prod, _layout(a), axis if not isinstance(axis, list) else tuple(axis), dtype, keepdims)
    axes = tuple(i + 1 for i in normalize_axes(axis, np.ndim(p)))
    share = np.sum(t / p, axis=axes, keepdims=keepdims)
    return _make(y, share * y)


def _matrix_function(fn, tangent):
    """``fn`` of a (stack of) square matrices, with ``tangent(p, y, t)`` its tangents."""
    def apply(a):
        p, t = _split(a)
        y = fn(p)
        if t is None:
            return y
        _note(fn, _layout(a))
        return _make(y, tangent(p, y, t))
    return apply


inv = _matrix_function(np.linalg.inv, lambda p, y, t: -(y @ t @ y))
det = _matrix_function(np.linalg.det,
                       lambda p, y, t: y * np.trace(np.linalg.solve(p, t), axis1=-2, axis2=-1))


def solve(a, b):
    pa, ta = _split(a)
    pb, tb = _split(b)
    y = np.linalg.solve(pa, pb)
    if ta is None and tb is None:
        return y
    _note(np.linalg.solve, _layout(a), _layout(b))
    k = (ta if ta is not None else tb).shape[0]
    vector = np.ndim(pb) == 1 and np.ndim(pa) == 2
    rhs = 0
    if tb is not None:
        rhs = tb[..., None] if vector else tb
    if ta is not None:
        rhs = rhs - ta @ (y[:, None] if vector else y)
    rhs = np.broadcast_to(rhs, (k,) + np.shape(pa)[:-1] + ((1,) if vector else np.shape(pb)[-1:]))
    ty = np.linalg.solve(pa, rhs)
    return _make(y, ty[..., 0] if vector else ty)


def cumsum(a, axis=None, dtype=None, out=None):
    if out is not None:
        raise TypeError("morula Duals support np.cumsum with axis=, dtype= only")
    p, t = _split(a)
    y = np.cumsum(p, axis=axis, dtype=dtype)
    if t is None:
        return y
    _note(np.cumsum, _layout(a), axis, dtype)
    if axis is None:
        return _make(y, np.cumsum(t.reshape(t.shape[0], -1), axis=1, dtype=dtype))
    return _make(y, np.cumsum(t, axis=int(axis) % np.ndim(p) + 1, dtype=dtype))


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    if out is not None:
        raise TypeError("morula Duals support np.trace without out=")
    p, t = _split(a)
    y = np.trace(p, offset, axis1, axis2, dtype)
    if t is None:
        return y
    _note(np.trace, _layout(a), offset, axis1, axis2, dtype)
    nd = np.ndim(p)
    return _make(y, np.trace(t, offset, axis1 % nd + 1, axis2 % nd + 1, dtype))


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    if out is not None or kwargs:
        raise TypeError("morula Duals support np.var / np.std with axis=, ddof=, keepdims= only")
    p = _primal(a)
    n = 1
    for i in normalize_axes(axis, np.ndim(p)):
        n *= np.shape(p)[i]
    centered = a - mean(a, axis=axis, dtype=dtype, keepdims=True)
    return sum_(centered * centered, axis=axis, dtype=dtype, keepdims=keepdims) / max(n - ddof, 0)


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    return _ufunc(np.sqrt, (var(a, axis, dtype, out, ddof, keepdims, **kwargs),), {})


def norm(x, ord=None, axis=None, keepdims=False):
    """The 2-norm of vectors (and Frobenius of matrices), composed of Dual operations."""
    if ord not in (None, 2, "fro") or (ord == 2 and (axis is None and np.ndim(_primal(x)) != 1)):
        raise TypeError("morula Duals support np.linalg.norm for the 2-norm / Frobenius norm only")
    return _ufunc(np.sqrt, (sum_(x * x, axis=axis, keepdims=keepdims),), {})


def _set(array, index, value):
    array[index] = value


def _scatter(target, index, value, how):
    """``target[index] = value`` (``how="set"``) or ``np.add.at(target, index, value)``
    (``"add"``: a pullback scattering repeated indices) into a Dual buffer."""
    batched = _batch_index(index)
    if batched is None:
        raise TypeError("morula Duals support this index only without its batch axis moving")
    p, t = _split(value)
    _note(how, target.shape, _index_layout(index), _layout(value))
    write = _set if how == "set" else np.add.at
    write(target.primal, index, p)
    if t is None:
        if how == "set":
            target.tangent[batched] = 0
        return
    width = target.tangent[batched].ndim
    write(target.tangent, batched, _aligned(t, width - 1) if t.ndim < width else t)


def _constant_like(fn):
    """``np.zeros_like(d)`` and its kind: a Dual with zero tangents (a pullback writes into it
    what carries tangents); a plain array for a non-floating dtype."""
    def apply(a, *args, **kwargs):
        y = fn(_primal(a), *args, **kwargs)
        if type(a) is not Dual or np.asarray(y).dtype.kind != "f" or kwargs.get("shape") is not None:
            return y
        return Dual(np.asarray(y), np.zeros((a.tangent.shape[0],) + np.shape(y), np.asarray(y).dtype))
    return apply


zeros_like = _constant_like(np.zeros_like)


def _of_primal(fn):
    def apply(*args, **kwargs):
        return fn(*(_primal(a) for a in args), **{k: _primal(v) for k, v in kwargs.items()})
    return apply


FUNCTIONS.update({
    np.sum: sum_, np.mean: mean,
    np.reshape: reshape, np.transpose: transpose, np.swapaxes: swapaxes, np.squeeze: squeeze,
    np.moveaxis: _linear(np.moveaxis), np.expand_dims: _linear(np.expand_dims),
    np.broadcast_to: _linear(np.broadcast_to), np.ravel: _linear(np.ravel), np.flip: _linear(np.flip),
    np.copy: _linear(np.copy), np.ascontiguousarray: _linear(np.ascontiguousarray),
    np.real: _linear(np.real), np.conjugate: _linear(np.conjugate),
    np.concatenate: _joined(np.concatenate), np.stack: _joined(np.stack),
    np.max: amax, np.min: amin, np.amax: amax, np.amin: amin, np.clip: clip, np.tensordot: tensordot, np.einsum: einsum,
    np.cumsum: cumsum, np.trace: trace, np.diag: diag, np.diff: diff, np.prod: prod,
    np.hstack: _stacked(np.hstack), np.vstack: _stacked(np.vstack),
    np.column_stack: _stacked(np.column_stack), np.linalg.inv: inv, np.linalg.solve: solve,
    np.linalg.det: det, np.var: var, np.std: std, np.linalg.norm: norm,
    np.where: where, np.dot: dot, np.inner: inner, np.outer: outer, np.vdot: vdot,
    np.matmul: matmul,
    np.zeros_like: zeros_like, np.ones_like: _constant_like(np.ones_like),
    np.empty_like: _constant_like(np.empty_like), np.full_like: _constant_like(np.full_like),
    np.shape: _of_primal(np.shape), np.ndim: _of_primal(np.ndim), np.size: _of_primal(np.size),
    np.result_type: _of_primal(np.result_type), np.iscomplexobj: _of_primal(np.iscomplexobj),
    np.isrealobj: _of_primal(np.isrealobj), np.round: _of_primal(np.round), np.around: _of_primal(np.around),
    np.any: _of_primal(np.any), np.all: _of_primal(np.all),
    np.isfinite: _of_primal(np.isfinite), np.isnan: _of_primal(np.isnan),
    np.array_equal: _of_primal(np.array_equal), np.allclose: _of_primal(np.allclose),
})


# --------------------------------------------------------------------------- construction

def seeded(x, directions):
    """``x`` (a float or floating array) as a Dual whose tangents are ``directions``
    (shape ``(k,) + x.shape``)."""
    p = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float64)
                 if np.asarray(x).dtype.kind != "f" else np.asarray(x).dtype, copy=True)
    return Dual(p, np.asarray(directions, dtype=p.dtype))


def parts(v, k, shape):
    """``(primal, tangents)`` of a result: tangents ``(k,) + shape`` (zeros for a plain value)."""
    if type(v) is Dual:
        return v.primal, v.tangent
    return v, np.zeros((k,) + tuple(shape))


def _dual_zeros(root):
    return Dual(np.zeros_like(root.primal), np.zeros_like(root.tangent))


# --------------------------------------------------------------------------- views

def _view(parent, primal, tangent, replay):
    """The result of a view operation on Dual ``parent``: a view Dual when NumPy made writable
    views of both parts (writes through it reach ``parent``, as for ndarrays), else a Dual of its
    own (copies, or read-only views such as broadcasts)."""
    primal = np.asarray(primal)
    shared = primal.base is not None and tangent.base is not None \
        and np.may_share_memory(primal, parent.primal) and np.may_share_memory(tangent, parent.tangent)
    if shared and primal.flags.writeable and tangent.flags.writeable:
        return Dual(primal, tangent, parent, replay)
    if primal.dtype.kind != "f":
        return primal if primal.ndim else primal[()]
    if np.may_share_memory(primal, parent.primal):
        primal = primal.copy()
    if np.may_share_memory(tangent, parent.tangent):
        tangent = tangent.copy()
    return _make(primal, tangent)


def _root(d):
    while d.base is not None:
        d = d.base
    return d


def _view_into(buffer, root, x):
    """The view of ``buffer`` (a Dual shaped like ``root``) that ``x`` is of ``root``."""
    chain = []
    while x is not root:
        chain.append(x.replay)
        x = x.base
    v = buffer
    for replay in reversed(chain):
        if replay[0] == "index":
            v = v[replay[1]]
        else:
            fn, args, kwargs = replay
            v = FUNCTIONS[fn](v, *args, **kwargs)
        if type(v) is not Dual or v.base is None:
            raise TypeError("morula Duals: a view could not be made again of a cotangent buffer")
    return v


def dual_iterate(x):
    """``for row in d``: the rows, and a pullback stacking the rows' cotangents."""
    rows = list(x)

    def dual_iteration_pullback(cts):
        # what the sweep deposited in the rows' shadows belongs to x too (a row of a 1-D x is
        # a number, not a view)
        cts = [tangent_sum(c, shadow.take(row)) if type(row) is Dual and row.base is None else c
               for c, row in zip(list(cts) + [None] * len(rows), rows)]
        if all(c is None for c in cts):
            return None
        dx = zeros_like(x)
        for i, c in enumerate(cts):
            if c is not None:
                dx[i] = c
        shadow.deposit(x, dx)   # into the shadow, as for ndarrays (numpy_glue.ndarray_iterate)
        return None

    return rows, dual_iteration_pullback


def _constant_functions():
    """NumPy functions declared without derivative (argmax, searchsorted, isclose, ...): on a Dual
    they run on the primal (their result is a constant, as in reverse mode). And the names of
    such ndarray methods."""
    from .registry import REGISTRY
    for fn, rule in list(REGISTRY.functions.items()):
        if getattr(rule, "__morula_constant__", False) and fn not in FUNCTIONS \
                and not isinstance(fn, np.ufunc) and (getattr(fn, "__module__", "") or "").startswith("numpy"):
            FUNCTIONS[fn] = _of_primal(fn)
    for (cls, name), rule in list(REGISTRY.methods.items()):
        if cls is np.ndarray and getattr(rule, "__morula_constant__", False):
            _NONDIFF_METHODS[name] = True


_NONDIFF_METHODS = {}
_constant_functions()

# the engine meets Duals as an array library's arrays: the operator rules directly, NumPy's
# method rules by name, cotangents kept in the shadow memory (a Dual is its own root); their
# Python methods run as written, never differentiated through
ops.register_plain_type(Dual)
ops.register_type_op("getitem", Dual, ndarray_getitem)
ops.register_type_op("setitem", Dual, _glue.ndarray_setitem)
ops.register_type_op("iterate", Dual, dual_iterate)
runtime._library_types[Dual] = True
tangents.NOT_FLOATS.add(Dual)
runtime.LIBRARY_FILES.add(__file__)
shadow.register_array_type(Dual, _root, _view_into, _dual_zeros, lambda x, root: True)


def _promoted(root, buffer, ct):
    """A Dual buffer for the ndarray ``root`` whose view received a Dual cotangent (a constant
    built inside the function, sliced and multiplied with the argument): the primal part holds
    what the ndarray buffer held, the tangents start at zero, each laid out like ``root``."""
    primal = _glue._zeros_for(root) if buffer is None else buffer.copy(order="K")
    return Dual(primal, _glue._batched_zeros_for(root, ct.tangent.shape[0]))


def _ndarray_view_of(buffer, root, x):
    return Dual(_glue._view_into(buffer.primal, root, x), _glue._batched_view_into(buffer.tangent, root, x),
                buffer, None)


shadow.PROMOTE[Dual] = _promoted
_glue.FOREIGN_VIEWS[Dual] = _ndarray_view_of

dual_arrays.DUALS.append((seeded, parts, recording))
