"""The dual-array type the NumPy rules register, and the computations already checked.

In: the registration of ``rules/numpy_duals.py`` (arrays carrying k tangents). Out: ``DUALS``,
``[(seeded, parts, recording)]`` -- ``seeded(x, directions)`` makes a dual array,
``parts(value, k, shape)`` reads ``(primal, tangents)`` back, ``recording()`` collects the record
of the operations run on dual arrays -- and ``checked(record, check)``: ``check()`` the first
time a record is seen, its remembered answer afterwards (``batched_hessian``, ``batched_jacfwd``);
``check_directions`` and ``matches`` are the pieces of those checks both share.
"""

import numpy as np

DUALS = []
CHECKED = {}   # record of a computation on dual arrays -> did it agree with the exact method
_CHECKED_MAX = 4096


def usable(args, nums):
    """``(seeded, parts, recording)`` when dual arrays can carry the arguments at ``nums``
    (floating NumPy arrays, not empty), else None."""
    if not DUALS:
        return None
    for i in nums:
        a = args[i]
        if type(a) is not np.ndarray or a.dtype.kind != "f" or a.size == 0:
            return None
    return DUALS[0]


def run_checked(kind, args, nums, run, check):
    """``run(seeded, parts)`` with the arguments at ``nums`` made dual, recorded; its result, or
    None when dual arrays cannot carry them, ``run`` raises or returns None, or ``check(result)``
    (called once per distinct record of ``kind``) says the result is wrong."""
    tools = usable(args, nums)
    if tools is None:
        return None
    seeded, parts, recording = tools
    try:
        with recording() as ops:
            result = run(seeded, parts)
    except Exception:   # anything a dual array cannot carry: the caller's exact method instead
        return None
    if result is None:
        return None
    record = (kind, tuple((args[i].shape, args[i].dtype.str) for i in nums), tuple(nums), tuple(ops))
    return result if checked(record, lambda: check(result)) else None


def checked(record, check):
    agreed = CHECKED.get(record)
    if agreed is None:
        agreed = bool(check())
        if len(CHECKED) >= _CHECKED_MAX:
            CHECKED.clear()
        CHECKED[record] = agreed
    return agreed


def check_directions(args, nums):
    """``(j, c)``: a random direction ``c`` (shaped and typed like ``args[j]``) for each ``j``."""
    rng = np.random.default_rng(len(nums) + sum(args[i].size for i in nums))
    for j in nums:
        yield j, rng.standard_normal(args[j].shape).astype(args[j].dtype)


def matches(block, c, want):
    """Does ``block @ c`` (a derivative of the dual run, flattened: rows x ``c.size``) agree to
    rounding with ``want``, the exact method's derivative along ``c``?"""
    got = block @ c.reshape(-1)
    want = np.zeros_like(got) if want is None else np.asarray(want, dtype=got.dtype).reshape(-1)
    if got.shape != want.shape:
        return False
    eps = np.finfo(np.result_type(c.dtype, np.float32)).eps
    scale = np.sqrt(np.sum(np.abs(block) ** 2, axis=1)) * np.linalg.norm(c) + np.abs(want) \
        + np.finfo(got.dtype).tiny
    return bool(np.all(np.abs(got - want) <= 1e3 * eps * np.sqrt(c.size) * scale))
