"""Reverse rules for products with ``scipy.sparse`` matrices and ``spsolve`` (lazy, like all SciPy rules).

In: nothing (importing registers the rules). Out: rules for

- ``A @ x`` and ``x @ A`` (``operator.matmul``), ``A.dot(x)``, and for the ``*_matrix``
  classes ``A * x`` / ``x * A`` (which SciPy defines as the matrix product), where ``A`` is
  a 2-D CSR, CSC, COO or BSR sparse matrix or array (``scipy.sparse.*_matrix`` and
  ``*_array``) and ``x`` a dense vector or matrix;
- ``A * s``, ``s * A``, ``A.dot(s)`` for a scalar ``s`` (a sparse result with ``A``'s
  pattern);
- ``A.transpose()`` and so ``A.T`` (CSR, CSC, COO), ``A.toarray()``, and the conversions
  ``A.tocsr()``, ``A.tocsc()``, ``A.tocoo()``;
- the constructors of those classes from ``(data, indices, indptr)``, ``(data, (row, col))``,
  another sparse matrix, or a dense array;
- ``scipy.sparse.linalg.spsolve(A, b)`` for dense ``b``.

The sparsity pattern is treated as fixed (as in JAX's and PyTorch's sparse autodiff): only
stored values have cotangents. In particular ``csr_array(dense)`` gives the dense array a
cotangent on its nonzero entries only (entries that are zero, hence not stored, get 0), and
conversions that sum duplicate COO entries give each duplicate the cotangent of their sum.

The cotangent of a sparse matrix (the representation this module chose): a
``morula.tangents.ObjectCotangent`` whose ``data`` field is an array of ``A.data``'s shape
and dtype, holding the cotangent of each *stored* value (entry by entry, in ``A.data``'s
order; duplicate COO entries each get the full cotangent of their matrix entry; entries
outside the sparsity pattern have none). That is what morula's engine builds for any
object (reading ``A.data`` in differentiated code yields the same thing), what
``morula.grad`` returns for a sparse argument, and what adds up with other cotangents. A
sparse matrix of the same format and pattern whose ``.data`` is that array is available as
``as_sparse(cotangent, A)``. (A sparse matrix is not used as the cotangent itself: the
engine materializes object cotangents by attribute, and SciPy's sparse addition drops
explicit zeros, which would lose the alignment with ``A.data``.)

Pullbacks of rules with a sparse output accept, as its cotangent, such an ObjectCotangent or a
sparse matrix with the output's pattern (its ``.data`` is used).

Complex values follow the package convention: for y = A x the cotangents are
A^H dy and dy_i conj(x_j) for the stored entry (i, j).

``operator.matmul``/``operator.mul`` rules: the rules registered before this module is
imported are kept and called for every operand pair that involves no sparse matrix.

Restrictions (``UnsupportedOperationError``): DIA, LIL and DOK formats and N-D COO arrays
(convert with ``.tocsr()`` before differentiating); products of two sparse matrices;
element-wise ``sparray * dense``; sparse right-hand sides in ``spsolve``; ``.T`` of BSR.
Other sparse methods (``sum``, ``multiply``, indexing, ...) have no rules here: the engine
treats them like any library code (it differentiates their Python source where it can, and
reports a missing rule where it meets C code returning floats).
"""

import operator

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from morula.errors import UnsupportedOperationError
from morula.rules.numpy_vspace import (
    as_operand,
    conj,
    cotangent,
    inexact,
    numpy_rule,
    pad_cotangents,
)
from morula.rules.registry import REGISTRY, method_rule, rrule
from morula.tangents import ObjectCotangent

_FORMATS = ("csr", "csc", "coo", "bsr")
CLASSES = tuple(getattr(sp, f"{fmt}_{kind}") for fmt in _FORMATS for kind in ("matrix", "array"))


def _is_sparse(x):
    return sp.issparse(x)


def _is_spmatrix(x):
    return isinstance(x, sp.spmatrix)


def _differentiable(A):
    return inexact(A.data)


def _check(A, what):
    if A.format not in _FORMATS or A.ndim != 2:
        raise UnsupportedOperationError(
            f"morula differentiates {what} only for 2-D CSR, CSC, COO and BSR sparse matrices, "
            f"not {type(A).__name__} (format {A.format!r}, ndim {A.ndim}). "
            f"Fix: convert it with .tocsr() before the differentiated function."
        )


def entry_coordinates(A):
    """(rows, cols): the matrix position of each value of ``A.data`` (flattened, in order)."""
    fmt = A.format
    if fmt == "coo":
        return np.asarray(A.row), np.asarray(A.col)
    counts = np.diff(A.indptr)
    if fmt == "csr":
        return np.repeat(np.arange(A.shape[0]), counts), np.asarray(A.indices)
    if fmt == "csc":
        return np.asarray(A.indices), np.repeat(np.arange(A.shape[1]), counts)
    if fmt == "bsr":
        r, c = A.blocksize
        block_rows = np.repeat(np.arange(A.shape[0] // r), counts)
        shape = (len(A.indices), r, c)
        rows = np.broadcast_to(block_rows[:, None, None] * r + np.arange(r)[None, :, None], shape)
        cols = np.broadcast_to(A.indices[:, None, None] * c + np.arange(c)[None, None, :], shape)
        return rows.ravel(), cols.ravel()
    raise UnsupportedOperationError(f"no entry coordinates for sparse format {fmt!r}")


def data_cotangent(A, values):
    """The cotangent of sparse ``A`` whose stored values get ``values`` (flat, in ``A.data`` order)."""
    if values is None:
        return None
    return ObjectCotangent({"data": cotangent(np.reshape(values, A.data.shape), A.data)})


def _data_of(ct):
    """The ``data`` field of a sparse matrix's cotangent (``None`` for zero)."""
    if ct is None:
        return None
    if isinstance(ct, ObjectCotangent):
        return ct.fields.get("data")
    if _is_sparse(ct):
        return ct.data
    raise TypeError(f"not a sparse-matrix cotangent: {type(ct).__name__}")


def as_sparse(ct, A):
    """A sparse matrix with ``A``'s format and pattern holding the cotangent ``ct`` of ``A``."""
    data = _data_of(ct)
    if data is None:
        data = np.zeros_like(A.data)
    out = A.copy()
    out.data = np.asarray(data, dtype=A.data.dtype).reshape(A.data.shape)
    return out


def _adjoint(A):
    return A.conj().T if np.iscomplexobj(A.data) else A.T


# -- products with dense operands ----------------------------------------------------------------


def _sparse_dense_rule(A, x):
    """y = A @ x for sparse ``A`` and dense vector/matrix ``x``."""
    _check(A, "A @ x")
    y = A @ x
    need_a, need_x = _differentiable(A), inexact(x)
    if not (need_a or need_x):
        return y, None
    u = as_operand(x)

    def sparse_matmul_pullback(dy):
        if dy is None:
            return None, None
        da = dx = None
        if need_a:
            rows, cols = entry_coordinates(A)
            if np.ndim(u) == 1:
                da = data_cotangent(A, dy[rows] * conj(u[cols]))
            else:
                da = data_cotangent(A, np.sum(dy[rows] * conj(u[cols]), axis=-1))
        if need_x:
            dx = cotangent(_adjoint(A) @ dy, x)
        return da, dx

    return y, sparse_matmul_pullback


def _dense_sparse_rule(x, A):
    """y = x @ A for dense vector/matrix ``x`` and sparse ``A``."""
    _check(A, "x @ A")
    y = x @ A
    need_a, need_x = _differentiable(A), inexact(x)
    if not (need_a or need_x):
        return y, None
    u = as_operand(x)

    def dense_sparse_matmul_pullback(dy):
        if dy is None:
            return None, None
        da = dx = None
        if need_a:
            rows, cols = entry_coordinates(A)
            if np.ndim(u) == 1:
                da = data_cotangent(A, conj(u[rows]) * dy[cols])
            else:
                da = data_cotangent(A, np.sum(conj(u[:, rows]) * dy[:, cols], axis=0))
        if need_x:
            dx = cotangent(dy @ _adjoint(A), x)
        return dx, da

    return y, dense_sparse_matmul_pullback


def _refuse_sparse_sparse(a, b):
    if (_is_sparse(a) and _differentiable(a)) or (_is_sparse(b) and _differentiable(b)):
        raise UnsupportedOperationError(
            "morula cannot differentiate the product of two sparse matrices (the result is "
            "sparse with a new pattern). Fix: make one operand dense (.toarray())."
        )
    return a @ b, None


def _scalar_sparse_rule(A, s, sparse_first):
    """A * s (or s * A) for a scalar ``s``: a sparse result with ``A``'s pattern."""
    _check(A, "A * scalar")
    out = A * s if sparse_first else s * A
    need_a, need_s = _differentiable(A), inexact(s)
    if not (need_a or need_s):
        return out, None
    if not _is_sparse(out) or out.format != A.format or out.data.shape != A.data.shape:
        raise UnsupportedOperationError(
            f"morula cannot differentiate {type(A).__name__} * scalar here: the result does not "
            f"keep the operand's sparsity pattern."
        )

    def sparse_scale_pullback(g):
        gdata = _data_of(g)
        if gdata is None:
            return None, None
        da = data_cotangent(A, gdata * conj(s)) if need_a else None
        ds = cotangent(np.sum(gdata * conj(A.data)), s) if need_s else None
        return (da, ds) if sparse_first else (ds, da)

    return out, sparse_scale_pullback


def _is_scalar(x):
    return np.ndim(x) == 0 and not _is_sparse(x)


def sparse_product_rule(a, b):
    """Rule for ``a @ b`` when at least one operand is sparse."""
    if _is_sparse(a) and _is_sparse(b):
        return _refuse_sparse_sparse(a, b)
    if _is_sparse(a):
        return _sparse_dense_rule(a, b)
    return _dense_sparse_rule(a, b)


_previous_matmul = REGISTRY.functions.get(operator.matmul)
_previous_mul = REGISTRY.functions.get(operator.mul)


def _fallback(previous, fn, a, b):
    if previous is None:
        raise UnsupportedOperationError(f"no rule for operator.{fn.__name__}")
    return previous(a, b)


@rrule(operator.matmul)
def matmul_with_sparse_rule(a, b):
    """``a @ b``: sparse operands here, everything else to the previously registered rule."""
    if _is_sparse(a) or _is_sparse(b):
        return sparse_product_rule(a, b)
    return _fallback(_previous_matmul, operator.matmul, a, b)


@rrule(operator.mul)
def mul_with_sparse_rule(a, b):
    """``a * b``: scalar * sparse, and the matrix product ``spmatrix * dense``; else the old rule."""
    sa, sb = _is_sparse(a), _is_sparse(b)
    if not (sa or sb):
        return _fallback(_previous_mul, operator.mul, a, b)
    if sa and sb:
        if _is_spmatrix(a) or _is_spmatrix(b):
            return _refuse_sparse_sparse(a, b)
        return _refuse_elementwise(a, b)
    if sa and _is_scalar(b):
        return _scalar_sparse_rule(a, b, True)
    if sb and _is_scalar(a):
        return _scalar_sparse_rule(b, a, False)
    if not _is_spmatrix(a if sa else b):
        return _refuse_elementwise(a, b)
    return sparse_product_rule(a, b)  # spmatrix * dense is the matrix product


def _refuse_elementwise(a, b):
    """Element-wise products with sparse arrays: a constant when nothing is differentiable."""
    if not any(_differentiable(v) if _is_sparse(v) else inexact(v) for v in (a, b)):
        return a * b, None
    name = type(a if _is_sparse(a) else b).__name__
    raise UnsupportedOperationError(
        f"morula cannot differentiate the element-wise product of a {name} with an array. "
        f"Fix: use A @ x for the matrix product, or work with A.toarray()."
    )


# -- methods ---------------------------------------------------------------------------------------------


def _dot_rule(self, other):
    if _is_scalar(other):
        return _scalar_sparse_rule(self, other, True)
    return sparse_product_rule(self, other)


def _transpose_rule(self, axes=None, copy=False):
    _check(self, "A.T")
    if self.format == "bsr" and _differentiable(self):
        raise UnsupportedOperationError(
            "morula cannot differentiate the transpose of a BSR matrix (SciPy reorders its "
            "blocks). Fix: convert it with .tocsr() first."
        )
    out = self.transpose(axes=axes, copy=copy)
    if not _differentiable(self):
        return out, None

    def sparse_transpose_pullback(g):
        gdata = _data_of(g)  # CSR <-> CSC and COO keep the order of .data
        return (None if gdata is None else data_cotangent(self, gdata),)

    return out, sparse_transpose_pullback


def _toarray_rule(self, order=None, out=None):
    _check(self, "A.toarray()")
    if out is not None:
        raise UnsupportedOperationError("morula cannot differentiate A.toarray(out=...)")
    dense = self.toarray(order=order)
    if not _differentiable(self):
        return dense, None

    def sparse_toarray_pullback(g):
        if g is None:
            return (None,)
        rows, cols = entry_coordinates(self)
        return (data_cotangent(self, g[rows, cols]),)

    return dense, sparse_toarray_pullback


_dot_rule = pad_cotangents(_dot_rule)
_transpose_rule = pad_cotangents(_transpose_rule)
_toarray_rule = pad_cotangents(_toarray_rule)
for _cls in CLASSES:
    method_rule(_cls, "dot")(_dot_rule)
    method_rule(_cls, "toarray")(_toarray_rule)
# ``A.T`` is SciPy's Python property ``return self.transpose()``: the engine runs it and meets
# this rule (no attribute rule: the engine keeps objects' cotangents in its shadow store).
for _cls in CLASSES:
    method_rule(_cls, "transpose")(_transpose_rule)


# -- construction and format conversion ------------------------------------------------------------------


def _entry_map(out, rows, cols):
    """For input entries at (rows, cols), their positions in ``out.data`` (flat).

    ``None`` when the entries correspond one to one and in order (no reordering)."""
    out_rows, out_cols = entry_coordinates(out)
    if len(out_rows) == len(rows) and np.array_equal(out_rows, rows) and np.array_equal(out_cols, cols):
        return None
    ncols = out.shape[1]
    keys = out_rows.astype(np.int64) * ncols + out_cols
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if len(sorted_keys) > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise UnsupportedOperationError(
            "morula cannot map the entries of this sparse conversion (the result holds duplicate "
            "entries in a new order). Fix: call .sum_duplicates() first."
        )
    wanted = np.asarray(rows, dtype=np.int64) * ncols + np.asarray(cols)
    at = np.minimum(np.searchsorted(sorted_keys, wanted), max(len(keys) - 1, 0))
    found = sorted_keys[at] == wanted if len(keys) else np.zeros(len(wanted), bool)
    return np.where(found, order[at], -1)


def _gather(gdata, positions):
    """Cotangents of the input entries from the output's ``gdata`` (flat), 0 where dropped."""
    flat = np.reshape(gdata, (-1,))
    if positions is None:
        return flat
    picked = flat[np.maximum(positions, 0)]
    return np.where(positions >= 0, picked, 0)


def _constructor_rule_for(cls):
    fmt = cls.__name__[:3]

    def sparse_constructor_rule(arg1, shape=None, dtype=None, copy=False, *args, **kwargs):
        out = cls(arg1, shape, dtype, copy, *args, **kwargs)
        if not _differentiable(out):
            return out, None
        if _is_sparse(arg1):  # a format conversion
            if not _differentiable(arg1):
                return out, None
            _check(arg1, f"{cls.__name__}(A)")
            rows, cols = entry_coordinates(arg1)
            positions = _entry_map(out, rows, cols)

            def sparse_conversion_pullback(g):
                gdata = _data_of(g)
                if gdata is None:
                    return (None,)
                return (data_cotangent(arg1, _gather(gdata, positions)),)

            return out, sparse_conversion_pullback
        if not isinstance(arg1, tuple) or len(arg1) not in (2, 3):
            if not inexact(arg1):
                return out, None
            _check(out, cls.__name__)  # from a dense array: the stored entries are its nonzeros
            dense = as_operand(arg1)

            def sparse_from_dense_pullback(g):
                gdata = _data_of(g)
                if gdata is None:
                    return (None,)
                rows, cols = entry_coordinates(out)
                ct = np.zeros_like(dense, dtype=np.result_type(gdata, dense))
                np.add.at(ct, (rows, cols), np.reshape(gdata, (-1,)))
                return (cotangent(ct, arg1),)

            return out, sparse_from_dense_pullback
        data = arg1[0]
        if not inexact(data):
            return out, None
        _check(out, cls.__name__)
        if len(arg1) == 3:  # (data, indices, indptr): SciPy stores ``data`` as given
            if np.shape(out.data) != np.shape(data):
                raise UnsupportedOperationError(
                    f"morula cannot map the stored values of this {cls.__name__} to its data"
                )
            positions = None
        else:  # (data, (row, col))
            row, col = arg1[1]
            positions = _entry_map(out, np.asarray(row), np.asarray(col))

        def sparse_constructor_pullback(g):
            gdata = _data_of(g)
            if gdata is None:
                return (None,)
            vals = np.reshape(_gather(gdata, positions), np.shape(data))
            ddata = cotangent(vals, data)
            if len(arg1) == 3:
                return ((ddata, None, None),)
            return ((ddata, (None, None)),)

        return out, sparse_constructor_pullback

    sparse_constructor_rule.__name__ = f"{cls.__name__}_rule"
    return pad_cotangents(sparse_constructor_rule)


def _conversion_rule_for(name):
    def sparse_conversion_rule(self, copy=False):
        out = getattr(self, name)(copy=copy)
        if not _differentiable(self):
            return out, None
        _check(self, f"A.{name}()")
        rows, cols = entry_coordinates(self)
        positions = _entry_map(out, rows, cols)

        def sparse_format_pullback(g):
            gdata = _data_of(g)
            if gdata is None:
                return (None,)
            return (data_cotangent(self, _gather(gdata, positions)),)

        return out, sparse_format_pullback

    sparse_conversion_rule.__name__ = f"{name}_rule"
    return pad_cotangents(sparse_conversion_rule)


for _cls in CLASSES:
    REGISTRY.add_function(_cls, _constructor_rule_for(_cls))
    for _name in ("tocsr", "tocsc", "tocoo"):
        method_rule(_cls, _name)(_conversion_rule_for(_name))


# -- spsolve -------------------------------------------------------------------------------------------


@numpy_rule(spl.spsolve)
def spsolve_rule(A, b, permc_spec=None, use_umfpack=True):
    x = spl.spsolve(A, b, permc_spec=permc_spec, use_umfpack=use_umfpack)
    need_a = _is_sparse(A) and _differentiable(A)
    need_b = inexact(b)
    if not (need_a or need_b):
        return x, None
    if not _is_sparse(A):
        raise UnsupportedOperationError("spsolve: A must be a sparse matrix")
    _check(A, "spsolve(A, b)")
    if _is_sparse(b):
        raise UnsupportedOperationError(
            "morula differentiates scipy.sparse.linalg.spsolve only for a dense right-hand side. "
            "Fix: pass b.toarray()."
        )
    bshape = np.shape(b)

    def spsolve_pullback(dy):
        if dy is None:
            return None, None
        gb = spl.spsolve(_adjoint(A).tocsc(), dy, permc_spec=permc_spec, use_umfpack=use_umfpack)
        db = cotangent(np.reshape(gb, bshape), b) if need_b else None
        da = None
        if need_a:
            rows, cols = entry_coordinates(A)
            g2 = np.reshape(gb, (bshape[0], -1))
            x2 = np.reshape(x, (bshape[0], -1))
            da = data_cotangent(A, -np.sum(g2[rows] * conj(x2[cols]), axis=-1))
        return da, db

    return x, spsolve_pullback


# -- forward mode ------------------------------------------------------------------------------------


def _product_frule(previous, fn):
    """Forward rule of the wrapped ``*``/``@``: the product rule (bilinear in the operands; a sparse
    operand's tangent has its pattern); operand pairs without sparse matrices keep the old rule's."""
    from ..forward.derived import frule_for
    before = frule_for(previous) if previous is not None else None

    def sparse_product_frule(T, args, targs, kwargs):
        a, b = args
        if not (_is_sparse(a) or _is_sparse(b)):
            return before(T, args, targs, kwargs)
        ta, tb = targs
        terms = [t for t in (fn(ta, b) if ta is not None else None, fn(a, tb) if tb is not None else None)
                 if t is not None]
        out = fn(a, b)
        if not terms:
            return out, None
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return out, total
    sparse_product_frule.__name__ = f"{fn.__name__}_with_sparse_frule"
    return sparse_product_frule


def _attach_forward():
    from ..forward.derived import attach
    attach(matmul_with_sparse_rule, _product_frule(_previous_matmul, operator.matmul))
    attach(mul_with_sparse_rule, _product_frule(_previous_mul, operator.mul))


_attach_forward()
