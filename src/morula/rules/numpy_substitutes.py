"""NumPy functions differentiated through plain re-implementations (``registry.substitute``).

In: nothing. Out: rules for NumPy functions written in Python that morula cannot transform
directly (their source uses ``try`` blocks or private C helpers): each is re-implemented here
with functions that have rules, computing the same values, and morula differentiates the
re-implementation. Supported arguments are the common ones; others raise.
"""

import numpy as np

from morula.errors import UnsupportedOperationError
from morula.rules.registry import substitute


def _refuse(name, what):
    raise UnsupportedOperationError(f"morula: {name} with {what} is not differentiable yet")


@substitute(np.nanvar)
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    if dtype is not None or out is not None:
        _refuse("np.nanvar", "dtype= or out=")
    valid = ~np.isnan(a)
    filled = np.where(valid, a, 0.0)
    count = np.sum(valid, axis=axis, keepdims=True)
    mean = np.sum(filled, axis=axis, keepdims=True) / count
    centered = np.where(valid, a - mean, 0.0)
    var = np.sum(centered * np.conj(centered), axis=axis, keepdims=keepdims).real / \
        np.maximum(np.sum(valid, axis=axis, keepdims=keepdims) - ddof, 0)
    return var


@substitute(np.nanstd)
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    return np.sqrt(nanvar(a, axis, dtype, out, ddof, keepdims))


@substitute(np.nanquantile)
def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    if out is not None:
        _refuse("np.nanquantile", "out=")
    if axis is None:
        flat = a.ravel()
        return np.quantile(flat[~np.isnan(flat)], q, method=method, keepdims=keepdims)
    moved = np.moveaxis(a, axis, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    values = [np.quantile(row[~np.isnan(row)], q, method=method) for row in rows]
    result = np.stack(values, axis=-1).reshape(np.shape(q) + moved.shape[:-1])
    if keepdims:
        result = np.expand_dims(result, axis=np.ndim(q) + (axis % a.ndim))
    return result


@substitute(np.nanpercentile)
def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    return nanquantile(a, np.asarray(q) / 100.0, axis, out, overwrite_input, method, keepdims)


@substitute(np.nanmedian)
def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    return nanquantile(a, 0.5, axis, out, overwrite_input, "linear", keepdims)


@substitute(np.cov)
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    if fweights is not None or aweights is not None or dtype is not None:
        _refuse("np.cov", "fweights=, aweights= or dtype=")
    x = np.atleast_2d(m)
    if not rowvar and x.shape[0] != 1:
        x = x.T
    if y is not None:
        y2 = np.atleast_2d(y)
        if not rowvar and y2.shape[0] != 1:
            y2 = y2.T
        x = np.concatenate([x, y2], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    centered = x - np.mean(x, axis=1, keepdims=True)
    c = centered @ np.conj(centered.T) / (x.shape[1] - ddof)
    return np.squeeze(c)


@substitute(np.corrcoef)
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    c = cov(x, y, rowvar, dtype=dtype)
    if np.ndim(c) == 0:
        return c / c
    d = np.sqrt(np.diag(c).real)
    return c / d[:, None] / d[None, :]


@substitute(np.ediff1d)
def ediff1d(ary, to_end=None, to_begin=None):
    flat = np.ravel(ary)
    parts = []
    if to_begin is not None:
        parts.append(np.ravel(np.asarray(to_begin, dtype=flat.dtype)))
    parts.append(flat[1:] - flat[:-1])
    if to_end is not None:
        parts.append(np.ravel(np.asarray(to_end, dtype=flat.dtype)))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


@substitute(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    shape = np.broadcast_shapes(*[np.shape(a) for a in args])
    return tuple(np.broadcast_to(a, shape) for a in args)


def _block_depth(arrays):
    depth = 0
    while isinstance(arrays, list):
        depth += 1
        arrays = arrays[0]
    return depth


@substitute(np.block)
def block(arrays):
    depth = _block_depth(arrays)
    if depth == 0:
        return np.array(arrays)
    return _block(arrays, depth)


def _block(arrays, depth):
    if depth == 1:
        items = [np.atleast_1d(a) for a in arrays]
        return np.concatenate(items, axis=-1)
    parts = [_block(a, depth - 1) for a in arrays]
    ndim = max(max(np.ndim(p) for p in parts), depth)
    parts = [p.reshape((1,) * (ndim - np.ndim(p)) + np.shape(p)) for p in parts]
    return np.concatenate(parts, axis=-depth)


@substitute(np.apply_along_axis)
def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    moved = np.moveaxis(arr, axis, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    results = [func1d(row, *args, **kwargs) for row in rows]
    stacked = np.stack([np.asarray(r) for r in results])
    out = stacked.reshape(moved.shape[:-1] + np.shape(results[0]))
    if np.ndim(results[0]) == 0:
        return out
    return np.moveaxis(out, -1, axis % arr.ndim)


@substitute(np.polyfit)
def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    if full or w is not None or cov:
        _refuse("np.polyfit", "full=, w= or cov=")
    vander = np.vander(x, deg + 1)
    coefficients = np.linalg.lstsq(vander, y, rcond=rcond)[0]
    return coefficients


from morula.rules.registry import nondiff  # noqa: E402

nondiff(np.broadcast, np.broadcast_shapes)
