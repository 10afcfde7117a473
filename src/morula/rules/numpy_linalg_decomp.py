"""Reverse rules for ``np.linalg``: inverses, determinants, solves and decompositions.

In: nothing (importing registers the rules). Out: rules for ``np.linalg``
``inv pinv det slogdet solve lstsq cholesky qr eigh eigvalsh eig eigvals svd
svdvals matrix_power multi_dot`` and, where this NumPy has them (2.x),
``matrix_norm vector_norm trace diagonal``.

Every rule takes stacked matrices ``(..., m, n)`` wherever NumPy does (all but
``lstsq`` and ``multi_dot``, which NumPy limits to 2-D); broadcast batch
dimensions are summed back. Cotangents keep the input's shape and floating
dtype (float32 stays float32; a real input gets the real part of a complex
intermediate). Complex inputs follow Zygote's convention: the cotangent is
the adjoint of the derivative for the real inner product ``Re sum(conj(a) b)``
(``conj(f'(z)) * dy`` for holomorphic maps; ``df/dx + i df/dy`` for a
real-valued ``f``). Structured results (``SlogdetResult``, ``QRResult``,
``EighResult``, ``EigResult``, ``SVDResult``, ``lstsq``'s tuple) take their
cotangent as a tuple, the NamedTuple itself, or an ``ObjectCotangent`` (what
the engine builds for attribute access such as ``res.Q``); ``None`` entries are
zeros.

Conventions and restrictions (the formulas hold where the function is
differentiable; they are not guarded):

- ``inv``, ``det``, ``slogdet``, ``solve``: the matrix must be invertible
  (``det`` at a singular matrix raises instead of returning the adjugate).
  ``slogdet``: the sign is piecewise constant for real input (no cotangent);
  for complex input the sign (a phase) is differentiated too.
- ``pinv``: constant rank, in practice full rank (``rcond``/``rtol`` cut-offs
  are not differentiated; a singular value crossing the cut-off is a jump).
  With ``hermitian=True`` the cotangent is symmetrized (Hermitian).
- ``lstsq``: ``a`` of full column rank (or full row rank: the minimum-norm
  solution, through the ``pinv`` formula). Cotangents for ``a`` and ``b``
  from ``x``, the residuals (when NumPy returns them) and the singular values;
  ``rank`` is an integer (no cotangent).
- ``cholesky`` (lower, or ``upper=True``): the input is taken as Hermitian, so
  its cotangent is Hermitian (symmetric): the gradient for symmetric
  perturbations, although NumPy reads only one triangle.
- ``qr``: ``mode='reduced'`` (any ``m, n``: ``m < n`` is handled by splitting
  ``A = [X | Y]``), ``mode='r'``, and ``mode='complete'`` when ``m <= n``
  (there it equals the reduced one). ``complete`` with ``m > n`` (the extra
  columns of ``Q`` are not unique) and ``raw`` raise
  ``UnsupportedOperationError``. The first ``min(m, n)`` columns of ``A`` must
  be linearly independent. Only the upper triangle of ``R``'s cotangent is
  used (the rest of ``R`` is structurally zero).
- ``eigh`` / ``eigvalsh``: distinct eigenvalues (a degenerate eigenvalue makes
  the eigenvector derivative infinite: ``1/(l_j - l_i)``; eigenvalue-only
  losses stay finite). The cotangent is Hermitian (as for ``cholesky``).
- ``eig`` / ``eigvals``: distinct eigenvalues (diagonalizable ``A``). Exact for
  functions of the eigenvalues. Eigenvector cotangents use the standard
  formula ``A_bar = V^-H (diag(w_bar) + conj(F) o (V^H V_bar')) V^H`` in the
  *parallel* gauge ``v_k^H dv_k = 0`` (unit norm, no phase rotation):
  ``V_bar' = V_bar - V diag(diag(V^H V_bar))``. NumPy fixes each eigenvector's
  phase differently (largest component real), so only gauge-invariant losses
  (``|v|``, ``v v^H``, ...) get the gradient of NumPy's literal output; for
  real matrices with real eigenvalues the gauge is the sign, which is
  locally constant, and the gradient is exact. The cotangent of a real ``A``
  is the real part.
- ``svd``: distinct, non-zero singular values when ``U``/``Vh`` are
  differentiated (the formula divides by ``s_j**2 - s_i**2`` and by ``s``).
  The singular values alone (``compute_uv=False``, ``svdvals``, or a cotangent
  only on ``S``) get ``U diag(s_bar) Vh``, exact for simple singular values
  (a subgradient at repeated ones). ``full_matrices=True`` with ``m != n``: only the
  first ``min(m, n)`` columns of ``U`` / rows of ``Vh`` are differentiable; a
  non-zero cotangent on the others raises ``UnsupportedOperationError``.
  Complex input: ``U`` and ``Vh`` have a joint phase freedom; the rule uses
  the symmetric gauge (the phase of each ``u_k`` and ``v_k`` turns by opposite
  halves), so only gauge-invariant losses (``U @ diag(s) @ Vh``, ``|U|``, ...)
  get NumPy's literal gradient. With ``hermitian=True`` the cotangent is
  Hermitian.
- ``matrix_power``: integer ``n``; ``n < 0`` goes through ``inv``; ``n == 0``
  is a constant. Repeated squaring in the pullback too (``O(log n)`` matmuls).
- ``multi_dot``: the cotangent of the list (tuple) of arrays is a list
  (tuple) of cotangents; 1-D first/last arrays are row/column vectors.
- ``matrix_norm``: ``'fro'``, ``'nuc'``, ``2``, ``-2`` (through the
  ``np.linalg.norm`` rule) and ``1``, ``-1``, ``inf``, ``-inf`` (ties in the
  maximum/minimum share the cotangent). ``vector_norm``: every ``ord`` the
  ``np.linalg.norm`` rule supports for vectors, over any ``axis`` (tuples are
  flattened into one vector).

Other array libraries: options are passed to ``np.linalg`` only when they
differ from NumPy's defaults, so the calls dispatch to ``dask.array.linalg``
(``inv solve det qr svd lstsq pinv matrix_power slogdet``, checked against
NumPy). Dask's own ``cholesky`` returns the *upper* factor by default, so
``np.linalg.cholesky(dask_array)`` is not NumPy's function and this rule does
not apply to it; Dask's ``lstsq`` also returns residuals for square systems
(they are zero, and so is their contribution).
"""

import numpy as np

from morula.errors import UnsupportedOperationError
from morula.rules.numpy_vspace import (
    as_operand,
    check_no_out,
    conj,
    cotangent,
    inexact,
    is_complex,
    numpy_rule,
    real_part,
)
from morula.rules.registry import nondiff, REGISTRY
from morula.tangents import ObjectCotangent

_linalg = np.linalg


# -- private helpers ----------------------------------------------------------------


def _ndim(a):
    nd = getattr(a, "ndim", None)
    return nd if nd is not None else np.ndim(a)


def _mT(x):
    return np.swapaxes(x, -1, -2)


def _H(x):
    """Conjugate transpose over the last two axes (plain transpose for real values)."""
    return np.swapaxes(conj(x), -1, -2)


def _like(x):
    """``like=x`` for array types that dispatch (CuPy, Dask); nothing for NumPy."""
    if isinstance(x, np.ndarray) or not hasattr(x, "__array_function__"):
        return {}
    return {"like": x}


def _eye(n, x, m=None, k=0):
    """An identity-like ``(n, m)`` matrix of ``x``'s floating dtype and array type."""
    dtype = x.dtype if getattr(x, "dtype", None) is not None and x.dtype.kind in "fc" else np.float64
    like = _like(x)
    if like:
        try:
            return np.eye(n, m, k=k, dtype=dtype, **like)
        except TypeError:  # e.g. Dask's eye takes no ``order``: NumPy constants mix with Dask
            pass
    return np.eye(n, m, k=k, dtype=dtype)


def _diag(m):
    """The diagonal of each matrix in a stack: ``(..., n, n) -> (..., n)``."""
    return np.diagonal(m, axis1=-2, axis2=-1)


def _diag_embed(v, like):
    """``(..., n) -> (..., n, n)`` with ``v`` on the diagonal."""
    n = v.shape[-1]
    return v[..., :, None] * _eye(n, like)


def _hermitian_part(g):
    return (g + _H(g)) * 0.5


def _inverse_gaps(w, like):
    """``F[..., i, j] = 1 / (w_j - w_i)`` off the diagonal, 0 on it."""
    n = w.shape[-1]
    gaps = w[..., None, :] - w[..., :, None]
    off = _eye(n, like) == 0
    return np.where(off, 1 / np.where(off, gaps, 1), 0)


def _entries(dy, fields):
    """The cotangent of a structured result as a list, one entry per field (``None`` = zero).

    Accepts ``None``, a tuple/list/NamedTuple, or an ``ObjectCotangent`` (fields by
    name, plus ``__items__`` for entries reached by index).
    """
    n = len(fields)
    if dy is None:
        return [None] * n
    if isinstance(dy, ObjectCotangent):
        items = _entries(dy.fields.get("__items__"), fields)
        for i, name in enumerate(fields):
            v = dy.fields.get(name)
            if v is not None:
                items[i] = v if items[i] is None else items[i] + v
        return items
    items = list(dy)
    return (items + [None] * n)[:n]


def _solve_right(x, r):
    """``x @ inv(r)`` without forming the inverse."""
    return _mT(_linalg.solve(_mT(r), _mT(x)))


def _expand2(v):
    """A scalar or ``(...)`` array as ``(..., 1, 1)``."""
    return np.expand_dims(v, (-2, -1))


# -- inverses and determinants -----------------------------------------------------


@numpy_rule(_linalg.inv)
def inv_rule(a):
    y = _linalg.inv(a)
    if not inexact(a):
        return y, None

    def inv_pullback(dy):
        yh = _H(y)
        return (cotangent(-(yh @ dy @ yh), a),)

    return y, inv_pullback


def _pinv_adjoint(a, x, g):
    """Cotangent of ``a`` for ``x = pinv(a)`` and cotangent ``g`` of ``x`` (constant rank).

    ``dX = -X dA X + X X^H dA^H (I - A X) + (I - X A) dA^H X^H X``.
    """
    xh, gh = _H(x), _H(g)
    out = -(xh @ g @ xh)
    t = gh @ (x @ xh)                       # (m, n)
    out = out + (t - a @ (x @ t))           # (I - A X) G^H X X^H
    u = (xh @ x) @ gh                       # (m, n)
    out = out + (u - (u @ x) @ a)           # X^H X G^H (I - X A)
    return out


@numpy_rule(_linalg.pinv)
def pinv_rule(a, rcond=None, hermitian=False, **kwargs):
    ua = as_operand(a)
    if rcond is None:
        y = _linalg.pinv(ua, hermitian=hermitian, **kwargs)
    else:
        y = _linalg.pinv(ua, rcond, hermitian, **kwargs)
    if not inexact(a):
        return y, None

    def pinv_pullback(dy):
        g = _pinv_adjoint(ua, y, dy)
        if hermitian:
            g = _hermitian_part(g)
        return (cotangent(g, a),)

    return y, pinv_pullback


@numpy_rule(_linalg.det)
def det_rule(a):
    ua = as_operand(a)
    y = _linalg.det(ua)
    if not inexact(a):
        return y, None

    def det_pullback(dy):
        g = _expand2(dy * conj(y)) * _H(_linalg.inv(ua))
        return (cotangent(g, a),)

    return y, det_pullback


@numpy_rule(_linalg.slogdet)
def slogdet_rule(a):
    ua = as_operand(a)
    out = _linalg.slogdet(ua)
    if not inexact(a):
        return out, None
    sign = out[0]

    def slogdet_pullback(dy):
        dsign, dlog = _entries(dy, ("sign", "logabsdet"))
        coef = None
        if dlog is not None:
            coef = real_part(dlog)
        if dsign is not None and is_complex(sign):
            # d sign = sign * i Im tr(A^-1 dA)
            phase = -1j * np.imag(conj(dsign) * sign)
            coef = phase if coef is None else coef + phase
        if coef is None:
            return (None,)
        g = _expand2(coef) * _H(_linalg.inv(ua))
        return (cotangent(g, a),)

    return out, slogdet_pullback


# -- solves ---------------------------------------------------------------------------


@numpy_rule(_linalg.solve)
def solve_rule(a, b):
    ua, ub = as_operand(a), as_operand(b)
    x = _linalg.solve(ua, ub)
    if not (inexact(a) or inexact(b)):
        return x, None
    b_vec = _ndim(ub) == 1

    def solve_pullback(dy):
        g = dy[..., None] if b_vec else dy
        xm = x[..., None] if b_vec else x
        gb = _linalg.solve(_H(ua), g)
        da = cotangent(-(gb @ _H(xm)), a) if inexact(a) else None
        db = cotangent(gb[..., 0] if b_vec else gb, b) if inexact(b) else None
        return da, db

    return x, solve_pullback


@numpy_rule(_linalg.lstsq)
def lstsq_rule(a, b, rcond=None):
    ua, ub = as_operand(a), as_operand(b)
    out = _linalg.lstsq(ua, ub) if rcond is None else _linalg.lstsq(ua, ub, rcond=rcond)
    if not (inexact(a) or inexact(b)):
        return out, None
    x, residuals = out[0], out[1]
    b_vec = _ndim(ub) == 1

    def lstsq_pullback(dy):
        dx, dres, _, ds = _entries(dy, ("x", "residuals", "rank", "s"))
        bm = ub[:, None] if b_vec else ub
        xm = x[:, None] if b_vec else x
        ga = gb = None
        if dx is not None:
            gx = dx[:, None] if b_vec else dx
            p = _linalg.pinv(ua)
            gb = _H(p) @ gx
            ga = _pinv_adjoint(ua, p, gx @ _H(bm))
        if dres is not None and residuals.shape[0] > 0:
            r = (bm - ua @ xm) * (2 * real_part(dres))
            gb = r if gb is None else gb + r
            ga = -(r @ _H(xm)) if ga is None else ga - r @ _H(xm)
        if ds is not None:
            u, _, vh = _svd(ua, False)
            gs = (u * real_part(ds)) @ vh
            ga = gs if ga is None else ga + gs
        da = cotangent(ga, a) if inexact(a) and ga is not None else None
        if gb is not None and b_vec:
            gb = gb[:, 0]
        db = cotangent(gb, b) if inexact(b) and gb is not None else None
        return da, db

    return out, lstsq_pullback


# -- cholesky and qr -----------------------------------------------------------------


def _lower_half_diag(p, like):
    """``tril(p)`` with the diagonal halved."""
    return np.tril(p) - 0.5 * _diag_embed(_diag(p), like)


@numpy_rule(_linalg.cholesky)
def cholesky_rule(a, *, upper=False):
    ua = as_operand(a)
    y = _linalg.cholesky(ua, upper=upper) if upper else _linalg.cholesky(ua)
    if not inexact(a):
        return y, None

    def cholesky_pullback(dy):
        low, g = (_H(y), _H(dy)) if upper else (y, dy)
        phi = _lower_half_diag(_H(low) @ np.tril(g), low)
        s = _linalg.solve(_H(low), phi)              # L^-H phi
        ga = _H(_linalg.solve(_H(low), _H(s)))       # L^-H phi L^-1
        return (cotangent(_hermitian_part(ga), a),)

    return y, cholesky_pullback


def _qr_tall_adjoint(q, r, gq, gr):
    """Cotangent of ``a = q r`` (``q`` (m, n) orthonormal columns, ``r`` (n, n) upper) for m >= n."""
    if gr is not None:
        gr = np.triu(gr)
        m = gr @ _H(r)
        if gq is not None:
            m = m - _H(q) @ gq
    else:
        m = -(_H(q) @ gq)
    up = np.triu(m, 1)
    mid = up + _H(up) + _diag_embed(real_part(_diag(m)), r)
    x = q @ mid
    if gq is not None:
        x = x + gq
    return _solve_right(x, _H(r))


@numpy_rule(_linalg.qr)
def qr_rule(a, mode="reduced"):
    ua = as_operand(a)
    out = _linalg.qr(ua) if mode == "reduced" else _linalg.qr(ua, mode=mode)
    if not inexact(a):
        return out, None
    m, n = ua.shape[-2], ua.shape[-1]
    if mode == "r":
        q, r = _linalg.qr(ua)
    elif mode in ("reduced", "complete") and (mode == "reduced" or m <= n):
        q, r = out
    else:
        raise UnsupportedOperationError(
            f"morula cannot differentiate np.linalg.qr(a, mode={mode!r})"
            + (" for a tall matrix (m > n): the extra columns of Q are not unique"
               if mode == "complete" else "")
            + ". Fix: use mode='reduced' (or 'r')."
        )

    def qr_pullback(dy):
        if mode == "r":
            gq, gr = None, dy
        else:
            gq, gr = _entries(dy, ("Q", "R"))
        if gq is None and gr is None:
            return (None,)
        if m >= n:
            ga = _qr_tall_adjoint(q, r, gq, gr)
        else:  # A = [X | Y], X = Q R1 (square), R2 = Q^H Y
            y = ua[..., :, m:]
            r1 = r[..., :, :m]
            gr1 = gr[..., :, :m] if gr is not None else None
            gr2 = np.triu(gr)[..., :, m:] if gr is not None else None
            gq_eff = gq
            if gr2 is not None:
                extra = y @ _H(gr2)
                gq_eff = extra if gq is None else gq + extra
            gx = _qr_tall_adjoint(q, r1, gq_eff, gr1)
            gy = q @ gr2 if gr2 is not None else np.zeros_like(y, dtype=gx.dtype)
            ga = np.concatenate([gx, gy], axis=-1)
        return (cotangent(ga, a),)

    return out, qr_pullback


# -- symmetric / Hermitian eigenproblems ------------------------------------------------


@numpy_rule(_linalg.eigh)
def eigh_rule(a, UPLO="L"):
    ua = as_operand(a)
    out = _linalg.eigh(ua) if UPLO == "L" else _linalg.eigh(ua, UPLO=UPLO)
    if not inexact(a):
        return out, None
    w, v = out

    def eigh_pullback(dy):
        gw, gv = _entries(dy, ("eigenvalues", "eigenvectors"))
        if gw is None and gv is None:
            return (None,)
        core = None
        if gv is not None:
            core = _inverse_gaps(w, v) * (_H(v) @ gv)
        if gw is not None:
            d = _diag_embed(real_part(gw), v)
            core = d if core is None else core + d
        ga = v @ core @ _H(v)
        return (cotangent(_hermitian_part(ga), a),)

    return out, eigh_pullback


@numpy_rule(_linalg.eigvalsh)
def eigvalsh_rule(a, UPLO="L"):
    ua = as_operand(a)
    w = _linalg.eigvalsh(ua) if UPLO == "L" else _linalg.eigvalsh(ua, UPLO=UPLO)
    if not inexact(a):
        return w, None

    def eigvalsh_pullback(dy):
        _, v = _linalg.eigh(ua) if UPLO == "L" else _linalg.eigh(ua, UPLO=UPLO)
        ga = (v * real_part(dy)[..., None, :]) @ _H(v)
        return (cotangent(_hermitian_part(ga), a),)

    return w, eigvalsh_pullback


# -- general eigenproblem ------------------------------------------------------------


def _eig_adjoint(w, v, gw, gv):
    """``A_bar = V^-H (diag(gw) + conj(F) o (V^H gv')) V^H`` (parallel gauge for eigenvectors)."""
    core = None
    if gv is not None:
        vhg = _H(v) @ gv
        vhg = vhg - (_H(v) @ v) * _diag(vhg)[..., None, :]
        core = conj(_inverse_gaps(w, v)) * vhg
    if gw is not None:
        d = _diag_embed(gw + 0 * w, v)
        core = d if core is None else core + d
    vh = _H(v)
    return _linalg.solve(vh, core @ vh)


@numpy_rule(_linalg.eig)
def eig_rule(a):
    ua = as_operand(a)
    out = _linalg.eig(ua)
    if not inexact(a):
        return out, None
    w, v = out

    def eig_pullback(dy):
        gw, gv = _entries(dy, ("eigenvalues", "eigenvectors"))
        if gw is None and gv is None:
            return (None,)
        return (cotangent(_eig_adjoint(w, v, gw, gv), a),)

    return out, eig_pullback


@numpy_rule(_linalg.eigvals)
def eigvals_rule(a):
    ua = as_operand(a)
    w = _linalg.eigvals(ua)
    if not inexact(a):
        return w, None

    def eigvals_pullback(dy):
        w2, v = _linalg.eig(ua)
        # eigvals and eig may order the eigenvalues differently: match them
        order = np.argmin(np.abs(w[..., :, None] - w2[..., None, :]), axis=-1)
        v = np.take_along_axis(v, order[..., None, :], axis=-1)
        return (cotangent(_eig_adjoint(w, v, dy, None), a),)

    return w, eigvals_pullback


# -- singular value decomposition ------------------------------------------------------


def _svd_adjoint(u, s, vh, gu, gs, gvh):
    """Cotangent of ``a = u diag(s) vh`` (reduced factors, ``k = min(m, n)``)."""
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    core = None
    if gs is not None:
        core = _diag_embed(real_part(gs) + 0 * s, u)
    if gu is None and gvh is None:
        return u @ core @ vh if core is not None else None
    f = _inverse_gaps(s * s, u)
    ju = _H(u) @ gu if gu is not None else None
    jv = vh @ _H(gvh) if gvh is not None else None   # V^H gV
    extra = None
    if ju is not None:
        c = (f * (ju - _H(ju))) * s[..., None, :]
        core = c if core is None else core + c
        if is_complex(ju):
            extra = _diag(ju)
    if jv is not None:
        c = s[..., :, None] * (f * (jv - _H(jv)))
        core = c if core is None else core + c
        if is_complex(jv):
            extra = -_diag(jv) if extra is None else extra - _diag(jv)
    if extra is not None:
        core = core + _diag_embed(1j * np.imag(extra) / (2 * s), u)
    out = u @ core @ vh
    if gu is not None and m > k:
        out = out + ((gu - u @ ju) / s[..., None, :]) @ vh
    if gvh is not None and n > k:
        out = out + u @ ((gvh - _H(jv) @ vh) / s[..., :, None])
    return out


def _cut(g, axis, k, what):
    """The first ``k`` columns (rows) of a full-matrices cotangent; the others must be zero."""
    if g is None:
        return None
    index = (Ellipsis, slice(None), slice(k, None)) if axis == -1 else (Ellipsis, slice(k, None), slice(None))
    rest = g[index]
    if rest.size and bool(np.any(rest != 0)):
        raise UnsupportedOperationError(
            f"morula cannot differentiate the extra {what} of np.linalg.svd(a, full_matrices=True) "
            f"for a non-square matrix (they are not unique). Fix: use full_matrices=False.")
    keep = (Ellipsis, slice(None), slice(None, k)) if axis == -1 else (Ellipsis, slice(None, k), slice(None))
    return g[keep]


def _svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """``np.linalg.svd`` passing only non-default options (Dask's svd takes none of them)."""
    kwargs = {}
    if not full_matrices:
        kwargs["full_matrices"] = False
    if not compute_uv:
        kwargs["compute_uv"] = False
    if hermitian:
        kwargs["hermitian"] = True
    if type(a) is np.ndarray:
        return _linalg.svd(a, **kwargs)
    return _svd_other(a, kwargs)


def _svd_other(a, kwargs):
    """Other array types (no ``try`` in ``_svd``: second derivatives differentiate its code)."""
    try:
        return _linalg.svd(a, **kwargs)
    except TypeError:
        if list(kwargs) != ["full_matrices"]:
            raise
        return _linalg.svd(a)     # Dask: always the reduced factors


@numpy_rule(_linalg.svd)
def svd_rule(a, full_matrices=True, compute_uv=True, hermitian=False):
    ua = as_operand(a)
    out = _svd(ua, full_matrices, compute_uv, hermitian)
    if not inexact(a):
        return out, None
    m, n = ua.shape[-2], ua.shape[-1]
    k = min(m, n)

    def svd_pullback(dy):
        if not compute_uv:
            u, s, vh = _svd(ua, False, True, hermitian)
            g = _svd_adjoint(u, s, vh, None, dy, None)
        else:
            u, s, vh = out
            gu, gs, gvh = _entries(dy, ("U", "S", "Vh"))
            if full_matrices and m != n:
                u, vh = u[..., :, :k], vh[..., :k, :]
                gu = _cut(gu, -1, k, "columns of U")
                gvh = _cut(gvh, -2, k, "rows of Vh")
            g = _svd_adjoint(u, s, vh, gu, gs, gvh)
        if g is None:
            return (None,)
        if hermitian:
            g = _hermitian_part(g)
        return (cotangent(g, a),)

    return out, svd_pullback


@numpy_rule(getattr(_linalg, "svdvals", None))
def svdvals_rule(x):
    ux = as_operand(x)
    s = _linalg.svdvals(ux)
    if not inexact(x):
        return s, None

    def svdvals_pullback(dy):
        u, _, vh = _svd(ux, False)
        return (cotangent((u * real_part(dy)[..., None, :]) @ vh, x),)

    return s, svdvals_pullback


# -- matrix_power and multi_dot -----------------------------------------------------------


def _power_steps(n):
    """How ``b**n`` is built from ``b``: a list of 'sq' (x @ x) and 'mul' (x @ b) steps."""
    steps = []
    while n > 1:
        if n % 2:
            steps.append("mul")
            n -= 1
        else:
            steps.append("sq")
            n //= 2
    return steps[::-1]


@numpy_rule(_linalg.matrix_power)
def matrix_power_rule(a, n):
    ua = as_operand(a)
    y = _linalg.matrix_power(ua, n)
    if not inexact(a) or n == 0:
        return y, None
    k = abs(int(n))

    def matrix_power_pullback(dy):
        b = _linalg.inv(ua) if n < 0 else ua
        steps = _power_steps(k)
        values = [b]
        for step in steps[:-1]:
            x = values[-1]
            values.append(x @ x if step == "sq" else x @ b)
        g, gb = dy, None
        bh = _H(b)
        for step, x in zip(reversed(steps), reversed(values)):
            xh = _H(x)
            if step == "sq":
                g = g @ xh + xh @ g
            else:
                direct = xh @ g
                gb = direct if gb is None else gb + direct
                g = g @ bh
        gb = g if gb is None else gb + g
        if n < 0:
            gb = -(bh @ gb @ bh)
        return cotangent(gb, a), None

    return y, matrix_power_pullback


@numpy_rule(_linalg.multi_dot)
def multi_dot_rule(arrays, *, out=None):
    check_no_out("np.linalg.multi_dot", out)
    arrays_in = arrays
    ops = [as_operand(x) for x in arrays]
    y = _linalg.multi_dot(ops)
    if not any(inexact(x) for x in arrays_in) or not inexact(y):
        return y, None
    first_vec, last_vec = _ndim(ops[0]) == 1, _ndim(ops[-1]) == 1
    mats = list(ops)
    if first_vec:
        mats[0] = mats[0][None, :]
    if last_vec:
        mats[-1] = mats[-1][:, None]

    def multi_dot_pullback(dy):
        prefix = [mats[0]]
        for mat in mats[1:-1]:
            prefix.append(prefix[-1] @ mat)
        g = np.reshape(dy, (mats[0].shape[0], mats[-1].shape[1]))
        cts = [None] * len(mats)
        for i in range(len(mats) - 1, 0, -1):
            if inexact(arrays_in[i]):
                cts[i] = _H(prefix[i - 1]) @ g
            g = g @ _H(mats[i])
        cts[0] = g
        if first_vec:
            cts[0] = cts[0][0, :]
        if last_vec and cts[-1] is not None:
            cts[-1] = cts[-1][:, 0]
        result = [cotangent(c, x) for c, x in zip(cts, arrays_in)]
        kind = type(arrays_in) if type(arrays_in) in (list, tuple) else tuple
        return (kind(result),)

    return y, multi_dot_pullback


# -- array-API extras of NumPy 2.x: matrix_norm, vector_norm, trace, diagonal ----------------


def _phase(x):
    if is_complex(x):
        mag = np.abs(x)
        return np.where(mag > 0, x / np.where(mag > 0, mag, 1), 0)
    return np.sign(x)


@numpy_rule(getattr(_linalg, "matrix_norm", None))
def matrix_norm_rule(x, *, keepdims=False, ord="fro"):
    ux = as_operand(x)
    y = _linalg.matrix_norm(ux, keepdims=keepdims, ord=ord)
    if not inexact(x):
        return y, None
    if ord in (1, -1, np.inf, -np.inf):
        axis = -2 if ord in (1, -1) else -1      # summed axis; the other is maximized
        pick = np.max if ord > 0 else np.min

        def matrix_norm_pullback(dy):
            sums = np.sum(np.abs(ux), axis=axis)
            hit = sums == pick(sums, axis=-1, keepdims=True)
            share = hit / np.sum(hit, axis=-1, keepdims=True)
            share = np.expand_dims(share, axis)
            d = dy if keepdims else _expand2(dy)
            return (cotangent(d * share * _phase(ux), x),)

        return y, matrix_norm_pullback
    norm = REGISTRY.function_rule(_linalg.norm)
    _, norm_pullback = norm(ux, ord, (-2, -1), keepdims)

    def matrix_norm_pullback(dy):
        return (cotangent(norm_pullback(dy)[0], x),)

    return y, matrix_norm_pullback


@numpy_rule(getattr(_linalg, "vector_norm", None))
def vector_norm_rule(x, *, axis=None, keepdims=False, ord=2):
    ux = as_operand(x)
    y = _linalg.vector_norm(ux, axis=axis, keepdims=keepdims, ord=ord)
    if not inexact(x):
        return y, None
    nd = _ndim(ux)
    if axis is None:
        axes = tuple(range(nd))
    else:
        axes = tuple(sorted(int(i) % nd for i in ((axis,) if np.isscalar(axis) else axis)))
    kept = [i for i in range(nd) if i not in axes]
    perm = kept + list(axes)
    moved = np.transpose(ux, perm) if perm != list(range(nd)) else ux
    moved_shape = moved.shape
    flat = np.reshape(moved, tuple(moved_shape[:len(kept)]) + (-1,))
    norm = REGISTRY.function_rule(_linalg.norm)
    _, norm_pullback = norm(flat, ord, -1, False)
    inverse = [perm.index(i) for i in range(nd)]

    def vector_norm_pullback(dy):
        d = np.reshape(dy, tuple(moved_shape[:len(kept)]))
        g = np.reshape(norm_pullback(d)[0], moved_shape)
        if perm != list(range(nd)):
            g = np.transpose(g, inverse)
        return (cotangent(g, x),)

    return y, vector_norm_pullback


@numpy_rule(getattr(_linalg, "trace", None))
def linalg_trace_rule(x, *, offset=0, dtype=None):
    ux = as_operand(x)
    y = _linalg.trace(ux, offset=offset, dtype=dtype)
    if not inexact(x) or not inexact(y):
        return y, None

    def linalg_trace_pullback(dy):
        n, m = ux.shape[-2], ux.shape[-1]
        return (cotangent(_expand2(dy) * _eye(n, ux, m, k=offset), x),)

    return y, linalg_trace_pullback


@numpy_rule(getattr(_linalg, "diagonal", None))
def linalg_diagonal_rule(x, *, offset=0):
    ux = as_operand(x)
    y = _linalg.diagonal(ux, offset=offset)
    if not inexact(x):
        return y, None

    def linalg_diagonal_pullback(dy):
        n, m, length = ux.shape[-2], ux.shape[-1], y.shape[-1]
        rows = _eye(n, ux, length, k=-max(-offset, 0))    # rows[t + a, t] = 1
        cols = _eye(m, ux, length, k=-max(offset, 0))     # cols[t + b, t] = 1
        g = (rows * dy[..., None, :]) @ _mT(cols)
        return (cotangent(g, x),)

    return y, linalg_diagonal_pullback


nondiff(_eye)   # constants (second derivatives run the rules' own code; _eye has a ``try``)
