"""Whole programs exercising control flow (used by the tests in this folder)."""
import math

import numpy as np


def branches(x, y):
    if x > y:
        z = x * y
    elif x < 0:
        z = x - y
    else:
        z = x / y
    return z * z + (x if x > 1 else y) * 2.0


def boolean_ops(x, y):
    a = x > 0 and y > 0
    b = (x or y) * 3.0
    c = not (x < y)
    d = 0.0 < x < 10.0 < y * 100
    return b + (x if a else y) + (2.0 * x if c else y) + (x if d else 0.0)


def value_and_or(x, y):
    return (x and y) + (0.0 or x) * 2.0


def for_range(x, n):
    s = 0.0
    for i in range(n):
        s = s + x ** i / math.factorial(i)
    return s


def for_list_zip_enumerate(xs, ys):
    total = 0.0
    for a, b in zip(xs, ys):
        total += a * b
    for i, a in enumerate(xs):
        total = total + i * a
    for a in reversed(xs):
        total = total * 0.5 + a
    return total


def for_rows(A):
    acc = 0.0
    for row in A:
        acc = acc + np.sum(row ** 2)
    return acc


def dict_items_loop(params):
    total = 0.0
    for name, value in params.items():
        if name.startswith("w"):
            total = total + value * value
        else:
            total = total + 3.0 * value
    return total


def while_loop(x):
    n = 0
    while x < 100.0:
        x = x * 1.5 + 1.0
        n += 1
    return x + n


def break_continue(xs):
    total = 0.0
    for x in xs:
        if x < 0:
            continue
        if x > 10:
            break
        total = total + x * x
    else:
        total = total * 2.0
    return total


def nested_loops(A):
    n, m = A.shape
    s = 0.0
    for i in range(n):
        for j in range(m):
            if (i + j) % 2 == 0:
                s = s + A[i, j] * A[i, j]
            else:
                s = s - A[i, j]
    return s


def taylor_sine(x, tol=1e-12):
    """The ∂P paper's example: add terms until they are small, returning from inside the loop."""
    term = x
    total = x
    n = 1
    while True:
        term = -term * x * x / ((2 * n) * (2 * n + 1))
        total = total + term
        n += 1
        if abs(term) < tol:
            print("terms:", n)
            return total
        if n > 100:
            break
    return total


def early_return_in_for(xs, limit):
    acc = 1.0
    for x in xs:
        acc = acc * x
        if acc > limit:
            return acc - limit
    return acc


def loop_else_no_break(xs):
    s = 0.0
    for x in xs:
        s += x * x
    else:
        s = s + 1.0
    return s


def nested_break(A):
    total = 0.0
    for row in A:
        for v in row:
            if v > 0.5:
                break
            total = total + v
        else:
            total = total * 1.1
    return total


def data_dependent_trip(x):
    steps = 0
    while x > 1.0:
        x = math.sqrt(x)
        steps += 1
    return x * steps


def with_and_passthrough(x):
    import logging
    logging.getLogger("morula-test").debug("x=%s", x)
    assert x == x
    if x > 1e9:
        raise ValueError("too big")
    with np.errstate(all="ignore"):
        y = np.sin(x) * x
    print(f"y = {y:.3f}", len([1, 2]))
    return y
