"""Whole programs exercising user classes: methods, properties, __call__, operator overloading."""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Dual:
    """A number with a derivative part; its arithmetic is differentiated through, no rule needed."""

    def __init__(self, value, eps=0.0):
        self.value = value
        self.eps = eps

    def __add__(self, other):
        if not isinstance(other, Dual):
            other = Dual(other)
        return Dual(self.value + other.value, self.eps + other.eps)

    __radd__ = __add__

    def __mul__(self, other):
        if not isinstance(other, Dual):
            other = Dual(other)
        return Dual(self.value * other.value, self.value * other.eps + self.eps * other.value)

    def __rmul__(self, other):
        return self.__mul__(other)

    def __neg__(self):
        return Dual(-self.value, -self.eps)

    def __sub__(self, other):
        return self + (-other)


def dual_polynomial(x, y):
    d = Dual(x, 1.0)
    p = 3.0 * d * d + d * y - 2.0
    return p.value + p.eps * y


class Measurement:
    def __init__(self, value, sigma):
        self.value = value
        self.sigma = sigma

    def __mul__(self, other):
        v = self.value * other.value
        s = abs(v) * math.sqrt((self.sigma / self.value) ** 2 + (other.sigma / other.value) ** 2)
        return Measurement(v, s)

    @property
    def relative(self):
        return self.sigma / self.value


def measurement_product(a, sa, b, sb):
    m = Measurement(a, sa) * Measurement(b, sb)
    return m.sigma + m.relative


class Linear:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def __call__(self, x):
        return self.W @ x + self.b

    def norm(self):
        return np.sum(self.W ** 2)


def layer_loss(layer, x):
    return np.sum(np.tanh(layer(x)) ** 2) + 0.1 * layer.norm()


@dataclass
class Params:
    w: float
    b: float
    scale: np.ndarray


def dataclass_loss(p, x):
    return (p.w * x + p.b) ** 2 + np.sum(p.scale * x)


def dataclass_built_inside(x):
    p = Params(w=x, b=2.0 * x, scale=np.array([x, 1.0]))
    return dataclass_loss(p, x)


class Point(NamedTuple):
    x: float
    y: float


def namedtuple_loss(p):
    q = Point(p.x * 2.0, p.y + p.x)
    return q.x * q.y + p[0]


class Counter:
    def __init__(self):
        self.total = 0.0

    def add(self, v):
        self.total = self.total + v
        return self


def method_mutates_self(x):
    c = Counter()
    for i in range(3):
        c.add(x * i)
    c.add(x * x)
    return c.total


class Cell:
    def __init__(self, W, U):
        self.W = W
        self.U = U
        self.h = np.zeros(W.shape[0])

    def __call__(self, x):
        self.h = np.tanh(self.W @ x + self.U @ self.h)
        return self.h


def rnn_loss(W, U, xs):
    cell = Cell(W, U)
    for x in xs:
        y = cell(x)
    return np.sum(y ** 2)


class Base:
    def __init__(self, k):
        self.k = k

    def energy(self, x):
        return self.k * x * x


class Derived(Base):
    def __init__(self, k, c):
        super().__init__(k)
        self.c = c

    def energy(self, x):
        return super().energy(x) + self.c * x


def inheritance(k, x):
    return Derived(k, 2.0 * k).energy(x)


class Stats:
    @staticmethod
    def sq(v):
        return v * v

    @classmethod
    def twice(cls, v):
        return 2.0 * cls.sq(v)


def static_and_class_methods(x):
    return Stats.sq(x) + Stats.twice(x) + Stats().sq(x)
