"""More programs the way users write them: closures with defaults, inner recursion, user iterables."""
import math
import numpy as np

def closure_default(a, x):
    fs = [lambda v, k=k: v * k * a for k in range(3)]
    return sum(f(x) for f in fs)

def nested_recursion(x, n):
    def go(v, k):
        if k == 0:
            return v
        return go(math.sin(v) + x, k - 1)
    return go(x, n)

def enum_zip_unpack(xs, ys):
    t = 0.0
    for i, (a, b) in enumerate(zip(xs, ys)):
        t += (i + 1) * a * b
    return t

def while_else(x):
    i = 0
    while i < 10 and x < 50.0:
        x = x * 1.7
        i += 1
    else:
        x = x + 1.0
    return x

def method_chain(x):
    return x.reshape(2, -1).sum(axis=0).max() + x[None, :].sum() + x[..., 0]

def gen_over_array(arr):
    return sum(v ** 2 for v in arr) + np.mean([np.sin(v) for v in arr])

def fib_swap(x):
    a, b = x, 1.0
    for _ in range(6):
        a, b = b, a + b
    return b

def abs_ternary(x):
    x = x if x > 0 else -x
    return x * x

def isinstance_branch(x):
    if isinstance(x, np.ndarray):
        return np.sum(x ** 3)
    return x ** 3

def sorted_key(xs):
    ys = sorted(xs, key=lambda v: abs(v))
    return ys[0] * 2.0 + ys[-1] + (1.0 if any(v > 0 for v in xs) else 0.0) + round(xs[0], 2)

class Series:
    def __init__(self, data):
        self.data = list(data)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]

    def __iter__(self):
        return iter(self.data)

def iterate_user_class(x):
    s = Series([x, 2.0 * x, x * x])
    total = 0.0
    for v in s:
        total = total + v
    return total + s[1] * len(s)

def dict_comprehension_dispatch(x):
    ops = {"a": lambda v: v + 1.0, "b": lambda v: v * v}
    results = {k: f(x) for k, f in ops.items()}
    return results["a"] * results["b"]

def array_of_generator(x):
    a = np.array([x ** k for k in range(4)])
    return a @ a

def inner_function_modifies_list(x):
    acc = []
    def push(v):
        acc.append(v)
    for k in range(3):
        push(x * k)
    return sum(acc)

def string_format_branch(x):
    label = f"value={x:.2f}"
    if label.startswith("value"):
        return x * 2.0
    return x

def max_with_default(xs):
    pos = [v for v in xs if v > 10]
    return max(pos, default=0.0) + max(xs)

def matrix_loop(A, x):
    y = np.zeros(A.shape[0])
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            y[i] += A[i, j] * x[j]
    return np.dot(y, y)

def conditional_accumulate(xs, thr):
    s = 0.0
    n = 0
    for v in xs:
        if v > thr:
            s += v
            n += 1
        elif v < -thr:
            s -= 2 * v
        else:
            continue
    return s / max(n, 1)


def fortran_ordered_intermediate(x):
    y = x.T * 1.0                 # a Fortran-ordered array (NumPy keeps the layout)
    centered = y - np.mean(y, axis=1, keepdims=True)
    return np.sum(np.sin(centered @ centered.T))
