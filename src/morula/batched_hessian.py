"""Hessians with many columns per reverse sweep: forward over reverse with dual arrays.

In: ``f``, its arguments, the differentiated positions, and two callables of ``api``: the
ordinary gradient and the exact Hessian-vector product (reverse over forward). Out: the Hessian
blocks ``{(i, j): array xi.shape + xj.shape}``, or None -- and the caller computes the Hessian
one column at a time, as before.

How: argument ``j`` is replaced by a dual array (``DUALS``, registered by the NumPy rules: an
array carrying ``k`` tangents) whose tangents are ``k`` unit directions; the ordinary reverse
sweep of ``f`` runs on it -- rules, pullbacks and shadow memory unchanged, every NumPy call in
them carrying the tangents along. Each gradient comes back as a dual array whose tangents are
``k`` columns of the Hessian. Arguments must be floating NumPy arrays; anything a dual array
cannot carry exactly raises inside the sweep, and the caller falls back.

Vouching for the result: for each ``j``, one exact Hessian-vector product along a random
direction (the per-column method's own computation, reverse over forward, which involves no
dual arrays) must agree with the blocks; on any disagreement the caller falls back. The dual
arrays keep a record of what ran on them (each operation, its operands' shapes, which carried
tangents, any branch taken on values); a sweep whose record equals one already checked ran the
same computation on other numbers, and is not checked again (the check costs about two
Hessian-vector products, more than the sweep itself for small arguments).
"""

import numpy as np

from .dual_arrays import DUALS, check_directions, matches, run_checked  # noqa: F401  (DUALS: for tests)

CHUNK_ELEMENTS = 1 << 22   # at most this many tangent numbers per seeded argument


def blocks(f, args, kwargs, nums, gradient, hvp_rows):
    """``gradient(f, nums)(*args, **kwargs)``: the gradients (a tuple over ``nums``);
    ``hvp_rows(directions)``: the exact ``H v`` pieces (a tuple over ``nums``)."""
    def run(seeded, parts):
        found = {}
        _sweeps(f, args, kwargs, nums, gradient, seeded, parts, found)
        return found if len(found) == len(nums) ** 2 else None
    return run_checked("hessian", args, nums, run, lambda found: _agrees(found, args, nums, hvp_rows))


def _sweeps(f, args, kwargs, nums, gradient, seeded, parts, found):
    """Fill ``found`` with the blocks (left incomplete when a gradient has an unexpected form)."""
    for j in nums:
        n = args[j].size
        columns = {i: np.empty((args[i].size, n), dtype=args[i].dtype) for i in nums}
        chunk = max(1, min(n, CHUNK_ELEMENTS // n))
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            k = stop - start
            directions = np.zeros((k, n), dtype=args[j].dtype)
            directions[np.arange(k), np.arange(start, stop)] = 1
            dual = seeded(args[j], directions.reshape((k,) + args[j].shape))
            grads = gradient(f, nums)(*args[:j], dual, *args[j + 1:], **kwargs)
            for i, g in zip(nums, grads):
                primal, tangents = parts(g, k, args[i].shape)
                if np.shape(tangents) != (k,) + args[i].shape:
                    return
                columns[i][:, start:stop] = np.reshape(tangents, (k, -1)).T
        for i in nums:
            found[(i, j)] = columns[i].reshape(args[i].shape + args[j].shape)


def _agrees(found, args, nums, hvp_rows):
    """Does one exact Hessian-vector product per argument agree with the blocks?"""
    for j, c in check_directions(args, nums):
        rows = hvp_rows(tuple(c if m == j else None for m in range(len(args))))
        for i, row in zip(nums, rows):
            if not matches(found[(i, j)].reshape(args[i].size, args[j].size), c, row):
                return False
    return True
