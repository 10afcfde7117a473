"""Systematic sweeps of the NumPy rules with ``morula.testing.check_rule``.

Every function, method and attribute registered by the rule modules listed in
``SWEPT_MODULES`` is checked over shapes (scalar, vector, matrix, batched, empty
where legal), axes (None, int, negative, tuples), ``keepdims``, dtypes
(float64, float32, complex128 where legal) and broadcasting partners, against
central finite differences. ``test_every_rule_is_swept`` keeps it that way: a
rule added to one of these modules without a sweep entry fails it.
"""

import warnings

import numpy as np
import pytest

import morula.rules.numpy_rules  # noqa: F401
from morula.rules.registry import REGISTRY
from morula.testing import check_rule

SWEPT_MODULES = {
    "morula.rules.numpy_elementwise", "morula.rules.numpy_reductions", "morula.rules.numpy_shape",
    "morula.rules.numpy_indexing", "morula.rules.numpy_creation", "morula.rules.numpy_products",
    "morula.rules.numpy_signal",
}  # fmt: skip

F64, F32, C128 = np.float64, np.float32, np.complex128


def gen(seed):
    return np.random.default_rng(seed)


def normal(shape, g):
    return g.standard_normal(shape)


def between(lo, hi):
    return lambda shape, g: g.uniform(lo, hi, shape)


def away(shape, g):
    return g.uniform(0.5, 2.0, shape) * g.choice([-1.0, 1.0], shape)


POS = between(0.5, 2.0)


def complex_domain(shape, g):
    return g.uniform(0.3, 0.8, shape) + 1j * g.uniform(0.2, 0.6, shape)


def value(domain, shape, dtype, seed=0):
    """A sample of ``domain`` with ``shape`` and ``dtype`` (NumPy scalar for shape ``()``)."""
    g = gen(seed)
    x = complex_domain(shape, g) if np.dtype(dtype).kind == "c" else domain(shape, g)
    x = np.asarray(x, dtype=dtype)
    return x[()] if shape == () else x


CASES = []  # (id, fn, args, kwargs)
SWEPT = set()


def case(fn, *args, **kwargs):
    name = kwargs.pop("_id", "")
    SWEPT.add(fn)
    CASES.append((f"{_name(fn)}-{len(CASES)}{name}", fn, args, kwargs))


def _name(fn):
    if isinstance(fn, tuple):
        return f"{getattr(fn[0], '__name__', fn[0])}.{fn[1]}"
    return getattr(fn, "__name__", str(fn))


def dtype_id(dtype):
    return np.dtype(dtype).name


# -- elementwise -------------------------------------------------------------------------------------

SHAPES = [(), (3,), (2, 3), (2, 3, 4), (0,), (2, 0)]

UNARY = [  # fn, domain, complex allowed
    (np.exp, normal, True), (np.exp2, normal, True), (np.expm1, normal, True),
    (np.log, POS, True), (np.log2, POS, True), (np.log10, POS, True),
    (np.log1p, between(-0.5, 2.0), True), (np.sqrt, POS, True), (np.cbrt, away, False),
    (np.square, normal, True), (np.reciprocal, away, True), (np.sin, normal, True),
    (np.cos, normal, True), (np.tan, between(-1.2, 1.2), True), (np.sinh, normal, True),
    (np.cosh, normal, True), (np.tanh, normal, True), (np.arcsin, between(-0.9, 0.9), True),
    (np.arccos, between(-0.9, 0.9), True), (np.arctan, normal, True), (np.arcsinh, normal, True),
    (np.arccosh, between(1.2, 3.0), True), (np.arctanh, between(-0.9, 0.9), True),
    (np.deg2rad, normal, False), (np.radians, normal, False), (np.rad2deg, normal, False),
    (np.degrees, normal, False), (np.absolute, away, True), (np.fabs, away, False),
    (np.negative, normal, True), (np.positive, normal, True), (np.conjugate, normal, True),
    (np.real, normal, True), (np.imag, normal, True), (np.sinc, away, True),
    (np.angle, away, True), (np.nan_to_num, normal, True),
]  # fmt: skip

for fn, domain, complex_ok in UNARY:
    for shape in SHAPES:
        for dtype in (F64, F32) + ((C128,) if complex_ok else ()):
            case(fn, value(domain, shape, dtype), _id=f"-{shape}-{dtype_id(dtype)}")
    case(fn, float(value(domain, (), F64)), _id="-pyfloat")
    if complex_ok:
        case(fn, complex(value(domain, (), C128)), _id="-pycomplex")

PAIRS = [((2, 3), (2, 3)), ((3,), (2, 3)), ((1, 3), (2, 1)), ((), (2, 3)), ((2, 3), ()),
         ((2, 1, 4), (3, 1)), ((0,), (0,)), ((0, 3), (3,))]  # fmt: skip

BINARY = [  # fn, domain 1, domain 2, complex allowed
    (np.add, normal, normal, True), (np.subtract, normal, normal, True),
    (np.multiply, normal, normal, True), (np.divide, normal, away, True),
    (np.power, POS, normal, True), (np.float_power, POS, normal, True),
    (np.arctan2, away, away, False), (np.hypot, away, away, False),
    (np.logaddexp, normal, normal, False), (np.logaddexp2, normal, normal, False),
    (np.maximum, normal, normal, False), (np.minimum, normal, normal, False),
    (np.fmax, normal, normal, False), (np.fmin, normal, normal, False),
    (np.remainder, between(0.1, 0.9), between(1.0, 2.0), False),
    (np.fmod, between(-0.9, 0.9), between(1.0, 2.0), False),
    (np.copysign, away, away, False), (np.divmod, between(2.1, 2.9), between(1.0, 2.0), False),
]  # fmt: skip

for fn, d1, d2, complex_ok in BINARY:
    for s1, s2 in PAIRS:
        case(fn, value(d1, s1, F64, 1), value(d2, s2, F64, 2), _id=f"-{s1}-{s2}")
    case(fn, value(d1, (2, 3), F32, 1), value(d2, (3,), F32, 2), _id="-float32")
    case(fn, float(value(d1, (), F64, 1)), value(d2, (3,), F64, 2), _id="-pyfloat-array")
    case(fn, value(d1, (3,), F64, 1), float(value(d2, (), F64, 2)), _id="-array-pyfloat")
    case(fn, value(d1, (3,), F64, 1), np.array([1, 2, 3]), _id="-int-partner")
    if complex_ok:
        case(fn, value(d1, (2, 3), C128, 1), value(d2, (3,), C128, 2), _id="-complex")
        case(fn, value(d1, (3,), F64, 1), value(d2, (2, 3), C128, 2), _id="-real-complex")

# clip / where / select
for dtype in (F64, F32):
    x = value(normal, (3, 4), dtype, 3)
    case(np.clip, x, dtype(-0.5), dtype(0.5))
    case(np.clip, x, value(between(-1, -0.2), (4,), dtype, 4), value(between(0.2, 1), (3, 1), dtype, 5))
    case(np.clip, x, None, dtype(0.3))
    case(np.clip, x, -0.3, None)
    case(np.clip, value(normal, (), dtype, 6), -0.3, 0.4)
    case(("ndarray", "clip"), x, -0.5, 0.5)
    cond = value(normal, (3, 4), F64, 7) > 0
    case(np.where, cond, x, value(normal, (4,), dtype, 8))
    case(np.where, cond[0], x, 0.5)
    case(np.where, cond, 1.5, value(normal, (3, 1), dtype, 9))
    case(np.where, cond)
    conds = [x > 0.5, x < -0.5]
    case(np.select, conds, [x, value(normal, (4,), dtype, 10)], 0.25)
    case(np.select, conds, (x, 2.0), value(normal, (3, 4), dtype, 11))
case(np.clip, value(normal, (0, 3), F64), -0.5, 0.5)
case(np.where, np.array([True, False]), value(normal, (2,), C128), value(normal, (2,), C128))
case(np.select, [np.array([True, False, True])], [value(normal, (3,), C128)], 0j)
case(np.select, [np.array([True, False, True]), np.array([False, True, True])], value(normal, (2, 3), F64),
     value(normal, (3,), F64))

# nan_to_num with non-finite entries, replacement values differentiable
_special = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
case(np.nan_to_num, _special)
case(np.nan_to_num, _special, True, 0.5, 10.0, -10.0)
case(np.nan_to_num, _special.astype(F32), nan=1.5)
_special_complex = _special.astype(C128)
_special_complex.imag = _special[::-1]
case(np.nan_to_num, _special_complex, True, 0.5, 3.0, -3.0)
case(np.angle, value(away, (3,), C128), True)

# ufuncs with two outputs, ldexp, nextafter
for _shape in [(), (3,), (2, 3)]:
    for _dt in (F64, F32):
        case(np.frexp, value(normal, _shape, _dt))
        case(np.modf, value(normal, _shape, _dt))
        case(np.ldexp, value(normal, _shape, _dt), np.full(_shape, 2, dtype=np.int32))
        case(np.nextafter, value(normal, _shape, _dt), np.asarray(np.full(_shape, 10.0), dtype=_dt))

# -- reductions ---------------------------------------------------------------------------------------

AXES = [((), None), ((3,), None), ((3,), 0), ((3,), -1), ((2, 3), None), ((2, 3), 0), ((2, 3), -1),
        ((2, 3), (0, 1)), ((2, 3, 4), None), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 3, 4), (0, 2)),
        ((2, 3, 4), (-1, 0))]  # fmt: skip

REDUCTIONS = [np.sum, np.mean, np.prod, np.max, np.min, np.amax, np.amin, np.nansum, np.nanmean,
              np.nanmax, np.nanmin, np.var, np.std, np.ptp, np.median]  # fmt: skip
COMPLEX_REDUCTIONS = {np.sum, np.mean, np.prod, np.nansum, np.nanmean, np.var, np.std}

for fn in REDUCTIONS:
    for shape, axis in AXES:
        for keepdims in (False, True):
            if fn is np.median and shape == ():
                continue
            case(fn, value(away, shape, F64, 12), axis=axis, keepdims=keepdims,
                 _id=f"-{shape}-{axis}-{keepdims}")
    case(fn, value(away, (2, 3), F32, 13), axis=1, _id="-float32")
    case(fn, value(away, (2, 3), F32, 13), _id="-float32-all")
    case(fn, [0.5, -1.5, 2.5], _id="-list")
    if fn in COMPLEX_REDUCTIONS:
        case(fn, value(away, (2, 3), C128, 14), axis=0, _id="-complex")
        case(fn, value(away, (2, 3), C128, 14), _id="-complex-all")

for fn in (np.sum, np.prod, np.nansum):  # empty reductions
    case(fn, np.zeros((0, 3)), axis=0, _id="-empty")
    case(fn, np.zeros((2, 0)), _id="-empty-all")

_with_nan = np.array([[1.0, np.nan, 3.0, -0.5], [2.0, 5.0, np.nan, 0.25], [0.7, -1.2, 1.9, 4.0]])
for fn in (np.nansum, np.nanmean, np.nanmax, np.nanmin, np.max, np.sum, np.median):
    case(fn, _with_nan, axis=1, _id="-nan")
    case(fn, _with_nan, axis=0, keepdims=True, _id="-nan-keep")

_x = value(away, (3, 4), F64, 15)
_mask = np.array([[True, False, True, True], [False, True, True, True], [True, True, False, True]])
for fn in (np.sum, np.mean, np.prod, np.var, np.std, np.nansum):
    case(fn, _x, axis=1, where=_mask, _id="-where")
case(np.max, _x, axis=1, where=_mask, initial=-10.0)
case(np.min, _x, where=_mask, initial=10.0)
case(np.sum, _x, initial=2.0)
case(np.sum, _x, axis=0, initial=2.0, keepdims=True)
case(np.nansum, _with_nan, axis=1, initial=-1.0)
case(np.prod, _x, axis=1, initial=2.0)
case(np.prod, np.arange(1, 4), initial=1.5)
case(np.max, _x, axis=0, initial=0.6)
case(np.min, _x, axis=1, initial=-0.6)
case(np.max, np.arange(3), initial=0.5)
for fn in (np.var, np.std):
    for ddof in (0, 1):
        case(fn, _x, axis=0, ddof=ddof)
    case(fn, _x, 1, None, None, 1, True, _id="-positional")

# average
_w4 = value(POS, (4,), F64, 16)
for returned in (False, True):
    case(np.average, _x, returned=returned)
    case(np.average, _x, 1, _w4, returned)
    case(np.average, _x, axis=0, weights=value(POS, (3,), F64, 17), returned=returned)
    case(np.average, _x, axis=None, weights=value(POS, (3, 4), F64, 18), returned=returned)
    case(np.average, _x, axis=(0, 1), weights=value(POS, (3, 4), F64, 18), returned=returned,
         keepdims=True)
    case(np.average, value(away, (2, 3, 4), F64), axis=(2, 0), weights=value(POS, (4, 2), F64),
         returned=returned)
case(np.average, _x.astype(F32), axis=1, weights=_w4.astype(F32))
case(np.average, _x + 1j * _x[::-1], axis=1, weights=_w4)
case(np.average, [1.0, 2.0, 4.0], weights=[0.5, 0.25, 0.25])

# median / quantile / percentile
METHODS = ["linear", "hazen", "weibull", "median_unbiased", "normal_unbiased",
           "interpolated_inverted_cdf", "lower", "higher", "midpoint", "nearest"]  # fmt: skip
_x3 = value(away, (2, 3, 4), F64, 19)
for method in METHODS:
    case(np.quantile, _x3, [0.1, 0.55, 0.97], axis=1, method=method)
    case(np.percentile, _x3, 37.0, axis=(0, 2), method=method, keepdims=True)
for axis in (None, 0, -1, (0, 2)):
    for keepdims in (False, True):
        case(np.quantile, _x3, 0.3, axis=axis, keepdims=keepdims)
        case(np.percentile, _x3, np.array([[5.0, 50.0], [75.0, 99.0]]), axis=axis, keepdims=keepdims)
case(np.quantile, _x.astype(F32), 0.7, axis=0)
case(np.quantile, [3.0, 1.0, 2.0, 5.0], [0.25, 0.5])
case(np.quantile, _with_nan, 0.4, axis=1)
case(np.median, value(away, (7,), F64))
case(np.median, value(away, (6,), F64))

# scans and differences
_zeros = np.array([[2.0, 0.0, 3.0, 0.5], [0.0, 1.5, 0.0, 2.0], [1.2, -0.7, 0.9, 0.0]])
for fn in (np.cumsum, np.cumprod, np.nancumsum, np.nancumprod):
    for shape, axis in [((), None), ((4,), None), ((4,), 0), ((2, 3), None), ((2, 3), 0),
                        ((2, 3), -1), ((2, 3, 4), 1), ((0,), 0)]:
        case(fn, value(away, shape, F64, 20), axis=axis, _id=f"-{shape}-{axis}")
    case(fn, value(away, (2, 3), F32, 21), axis=1, _id="-float32")
    case(fn, _zeros, axis=1, _id="-zeros")
    case(fn, _zeros, _id="-zeros-flat")
    case(fn, _with_nan, axis=0, _id="-nan")
    if fn in (np.cumsum, np.cumprod):
        case(fn, value(away, (2, 3), C128, 22), axis=0, _id="-complex")
        case(fn, _zeros + 1j * _zeros[::-1], axis=1, _id="-complex-zeros")
case(np.cumprod, np.zeros((2, 3)), axis=1)
case(np.cumprod, [1.5, 0.0, 2.0, 0.0, 3.0])
for fn in (np.cumulative_sum, np.cumulative_prod):
    for include_initial in (False, True):
        case(fn, value(away, (5,), F64), include_initial=include_initial)
        case(fn, value(away, (2, 3), F64), axis=1, include_initial=include_initial)
        case(fn, value(away, (2, 3), F64), axis=0, include_initial=include_initial)
    case(fn, _zeros.astype(F32), axis=1)

for n in (1, 2, 3):
    for axis in (-1, 0):
        case(np.diff, value(away, (4, 5), F64, 23), n, axis)
case(np.diff, value(away, (5,), F32))
case(np.diff, value(away, (3, 4), F64), n=2, axis=0, prepend=1.5, append=value(away, (1, 4), F64))
case(np.diff, value(away, (3, 4), F64), prepend=value(away, (3, 2), F64), append=-0.5)
case(np.diff, value(away, (3, 4), C128), axis=0)
case(np.diff, [1.0, 4.0, 9.0, 16.0], 2)
case(np.diff, value(away, (3,), F64), 0)

# -- shape functions ------------------------------------------------------------------------------------


def shaped(*shape, dtype=F64, seed=30):
    return value(normal, shape, dtype, seed + sum(shape))


SHAPE_CASES = [
    (np.reshape, lambda x: (x, (3, 2))), (np.reshape, lambda x: (x, -1)),
    (np.reshape, lambda x: (x, (3, 2), "F")), (np.transpose, lambda x: (x,)),
    (np.transpose, lambda x: (x, (1, 0))), (np.squeeze, lambda x: (x[None],)),
    (np.squeeze, lambda x: (x[:, None], 1)), (np.expand_dims, lambda x: (x, (0, -1))),
    (np.broadcast_to, lambda x: (x, (4, 2, 3))), (np.ravel, lambda x: (x,)),
    (np.ravel, lambda x: (x, "F")), (np.swapaxes, lambda x: (x, 0, -1)),
    (np.moveaxis, lambda x: (x, 0, 1)), (np.rollaxis, lambda x: (x, 1)),
    (np.rollaxis, lambda x: (x, -1, 0)), (np.flip, lambda x: (x,)), (np.flip, lambda x: (x, 1)),
    (np.fliplr, lambda x: (x,)), (np.flipud, lambda x: (x,)), (np.rot90, lambda x: (x,)),
    (np.rot90, lambda x: (x, 3)), (np.rot90, lambda x: (x, -2, (1, 0))),
    (np.atleast_1d, lambda x: (x,)), (np.atleast_2d, lambda x: (x[0],)),
    (np.atleast_3d, lambda x: (x,)), (np.atleast_2d, lambda x: (x, x[0])), (np.copy, lambda x: (x,)),
    (np.roll, lambda x: (x, 2)), (np.roll, lambda x: (x, -1, 1)), (np.roll, lambda x: (x, (1, 2), (0, 1))),
    (np.tile, lambda x: (x, 2)), (np.tile, lambda x: (x, (2, 1, 2))), (np.repeat, lambda x: (x, 2)),
    (np.repeat, lambda x: (x, [1, 0, 3], 1)), (np.repeat, lambda x: (x, 2, -2)),
    (np.diagonal, lambda x: (x,)), (np.diagonal, lambda x: (x, 1)), (np.diagonal, lambda x: (x, -1, 1, 0)),
    (np.trace, lambda x: (x,)), (np.trace, lambda x: (x, 1)), (np.diag, lambda x: (x,)),
    (np.diag, lambda x: (x[0], 1)), (np.diagflat, lambda x: (x,)), (np.diagflat, lambda x: (x, -1)),
    (np.tril, lambda x: (x,)), (np.tril, lambda x: (x, 1)), (np.triu, lambda x: (x, -1)),
    (np.sort, lambda x: (x,)), (np.sort, lambda x: (x, 0)), (np.sort, lambda x: (x, None)),
    (np.partition, lambda x: (x, 1)), (np.partition, lambda x: (x, [0, 1], 0)),
    (np.partition, lambda x: (x, 3, None)), (np.matrix_transpose, lambda x: (x,)),
    (np.pad, lambda x: (x, 1)), (np.pad, lambda x: (x, ((1, 0), (2, 1)))),
    (np.append, lambda x: (x, x[0])), (np.append, lambda x: (x, x, 0)),
    (np.delete, lambda x: (x, 1)), (np.delete, lambda x: (x, [0, 2], 1)),
    (np.insert, lambda x: (x, 1, x[0], 0)), (np.insert, lambda x: (x, [0, 2], 2.5)),
    (np.unique, lambda x: (x,)), (np.unique, lambda x: (x, True, True, True)),
    (np.unique_values, lambda x: (x,)), (np.unstack, lambda x: (x,)),
    (np.split, lambda x: (x, 3, 1)), (np.split, lambda x: (x, [1], 0)),
    (np.array_split, lambda x: (x, 2, 1)), (np.hsplit, lambda x: (x, [1, 2])),
    (np.vsplit, lambda x: (x, 2)), (np.dsplit, lambda x: (x[..., None] * np.ones(4), [1, 3])),
]  # fmt: skip

for fn, make in SHAPE_CASES:
    for dtype in (F64, F32, C128):
        if dtype is C128 and fn in (np.sort, np.partition, np.unique_values):
            continue  # complex order is lexicographic (unique_values: unspecified): not smooth
        case(fn, *make(shaped(2, 3, dtype=dtype)), _id=f"-{dtype_id(dtype)}")

for mode in ("constant", "edge", "reflect", "symmetric", "wrap", "linear_ramp", "mean"):
    for dtype in (F64, F32, C128):
        case(np.pad, shaped(3, 4, dtype=dtype), ((2, 3), (1, 4)), mode, _id=f"-{mode}-{dtype_id(dtype)}")
    case(np.pad, shaped(2, 3, 4), 2, mode, _id=f"-{mode}-3d")
    case(np.pad, shaped(3), (5, 7), mode, _id=f"-{mode}-wide")
case(np.pad, shaped(3, 4), ((2, 3), (1, 4)), "reflect", reflect_type="odd")
case(np.pad, shaped(3, 4), 2, "symmetric", reflect_type="odd")
case(np.pad, shaped(3, 4), 2, "mean", stat_length=((1, 2), (2, 1)))
case(np.pad, shaped(3, 4), 2, "linear_ramp", end_values=(1.0, 2.0))
case(np.pad, shaped(3, 4), 1, constant_values=3.0)

for dtype in (F64, F32, C128):
    a, b = shaped(2, 3, dtype=dtype), shaped(4, 3, dtype=dtype, seed=40)
    case(np.concatenate, [a, b])
    case(np.concatenate, (a, shaped(2, 2, dtype=dtype)), 1)
    case(np.concatenate, [a, b[0]], None)
    case(np.stack, [a, a * 2], 1)
    case(np.stack, (a, a), -1)
    case(np.hstack, [a, shaped(2, 1, dtype=dtype)])
    case(np.vstack, [a, a[0]])
    case(np.row_stack, [a, a[0]])
    case(np.column_stack, [a[0], a[1], a.T])
    case(np.dstack, (a, a[..., None], a))
case(np.concatenate, [shaped(3), [1.0, 2.0], np.arange(2)])
case(np.hstack, (1.0, shaped(2), 3.0))
case(np.stack, [1.0, 2.0, shaped()])
case(np.concatenate, [np.zeros((0, 3)), shaped(2, 3)])

for dtype in (F64, F32, C128):
    x = shaped(2, 3, dtype=dtype)
    case(np.ndarray.astype, x, np.float64)
    case(np.ndarray.astype, x, np.complex128)
    for name, extra in [("reshape", (3, 2)), ("reshape", ((6,),)), ("transpose", ()), ("transpose", (1, 0)),
                        ("ravel", ()), ("ravel", ("F",)), ("flatten", ()), ("squeeze", ()), ("copy", ()),
                        ("swapaxes", (0, 1)), ("repeat", (2, 1)), ("diagonal", (1,)), ("trace", ()),
                        ("conj", ()), ("conjugate", ()), ("take", ([2, 0, 2], 1)),
                        ("compress", ([True, False], 0)),
                        ("tolist", ()), ("item", (4,)), ("item", (1, 2))]:
        case(("ndarray", name), x, *extra, _id=f"-{dtype_id(dtype)}")
    for name in ("sum", "mean", "prod", "max", "min", "var", "std", "cumsum", "cumprod"):
        if dtype is C128 and name in ("max", "min"):
            continue
        for axis in (None, 0, -1):
            case(("ndarray", name), value(away, (2, 3), dtype, 41), axis, _id=f"-{axis}-{dtype_id(dtype)}")
    for attr in ("T", "mT", "real", "imag"):
        case(("ndarray", attr), shaped(2, 3, 4, dtype=dtype), _id=f"-{dtype_id(dtype)}")
    case(("generic", "real"), shaped(dtype=dtype))
    case(("generic", "imag"), shaped(dtype=dtype))
    case(("generic", "item"), shaped(dtype=dtype))
    case(("generic", "tolist"), shaped(dtype=dtype))
case(("ndarray", "sum"), shaped(2, 3), axis=(0, 1), keepdims=True)
case(("ndarray", "mean"), shaped(2, 3), 0, None, None, True)

# -- indexing -------------------------------------------------------------------------------------------

for dtype in (F64, F32, C128):
    x = shaped(3, 4, dtype=dtype)
    case(np.take, x, [0, 2, 2])
    case(np.take, x, [1, 1, 0], axis=1)
    case(np.take, x, np.array([[0, 2], [2, 2]]), 0)
    case(np.take, x, [-1, 7], axis=1, mode="wrap")
    case(np.take, x, [-3, 9], mode="clip")
    case(np.take, x, 2, axis=-1)
    case(np.take_along_axis, x, np.array([[0, 0, 3], [1, 2, 2], [3, 3, 3]]), 1)
    case(np.take_along_axis, x, np.array([[2, 0, 1, 1]]), 0)
    case(np.take_along_axis, x, np.argsort(np.real(x), axis=1), -1)
    case(np.take_along_axis, np.ravel(x), np.array([5, 5, 0]), None)
    case(np.compress, [True, False, True], x, 0)
    case(np.compress, [False, True, True, False], x, axis=1)
    case(np.compress, [False, True, True], x)
    case(np.extract, np.real(x) > 0, x)
    idx = np.array([[0, 1, 2, 1], [2, 2, 0, 1], [1, 0, 0, 0]])
    case(np.choose, idx, [x, shaped(4, dtype=dtype), 2.5])
    case(np.choose, idx + 3, (x, shaped(4, dtype=dtype), x), mode="wrap")
    case(np.choose, idx - 1, shaped(3, 3, 4, dtype=dtype), mode="clip")

# -- creation -------------------------------------------------------------------------------------------

for fn in (np.array, np.asarray, np.asanyarray, np.ascontiguousarray, np.asfortranarray):
    for dtype in (F64, F32, C128):
        case(fn, shaped(2, 3, dtype=dtype))
    case(fn, [[1.0, 2.0], [3.0, 4.5]])
    case(fn, (1.5, shaped(), np.float32(2.0)))
    case(fn, [shaped(2), shaped(2, seed=5)])
    case(fn, 2.5)
case(np.array, shaped(3), ndmin=3)
case(np.asarray, shaped(2, 3), np.float32)
for dtype in (F64, F32, C128):
    case(np.full, (2, 3), dtype(1.5))
    case(np.full_like, shaped(2, 3, dtype=dtype), dtype(0.5))
case(np.full, (2, 3), shaped(3))
case(np.full, 4, 2.5)
case(np.linspace, 0.5, 2.5, 5)
case(np.linspace, shaped(3), shaped(3, seed=7), 4, axis=1)
case(np.linspace, 0.0, 1.0, 6, endpoint=False, retstep=True)
case(np.linspace, np.float32(0.0), np.float32(1.0), 4)
for indexing in ("xy", "ij"):
    for sparse in (False, True):
        case(np.meshgrid, shaped(3), shaped(4), shaped(2), indexing=indexing, sparse=sparse)
        case(np.meshgrid, shaped(3), shaped(4), indexing=indexing, sparse=sparse)
        case(np.meshgrid, shaped(3), indexing=indexing, sparse=sparse)
case(np.meshgrid, shaped(3, dtype=F32), np.arange(3), copy=False)
case(np.meshgrid, shaped(2, 2), [1.0, 2.0])
case(np.meshgrid, shaped(3, dtype=C128), shaped(2, dtype=C128))
case(np.vander, shaped(4))
case(np.vander, shaped(3), 5, True)
case(np.vander, np.array([0.0, 1.0, -2.0]), 4)
case(np.vander, shaped(3, dtype=C128), 3)
case(np.vander, shaped(3, dtype=F32), 4)
case(np.vander, shaped(3), 1)
for kind in (np.float64, np.float32, np.float16, np.complex128, np.complex64, np.longdouble):
    case(kind, 2.5)
    case(kind, shaped())
for kind in (np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_):
    case(kind, 3.7)

# -- products and signal ----------------------------------------------------------------------------------

for dtype in (F64, F32, C128):
    case(np.kron, shaped(2, 3, dtype=dtype), shaped(3, 2, dtype=dtype))
    case(np.kron, shaped(3, dtype=dtype), shaped(2, 2, dtype=dtype))
    case(np.kron, shaped(2, 1, 3, dtype=dtype), shaped(4, dtype=dtype))
    case(np.cross, shaped(3, dtype=dtype), shaped(3, dtype=dtype, seed=1))
    case(np.cross, shaped(4, 3, dtype=dtype), shaped(3, dtype=dtype))
    case(np.cross, shaped(3, 4, dtype=dtype), shaped(2, 1, 3, dtype=dtype), axisa=0, axisb=-1, axisc=1)
    case(np.cross, shaped(3, 2, dtype=dtype), shaped(3, 2, dtype=dtype, seed=2), axis=0)
case(np.kron, 2.0, shaped(3))
case(np.kron, shaped(2, 2), np.eye(2, dtype=int))

for mode in ("full", "same", "valid"):
    for la, lv in [(7, 3), (3, 7), (4, 4), (1, 5)]:
        for fn in (np.convolve, np.correlate):
            case(fn, shaped(la), shaped(lv, seed=3), mode)
            case(fn, shaped(la, dtype=C128), shaped(lv, dtype=C128, seed=3), mode)
        case(np.convolve, shaped(la, dtype=C128), shaped(lv, seed=4), mode)
case(np.correlate, shaped(5), shaped(3))
case(np.convolve, shaped(5, dtype=F32), shaped(2, dtype=F32))
case(np.convolve, [1.0, 2.0, 3.0], [0.5, -1.0])

_xp = np.sort(gen(5).uniform(0, 10, 6))
_fp = shaped(6)
_xi = gen(6).uniform(-2, 12, (3, 4))
case(np.interp, _xi, _xp, _fp)
case(np.interp, _xi, _xp, _fp, -1.0, 2.0)
case(np.interp, 3.3, _xp, _fp)
case(np.interp, _xi, _xp, _fp + 1j * shaped(6, seed=9))
case(np.interp, _xi, list(_xp), list(_fp))
case(np.interp, gen(7).uniform(-20, 30, 9), _xp, _fp, period=7.0)
case(np.interp, _xi.astype(F32), _xp, _fp)

for dtype in (F64, F32, C128):
    case(np.polyval, shaped(4, dtype=dtype), shaped(2, 3, dtype=dtype))
case(np.polyval, [1.0, 2.0, -0.5], 0.7)
case(np.polyval, shaped(1), shaped(3))
case(np.polyval, shaped(3), np.arange(3))

_y = shaped(3, 5)
for dtype in (F64, F32, C128):
    case(np.trapezoid, shaped(3, 5, dtype=dtype))
    case(np.trapezoid, shaped(3, 5, dtype=dtype), np.sort(shaped(5)))
case(np.trapezoid, _y, dx=0.3)
if hasattr(np, "trapz"):   # removed in NumPy 2.4
    case(np.trapz, _y, dx=0.3)
case(np.trapezoid, _y, None, 0.3, 0)
case(np.trapezoid, _y, np.sort(shaped(3)), axis=0)
case(np.trapezoid, _y, np.sort(shaped(3, 5), axis=1))
case(np.trapezoid, shaped(4), dx=shaped(3))
case(np.trapezoid, [1.0, 2.0, 4.0], [0.0, 1.0, 3.0])
case(np.trapezoid, shaped(4))


# -- the tests ----------------------------------------------------------------------------------------------


def _resolve(fn):
    if isinstance(fn, tuple) and isinstance(fn[0], str):
        return ({"ndarray": np.ndarray, "generic": np.generic}[fn[0]], fn[1])
    return fn


@pytest.mark.parametrize("fn,args,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sweep(fn, args, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # np.row_stack, 2-vectors in np.cross
        warnings.simplefilter("ignore", RuntimeWarning)  # nan_to_num, empty means
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)  # casts in the scalar types
        check_rule(_resolve(fn), *args, **kwargs)


def _swept_keys():
    functions, members = set(), set()
    for fn in SWEPT:
        fn = _resolve(fn)
        if isinstance(fn, tuple):
            members.add(fn)
        elif getattr(fn, "__objclass__", None) is not None:
            members.add((fn.__objclass__, fn.__name__))
        else:
            functions.add(fn)
    return functions, members


def test_every_rule_is_swept():
    functions, members = _swept_keys()
    missing = [getattr(fn, "__name__", repr(fn)) for fn, rule in REGISTRY.functions.items()
               if getattr(rule, "__module__", None) in SWEPT_MODULES and fn not in functions]
    missing += [f"{cls.__name__}.{name}" for (cls, name), rule in
                list(REGISTRY.methods.items()) + list(REGISTRY.attributes.items())
                if getattr(rule, "__module__", None) in SWEPT_MODULES and (cls, name) not in members]
    assert not missing, f"rules without a sweep entry in {__name__}: {sorted(missing)}"
