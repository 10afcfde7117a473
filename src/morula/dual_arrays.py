"""The dual-array type the NumPy rules register, and the computations already checked.

In: the registration of ``rules/numpy_duals.py`` (arrays carrying k tangents). Out: ``DUALS``,
``[(seeded, parts, recording)]`` -- ``seeded(x, directions)`` makes a dual array,
``parts(value, k, shape)`` reads ``(primal, tangents)`` back, ``recording()`` collects the record
of the operations run on dual arrays -- and ``checked(record, check)``: ``check()`` the first
time a record is seen, its remembered answer afterwards (``batched_hessian``, ``batched_jacfwd``).
"""

DUALS = []
CHECKED = {}   # record of a computation on dual arrays -> did it agree with the exact method
_CHECKED_MAX = 4096


def checked(record, check):
    agreed = CHECKED.get(record)
    if agreed is None:
        agreed = bool(check())
        if len(CHECKED) >= _CHECKED_MAX:
            CHECKED.clear()
        CHECKED[record] = agreed
    return agreed
