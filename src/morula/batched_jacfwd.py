"""Forward-mode Jacobians with every column in one run of the function, by dual arrays.

In: ``f``, its arguments, the differentiated positions, and ``api``'s exact forward mode
(``jvp_of(directions) -> (out, tangent)``, the source transform). Out: the Jacobians in
``jacfwd``'s layout (one per position: ``out.shape + x.shape``, containers of them for container
outputs), or None -- and ``jacfwd`` goes one forward pass per input element, as before.

How: argument ``j`` becomes a dual array (``dual_arrays.DUALS``) whose tangents are the unit
directions, and ``f`` simply runs on it -- every NumPy call carries the tangents, so the output
comes back carrying the Jacobian's columns. Arguments must be floating NumPy arrays, the output
arrays or numbers, or tuples, lists and dicts of them. Anything a dual array cannot carry
exactly raises inside the run, and the caller falls back.

Vouching: each distinct computation (the record of the operations run on dual arrays) is
checked once against one exact Jacobian-vector product along a random direction (forward mode
by source transformation, no dual arrays).
"""

import numpy as np

from .dual_arrays import check_directions, matches, run_checked

CHUNK_ELEMENTS = 1 << 22   # at most this many tangent numbers per seeded argument


def jacobians(f, args, kwargs, nums, jvp_of):
    def run(seeded, parts):
        found = {j: _columns(f, args, kwargs, j, seeded, parts) for j in nums}
        return None if any(v is None for v in found.values()) else found
    found = run_checked("jacfwd", args, nums, run, lambda found: _agrees(found, args, nums, jvp_of))
    return None if found is None else [_assemble(*found[j], args[j]) for j in nums]


def _columns(f, args, kwargs, j, seeded, parts):
    """``(output structure, {leaf path: columns (leaf.size, n)})`` for argument ``j``."""
    n = args[j].size
    chunk = max(1, min(n, CHUNK_ELEMENTS // n))
    structure, columns = None, {}
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        k = stop - start
        directions = np.zeros((k, n), dtype=args[j].dtype)
        directions[np.arange(k), np.arange(start, stop)] = 1
        out = f(*args[:j], seeded(args[j], directions.reshape((k,) + args[j].shape)), *args[j + 1:], **kwargs)
        leaves = _leaves(out, ())
        if leaves is None:
            return None
        structure = out
        for path, value in leaves:
            primal, tangents = parts(value, k, np.shape(value) if type(value) is not float else ())
            if np.asarray(primal).dtype.kind != "f" and type(value) is not float:
                return None
            block = columns.setdefault(path, np.empty((np.size(primal), n), dtype=np.result_type(primal, args[j])))
            block[:, start:stop] = np.reshape(tangents, (k, -1)).T
    return structure, columns


def _leaves(out, path):
    """``[(path, leaf)]`` of an output made of arrays and numbers in tuples, lists and dicts."""
    t = type(out)
    if t is tuple or t is list:
        found = []
        for i, v in enumerate(out):
            sub = _leaves(v, path + (i,))
            if sub is None:
                return None
            found += sub
        return found
    if t is dict:
        found = []
        for key, v in out.items():
            sub = _leaves(v, path + (key,))
            if sub is None:
                return None
            found += sub
        return found
    if t is float or hasattr(out, "tangent") or (t is np.ndarray or isinstance(out, np.generic)):
        return [(path, out)]
    return None


def _assemble(structure, columns, x):
    """The Jacobian in ``jacfwd``'s layout: each leaf's ``leaf.shape + x.shape``."""
    def build(value, path):
        t = type(value)
        if t is tuple or t is list:
            return t(build(v, path + (i,)) for i, v in enumerate(value))
        if t is dict:
            return {key: build(v, path + (key,)) for key, v in value.items()}
        shape = tuple(np.shape(value.primal if hasattr(value, "tangent") else value))
        return columns[path].reshape(shape + x.shape)
    return build(structure, ())


def _agrees(found, args, nums, jvp_of):
    """Does one exact Jacobian-vector product per argument agree with the columns?"""
    for j, c in check_directions(args, nums):
        _, tangent = jvp_of(tuple(c if m == j else None for m in range(len(args))))
        for path, block in found[j][1].items():
            want = tangent
            for key in path:
                want = want[key]
            if not matches(block, c, want):
                return False
    return True
