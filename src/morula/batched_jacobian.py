"""Reverse-mode Jacobians with the output cotangents pulled back in batches.

In: the pullback of one forward sweep (``api._run``), the output, the arguments. Out: the Jacobian
blocks ``out.shape + x.shape``, one per differentiated argument -- or None, and the caller pulls
back one output element at a time.

How: every array cotangent of the backward sweep carries a leading axis holding up to
``CHUNK_ELEMENTS`` cotangents at once (``tangents.BATCH``); pullbacks declared batch-capable
(``shadow.batch_capable``: elementwise arithmetic, matmul, sums, reshapes, indexing ...) work on
the whole batch, the others run once per cotangent inside the sweep. Only for sweeps without
in-place writes (their pullbacks undo and redo writes), with array/number arguments and a real
array output.

Vouching for the result: a batched sweep is checked against one ordinary sweep along a random
output direction (``J^T c``); on any disagreement, or any error in a batched sweep, the caller
falls back to the ordinary row-by-row Jacobian.
"""

import numpy as np

from .reverse import runtime, shadow

CHUNK_ELEMENTS = 1 << 22   # at most this many cotangent numbers per output-sized batch


def rows(pb, out, args, nums, snapshots):
    """The Jacobian blocks, or None when this sweep cannot be batched."""
    if pb is None or type(out) is not np.ndarray or out.dtype.kind != "f" or out.size < 2:
        return None
    for i in nums:
        a = args[i]
        if not (type(a) is float or (type(a) is np.ndarray and a.dtype.kind == "f")):
            return None
    m = out.size
    chunk = max(1, min(m, CHUNK_ELEMENTS // max(m, max(np.size(args[i]) for i in nums))))
    blocks = {i: np.empty((m,) + np.shape(args[i]), dtype=_result_dtype(args[i])) for i in nums}
    eye = np.eye(m, dtype=out.dtype)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        seeds = eye[start:stop].reshape((stop - start,) + out.shape)
        grads = _sweep(pb, seeds, out, args, nums)
        if grads is None:
            return None
        for i in nums:
            blocks[i][start:stop] = grads[i]
    if not _agrees(pb, out, args, nums, snapshots, blocks):
        return None
    return [blocks[i].reshape(out.shape + np.shape(args[i])) for i in nums]


def _result_dtype(a):
    return a.dtype if type(a) is np.ndarray else np.float64


def _sweep(pb, seeds, out, args, nums):
    """One batched backward sweep: {i: array (batch,) + shape of args[i]}, or None."""
    n = seeds.shape[0]
    try:
        with runtime.gc_paused(), runtime.backward_scope(batch=n):
            ct = shadow._deposit_structure(out, seeds)
            cts = pb(ct)
            found = {}
            for i in nums:
                found[i] = _as_batch(shadow.total(args[i], cts[1 + i]), args[i], n)
                if found[i] is None:
                    return None
            return found
    except Exception:   # any failure of a batched sweep: the caller goes row by row
        return None


def _as_batch(c, x, n):
    shape = (n,) + np.shape(x)
    if c is None:
        return np.zeros(shape)
    c = np.asarray(c)
    if c.shape != shape:
        if c.ndim == 0 and c == 0:
            return np.zeros(shape)
        return None
    return c.real if c.dtype.kind == "c" else c


def _agrees(pb, out, args, nums, snapshots, blocks):
    """Does one ordinary sweep along a random output direction agree with the batched rows?"""
    from .api import _pull
    rng = np.random.default_rng(len(blocks) + out.size)
    c = rng.standard_normal(out.shape).astype(out.dtype)
    expected = _pull(pb, c, args, snapshots, out)
    eps = np.finfo(out.dtype).eps
    for i in nums:
        got = np.tensordot(c.reshape(-1), blocks[i], axes=1)
        want = np.asarray(expected[i], dtype=got.dtype)
        scale = np.sqrt(np.sum(np.abs(blocks[i]) ** 2, axis=0)) + np.abs(want) + np.finfo(got.dtype).tiny
        if not np.all(np.abs(got - want) <= 1e3 * eps * np.sqrt(out.size) * scale):
            return False
    return True
