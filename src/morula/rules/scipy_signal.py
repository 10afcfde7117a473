"""Reverse rules for ``scipy.signal`` convolutions (imported lazily, once SciPy is imported).

In: nothing (importing registers the rules). Out: rules for ``convolve``,
``correlate``, ``fftconvolve``, ``oaconvolve`` (modes 'full', 'same', 'valid'; any
number of dimensions; ``axes=`` for the FFT variants) and ``convolve2d`` (boundary
'fill' with fillvalue 0 only).

How: every mode's output is a slice of the full convolution, centred the way SciPy
centres it (start = (full - out) // 2 along each convolved axis; this holds for 'same',
and for 'valid' with either operand the larger). The pullback places ``dy`` into a zero
full-size array ``g`` and then

    d in1 = convolve(g, flip(conj(in2)), 'valid'),   d in2 = convolve(g, flip(conj(in1)), 'valid')

(the adjoint of convolution is correlation with the other operand). ``correlate(in1, in2)``
equals ``convolve(in1, flip(conj(in2)))`` in every mode, so its rule reuses these and
maps the cotangent back through flip and conj. The pullback convolutions use the same
SciPy function family (``fftconvolve`` for the FFT variants, ``convolve`` with the same
``method`` otherwise). For the ``axes=`` variants, axes that are not convolved broadcast
elementwise and their cotangents are summed back (``cotangent``). Cotangents keep each
operand's shape and floating dtype; integer operands get ``None``.
"""

import numpy as np
import scipy.signal as ss

from morula.errors import UnsupportedOperationError
from morula.rules.numpy_vspace import as_operand, conj, cotangent, inexact, numpy_rule


def _conv_axes(ndim, axes):
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    return tuple(sorted(int(a) % ndim for a in axes))


def _full_shape(s1, s2, axes):
    """Shape of the 'full' output: n1 + n2 - 1 on convolved axes, the broadcast elsewhere."""
    return tuple(
        (a + b - 1) if i in axes else max(a, b) for i, (a, b) in enumerate(zip(s1, s2))
    )


def _place(dy, full_shape):
    """``dy`` (a centred slice of the full output) inside zeros of the full shape."""
    dshape = np.shape(dy)
    if tuple(dshape) == tuple(full_shape):
        return dy
    index = []
    for i, n in enumerate(full_shape):
        # SciPy centres 'same' on every axis, also the broadcast (not convolved) ones
        start = (n - dshape[i]) // 2
        index.append(slice(start, start + dshape[i]))
    g = np.zeros(full_shape, dtype=np.result_type(dy))
    g[tuple(index)] = dy
    return g


def _flip(x, axes):
    return np.flip(x, axis=axes) if axes else x


def _convolution_cotangents(dy, u1, u2, x1, x2, axes, conv):
    """Cotangents of ``x1`` and ``x2`` for ``y = centred slice of conv(x1, x2, 'full')``."""
    full = _full_shape(np.shape(u1), np.shape(u2), axes)
    g = _place(dy, full)
    d1 = cotangent(conv(g, _flip(conj(u2), axes), "valid"), x1) if inexact(x1) else None
    d2 = cotangent(conv(g, _flip(conj(u1), axes), "valid"), x2) if inexact(x2) else None
    return d1, d2


def _operands(in1, in2):
    u1, u2 = as_operand(in1), as_operand(in2)
    if np.ndim(u1) != np.ndim(u2):
        raise ValueError("in1 and in2 should have the same dimensionality")
    return u1, u2


# -- convolve / correlate (direct or FFT, all axes) ----------------------------------------------


@numpy_rule(ss.convolve)
def convolve_rule(in1, in2, mode="full", method="auto"):
    y = ss.convolve(in1, in2, mode=mode, method=method)
    if not (inexact(in1) or inexact(in2)):
        return y, None
    u1, u2 = _operands(in1, in2)
    axes = _conv_axes(np.ndim(u1), None)

    def conv(a, b, m):
        return ss.convolve(a, b, mode=m, method=method)

    def convolve_pullback(dy):
        return _convolution_cotangents(dy, u1, u2, in1, in2, axes, conv)

    return y, convolve_pullback


@numpy_rule(ss.correlate)
def correlate_rule(in1, in2, mode="full", method="auto"):
    y = ss.correlate(in1, in2, mode=mode, method=method)
    if not (inexact(in1) or inexact(in2)):
        return y, None
    u1, u2 = _operands(in1, in2)
    axes = _conv_axes(np.ndim(u1), None)
    kernel = _flip(conj(u2), axes)  # correlate(in1, in2) == convolve(in1, kernel)

    def conv(a, b, m):
        return ss.convolve(a, b, mode=m, method=method)

    def correlate_pullback(dy):
        d1, dk = _convolution_cotangents(dy, u1, kernel, in1, kernel, axes, conv)
        d2 = cotangent(conj(_flip(dk, axes)), in2) if dk is not None and inexact(in2) else None
        return d1, d2

    return y, correlate_pullback


# -- fftconvolve / oaconvolve (axes=) ------------------------------------------------------------


def _fft_rule_for(fn):
    def fft_convolution_rule(in1, in2, mode="full", axes=None):
        y = fn(in1, in2, mode=mode, axes=axes)
        if not (inexact(in1) or inexact(in2)):
            return y, None
        u1, u2 = _operands(in1, in2)
        conv_axes = _conv_axes(np.ndim(u1), axes)

        def conv(a, b, m):
            return ss.fftconvolve(a, b, mode=m, axes=conv_axes)

        def fft_convolution_pullback(dy):
            return _convolution_cotangents(dy, u1, u2, in1, in2, conv_axes, conv)

        fft_convolution_pullback.__name__ = f"{fn.__name__}_pullback"
        return y, fft_convolution_pullback

    fft_convolution_rule.__name__ = f"{fn.__name__}_rule"
    return numpy_rule(fn)(fft_convolution_rule)


fftconvolve_rule = _fft_rule_for(ss.fftconvolve)
oaconvolve_rule = _fft_rule_for(ss.oaconvolve)


# -- convolve2d -----------------------------------------------------------------------------------


@numpy_rule(ss.convolve2d)
def convolve2d_rule(in1, in2, mode="full", boundary="fill", fillvalue=0):
    y = ss.convolve2d(in1, in2, mode=mode, boundary=boundary, fillvalue=fillvalue)
    if not (inexact(in1) or inexact(in2)):
        return y, None
    if boundary != "fill" or fillvalue != 0:
        raise UnsupportedOperationError(
            "morula differentiates scipy.signal.convolve2d only with boundary='fill' and "
            "fillvalue=0. Fix: pad the input yourself (np.pad) and use mode='valid'."
        )
    u1, u2 = _operands(in1, in2)

    def conv(a, b, m):
        return ss.convolve2d(a, b, mode=m)

    def convolve2d_pullback(dy):
        return _convolution_cotangents(dy, u1, u2, in1, in2, (0, 1), conv)

    return y, convolve2d_pullback
