"""Reverse rules for ``scipy.linalg`` (imported lazily, once the user has imported SciPy).

In: nothing (importing registers the rules). Out: rules, registered by identity on the
public function objects, for ``solve``, ``solve_triangular``, ``inv``, ``det``,
``cholesky``, ``cho_factor``/``cho_solve``, ``lu_factor``/``lu_solve``, ``lu``, ``expm``,
``eigh``/``eigvalsh``, ``svd``, ``qr`` and ``sqrtm``.

Conventions:
- complex matrices follow the package convention (cotangent = dy * conj(derivative)):
  every adjoint below is taken with respect to the real inner product Re tr(X^H Y);
- only the entries a routine actually reads get a cotangent. ``solve``/``inv`` with
  ``assume_a`` 'sym'/'her'/'pos' read one triangle (``lower``), 'diagonal',
  'tridiagonal', 'upper/lower triangular' read those entries; ``solve_triangular``,
  ``cholesky``, ``eigh`` read one triangle. For Hermitian structures (complex 'her',
  complex 'pos', ``cholesky``, complex ``eigh``) the imaginary parts of the diagonal are
  ignored by LAPACK and get no cotangent. ``assume_a=None`` (structure detection) and
  'banded' are differentiated as general matrices (a perturbation leaves the detected
  structure, so the general derivative is the true one);
- ``cho_factor``/``lu_factor`` are differentiated as what they return: the packed factor
  array carries the cotangent, ``lower``/``piv`` are constants. ``cho_factor``'s unused
  triangle holds ``a``'s own entries (SciPy does not clean it), so its cotangent goes to
  ``a`` unchanged. ``cho_solve``/``lu_solve`` give cotangents to the factor array and to
  ``b``; composed with the factorization rule this is the cotangent of the original
  matrix;
- ``eigh`` and ``svd`` need distinct eigenvalues / distinct nonzero singular values when
  eigen/singular vectors are differentiated, and (complex case) a loss that does not
  depend on the arbitrary phase of the vectors;
- ``sqrtm``: X = sqrtm(A) satisfies X X = A, so the cotangent solves the Sylvester
  equation X^H Abar + Abar X^H = Xbar (``solve_sylvester``);
- ``expm``: the adjoint of the Frechet derivative, read off
  expm([[A^H, G], [0, A^H]])[:n, n:];
- cotangents keep the operands' shapes and floating dtypes.

Restrictions (``UnsupportedOperationError``): generalized ``eigh``/``eigvalsh`` (``b``
given); eigenvectors of an eigenvalue subset; ``svd(full_matrices=True)`` and
``qr(mode='full')`` of non-square matrices where the extra columns are not unique (use
``full_matrices=False`` / ``mode='economic'``); ``qr(pivoting=True)`` and
``mode='raw'``; ``lu_factor``/``lu_solve``/``lu`` of non-square or batched matrices;
``det``/``inv`` of singular matrices fail in the pullback.
"""

import inspect

import numpy as np
import scipy.linalg as sl

from morula.errors import UnsupportedOperationError
from morula.rules.numpy_vspace import conj, cotangent, inexact, is_complex, numpy_rule


def _H(a):
    return np.swapaxes(conj(a), -1, -2)


def _T(a):
    return np.swapaxes(a, -1, -2)


def _eye_like(a):
    n = a.shape[-1]
    return np.eye(n, dtype=bool)


def _diag_part(a):
    return np.where(_eye_like(a), a, 0)


def _outer(g, x):
    """g x^H for matrices, outer(g, conj x) for vectors."""
    if getattr(x, "ndim", 0) == 1:
        return g[:, None] * conj(x)[None, :]
    return np.matmul(g, _H(x))


def _refuse(message):
    raise UnsupportedOperationError(message)


def _as_matrix(a):
    return a if hasattr(a, "ndim") else np.asarray(a)


# -- structures: which entries of ``a`` a routine reads ------------------------------------

_FULL = "full"


def _structure(assume_a, lower, a):
    """(kind, lower) for the matrix SciPy effectively uses."""
    if assume_a in (None, "general", "gen", "banded"):
        return _FULL, lower
    if assume_a == "diagonal":
        return "diagonal", lower
    if assume_a == "tridiagonal":
        return "tridiagonal", lower
    if assume_a == "upper triangular":
        return "triangular", False
    if assume_a == "lower triangular":
        return "triangular", True
    if assume_a in ("sym", "symmetric"):
        return "sym", lower
    if assume_a in ("her", "hermitian", "pos", "positive definite"):
        return ("her" if is_complex(a) else "sym"), lower
    raise ValueError(f"{assume_a} is not a recognized matrix structure")


def _band_mask(a, below, above):
    n = a.shape[-1]
    i = np.arange(n)
    d = i[None, :] - i[:, None]  # j - i
    return (d >= -below) & (d <= above)


def _effective(a, kind, lower):
    """The matrix the routine uses, built from the entries it reads of ``a``."""
    if kind == _FULL:
        return a
    if kind == "diagonal":
        return _diag_part(a)
    if kind == "tridiagonal":
        return np.where(_band_mask(a, 1, 1), a, 0)
    if kind == "triangular":
        return np.tril(a) if lower else np.triu(a)
    strict = np.tril(a, -1) if lower else np.triu(a, 1)
    if kind == "sym":
        return strict + _T(strict) + _diag_part(a)
    return strict + _H(strict) + _diag_part(np.real(a))  # "her": real diagonal


def _effective_adjoint(g, kind, lower):
    """Adjoint of ``_effective``: the cotangent of ``a`` from that of the effective matrix."""
    if kind == _FULL:
        return g
    if kind == "diagonal":
        return _diag_part(g)
    if kind == "tridiagonal":
        return np.where(_band_mask(g, 1, 1), g, 0)
    if kind == "triangular":
        return np.tril(g) if lower else np.triu(g)
    if kind == "sym":
        both = g + _T(g)
        return (np.tril(both, -1) if lower else np.triu(both, 1)) + _diag_part(g)
    both = g + _H(g)
    return (np.tril(both, -1) if lower else np.triu(both, 1)) + _diag_part(np.real(g))


def _hermitian_kind(a):
    return "her" if is_complex(a) else "sym"


# -- solve, solve_triangular, inv, det ------------------------------------------------------


@numpy_rule(sl.solve)
def solve_rule(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True,
               assume_a=None, transposed=False):
    x = sl.solve(a, b, lower=lower, check_finite=check_finite, assume_a=assume_a,
                 transposed=transposed)
    need_a, need_b = inexact(a), inexact(b)
    if not (need_a or need_b):
        return x, None
    ua = _as_matrix(a)
    kind, low = _structure(assume_a, lower, ua)
    vector = np.ndim(b) == 1

    def solve_pullback(dy):
        m = _effective(ua, kind, low)
        op = _T(m) if transposed else m
        g = dy[..., None] if vector else dy
        gb = np.linalg.solve(_H(op), g)  # op^-H dy (batch dimensions broadcast)
        db = cotangent(gb[..., 0] if vector else gb, b) if need_b else None
        da = None
        if need_a:
            gop = -np.matmul(gb, _H(x[..., None] if vector else x))
            da = cotangent(_effective_adjoint(_T(gop) if transposed else gop, kind, low), a)
        return da, db

    return x, solve_pullback


def _trans_code(trans):
    return {0: 0, 1: 1, 2: 2, "N": 0, "T": 1, "C": 2}[trans]


@numpy_rule(sl.solve_triangular)
def solve_triangular_rule(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                          check_finite=True):
    x = sl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal,
                            check_finite=check_finite)
    need_a, need_b = inexact(a), inexact(b)
    if not (need_a or need_b):
        return x, None
    t = _trans_code(trans)

    def solve_triangular_pullback(dy):
        # op(T) x = b  =>  db = op(T)^-H dy, d op(T) = -db x^H
        if t == 0:
            gb = sl.solve_triangular(a, dy, trans=2, lower=lower, unit_diagonal=unit_diagonal)
        elif t == 1:
            gb = sl.solve_triangular(conj(a), dy, trans=0, lower=lower, unit_diagonal=unit_diagonal)
        else:
            gb = sl.solve_triangular(a, dy, trans=0, lower=lower, unit_diagonal=unit_diagonal)
        db = cotangent(gb, b) if need_b else None
        da = None
        if need_a:
            gop = -_outer(gb, x)
            gt = gop if t == 0 else (_T(gop) if t == 1 else _H(gop))
            k = 1 if unit_diagonal else 0
            gt = np.tril(gt, -k) if lower else np.triu(gt, k)
            da = cotangent(gt, a)
        return da, db

    return x, solve_triangular_pullback


@numpy_rule(sl.inv)
def inv_rule(a, overwrite_a=False, check_finite=True, *, assume_a=None, lower=False):
    # assume_a/lower exist from SciPy 1.17; older versions only take the general form
    extra = {} if assume_a is None and not lower else {"assume_a": assume_a, "lower": lower}
    y = sl.inv(a, check_finite=check_finite, **extra)
    if not inexact(a):
        return y, None
    ua = _as_matrix(a)
    kind, low = _structure(assume_a, lower, ua)
    # SciPy 1.17's inv(assume_a='diagonal') returns the off-diagonal entries of ``a``
    # unchanged (only the diagonal is inverted): differentiate what it returns.
    copies_offdiagonal = kind == "diagonal" and bool(
        np.any(ua - _diag_part(ua)) and np.array_equal(y - _diag_part(y), ua - _diag_part(ua))
    )

    def inv_pullback(dy):
        if kind == "diagonal":
            g = _diag_part(-conj(y * y) * dy)  # y_ii = 1 / a_ii
        else:
            yh = _H(y)
            g = _effective_adjoint(-np.matmul(np.matmul(yh, dy), yh), kind, low)
        if copies_offdiagonal:
            g = g + dy - _diag_part(dy)
        return (cotangent(g, a),)

    return y, inv_pullback


@numpy_rule(sl.det)
def det_rule(a, overwrite_a=False, check_finite=True):
    y = sl.det(a, check_finite=check_finite)
    if not inexact(a):
        return y, None

    def det_pullback(dy):
        scale = np.expand_dims(dy * conj(y), (-2, -1))
        return (cotangent(scale * _H(np.linalg.inv(a)), a),)

    return y, det_pullback


# -- Cholesky ----------------------------------------------------------------------------------


def _cholesky_adjoint(lower_factor, gl):
    """Cotangent (any matrix with the right Hermitian part) of A = L L^H from that of L."""
    L = lower_factor
    phi = np.tril(np.matmul(_H(L), gl))
    phi = phi - 0.5 * _diag_part(phi)
    tmp = sl.solve_triangular(L, phi, lower=True, trans=2)  # L^-H phi
    s = _H(sl.solve_triangular(L, _H(tmp), lower=True, trans=2))  # (L^-H phi) L^-1
    return 0.5 * (s + _H(s))


@numpy_rule(sl.cholesky)
def cholesky_rule(a, lower=False, overwrite_a=False, check_finite=True):
    c = sl.cholesky(a, lower=lower, check_finite=check_finite)
    if not inexact(a):
        return c, None
    kind = _hermitian_kind(c)

    def cholesky_pullback(dc):
        L, gl = (c, dc) if lower else (_H(c), _H(dc))
        g = _cholesky_adjoint(L, np.tril(gl))
        return (cotangent(_effective_adjoint(g, kind, lower), a),)

    return c, cholesky_pullback


@numpy_rule(sl.cho_factor)
def cho_factor_rule(a, lower=False, overwrite_a=False, check_finite=True):
    c, low = sl.cho_factor(a, lower=lower, check_finite=check_finite)
    if not inexact(a):
        return (c, low), None
    kind = _hermitian_kind(c)

    def cho_factor_pullback(dout):
        dc = dout[0] if dout is not None else None
        if dc is None:
            return (None,)
        if low:
            used, other = np.tril(dc), np.triu(dc, 1)
            L, gl = np.tril(c), used
        else:
            used, other = np.triu(dc), np.tril(dc, -1)
            L, gl = _H(np.triu(c)), _H(used)
        g = _cholesky_adjoint(L, gl)
        return (cotangent(_effective_adjoint(g, kind, low) + other, a),)

    return (c, low), cho_factor_pullback


@numpy_rule(sl.cho_solve)
def cho_solve_rule(c_and_lower, b, overwrite_b=False, check_finite=True):
    c, low = c_and_lower
    x = sl.cho_solve((c, low), b, check_finite=check_finite)
    need_c, need_b = inexact(c), inexact(b)
    if not (need_c or need_b):
        return x, None

    def cho_solve_pullback(dy):
        gb = sl.cho_solve((c, low), dy)  # A is Hermitian: A^-H dy = A^-1 dy
        db = cotangent(gb, b) if need_b else None
        dc = None
        if need_c:
            ga = -_outer(gb, x)
            ga = ga + _H(ga)
            if low:
                gc = np.tril(np.matmul(ga, np.tril(c)))  # A = L L^H
            else:
                gc = np.triu(np.matmul(np.triu(c), ga))  # A = U^H U
            dc = (cotangent(gc, c), None)
        return dc, db

    return x, cho_solve_pullback


# -- LU ----------------------------------------------------------------------------------------


def _check_square_2d(name, a):
    a = _as_matrix(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        _refuse(
            f"morula differentiates scipy.linalg.{name} only for a single square matrix "
            f"(got shape {a.shape}). Fix: loop over the batch, or use scipy.linalg.solve."
        )


def _permutation(piv):
    """Row order ``perm`` with a[perm] = L @ U, from LAPACK's row interchanges ``piv``."""
    piv = np.asarray(piv)
    perm = np.arange(piv.shape[-1])
    for i, p in enumerate(piv.tolist()):
        perm[i], perm[p] = perm[p], perm[i]
    return perm


def _lu_parts(lu):
    L = np.tril(lu, -1) + np.eye(lu.shape[-1], dtype=lu.dtype)
    return L, np.triu(lu)


def _lu_adjoint(L, U, gl, gu):
    """Cotangent of A' = L U (L unit lower, U upper) from those of L (strict lower) and U."""
    xbar = np.tril(np.matmul(_H(L), gl), -1) + np.triu(np.matmul(gu, _H(U)))
    y = sl.solve_triangular(L, xbar, lower=True, unit_diagonal=True, trans=2)  # L^-H xbar
    return _H(sl.solve_triangular(U, _H(y), lower=False))  # (L^-H xbar) U^-H


@numpy_rule(sl.lu_factor)
def lu_factor_rule(a, overwrite_a=False, check_finite=True):
    lu, piv = sl.lu_factor(a, check_finite=check_finite)
    if not inexact(a):
        return (lu, piv), None
    _check_square_2d("lu_factor", a)

    def lu_factor_pullback(dout):
        dlu = dout[0] if dout is not None else None
        if dlu is None:
            return (None,)
        perm = _permutation(piv)
        L, U = _lu_parts(lu)
        gperm = _lu_adjoint(L, U, np.tril(dlu, -1), np.triu(dlu))  # cotangent of a[perm]
        return (cotangent(gperm[np.argsort(perm)], a),)

    return (lu, piv), lu_factor_pullback


@numpy_rule(sl.lu_solve)
def lu_solve_rule(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    lu, piv = lu_and_piv
    x = sl.lu_solve((lu, piv), b, trans=trans, check_finite=check_finite)
    need_lu, need_b = inexact(lu), inexact(b)
    if not (need_lu or need_b):
        return x, None
    _check_square_2d("lu_solve", lu)
    t = _trans_code(trans)

    def lu_solve_pullback(dy):
        if t == 0:
            gb = sl.lu_solve((lu, piv), dy, trans=2)
        elif t == 1:
            gb = sl.lu_solve((conj(lu), piv), dy, trans=0)
        else:
            gb = sl.lu_solve((lu, piv), dy, trans=0)
        db = cotangent(gb, b) if need_b else None
        dlu = None
        if need_lu:
            gop = -_outer(gb, x)
            ga = gop if t == 0 else (_T(gop) if t == 1 else _H(gop))
            gperm = ga[_permutation(piv)]  # cotangent of a[perm] = L U
            L, U = _lu_parts(lu)
            glu = np.tril(np.matmul(gperm, _H(U)), -1) + np.triu(np.matmul(_H(L), gperm))
            dlu = (cotangent(glu, lu), None)
        return dlu, db

    return x, lu_solve_pullback


@numpy_rule(sl.lu)
def lu_rule(a, permute_l=False, overwrite_a=False, check_finite=True, p_indices=False):
    out = sl.lu(a, permute_l=permute_l, check_finite=check_finite, p_indices=p_indices)
    if not inexact(a):
        return out, None
    _check_square_2d("lu", a)
    pi, L, U = sl.lu(a, check_finite=False, p_indices=True)  # a = L[pi] @ U
    rows = np.argsort(pi)  # a[rows] = L @ U

    def lu_pullback(dout):
        if permute_l:
            dpl, du = dout if dout is not None else (None, None)
            dl = None if dpl is None else dpl[rows]  # (P L)[i] = L[pi[i]]
        else:
            _, dl, du = dout if dout is not None else (None, None, None)
        if dl is None and du is None:
            return (None,)
        gl = np.zeros_like(L) if dl is None else np.tril(dl, -1)
        gu = np.zeros_like(U) if du is None else np.triu(du)
        return (cotangent(_lu_adjoint(L, U, gl, gu)[pi], a),)  # a = (L U)[pi]

    return out, lu_pullback


# -- matrix functions -------------------------------------------------------------------------


@numpy_rule(sl.expm)
def expm_rule(A):
    y = sl.expm(A)
    if not inexact(A):
        return y, None

    def expm_pullback(dy):
        n = y.shape[-1]
        ah = _H(_as_matrix(A))
        top = np.concatenate([ah, dy], axis=-1)
        bottom = np.concatenate([np.zeros_like(ah), ah], axis=-1)
        block = sl.expm(np.concatenate([top, bottom], axis=-2))
        return (cotangent(block[..., :n, n:], A),)

    return y, expm_pullback


_SQRTM_DEFAULTS = {
    name: p.default for name, p in inspect.signature(sl.sqrtm).parameters.items() if name != "A"
}


@numpy_rule(sl.sqrtm)
def sqrtm_rule(A, disp=_SQRTM_DEFAULTS.get("disp"), blocksize=_SQRTM_DEFAULTS.get("blocksize")):
    given = {}
    if disp is not _SQRTM_DEFAULTS.get("disp"):
        given["disp"] = disp
    if blocksize is not _SQRTM_DEFAULTS.get("blocksize"):
        given["blocksize"] = blocksize
    out = sl.sqrtm(A, **given)
    if not inexact(A):
        return out, None
    with_error = type(out) is tuple
    x = out[0] if with_error else out

    def sqrtm_pullback(dout):
        dx = dout[0] if with_error else dout
        if dx is None:
            return (None,)
        xh = _H(x)
        return (cotangent(sl.solve_sylvester(xh, xh, dx), A),)

    return out, sqrtm_pullback


# -- eigh, svd, qr ------------------------------------------------------------------------------


def _eigh_rule(a, b, lower, eigvals_only, subset_by_index, subset_by_value, driver, type_,
               check_finite, name):
    if b is not None:
        _refuse(f"morula cannot differentiate the generalized eigenproblem "
                f"scipy.linalg.{name}(a, b). Fix: reduce it with a Cholesky factor of b.")
    subset = subset_by_index is not None or subset_by_value is not None
    w, v = sl.eigh(a, lower=lower, check_finite=check_finite, subset_by_index=subset_by_index,
                   subset_by_value=subset_by_value, driver=driver)
    out = w if eigvals_only else (w, v)
    if not inexact(a):
        return out, None
    if subset and not eigvals_only:
        _refuse(f"morula cannot differentiate eigenvectors of an eigenvalue subset "
                f"(scipy.linalg.{name} with subset_by_index/subset_by_value). Fix: compute "
                f"all eigenpairs and select them afterwards.")
    kind = _hermitian_kind(v)  # v is complex exactly when a is

    def eigh_pullback(dout):
        gw, gv = (dout, None) if eigvals_only else (dout if dout is not None else (None, None))
        if gw is None and gv is None:
            return (None,)
        inner = np.zeros(w.shape + w.shape[-1:], dtype=v.dtype)
        if gw is not None:
            inner = gw[..., :, None] * np.eye(w.shape[-1], dtype=w.dtype)
        if gv is not None:
            diff = w[..., None, :] - w[..., :, None]  # w_j - w_i
            off = ~np.eye(w.shape[-1], dtype=bool)
            f = np.where(off, 1 / np.where(off, diff, 1), 0)
            inner = inner + f * np.matmul(_H(v), gv)
        g = np.matmul(np.matmul(v, inner), _H(v))
        return (cotangent(_effective_adjoint(g, kind, lower), a),)

    return out, eigh_pullback


@numpy_rule(sl.eigh)
def eigh_rule(a, b=None, *, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False,
              type=1, check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    return _eigh_rule(a, b, lower, eigvals_only, subset_by_index, subset_by_value, driver, type,
                      check_finite, "eigh")


@numpy_rule(sl.eigvalsh)
def eigvalsh_rule(a, b=None, *, lower=True, overwrite_a=False, overwrite_b=False, type=1,
                  check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    return _eigh_rule(a, b, lower, True, subset_by_index, subset_by_value, driver, type,
                      check_finite, "eigvalsh")


def _svd_adjoint(u, s, vh, gu, gs, gvh):
    """Cotangent of a = u diag(s) vh (thin SVD) from those of u, s, vh (None = zero)."""
    k = s.shape[-1]
    v = _H(vh)
    eye = np.eye(k, dtype=bool)
    inner = np.zeros(s.shape[:-1] + (k, k), dtype=np.result_type(u.dtype, s.dtype))
    if gs is not None:
        inner = inner + np.where(eye, gs[..., :, None], 0)
    s_row, s_col = s[..., None, :], s[..., :, None]  # s_k along columns, s_j along rows
    denom = np.where(eye, 1, s_row * s_row - s_col * s_col)  # s_k^2 - s_j^2
    term = 0
    if gu is not None:
        uhgu = np.matmul(_H(u), gu)
        skew_u = uhgu - _H(uhgu)
        term = term + skew_u * s_row
        if is_complex(u):
            inner = inner + np.where(eye, 1j * np.imag(uhgu) / s_col, 0)
    if gvh is not None:
        gv = _H(gvh)
        vhgv = np.matmul(vh, gv)
        skew_v = vhgv - _H(vhgv)
        term = term + s_col * skew_v
    if gu is not None or gvh is not None:
        inner = inner + np.where(eye, 0, term / denom)
    ga = np.matmul(np.matmul(u, inner), vh)
    m, n = u.shape[-2], vh.shape[-1]
    if gu is not None and m > k:
        proj = gu - np.matmul(u, np.matmul(_H(u), gu))
        ga = ga + np.matmul(proj / s_row, vh)
    if gvh is not None and n > k:
        gv = _H(gvh)
        proj = gv - np.matmul(v, np.matmul(vh, gv))
        ga = ga + np.matmul(u / s_row, _H(proj))
    return ga


@numpy_rule(sl.svd)
def svd_rule(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True,
             lapack_driver="gesdd"):
    ua = _as_matrix(a)
    m, n = ua.shape[-2], ua.shape[-1]
    u, s, vh = sl.svd(a, full_matrices=False, check_finite=check_finite,
                      lapack_driver=lapack_driver)
    out = (u, s, vh) if compute_uv else s
    if not inexact(a):
        return out, None
    if compute_uv and full_matrices and m != n:
        _refuse("morula differentiates scipy.linalg.svd only with full_matrices=False for "
                f"non-square matrices (got {m}x{n}): the extra singular vectors are not unique. "
                "Fix: pass full_matrices=False.")

    def svd_pullback(dout):
        if compute_uv:
            gu, gs, gvh = dout if dout is not None else (None, None, None)
        else:
            gu, gs, gvh = None, dout, None
        return (cotangent(_svd_adjoint(u, s, vh, gu, gs, gvh), a),)

    return out, svd_pullback


def _copyltu(m):
    return np.triu(m, 1) + np.tril(_H(m), -1) + _diag_part(np.real(m))


def _qr_square_adjoint(q, r, gq, gr):
    """Cotangent of a = q r with m >= n (q: m x n, r: n x n upper)."""
    mm = np.matmul(gr, _H(r)) - np.matmul(_H(q), gq)
    y = gq + np.matmul(q, _copyltu(mm))
    return _H(sl.solve_triangular(r, _H(y), lower=False))  # y r^-H


@numpy_rule(sl.qr)
def qr_rule(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    ua = _as_matrix(a)
    m, n = ua.shape[-2], ua.shape[-1]
    if inexact(a) and (pivoting or mode == "raw" or (mode == "full" and m > n)):
        _refuse("morula differentiates scipy.linalg.qr only without pivoting, in modes "
                "'economic', 'r', and 'full' when rows <= columns (the extra columns of a full "
                "Q are not unique). Fix: use mode='economic'.")
    out = sl.qr(a, lwork=lwork, mode=mode, pivoting=pivoting, check_finite=check_finite)
    if not inexact(a):
        return out, None
    k = min(m, n)
    if mode == "r":
        q, r = sl.qr(a, mode="economic", check_finite=False)
    else:
        q, r = out

    def qr_pullback(dout):
        if mode == "r":
            gq, gr = None, (dout[0] if dout is not None else None)
            if gr is not None:
                gr = gr[..., :k, :]
        else:
            gq, gr = dout if dout is not None else (None, None)
        gq = np.zeros_like(q) if gq is None else gq
        gr = np.zeros_like(r) if gr is None else gr
        if m >= n:
            return (cotangent(_qr_square_adjoint(q, r, gq, gr), a),)
        a2 = ua[..., :, m:]
        gr1, gr2 = gr[..., :, :m], gr[..., :, m:]
        ga1 = _qr_square_adjoint(q, r[..., :, :m], gq + np.matmul(a2, _H(gr2)), gr1)
        ga2 = np.matmul(q, gr2)
        return (cotangent(np.concatenate([ga1, ga2], axis=-1), a),)

    return out, qr_pullback
