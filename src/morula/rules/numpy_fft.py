"""Reverse rules for ``np.fft``.

In: nothing (importing registers the rules). Out: rules for ``np.fft``
``fft ifft rfft irfft hfft ihfft fft2 ifft2 fftn ifftn rfft2 irfft2 rfftn
irfftn fftshift ifftshift fftfreq rfftfreq``, with ``n`` / ``s`` (zero padding
and truncation), ``axis`` / ``axes`` and ``norm`` in ``None``, ``"backward"``,
``"ortho"``, ``"forward"``.

Every transform is linear over the reals, so its pullback is its adjoint for
the real inner product ``Re sum(conj(a) b)`` (Zygote's convention: for the
complex-linear transforms the cotangent is ``F^H dy``):

- the adjoint of ``fft(norm=m)`` is ``ifft(norm=dual(m))`` with ``dual`` swapping
  ``"backward"`` and ``"forward"`` (``"ortho"`` is its own dual), and the other
  way round; ``n``/``s`` zero-pad or truncate, so the adjoint truncates or
  zero-pads back to the input's length;
- ``rfft`` keeps only the non-negative frequencies of a real signal: its
  adjoint halves the bins that stand for two (every bin but DC and, for even
  ``n``, Nyquist) and runs ``irfft`` (which doubles them again);
- ``irfft`` reads the real parts of DC and Nyquist and counts the other bins
  twice: its adjoint is ``rfft`` of the cotangent with those bins doubled;
- ``hfft(a) = irfft(conj(a))`` and ``ihfft(a) = conj(rfft(a))`` (with swapped
  norms), as NumPy computes them;
- ``rfftn``/``irfftn`` are the 1-D real transform on the last of ``axes`` and
  complex ones on the others, and so are their adjoints (in reverse order);
- ``fftshift`` and ``ifftshift`` are each other's adjoints (permutations).

The cotangent of a real input is real (the real part of the complex adjoint),
and keeps the input's dtype (float32 input, complex64 transform, float32
cotangent). Integer inputs get no cotangent. ``out=`` is refused. Repeated
entries in ``axes`` are not supported by the ``s``-resizing (they are by NumPy).
``fftfreq``/``rfftfreq`` differentiate with respect to the sample spacing ``d``.
"""

import numpy as np

from morula.rules.numpy_vspace import (
    as_operand,
    check_no_out,
    conj,
    cotangent,
    inexact,
    numpy_rule,
)

_fft = np.fft

_DUAL = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


def _dual(norm):
    try:
        return _DUAL[norm]
    except (KeyError, TypeError):
        raise ValueError(f'Invalid norm value {norm!r}; should be "backward", "ortho" or "forward".') from None


def _ndim(a):
    nd = getattr(a, "ndim", None)
    return nd if nd is not None else np.ndim(a)


def _along(nd, axis, index):
    """An index tuple that applies ``index`` (a slice) along ``axis`` only."""
    return (slice(None),) * (axis % nd) + (index,)


def _resize(g, axis, length):
    """Zero-pad or truncate ``g`` along ``axis`` to ``length`` (the adjoint of NumPy's resizing)."""
    current = g.shape[axis]
    if current == length:
        return g
    if current > length:
        return g[_along(g.ndim, axis, slice(0, length))]
    widths = [(0, 0)] * g.ndim
    widths[axis % g.ndim] = (0, length - current)
    return np.pad(g, widths)


def _scale_middle(g, axis, n, factor):
    """Multiply the bins ``1 <= k < n - k`` of a half spectrum by ``factor`` (along ``axis``)."""
    h = (n + 1) // 2
    if h <= 1:
        return g
    nd = g.ndim
    return np.concatenate(
        [g[_along(nd, axis, slice(0, 1))],
         g[_along(nd, axis, slice(1, h))] * factor,
         g[_along(nd, axis, slice(h, None))]],
        axis=axis,
    )


def _cook(a, s, axes, invreal=False):
    """NumPy's ``(s, axes)`` for the n-D transforms (``_cook_nd_args``)."""
    shape = a.shape
    shapeless = s is None
    if s is None:
        s = list(shape) if axes is None else [shape[i] for i in axes]
    s = list(s)
    if axes is None:
        axes = list(range(-len(s), 0))
    axes = [int(i) % len(shape) for i in axes]
    if invreal and shapeless:
        s[-1] = (shape[axes[-1]] - 1) * 2
    sizes = []
    for i, (size, ax) in enumerate(zip(s, axes)):
        if size is None and invreal and i == len(s) - 1:
            size = (shape[ax] - 1) * 2     # the 1-D irfft default for n=None
        elif size is None or size == -1:
            size = shape[ax]
        sizes.append(int(size))
    return sizes, axes


# -- the adjoints of the 1-D steps -------------------------------------------------------------


def _c2c_adjoint(g, inverse, axis, norm, length):
    """Adjoint of ``fft`` (``inverse=False``) or ``ifft`` along ``axis``, back to ``length``."""
    back = _fft.fft if inverse else _fft.ifft
    return _resize(back(g, axis=axis, norm=_dual(norm)), axis, length)


def _r2c_adjoint(g, n, axis, norm, length):
    """Adjoint of ``rfft(x, n, axis, norm)`` for a real ``x`` of ``length`` along ``axis``."""
    g = _scale_middle(g, axis, n, 0.5)
    return _resize(_fft.irfft(g, n=n, axis=axis, norm=_dual(norm)), axis, length)


def _c2r_adjoint(g, n, axis, norm, length):
    """Adjoint of ``irfft(c, n, axis, norm)`` for ``c`` with ``length`` bins along ``axis``."""
    c = _fft.rfft(g, n=n, axis=axis, norm=_dual(norm))
    return _resize(_scale_middle(c, axis, n, 2.0), axis, length)


# -- 1-D transforms ---------------------------------------------------------------------------


def _one_d_rule(name, forward, adjoint):
    def rule(a, n=None, axis=-1, norm=None, out=None):
        check_no_out(f"np.fft.{name}", out)
        ua = as_operand(a)
        y = forward(ua, n, axis, norm)
        if not inexact(a):
            return y, None
        length = ua.shape[axis]
        size = length if n is None else int(n)

        def pullback(dy):
            return (cotangent(adjoint(dy, size, axis, norm, length), a),)

        pullback.__name__ = pullback.__qualname__ = f"{name}_pullback"
        return y, pullback

    rule.__name__ = rule.__qualname__ = f"{name}_rule"
    return rule


fft_rule = numpy_rule(_fft.fft)(_one_d_rule(
    "fft", lambda a, n, axis, norm: _fft.fft(a, n, axis, norm),
    lambda g, n, axis, norm, length: _c2c_adjoint(g, False, axis, norm, length)))

ifft_rule = numpy_rule(_fft.ifft)(_one_d_rule(
    "ifft", lambda a, n, axis, norm: _fft.ifft(a, n, axis, norm),
    lambda g, n, axis, norm, length: _c2c_adjoint(g, True, axis, norm, length)))

rfft_rule = numpy_rule(_fft.rfft)(_one_d_rule(
    "rfft", lambda a, n, axis, norm: _fft.rfft(a, n, axis, norm), _r2c_adjoint))


def _irfft_size(length, n):
    return 2 * (length - 1) if n is None else int(n)


def _real_output_rule(name, forward, adjoint):
    """``irfft``/``hfft``: the default output length is ``2 * (bins - 1)``."""
    def rule(a, n=None, axis=-1, norm=None, out=None):
        check_no_out(f"np.fft.{name}", out)
        ua = as_operand(a)
        y = forward(ua, n, axis, norm)
        if not inexact(a):
            return y, None
        length = ua.shape[axis]
        size = _irfft_size(length, n)

        def pullback(dy):
            return (cotangent(adjoint(dy, size, axis, norm, length), a),)

        pullback.__name__ = pullback.__qualname__ = f"{name}_pullback"
        return y, pullback

    rule.__name__ = rule.__qualname__ = f"{name}_rule"
    return rule


irfft_rule = numpy_rule(_fft.irfft)(_real_output_rule(
    "irfft", lambda a, n, axis, norm: _fft.irfft(a, n, axis, norm), _c2r_adjoint))

# hfft(a) = irfft(conj(a), norm=dual(norm)): conj moves to the other side of the adjoint
hfft_rule = numpy_rule(_fft.hfft)(_real_output_rule(
    "hfft", lambda a, n, axis, norm: _fft.hfft(a, n, axis, norm),
    lambda g, n, axis, norm, length: conj(_c2r_adjoint(g, n, axis, _dual(norm), length))))

# ihfft(a) = conj(rfft(a, norm=dual(norm)))
ihfft_rule = numpy_rule(_fft.ihfft)(_one_d_rule(
    "ihfft", lambda a, n, axis, norm: _fft.ihfft(a, n, axis, norm),
    lambda g, n, axis, norm, length: _r2c_adjoint(conj(g), n, axis, _dual(norm), length)))


# -- n-D transforms ---------------------------------------------------------------------------


def _nd_rule(name, fn, default_axes, kind):
    """``kind``: 'c2c' (forward), 'c2c_inv', 'r2c' (rfftn), 'c2r' (irfftn)."""

    def rule(a, s=None, axes=default_axes, norm=None, out=None):
        check_no_out(f"np.fft.{name}", out)
        ua = as_operand(a)
        y = fn(ua, s, axes, norm)
        if not inexact(a):
            return y, None
        sizes, cooked = _cook(ua, s, axes, invreal=(kind == "c2r"))
        lengths = [ua.shape[ax] for ax in cooked]

        def pullback(dy):
            g = dy
            if kind in ("c2c", "c2c_inv"):
                for ax, length in zip(cooked, lengths):
                    g = _c2c_adjoint(g, kind == "c2c_inv", ax, norm, length)
            elif kind == "r2c":
                for ax, length in zip(cooked[:-1], lengths[:-1]):
                    g = _c2c_adjoint(g, False, ax, norm, length)
                g = _r2c_adjoint(g, sizes[-1], cooked[-1], norm, lengths[-1])
            else:
                g = _c2r_adjoint(g, sizes[-1], cooked[-1], norm, lengths[-1])
                for ax, length in zip(cooked[:-1], lengths[:-1]):
                    g = _c2c_adjoint(g, True, ax, norm, length)
            return (cotangent(g, a),)

        pullback.__name__ = pullback.__qualname__ = f"{name}_pullback"
        return y, pullback

    rule.__name__ = rule.__qualname__ = f"{name}_rule"
    return rule


def _call_nd(fn):
    def call(a, s, axes, norm):
        return fn(a, s=s, axes=axes, norm=norm)
    return call


fftn_rule = numpy_rule(_fft.fftn)(_nd_rule("fftn", _call_nd(_fft.fftn), None, "c2c"))
ifftn_rule = numpy_rule(_fft.ifftn)(_nd_rule("ifftn", _call_nd(_fft.ifftn), None, "c2c_inv"))
fft2_rule = numpy_rule(_fft.fft2)(_nd_rule("fft2", _call_nd(_fft.fft2), (-2, -1), "c2c"))
ifft2_rule = numpy_rule(_fft.ifft2)(_nd_rule("ifft2", _call_nd(_fft.ifft2), (-2, -1), "c2c_inv"))
rfftn_rule = numpy_rule(_fft.rfftn)(_nd_rule("rfftn", _call_nd(_fft.rfftn), None, "r2c"))
irfftn_rule = numpy_rule(_fft.irfftn)(_nd_rule("irfftn", _call_nd(_fft.irfftn), None, "c2r"))
rfft2_rule = numpy_rule(_fft.rfft2)(_nd_rule("rfft2", _call_nd(_fft.rfft2), (-2, -1), "r2c"))
irfft2_rule = numpy_rule(_fft.irfft2)(_nd_rule("irfft2", _call_nd(_fft.irfft2), (-2, -1), "c2r"))


# -- shifts and frequencies ----------------------------------------------------------------------


@numpy_rule(_fft.fftshift)
def fftshift_rule(x, axes=None):
    y = _fft.fftshift(as_operand(x), axes)
    if not inexact(x):
        return y, None

    def fftshift_pullback(dy):
        return (cotangent(_fft.ifftshift(dy, axes), x),)

    return y, fftshift_pullback


@numpy_rule(_fft.ifftshift)
def ifftshift_rule(x, axes=None):
    y = _fft.ifftshift(as_operand(x), axes)
    if not inexact(x):
        return y, None

    def ifftshift_pullback(dy):
        return (cotangent(_fft.fftshift(dy, axes), x),)

    return y, ifftshift_pullback


def _freq_rule(name, fn):
    def rule(n, d=1.0, **kwargs):
        y = fn(n, d, **kwargs)
        if not inexact(d):
            return y, None

        def pullback(dy):   # y = k / (n d): dy/dd = -y / d
            return None, cotangent(-np.sum(dy * y) / d, d)

        pullback.__name__ = pullback.__qualname__ = f"{name}_pullback"
        return y, pullback

    rule.__name__ = rule.__qualname__ = f"{name}_rule"
    return rule


fftfreq_rule = numpy_rule(_fft.fftfreq)(_freq_rule("fftfreq", _fft.fftfreq))
rfftfreq_rule = numpy_rule(_fft.rfftfreq)(_freq_rule("rfftfreq", _fft.rfftfreq))
