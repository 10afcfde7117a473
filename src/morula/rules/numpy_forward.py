"""Forward rules for NumPy, and NumPy's place in forward mode's tangent memory.

In: nothing (importing registers). Out:
- the tangent memory adapter for ``np.ndarray`` (``forward.table``): a view's
  tangent is the same view into its root buffer's tangent;
- the vector-space adapter the derived forward rules use (``forward.derived``);
- forward rules, most derived from declarations shared with reverse mode:
  every function in ``numpy_elementwise.ELEMENTWISE`` (and SciPy's special
  functions registered through the same helpers) from its derivative
  ``d(x, y)``; ``linear`` functions (shape functions, reductions that are sums,
  FFTs, indexing) from the function itself; ``multilinear`` products (matmul,
  dot, einsum, ...) from the product rule; explicit rules for ``where``,
  ``clip``, the common ``linalg`` functions and in-place writers. Every other
  reverse rule gets the exact derived forward rule (one pullback per output
  element).
"""

import operator

import numpy as np

from ..forward import derived
from ..forward.derived import FRULES, attach
from ..forward.derived import tangent_sum as _sum
from ..forward.table import ARRAY_MEMORY
from . import numpy_elementwise as E
from .numpy_vspace import as_operand, nan_safe_product
from .registry import REGISTRY, nondiff


# --------------------------------------------------------------------------- tangent memory

class NumpyMemory:
    @staticmethod
    def root(x):
        base = x
        while True:
            b = base.base
            if not isinstance(b, np.ndarray):
                return base
            base = b

    @staticmethod
    def root_id(x):
        return id(NumpyMemory.root(x))

    @staticmethod
    def zeros(x):
        """A zero tangent buffer for the root of ``x`` (same layout), or None for integers."""
        root = NumpyMemory.root(x)
        if root.dtype.kind not in "fc":
            return None
        if root.flags.c_contiguous:
            return np.zeros(root.shape, root.dtype)
        if root.flags.f_contiguous:
            return np.zeros(root.shape, root.dtype, order="F")
        # memory owned with unusual strides: a zero buffer over the same byte extent, same strides
        low, high = _byte_bounds(root)
        extent = np.zeros((high - low) // root.itemsize, root.dtype)
        offset = root.__array_interface__["data"][0] - low
        return np.ndarray(root.shape, root.dtype, buffer=extent, offset=offset, strides=root.strides)

    @staticmethod
    def view(buf, x):
        """``buf`` (the tangent of ``x``'s root) viewed as ``x`` views its root: a NumPy view whose
        ``base`` leads back to ``buf``'s memory, so anything tracking views by base sees it."""
        root = NumpyMemory.root(x)
        if x is root:
            return buf
        if x.dtype.kind not in "fc":
            return None
        if x.size == 0:
            return np.zeros(x.shape, x.dtype)   # no memory to share
        extent = buf
        while isinstance(extent.base, np.ndarray):
            extent = extent.base
        if not (extent.flags.c_contiguous or extent.flags.f_contiguous):
            raise NotImplementedError("forward mode: a tangent buffer without contiguous memory")
        flat = extent.reshape(-1, order="A") if extent.ndim != 1 else extent
        if x.dtype != flat.dtype:
            flat = flat.view(np.uint8)   # .real/.imag of a complex root: the same bytes as floats
        offset = (buf.__array_interface__["data"][0] - flat.__array_interface__["data"][0]
                  + x.__array_interface__["data"][0] - root.__array_interface__["data"][0])
        return np.ndarray(x.shape, x.dtype, buffer=flat, offset=offset, strides=x.strides)

    @staticmethod
    def adoptable(x, tangent):
        """Can ``tangent`` serve as the tangent buffer of ``x`` (a root) as it is: an array that
        owns its memory, with ``x``'s float dtype and layout."""
        return (type(tangent) is np.ndarray and tangent.base is None and tangent.shape == x.shape
                and tangent.dtype == x.dtype and x.dtype.kind in "fc" and tangent.strides == x.strides)

    @staticmethod
    def copy(x):
        return x.copy()

    @staticmethod
    def zeros_like(x):
        return np.zeros(np.shape(x), x.dtype if x.dtype.kind in "fc" else np.float64)

    @staticmethod
    def units(x):
        """Unit tangents for every element of ``x``, in C order."""
        dtype = x.dtype if x.dtype.kind in "fc" else np.dtype(np.float64)
        out = []
        for k in range(x.size):
            e = np.zeros(x.shape, dtype)
            e.reshape(-1)[k] = 1
            out.append(e)
        return out

    @staticmethod
    def assemble(x, values):
        """One derivative value per element of ``x`` (``units`` order) as an array shaped like ``x``."""
        return np.reshape(np.array(values, dtype=np.result_type(x.dtype, np.float64) if x.dtype.kind != "c"
                                   else x.dtype), np.shape(x))

    @staticmethod
    def jacobian(x, columns):
        """Columns ``J e_k`` (one per element of ``x``) as a Jacobian of shape ``out.shape + x.shape``."""
        stacked = np.stack([np.asarray(c) for c in columns], axis=-1)
        return np.reshape(stacked, np.shape(columns[0]) + np.shape(x))

    @staticmethod
    def assign(target, value):
        if value is None:
            target[...] = 0
            return
        if target.dtype.kind != "c" and np.iscomplexobj(value):
            value = np.real(value)
        target[...] = value

    @staticmethod
    def setitem(target, index, value, primal=None):
        if value is None:
            target[index] = 0
            return
        if isinstance(value, (list, tuple)):
            value = np.asarray(dense(primal, value) if primal is not None else value)
        if target.dtype.kind != "c" and np.iscomplexobj(value):
            value = np.real(value)
        target[index] = value


try:
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:   # NumPy < 2
    _byte_bounds = np.byte_bounds


ARRAY_MEMORY[np.ndarray] = NumpyMemory


class NumpySpace:
    @staticmethod
    def inexact(x):
        return x.dtype.kind in "fc"

    @staticmethod
    def size(x):
        return int(np.size(x))

    @staticmethod
    def is_complex(x):
        return np.iscomplexobj(x)

    @staticmethod
    def basis(x, j, part):
        e = np.zeros(np.shape(x), dtype=x.dtype)
        e.reshape(-1)[j] = part if x.dtype.kind == "c" else 1.0
        return e if isinstance(x, np.ndarray) else e[()]

    @staticmethod
    def from_flat(x, flat):
        t = np.reshape(np.array(flat, dtype=x.dtype), np.shape(x))
        return t if isinstance(x, np.ndarray) else t[()]

    @staticmethod
    def fingerprint(x):
        import zlib
        if not isinstance(x, np.ndarray) or x.dtype.hasobject:
            return None
        return zlib.adler32(np.ascontiguousarray(x).view(np.uint8).reshape(-1)) if x.size else 0

    @staticmethod
    def inner(c, t):
        c, t = np.asarray(c), np.asarray(t)
        if c.shape != t.shape:
            c, t = np.broadcast_arrays(c, t)
        with np.errstate(invalid="ignore"):   # 0 * nan := 0, as in the pullbacks
            return float(np.real(np.sum(np.where((c == 0) | (t == 0), 0, np.conj(c) * t))))


derived.VSPACE.append((lambda x: isinstance(x, (np.ndarray, np.generic)), NumpySpace))


# --------------------------------------------------------------------------- helpers

def _inexact(x):
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        return dtype.kind in "fc"
    return isinstance(x, (float, complex))


def dense(x, tx):
    """The tangent of ``x`` with zeros in place of ``None`` (nested lists/tuples of numbers/arrays)."""
    if isinstance(x, (list, tuple)):
        items = list(tx) if tx is not None else [None] * len(x)
        return type(x)(dense(v, t) for v, t in zip(x, items)) if type(x) in (list, tuple) \
            else [dense(v, t) for v, t in zip(x, items)]
    if tx is not None:
        return tx
    if isinstance(x, (np.ndarray, np.generic)):
        return np.zeros(np.shape(x), x.dtype if x.dtype.kind in "fc" else float)
    if isinstance(x, complex):
        return 0j
    if isinstance(x, (float, int, bool)):
        return 0.0
    return x


def _on_function(fn, forward):
    rule = REGISTRY.functions.get(fn)
    if rule is not None:
        attach(rule, forward)
    else:
        FRULES[fn] = forward


def _on_method(name, forward, cls=np.ndarray):
    rule = REGISTRY.methods.get((cls, name))
    if rule is not None:
        attach(rule, forward)


def _on_attribute(name, forward, cls=np.ndarray):
    rule = REGISTRY.attributes.get((cls, name))
    if rule is not None:
        attach(rule, forward)


def linear_frule(fn, argnums=(0,), name=None, zero=()):
    """``fn`` is linear in the arguments at ``argnums`` (the others are held fixed); positions in
    ``zero`` hold an additive constant (``initial=``) that the tangent leaves out."""
    def linear_forward(T, args, targs, kwargs):
        out = fn(*args, **kwargs)
        if not any(i < len(targs) and targs[i] is not None for i in argnums) or not _holds_inexact(out):
            return out, None
        targ = list(args)
        for i in argnums:
            if i < len(args):
                targ[i] = dense(args[i], targs[i])
        for i in zero:
            if i < len(targ) and isinstance(targ[i], (int, float, complex, np.generic)):
                targ[i] = 0
        if kwargs.get("initial") is not None:
            kwargs = dict(kwargs, initial=0)   # sum(x, initial=c) is affine: its tangent has no c
        return out, fn(*targ, **kwargs)
    linear_forward.__name__ = f"{name or getattr(fn, '__name__', 'fn')}_linear_frule"
    return linear_forward


def _holds_inexact(out):
    if isinstance(out, (list, tuple)):
        return any(_holds_inexact(o) for o in out)
    return _inexact(out)


def multilinear_frule(fn, argnums=(0, 1), name=None):
    """``fn`` is linear in each argument at ``argnums`` separately (products): the product rule."""
    def multilinear_forward(T, args, targs, kwargs):
        out = fn(*args, **kwargs)
        terms = []
        for i in argnums:
            if i < len(targs) and targs[i] is not None:
                targ = list(args)
                targ[i] = dense(args[i], targs[i])
                terms.append(fn(*targ, **kwargs))
        if not terms or not _holds_inexact(out):
            return out, None
        return out, _sum(*terms)
    multilinear_forward.__name__ = f"{name or getattr(fn, '__name__', 'fn')}_multilinear_frule"
    return multilinear_forward


def _item(a, index):
    return a[index]


# ``x.name(...)`` written out (not ``getattr(x, name)``): a derivative of a derivative runs these
# through the reverse transform, which reads method calls, not bound-method objects.
_METHODS = {
    "reshape": lambda x, *a, **k: x.reshape(*a, **k),
    "transpose": lambda x, *a, **k: x.transpose(*a, **k),
    "squeeze": lambda x, *a, **k: x.squeeze(*a, **k),
    "ravel": lambda x, *a, **k: x.ravel(*a, **k),
    "flatten": lambda x, *a, **k: x.flatten(*a, **k),
    "swapaxes": lambda x, *a, **k: x.swapaxes(*a, **k),
    "diagonal": lambda x, *a, **k: x.diagonal(*a, **k),
    "sum": lambda x, *a, **k: x.sum(*a, **k),
    "mean": lambda x, *a, **k: x.mean(*a, **k),
    "cumsum": lambda x, *a, **k: x.cumsum(*a, **k),
    "trace": lambda x, *a, **k: x.trace(*a, **k),
    "take": lambda x, *a, **k: x.take(*a, **k),
    "repeat": lambda x, *a, **k: x.repeat(*a, **k),
    "conj": lambda x, *a, **k: x.conj(*a, **k),
    "conjugate": lambda x, *a, **k: x.conjugate(*a, **k),
    "copy": lambda x, *a, **k: x.copy(*a, **k),
    "astype": lambda x, *a, **k: x.astype(*a, **k),
    "compress": lambda x, *a, **k: x.compress(*a, **k),
    "dot": lambda x, *a, **k: x.dot(*a, **k),
}


def _method(name):
    return _METHODS[name]


# --------------------------------------------------------------------------- elementwise (shared declarations)

def _elementwise_frule(fn, spec):
    kind = spec[0]
    if kind == "unary":
        derivative = spec[1]

        def unary_frule(T, args, targs, kwargs):
            x = args[0]
            y = fn(*args, **kwargs)
            tx = targs[0] if targs else None
            if tx is None or not _inexact(y):
                return y, None
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                d = derivative(as_operand(x), y)
            return y, nan_safe_product(as_operand(tx), d)
        unary_frule.__name__ = f"{getattr(fn, '__name__', 'fn')}_frule"
        return unary_frule
    d1, d2 = spec[1], spec[2]

    def binary_frule(T, args, targs, kwargs):
        x1, x2 = args[0], args[1]
        y = fn(*args, **kwargs)
        t1 = targs[0] if len(targs) > 0 else None
        t2 = targs[1] if len(targs) > 1 else None
        if (t1 is None and t2 is None) or not _inexact(y):
            return y, None
        u1, u2 = as_operand(x1), as_operand(x2)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            a = nan_safe_product(as_operand(dense(x1, t1)), d1(u1, u2, y)) if t1 is not None else None
            b = nan_safe_product(as_operand(dense(x2, t2)), d2(u1, u2, y)) if t2 is not None else None
        return y, _sum(a, b)
    binary_frule.__name__ = f"{getattr(fn, '__name__', 'fn')}_frule"
    return binary_frule


def _declared(fn, rule):
    """Forward rules from declarations made after this module loaded (SciPy's special functions)."""
    spec = E.ELEMENTWISE.get(fn)
    if spec is not None:
        return _elementwise_frule(fn, spec)
    return None


derived.DECLARATIONS.append(_declared)


def _absolute_frule(T, args, targs, kwargs):
    x = args[0]
    y = np.absolute(*args, **kwargs)
    tx = targs[0]
    if tx is None or not _inexact(y):
        return y, None
    if np.iscomplexobj(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.real(np.conj(x) * tx) / np.where(y == 0, 1, y)
        return y, np.where(y == 0, 0, t)
    return y, tx * np.sign(x)


def _where_frule(T, args, targs, kwargs):
    if len(args) == 1:
        return np.where(*args), None
    c, x, y = args
    out = np.where(c, x, y)
    if (targs[1] is None and targs[2] is None) or not _inexact(out):
        return out, None
    return out, np.where(c, dense(x, targs[1]), dense(y, targs[2]))


def _clip_parts(a, lo, hi, ta, tlo, thi):
    t = dense(a, ta) if ta is not None else np.zeros(np.shape(a))
    if lo is not None:
        t = np.where(np.asarray(a) < lo, dense(lo, tlo) if tlo is not None else 0.0, t)
    if hi is not None:
        t = np.where(np.asarray(a) > hi, dense(hi, thi) if thi is not None else 0.0, t)
    return t


def _clip_frule(T, args, targs, kwargs):
    a = args[0]
    lo = args[1] if len(args) > 1 else kwargs.get("a_min", kwargs.get("min"))
    hi = args[2] if len(args) > 2 else kwargs.get("a_max", kwargs.get("max"))
    out = np.clip(a, lo, hi)
    tl = [targs[i] if i < len(targs) else None for i in range(3)]
    if all(t is None for t in tl) or not _inexact(out):
        return out, None
    return out, _clip_parts(a, lo, hi, *tl)


def _ndarray_clip_frule(T, args, targs, kwargs):
    return _clip_frule(T, args, targs, kwargs)


def _trapezoid_frule(T, args, targs, kwargs):
    """``trapezoid(y, x, dx, axis)``: linear in ``y``, and in the spacing (``x``, or ``dx`` without ``x``)."""
    full = list(args) + [None, 1.0, -1][len(args) - 1:]
    y, x, dx, axis = full[:4]
    ty, tx, tdx = (list(targs) + [None, None, None])[:3]
    out = np.trapezoid(*args, **kwargs)
    terms = []
    if ty is not None:
        terms.append(np.trapezoid(dense(y, ty), x, dx, axis))
    if x is not None and tx is not None:
        terms.append(np.trapezoid(y, dense(x, tx), dx, axis))
    if x is None and tdx is not None:
        terms.append(np.trapezoid(y, None, tdx, axis))
    return out, _sum(*terms)


def _symmetrized(ta):
    """Hermitian eigen/Cholesky rules differentiate ``f((A + A^H) / 2)`` (the reverse rules' convention)."""
    return 0.5 * (ta + np.swapaxes(ta, -1, -2).conj())


def _hermitian_part(ta, lower=True):
    """The Hermitian matrix LAPACK reads from ``ta``: one triangle mirrored, the real diagonal."""
    tri = np.tril(ta, -1) if lower else np.triu(ta, 1)
    diag = np.real(np.diagonal(ta, axis1=-2, axis2=-1))
    out = tri + np.swapaxes(tri, -1, -2).conj()
    n = ta.shape[-1]
    idx = np.arange(n)
    out = out.astype(np.result_type(ta, float))
    out[..., idx, idx] = diag
    return out


# --------------------------------------------------------------------------- linalg

def _inv_frule(T, args, targs, kwargs):
    a = args[0]
    y = np.linalg.inv(a)
    if targs[0] is None:
        return y, None
    return y, -(y @ targs[0] @ y)


def _solve_frule(T, args, targs, kwargs):
    a, b = args
    x = np.linalg.solve(a, b)
    ta, tb = targs
    if ta is None and tb is None:
        return x, None
    vector = np.ndim(b) == 1
    xm = x[..., None] if vector else x
    rhs = -(ta @ xm) if ta is not None else 0
    if tb is not None:
        rhs = rhs + (tb[..., None] if vector else tb)
    t = np.linalg.solve(a, rhs)
    return x, t[..., 0] if vector else t


def _det_frule(T, args, targs, kwargs):
    a = args[0]
    d = np.linalg.det(a)
    if targs[0] is None:
        return d, None
    return d, d * np.trace(np.linalg.solve(a, targs[0]), axis1=-2, axis2=-1)


def _slogdet_frule(T, args, targs, kwargs):
    a = args[0]
    out = np.linalg.slogdet(a)
    if targs[0] is None:
        return out, None
    tr = np.trace(np.linalg.solve(a, targs[0]), axis1=-2, axis2=-1)
    if np.iscomplexobj(a):
        return out, (out[0] * 1j * np.imag(tr), np.real(tr))
    return out, (np.zeros_like(out[0]), tr)


def _cholesky_frule(T, args, targs, kwargs):
    a = args[0]
    L = np.linalg.cholesky(a, **kwargs)
    ta = targs[0]
    if ta is None:
        return L, None
    upper = kwargs.get("upper", False)
    if upper:
        L = np.swapaxes(L, -1, -2).conj()
    ta = _symmetrized(ta)
    linv = np.linalg.inv(L)
    inner = linv @ ta @ np.swapaxes(linv, -1, -2).conj()
    phi = np.tril(inner)
    n = phi.shape[-1]
    idx = np.arange(n)
    phi[..., idx, idx] *= 0.5
    tl = L @ phi
    if upper:
        return np.swapaxes(L, -1, -2).conj(), np.swapaxes(tl, -1, -2).conj()
    return L, tl


def _eigh_frule(T, args, targs, kwargs):
    a = args[0]
    out = np.linalg.eigh(*args, **kwargs)
    ta = targs[0]
    if ta is None:
        return out, None
    w, v = out
    ta = _symmetrized(ta)
    vh = np.swapaxes(v, -1, -2).conj()
    m = vh @ ta @ v
    tw = np.real(np.diagonal(m, axis1=-2, axis2=-1))
    gap = w[..., None, :] - w[..., :, None]
    with np.errstate(divide="ignore"):
        f = np.where(gap == 0, 0.0, 1.0 / np.where(gap == 0, 1.0, gap))
    tv = v @ (f * m)
    return out, type(out)(tw, tv) if hasattr(out, "_fields") else (tw, tv)


def _eigvalsh_frule(T, args, targs, kwargs):
    out, t = _eigh_frule(T, args, targs, kwargs)
    w = np.linalg.eigvalsh(*args, **kwargs)
    return w, (t[0] if t is not None else None)


# --------------------------------------------------------------------------- in-place writers

def _copyto_frule(T, args, targs, kwargs):
    dst, src = args[0], args[1]
    where = kwargs.get("where", True)
    tsrc = targs[1]
    if tsrc is None and not T.has_array(dst, NumpyMemory):
        np.copyto(dst, src, **kwargs)
        return None, None
    target = T.array_for_write(dst, NumpyMemory)
    np.copyto(dst, src, **kwargs)
    if target is not None:
        np.copyto(target, dense(src, tsrc) if tsrc is not None else 0.0, casting="unsafe", where=where)
    return None, None


def _fill_diagonal_frule(T, args, targs, kwargs):
    a, val = args[0], args[1]
    wrap = args[2] if len(args) > 2 else kwargs.get("wrap", False)
    tval = targs[1] if len(targs) > 1 else None
    if tval is None and not T.has_array(a, NumpyMemory):
        np.fill_diagonal(a, val, wrap=wrap)
        return None, None
    target = T.array_for_write(a, NumpyMemory)
    np.fill_diagonal(a, val, wrap=wrap)
    if target is not None:
        np.fill_diagonal(target, dense(val, tval) if tval is not None else 0.0, wrap=wrap)
    return None, None


def _fill_frule(T, args, targs, kwargs):
    x, value = args
    tv = targs[1]
    if tv is None and not T.has_array(x, NumpyMemory):
        x.fill(value)
        return None, None
    target = T.array_for_write(x, NumpyMemory)
    x.fill(value)
    if target is not None:
        target.fill(tv if tv is not None else 0)
    return None, None


def _ufunc_at_frule(T, args, targs, kwargs):
    ufunc, x, index = args[0], args[1], args[2]
    values = args[3:]
    tvalues = targs[3:]
    if ufunc not in (np.add, np.subtract):
        if all(t is None for t in tvalues) and not T.has_array(x, NumpyMemory):
            ufunc.at(x, index, *values)
            return None, None
        raise NotImplementedError(f"forward mode: np.{ufunc.__name__}.at (only add.at and subtract.at)")
    target = T.array_for_write(x, NumpyMemory) if any(t is not None for t in tvalues) else None
    ufunc.at(x, index, *values)
    if target is not None and tvalues and tvalues[0] is not None:
        ufunc.at(target, index, tvalues[0])
    return None, None


# --------------------------------------------------------------------------- selections and friends

def _extremum_frule(fn, nan=False):
    """``max``/``min`` (ties share equally, as the reverse rule): the mean tangent of the winners."""
    from .numpy_reductions import _NoValue, _given

    def extremum_forward(T, args, targs, kwargs):
        full = list(args) + [_NoValue] * (6 - len(args))
        a, axis, out_, keepdims, initial, where = full[:6]
        if _given(initial) or (_given(where) and where is not True) or kwargs:
            return frule_for_pullback(fn)(T, args, targs, kwargs)
        y = fn(*args, **kwargs)
        ta = targs[0]
        if ta is None or not _inexact(y):
            return y, None
        x = np.asarray(a)
        axis = axis if _given(axis) else None
        yk = fn(x, axis=axis, keepdims=True)
        hit = x == yk
        if not nan:
            hit = hit | (np.isnan(x) & np.isnan(yk))
        count = np.sum(hit, axis=axis, keepdims=True)
        t = np.sum(np.where(hit, ta, 0), axis=axis, keepdims=True) / np.maximum(count, 1)
        if not (_given(keepdims) and keepdims):
            t = np.squeeze(t, axis=axis) if axis is not None else t.reshape(())
        return y, t if isinstance(y, np.ndarray) else np.asarray(t, dtype=np.result_type(y))[()]
    extremum_forward.__name__ = f"{fn.__name__}_frule"
    return extremum_forward


def frule_for_pullback(fn):
    from ..forward.derived import jvp_from_pullback
    rule = REGISTRY.functions.get(fn)

    def from_pullback(T, args, targs, kwargs):
        out, pb = rule(*args, **kwargs)
        if pb is None or all(t is None for t in targs):
            return out, None
        return out, jvp_from_pullback(out, pb, targs)
    return from_pullback


def _prod_frule(T, args, targs, kwargs):
    """``prod``: sum over i of t_i times the product of the others (exact with zeros)."""
    from .numpy_reductions import _NoValue, _given
    full = list(args) + [_NoValue] * (7 - len(args))
    a, axis, dtype, out_, keepdims, initial, where = full[:7]
    axis = axis if _given(axis) else None
    dtype = dtype if _given(dtype) else None
    if _given(initial) or (_given(where) and where is not True) or kwargs or dtype is not None \
            or isinstance(axis, tuple):
        return frule_for_pullback(np.prod)(T, args, targs, kwargs)
    y = np.prod(*args)
    ta = targs[0]
    if ta is None or not _inexact(y):
        return y, None
    x = np.asarray(a)
    if axis is None:
        x, t, ax = x.reshape(-1), np.reshape(ta, -1), 0
    else:
        t, ax = np.asarray(ta), axis
    xm, tm = np.moveaxis(x, ax, -1), np.moveaxis(t, ax, -1)
    ones = np.ones(xm.shape[:-1] + (1,), dtype=xm.dtype)
    left = np.cumprod(np.concatenate([ones, xm[..., :-1]], axis=-1), axis=-1)
    right = np.flip(np.cumprod(np.concatenate([ones, np.flip(xm[..., 1:], axis=-1)], axis=-1), axis=-1), axis=-1)
    tangent = np.sum(tm * left * right, axis=-1)
    if _given(keepdims) and keepdims:
        tangent = np.expand_dims(tangent, ax) if axis is not None else np.reshape(tangent, (1,) * np.ndim(a))
    return y, tangent if isinstance(y, np.ndarray) else np.asarray(tangent, dtype=np.result_type(y))[()]


def _sort_frule(T, args, targs, kwargs):
    a = args[0]
    axis = args[1] if len(args) > 1 else kwargs.get("axis", -1)
    out = np.sort(*args, **kwargs)
    if targs[0] is None or not _inexact(out):
        return out, None
    x = np.asarray(a)
    if axis is None:
        order = np.argsort(x, axis=None, kind="stable")
        return out, np.ravel(targs[0])[order]
    order = np.argsort(x, axis=axis, kind="stable")
    return out, np.take_along_axis(np.asarray(targs[0]), order, axis=axis)


def _polyval_frule(T, args, targs, kwargs):
    p, x = args
    out = np.polyval(p, x)
    tp, tx = targs
    terms = []
    if tp is not None:
        terms.append(np.polyval(dense(p, tp), x))
    if tx is not None:
        terms.append(np.polyval(np.polyder(np.asarray(p)), x) * tx)
    return out, _sum(*terms)


def _ldexp_frule(T, args, targs, kwargs):
    out = np.ldexp(*args, **kwargs)
    return out, (np.ldexp(targs[0], args[1]) if targs[0] is not None and _inexact(out) else None)


def _nextafter_frule(T, args, targs, kwargs):
    out = np.nextafter(*args, **kwargs)
    return out, (targs[0] if targs[0] is not None and _inexact(out) else None)


def _modf_frule(T, args, targs, kwargs):
    frac, whole = np.modf(*args, **kwargs)
    if targs[0] is None:
        return (frac, whole), None
    return (frac, whole), (targs[0], np.zeros_like(whole))


def _frexp_frule(T, args, targs, kwargs):
    mantissa, exponent = np.frexp(*args, **kwargs)
    if targs[0] is None:
        return (mantissa, exponent), None
    return (mantissa, exponent), (np.ldexp(targs[0], -exponent), None)


def _angle_frule(T, args, targs, kwargs):
    z = args[0]
    deg = args[1] if len(args) > 1 else kwargs.get("deg", False)
    out = np.angle(z, deg)
    tz = targs[0]
    if tz is None or not np.iscomplexobj(z):
        return out, None
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.imag(np.conj(z) * tz) / np.abs(z) ** 2
    t = np.where(np.abs(z) == 0, 0.0, t)
    return out, t * (180 / np.pi) if deg else t


def _np_divmod_frule(T, args, targs, kwargs):
    q, r = np.divmod(*args, **kwargs)
    t1 = targs[0] if len(targs) > 0 else None
    t2 = targs[1] if len(targs) > 1 else None
    tr = _sum(t1, -(t2 * q) if t2 is not None else None)
    return (q, r), ((None, tr) if tr is not None else None)


def _full_like_frule(T, args, targs, kwargs):
    out = np.full_like(*args, **kwargs)
    if len(targs) < 2 or targs[1] is None or not _inexact(out):
        return out, None
    return out, np.full_like(*([args[0], dense(args[1], targs[1])] + list(args[2:])), **kwargs)


# --------------------------------------------------------------------------- registration

def _register():
    for fn, spec in list(E.ELEMENTWISE.items()):
        _on_function(fn, _elementwise_frule(fn, spec))
    _on_function(np.absolute, _absolute_frule)
    _on_function(np.where, _where_frule)
    _on_function(np.clip, _clip_frule)
    _on_method("clip", _ndarray_clip_frule)

    linear0 = [np.reshape, np.transpose, np.squeeze, np.expand_dims, np.ravel, np.moveaxis, np.swapaxes,
               np.rollaxis, np.broadcast_to, np.flip, np.fliplr, np.flipud, np.roll, np.rot90, np.tile,
               np.repeat, np.diagonal, np.diag, np.diagflat, np.trace, np.tril, np.triu, np.real, np.imag,
               np.conjugate, np.sum, np.mean, np.cumsum, np.diff, np.take, np.take_along_axis,
               np.atleast_1d, np.atleast_2d, np.atleast_3d, np.asarray, np.array, np.asanyarray,
               np.ascontiguousarray, np.asfortranarray, np.copy, np.concatenate, np.stack, np.hstack,
               np.vstack, np.dstack, np.column_stack, np.split, np.array_split, np.hsplit, np.vsplit,
               np.dsplit, np.fft.fftshift, np.fft.ifftshift, np.matrix_transpose, np.linalg.diagonal,
               np.linalg.trace, np.float64, np.float32, np.complex128, np.complex64,
               np.float16, np.longdouble]
    for name in ("row_stack", "unstack", "cumulative_sum"):
        if hasattr(np, name):
            linear0.append(getattr(np, name))
    for name in ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
                 "rfftn", "irfftn", "hfft", "ihfft"):
        linear0.append(getattr(np.fft, name))
    for fn in linear0:
        _on_function(fn, linear_frule(fn, (0, 5) if fn is np.sum else (0,)))
    _on_function(np.diff, linear_frule(np.diff, (0, 3, 4)))
    _on_function(np.compress, linear_frule(np.compress, (1,)))
    _on_function(np.extract, linear_frule(np.extract, (1,)))
    _on_function(np.append, linear_frule(np.append, (0, 1)))
    _on_function(np.broadcast_arrays, linear_frule(np.broadcast_arrays, tuple(range(32))))
    if hasattr(np, "trapezoid"):
        _on_function(np.trapezoid, _trapezoid_frule)
    FRULES[operator.getitem] = linear_frule(_item, (0,), "getitem")

    for fn in (np.matmul, np.dot, np.inner, np.outer, np.vdot, np.kron, np.cross):
        _on_function(fn, multilinear_frule(fn))
    _on_function(np.tensordot, multilinear_frule(np.tensordot))
    for name in ("vecdot", "matvec", "vecmat"):
        if hasattr(np, name):
            _on_function(getattr(np, name), multilinear_frule(getattr(np, name)))

    def einsum_forward(T, args, targs, kwargs):
        operands = [i for i, a in enumerate(args) if not isinstance(a, str)]
        return multilinear_frule(np.einsum, tuple(operands), "einsum")(T, args, targs, kwargs)
    _on_function(np.einsum, einsum_forward)

    def multi_dot_forward(T, args, targs, kwargs):
        arrays = list(args[0])
        out = np.linalg.multi_dot(arrays, **kwargs)
        tans = list(targs[0]) if targs[0] is not None else [None] * len(arrays)
        terms = []
        for i, t in enumerate(tans):
            if t is not None:
                terms.append(np.linalg.multi_dot(arrays[:i] + [t] + arrays[i + 1:]))
        return out, _sum(*terms)
    _on_function(np.linalg.multi_dot, multi_dot_forward)

    _on_function(np.linalg.inv, _inv_frule)
    _on_function(np.linalg.solve, _solve_frule)
    _on_function(np.linalg.det, _det_frule)
    _on_function(np.linalg.slogdet, _slogdet_frule)
    _on_function(np.linalg.cholesky, _cholesky_frule)
    _on_function(np.linalg.eigh, _eigh_frule)
    _on_function(np.linalg.eigvalsh, _eigvalsh_frule)
    _on_function(np.copyto, _copyto_frule)
    for fn in (np.max, np.amax, np.min, np.amin):
        _on_function(fn, _extremum_frule(fn))
    for fn in (np.nanmax, np.nanmin):
        _on_function(fn, _extremum_frule(fn, nan=True))
    for name, fn in (("max", np.max), ("min", np.min)):
        extremum = _extremum_frule(fn)
        _on_method(name, lambda T, a, t, k, _e=extremum: _e(T, a, t, k))
    _on_function(np.sort, _sort_frule)
    _on_function(np.prod, _prod_frule)
    _on_method("prod", lambda T, a, t, k: _prod_frule(T, a, t, k))
    _on_function(np.polyval, _polyval_frule)
    _on_function(np.ldexp, _ldexp_frule)
    _on_function(np.nextafter, _nextafter_frule)
    _on_function(np.modf, _modf_frule)
    _on_function(np.frexp, _frexp_frule)
    _on_function(np.angle, _angle_frule)
    _on_function(np.divmod, _np_divmod_frule)
    _on_function(np.full_like, _full_like_frule)
    _on_function(np.full, linear_frule(np.full, (1,)))
    _on_function(np.linspace, linear_frule(np.linspace, (0, 1)))
    _on_function(np.select, linear_frule(np.select, (1, 2)))
    _on_function(np.meshgrid, linear_frule(np.meshgrid, tuple(range(32))))
    _on_function(np.delete, linear_frule(np.delete, (0,)))
    _on_function(np.insert, linear_frule(np.insert, (0, 2)))
    for fn in (np.convolve, np.correlate):
        _on_function(fn, multilinear_frule(fn))
    _on_function(np.fill_diagonal, _fill_diagonal_frule)

    for name in ("reshape", "transpose", "squeeze", "ravel", "flatten", "swapaxes", "diagonal", "sum", "mean",
                 "cumsum", "trace", "take", "repeat", "conj", "conjugate", "copy", "astype", "compress"):
        _on_method(name, linear_frule(_method(name), (0, 5) if name == "sum" else (0,), f"ndarray.{name}"))
    _on_method("dot", multilinear_frule(_method("dot"), (0, 1), "ndarray.dot"))
    for name in ("T", "mT", "real", "imag"):
        def attribute_forward(T, args, targs, kwargs, _name=name):
            x = args[0]
            out = getattr(x, _name)
            if targs[0] is None or not _inexact(out):
                return out, None
            return out, getattr(dense(x, targs[0]), _name)
        _on_attribute(name, attribute_forward)
    for name in ("real", "imag"):
        def scalar_attribute_forward(T, args, targs, kwargs, _name=name):
            x = args[0]
            out = getattr(x, _name)
            return out, (getattr(targs[0], _name) if targs[0] is not None else None)
        _on_attribute(name, scalar_attribute_forward, np.generic)
    _on_method("fill", _fill_frule)
    rule = REGISTRY.methods.get((np.ufunc, "at"))
    if rule is not None:
        attach(rule, _ufunc_at_frule)


_register()


# --------------------------------------------------------------------------- nested derivatives

def tangent_view_rule(buf, x):
    """Reverse mode over forward code: a tangent view is a view of the tangent buffer, so its
    cotangent goes to that buffer's shadow (the reverse shadow finds the view by its base)."""
    from ..reverse import shadow
    out = NumpyMemory.view(buf, x)
    if out is None:
        return None, None
    if out is buf:
        def tangent_buffer_pullback(g):
            return g, None
        return out, tangent_buffer_pullback

    def tangent_view_pullback(g):
        if g is not None:
            shadow.deposit(out, g)
        return None, None
    return out, tangent_view_pullback


def tangent_view_frule(T, args, targs, kwargs):
    # forward mode over forward code: the outer tangent of the view is found by its base
    return NumpyMemory.view(*args), None


REGISTRY.add_function(NumpyMemory.view, tangent_view_rule)
attach(tangent_view_rule, tangent_view_frule)
nondiff(NumpyMemory.root_id, NumpyMemory.zeros, NumpyMemory.zeros_like, NumpyMemory.units)
