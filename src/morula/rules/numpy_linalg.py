"""Reverse rules for NumPy's products: matmul, dot, outer, inner, tensordot, einsum, vdot.

In: nothing (importing registers the rules). Out: rules for ``np.matmul``,
``np.dot`` (and ``ndarray.dot``), ``np.outer``, ``np.inner``, ``np.tensordot``,
``np.einsum`` (string subscripts with or without ``->``, ``...``, repeated
labels, and the interleaved operand/sublist form) and ``np.vdot``.

All products are multilinear: the cotangent of one operand is the product
of the output cotangent with the *conjugated* other operands. Batch
dimensions that were broadcast are summed back (``unbroadcast``).
"""

import numpy as np

from morula.reverse.shadow import batch_capable
from morula.rules.numpy_vspace import (
    as_operand,
    check_no_out,
    conj,
    cotangent,
    inexact,
    numpy_method_rule,
    numpy_rule,
    shape_of,
    wanted,
)
from morula.tangents import batch_of


def _ndim(a):
    nd = getattr(a, "ndim", None)
    return nd if nd is not None else np.ndim(a)


def _multiply_pullback_parts(dy, a, b):
    ua, ub = as_operand(a), as_operand(b)
    da = cotangent(dy * conj(ub), a) if inexact(a) else None
    db = cotangent(dy * conj(ua), b) if inexact(b) else None
    return da, db


# -- matmul ---------------------------------------------------------------------------------


def _matmul_cotangents(dy, a, b, need_a=True, need_b=True):
    """Cotangents of ``a @ b`` for 1-D, 2-D and stacked operands (batch dims broadcast)."""
    a_vec, b_vec = _ndim(a) == 1, _ndim(b) == 1
    batched = batch_of(dy) is not None
    if a_vec and b_vec:
        if batched:
            dy = dy[:, None]   # a batch of scalar cotangents, against vectors
        return _multiply_pullback_parts(dy, a, b)
    if batched and (a_vec or b_vec) and _ndim(a) + _ndim(b) == 3:
        return _matvec_batch_cotangents(dy, a, b, a_vec, need_a, need_b)
    ua, ub = as_operand(a), as_operand(b)
    a2 = ua[None, :] if a_vec else ua  # (1, k)
    b2 = ub[:, None] if b_vec else ub  # (k, 1)
    g = dy
    if a_vec:
        g = np.expand_dims(g, -2)
    if b_vec:
        g = np.expand_dims(g, -1)
    da = db = None
    if need_a and inexact(a):
        ga = np.matmul(g, np.swapaxes(conj(b2), -1, -2))  # (..., m, k)
        if a_vec:
            ga = ga[..., 0, :]
        da = cotangent(ga, a)
    if need_b and inexact(b):
        gb = np.matmul(np.swapaxes(conj(a2), -1, -2), g)  # (..., k, n)
        if b_vec:
            gb = gb[..., :, 0]
        db = cotangent(gb, b)
    return da, db


def _matvec_batch_cotangents(dy, a, b, a_vec, need_a, need_b):
    """Cotangents of ``A @ x`` or ``x @ B`` (a matrix and a vector) for a batch of cotangents
    ``dy`` (batch, n): one matrix product for the whole batch, not one per cotangent."""
    ua, ub = as_operand(a), as_operand(b)
    da = db = None
    if a_vec:   # x @ B: x (k,), B (k, n)
        if need_a and inexact(a):
            da = cotangent(dy @ np.swapaxes(conj(ub), -1, -2), a)
        if need_b and inexact(b):
            db = cotangent(conj(ua)[:, None] * dy[:, None, :], b)
    else:       # A @ x: A (m, k), x (k,)
        if need_a and inexact(a):
            da = cotangent(dy[:, :, None] * conj(ub), a)
        if need_b and inexact(b):
            db = cotangent(dy @ conj(ua), b)
    return da, db


@numpy_rule(np.matmul)
def matmul_rule(x1, x2, *out, **kwargs):
    check_no_out("np.matmul", out[0] if out else None, kwargs)
    if set(kwargs) - {"dtype", "casting", "order", "subok"}:
        raise TypeError("morula's np.matmul rule supports only dtype=, casting=, order=, subok=")
    y = np.matmul(x1, x2, **kwargs)
    if not (inexact(x1) or inexact(x2)) or not inexact(y):
        return y, None

    need_1, need_2 = wanted(x1), wanted(x2)

    def matmul_pullback(dy):
        return _matmul_cotangents(dy, x1, x2, need_1, need_2)

    return y, matmul_pullback


# -- tensordot (also the engine of dot and inner) ----------------------------------------------


def _normalize_tensordot_axes(axes, nda, ndb):
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        return list(range(nda - n, nda)), list(range(n))
    axes_a, axes_b = axes
    axes_a = [axes_a] if isinstance(axes_a, (int, np.integer)) else list(axes_a)
    axes_b = [axes_b] if isinstance(axes_b, (int, np.integer)) else list(axes_b)
    axes_a = [int(i) % nda if nda else int(i) for i in axes_a]
    axes_b = [int(i) % ndb if ndb else int(i) for i in axes_b]
    return axes_a, axes_b


def _inverse_permutation(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _tensordot_cotangents(dy, a, b, sum_a, sum_b, need_a=True, need_b=True):
    """Cotangents of ``tensordot(a, b, (sum_a, sum_b))``; output axes are free(a) + free(b)."""
    nda, ndb = _ndim(a), _ndim(b)
    free_a = [i for i in range(nda) if i not in sum_a]
    free_b = [i for i in range(ndb) if i not in sum_b]
    nfa = len(free_a)
    dy_a_axes = list(range(nfa))  # where free(a) sits in dy
    dy_b_axes = list(range(nfa, nfa + len(free_b)))
    da = db = None
    ua, ub = as_operand(a), as_operand(b)
    if need_a and inexact(a):
        # axes of the result: free(a), then b's summed axes in increasing b order
        ga = np.tensordot(dy, conj(ub), axes=(dy_b_axes, free_b))
        perm = free_a + [sum_a[sum_b.index(j)] for j in sorted(sum_b)]
        ga = np.transpose(ga, _inverse_permutation(perm)) if perm != sorted(perm) else ga
        da = cotangent(ga, a)
    if need_b and inexact(b):
        # axes of the result: a's summed axes in increasing a order, then free(b)
        gb = np.tensordot(conj(ua), dy, axes=(free_a, dy_a_axes))
        perm = [sum_b[sum_a.index(i)] for i in sorted(sum_a)] + free_b
        gb = np.transpose(gb, _inverse_permutation(perm)) if perm != sorted(perm) else gb
        db = cotangent(gb, b)
    return da, db


@numpy_rule(np.tensordot)
def tensordot_rule(a, b, axes=2):
    y = np.tensordot(a, b, axes=axes)
    if not (inexact(a) or inexact(b)) or not inexact(y):
        return y, None
    sum_a, sum_b = _normalize_tensordot_axes(axes, _ndim(a), _ndim(b))
    need_a, need_b = wanted(a), wanted(b)

    def tensordot_pullback(dy):
        return _tensordot_cotangents(dy, a, b, sum_a, sum_b, need_a, need_b)

    return y, tensordot_pullback


# -- dot / inner / outer / vdot ------------------------------------------------------------------


def _dot_cotangents(dy, a, b, need_a=True, need_b=True):
    nda, ndb = _ndim(a), _ndim(b)
    if nda == 0 or ndb == 0:
        return _multiply_pullback_parts(dy, a, b)
    if nda <= 2 and ndb <= 2:
        return _matmul_cotangents(dy, a, b, need_a, need_b)
    return _tensordot_cotangents(dy, a, b, [nda - 1], [max(ndb - 2, 0)], need_a, need_b)


@numpy_rule(np.dot)
@numpy_method_rule(np.ndarray, "dot")
def dot_rule(a, b, out=None):
    check_no_out("np.dot", out)
    y = np.dot(a, b)
    if not (inexact(a) or inexact(b)) or not inexact(y):
        return y, None

    need_a, need_b = wanted(a), wanted(b)

    def dot_pullback(dy):
        return _dot_cotangents(dy, a, b, need_a, need_b)

    return y, dot_pullback


@numpy_rule(np.inner)
def inner_rule(a, b):
    y = np.inner(a, b)
    if not (inexact(a) or inexact(b)) or not inexact(y):
        return y, None

    def inner_pullback(dy):
        nda, ndb = _ndim(a), _ndim(b)
        if nda == 0 or ndb == 0:
            return _multiply_pullback_parts(dy, a, b)
        return _tensordot_cotangents(dy, a, b, [nda - 1], [ndb - 1])

    return y, inner_pullback


@numpy_rule(np.outer)
def outer_rule(a, b, out=None):
    check_no_out("np.outer", out)
    y = np.outer(a, b)
    if not (inexact(a) or inexact(b)) or not inexact(y):
        return y, None

    def outer_pullback(dy):
        da = db = None
        if inexact(a):
            da = cotangent(np.reshape(np.matmul(dy, np.ravel(conj(b))), shape_of(a)), a)
        if inexact(b):
            db = cotangent(np.reshape(np.matmul(np.ravel(conj(a)), dy), shape_of(b)), b)
        return da, db

    return y, outer_pullback


@numpy_rule(np.vdot)
def vdot_rule(a, b):
    """``vdot(a, b) = sum(conj(a) * b)`` over the flattened operands (antilinear in ``a``)."""
    y = np.vdot(a, b)
    if not (inexact(a) or inexact(b)) or not inexact(y):
        return y, None

    def vdot_pullback(dy):
        ua, ub = as_operand(a), as_operand(b)
        da = cotangent(np.reshape(ub * conj(dy), shape_of(a)), a) if inexact(a) else None
        db = cotangent(np.reshape(ua * dy, shape_of(b)), b) if inexact(b) else None
        return da, db

    return y, vdot_pullback


# -- einsum ---------------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _sublist_to_labels(sublist):
    out = []
    for item in sublist:
        if item is Ellipsis:
            out.append("...")
        else:
            out.append(_LETTERS[int(item)])
    return "".join(out)


def _einsum_spec(operands):
    """Split ``einsum``'s positional arguments into (subscripts string, operands, operand positions)."""
    if isinstance(operands[0], str):
        return operands[0].replace(" ", ""), list(operands[1:]), list(range(1, len(operands)))
    # interleaved: op0, sub0, op1, sub1, ..., [sub_out]
    ops, subs, positions = [], [], []
    items = list(operands)
    i = 0
    while i + 1 < len(items):
        ops.append(items[i])
        positions.append(i)
        subs.append(_sublist_to_labels(items[i + 1]))
        i += 2
    spec = ",".join(subs)
    if i < len(items):
        spec += "->" + _sublist_to_labels(items[i])
    return spec, ops, positions


def _explicit_labels(spec, operands):
    """Operand label strings and the output label string, with ``...`` spelled as explicit labels."""
    if "->" in spec:
        inputs, output = spec.split("->")
        explicit_out = True
    else:
        inputs, output, explicit_out = spec, None, False
    in_subs = inputs.split(",")
    used = set(spec) - set(".,->")
    fresh = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for sub, op in zip(in_subs, operands):
        if "..." in sub:
            n_ell = max(n_ell, _ndim(op) - (len(sub) - 3))
    ell = "".join(fresh[:n_ell])
    labels = []
    for sub, op in zip(in_subs, operands):
        if "..." in sub:
            k = _ndim(op) - (len(sub) - 3)
            sub = sub.replace("...", ell[n_ell - k:] if k else "")
        labels.append(sub)
    if explicit_out:
        out = output.replace("...", ell)
    else:
        counts = {}
        for sub in in_subs:
            for c in sub.replace("...", ""):
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    return labels, out, fresh[n_ell:]


def _label_sizes(labels, operands):
    sizes = {}
    for sub, op in zip(labels, operands):
        for c, n in zip(sub, shape_of(op)):
            if sizes.get(c, 1) == 1:
                sizes[c] = n
    return sizes


def _like(op):
    """``like=op`` for array types that dispatch (CuPy, Dask); nothing for NumPy or lists."""
    if isinstance(op, np.ndarray) or not hasattr(op, "__array_function__"):
        return {}
    return {"like": op}


def _float_dtype(op):
    dtype = getattr(op, "dtype", None)
    if dtype is None:
        dtype = np.asarray(op).dtype
    return dtype if dtype.kind in "fc" else np.float64


def _einsum_operand_cotangent(dy, i, labels, out, operands, fresh, sizes, options):
    """Cotangent of operand ``i``: einsum of ``dy`` with the other (conjugated) operands.

    Repeated labels in operand ``i`` (diagonals) get an identity factor each, and
    labels that appear nowhere else (summed only over operand ``i``) a ones factor.
    """
    target = labels[i]
    op = operands[i]
    subs = [out]
    args = [dy]
    for j, (sub, other) in enumerate(zip(labels, operands)):
        if j != i:
            subs.append(sub)
            args.append(conj(as_operand(other)))
    fresh = list(fresh)
    seen = set()
    distinct = []
    for c in target:
        if c in seen:  # a diagonal: give this position its own label, tied by an identity
            f = fresh.pop(0)
            subs.append(c + f)
            args.append(np.eye(sizes[c], dtype=_float_dtype(op), **_like(op)))
            distinct.append(f)
        else:
            seen.add(c)
            distinct.append(c)
    available = set("".join(subs))
    for c in seen:
        if c not in available:  # only summed within this operand: broadcast back with ones
            subs.append(c)
            args.append(np.ones(sizes[c], dtype=_float_dtype(op), **_like(op)))
    g = np.einsum(",".join(subs) + "->" + "".join(distinct), *args, **options)
    return cotangent(g, op)


@numpy_rule(np.einsum)
def einsum_rule(*operands, out=None, optimize=False, **kwargs):
    check_no_out("np.einsum", out)
    y = np.einsum(*operands, optimize=optimize, **kwargs)
    spec, ops, positions = _einsum_spec(operands)
    if not any(inexact(op) for op in ops) or not inexact(y):
        return y, None
    labels, out_labels, fresh = _explicit_labels(spec, ops)
    sizes = _label_sizes(labels, ops)
    options = {"optimize": optimize} if optimize is not False else {}
    n = len(operands)

    def einsum_pullback(dy):
        cts = [None] * n
        for i, op in enumerate(ops):
            if inexact(op):
                cts[positions[i]] = _einsum_operand_cotangent(
                    dy, i, labels, out_labels, ops, fresh, sizes, options
                )
        return tuple(cts)

    return y, einsum_pullback


# -- norms ------------------------------------------------------------------------------------
# Vector p-norms (p = 1, 2, inf, -inf, any real p >= 1), Frobenius and nuclear matrix norms and
# the matrix 2-norm. At x = 0 the 2-norm's cotangent is 0 (the subgradient of least norm).


def _norm_axes(x, ord, axis):
    nd = np.ndim(x)
    if axis is None:
        if ord is None:
            return tuple(range(nd)), "vector-like"
        axes = tuple(range(nd))
    else:
        axes = (axis,) if np.isscalar(axis) else tuple(axis)
    axes = tuple(a % nd for a in axes)
    return axes, "vector" if len(axes) == 1 else "matrix"


@numpy_rule(np.linalg.norm)
def norm_rule(x, ord=None, axis=None, keepdims=False):
    y = np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    if not inexact(x):
        return y, None
    axes, kind = _norm_axes(x, ord, axis)
    xa = as_operand(x)

    def expand(v):
        v = np.asarray(v)
        return v if keepdims else np.expand_dims(v, axes)

    def norm_pullback(dy):
        dyk, yk = expand(dy), expand(y)
        mag = np.abs(xa)
        phase = np.where(mag > 0, xa / np.where(mag > 0, mag, 1), 0) if np.iscomplexobj(xa) else np.sign(xa)
        if kind == "vector-like" or (kind == "matrix" and ord in ("fro", None)) or (kind == "vector" and ord in (None, 2)):
            g = dyk * np.where(yk > 0, xa / np.where(yk > 0, yk, 1), 0)
        elif kind == "vector" and ord == 1:
            g = dyk * phase
        elif kind == "vector" and ord in (np.inf, -np.inf):
            hit = mag == yk
            g = dyk * phase * hit / np.sum(hit, axis=axes, keepdims=True)
        elif kind == "vector" and ord == 0:
            g = np.zeros_like(xa)
        elif kind == "vector" and np.isscalar(ord):
            p = float(ord)   # any other real p: d/dx (sum |x|^p)^(1/p) = sign(x) (|x| / y)^(p - 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where((yk > 0) & (mag > 0), mag / np.where(yk > 0, yk, 1), 0)
                g = dyk * phase * np.where(ratio > 0, ratio ** (p - 1), 0)
        elif kind == "matrix" and ord in (1, -1, np.inf, -np.inf):
            # max/min over columns (ord 1) or rows (ord inf) of the absolute sums; ties share
            r, c = axes
            summed, over = (r, c) if ord in (1, -1) else (c, r)
            sums = np.sum(mag, axis=summed, keepdims=True)
            hit = sums == np.expand_dims(yk, ()) if keepdims else sums == yk
            hit = hit / np.sum(hit, axis=over, keepdims=True)
            g = dyk * phase * hit
        elif kind == "matrix" and ord in ("nuc", 2, -2):
            # spectral norms: through the SVD of the matrices spanned by ``axes`` (in that order)
            xm = np.moveaxis(xa, axes, (-2, -1))
            u, s, vh = np.linalg.svd(xm, full_matrices=False)
            if ord == "nuc":
                core = u @ vh
            else:
                k = 0 if ord == 2 else -1
                core = u[..., :, k:k + 1 if k == 0 else None] @ vh[..., k:k + 1 if k == 0 else None, :]
            g = dyk * np.moveaxis(core, (-2, -1), axes)
        else:
            raise NotImplementedError(
                f"morula: the derivative of np.linalg.norm with ord={ord!r} over axes {axes} is not "
                "available yet; use an explicit formula (e.g. np.sqrt(np.sum(x**2)))")
        if type(ord) is float and np.isfinite(ord) and kind != "matrix":
            # a real p is a differentiable parameter of the p-norm:
            # d/dp (S)^(1/p) with S = sum |x|^p  is  y (sum |x|^p ln|x| / (p S) - ln S / p^2)
            with np.errstate(divide="ignore", invalid="ignore"):
                powered = np.where(mag > 0, mag, 1) ** ord * (mag > 0)
                total = np.sum(powered, axis=axes, keepdims=True)
                weighted = np.sum(powered * np.log(np.where(mag > 0, mag, 1)), axis=axes, keepdims=True)
                dp = yk * (weighted / (ord * total) - np.log(total) / ord ** 2)
                dp = np.sum(np.where(total > 0, dyk * dp, 0).real)
            return (cotangent(g, x), float(dp))
        return (cotangent(g, x),)

    return y, norm_pullback



# -- NumPy 2 vector/matrix gufuncs -------------------------------------------------------------
# vecdot and vecmat conjugate their first operand: for y = conj(a) b the convention gives
# cotangents b conj(dy) for a and dy a for b.


def _vecdot_rule(x1, x2, *rest, axis=-1, **kwargs):
    y = np.vecdot(x1, x2, axis=axis)
    a, b = as_operand(x1), as_operand(x2)

    def vecdot_pullback(dy):
        g = np.expand_dims(dy, axis)
        return (cotangent(b * np.conj(g), x1) if inexact(x1) else None,
                cotangent(g * a, x2) if inexact(x2) else None) + (None,) * len(rest)
    return y, vecdot_pullback


def _matvec_rule(x1, x2, *rest, **kwargs):
    y = np.matvec(x1, x2)
    A, v = as_operand(x1), as_operand(x2)

    def matvec_pullback(dy):
        dA = dy[..., :, None] * np.conj(v[..., None, :])
        dv = np.matvec(np.conj(np.swapaxes(A, -1, -2)), dy)
        return (cotangent(dA, x1) if inexact(x1) else None,
                cotangent(dv, x2) if inexact(x2) else None) + (None,) * len(rest)
    return y, matvec_pullback


def _vecmat_rule(x1, x2, *rest, **kwargs):
    y = np.vecmat(x1, x2)
    v, A = as_operand(x1), as_operand(x2)

    def vecmat_pullback(dy):
        dv = np.matvec(A, np.conj(dy))
        dA = v[..., :, None] * dy[..., None, :]
        return (cotangent(dv, x1) if inexact(x1) else None,
                cotangent(dA, x2) if inexact(x2) else None) + (None,) * len(rest)
    return y, vecmat_pullback


for _name, _rule in (("vecdot", _vecdot_rule), ("matvec", _matvec_rule), ("vecmat", _vecmat_rule)):
    _fn = getattr(np, _name, None)
    if _fn is not None:
        numpy_rule(_fn)(_rule)


# pullbacks that take a batch of cotangents (leading axis; see morula.tangents.BATCH): stacked
# matmul broadcasts the batch like any other leading dimension
batch_capable(matmul_rule)
