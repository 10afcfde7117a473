"""Typical user programs: NumPy models, fills, recurrences, helpers (checked against finite differences)."""
import math
import numpy as np
from dataclasses import dataclass, field

def logistic_loss(w, X, y):
    z = X @ w
    p = 1.0 / (1.0 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

def fill_loop(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = x[i] ** 2 + (out[i - 1] if i > 0 else 0.0)
    return out.sum()

def recurrence(x0, dt):
    x = np.zeros(20)
    x[0] = x0
    for i in range(1, 20):
        x[i] = x[i - 1] + dt * np.sin(x[i - 1])
    return x[-1]

def inplace_heat(u0, k):
    u = u0.copy()
    for _ in range(10):
        u[1:-1] += k * (u[2:] - 2 * u[1:-1] + u[:-2])
    return np.sum(u ** 2)

def item_and_float(x):
    s = np.sum(x ** 2)
    return float(s) + x[0].item() * 2.0 + np.float64(x[1]) * 3.0

def norm_stuff(x):
    return np.sqrt(np.sum(x * x)) + np.linalg.norm(x)

def python_list_math(xs):
    mean = sum(xs) / len(xs)
    var = sum((v - mean) ** 2 for v in xs) / (len(xs) - 1)
    return math.sqrt(var)

@dataclass
class Model:
    w: np.ndarray
    b: float = 0.0
    hist: list = field(default_factory=list)

def model_loss(m, x):
    return float(np.sum((m.w * x + m.b) ** 2))

def softmax_ce(logits, label):
    z = logits - np.max(logits)
    e = np.exp(z)
    p = e / e.sum()
    return -np.log(p[label])

def piecewise(x):
    if x < 0:
        return x ** 2
    elif x < 1:
        return x
    return 2 * x - 1 + math.log(x)

def poly_eval(coeffs, x):
    r = 0.0
    for c in reversed(coeffs):
        r = r * x + c
    return r

def newton_sqrt(a):
    x = a
    for _ in range(20):
        x = 0.5 * (x + a / x)
    return x

def matrix_ops(A, v):
    B = A.T @ A + np.eye(A.shape[1])
    w = B @ v
    return np.dot(w, w) + np.trace(B) + np.sum(np.diag(B))

def where_clip(x):
    y = np.where(x > 0, x, 0.1 * x)
    return np.sum(np.clip(y, -0.5, 2.0) ** 2)

def concat_split(x):
    a = np.concatenate([x, x ** 2])
    b = np.stack([x, 2 * x], axis=1)
    return np.sum(a) + np.sum(b[:, 1] * b[:, 0]) + np.sum(a.reshape(2, -1).mean(axis=0))

def mean_axis_keep(X):
    mu = X.mean(axis=0, keepdims=True)
    sd = X.std(axis=0, keepdims=True)
    return np.sum(((X - mu) / sd) ** 3)

def cumsum_stuff(x):
    return np.sum(np.cumsum(x) ** 2) + np.prod(x)

def advanced_index(x):
    idx = np.array([0, 2, 2])
    return np.sum(x[idx] ** 2) + np.sum(x[x > 0.5])

def einsum_use(A, B):
    return np.einsum("ij,jk->", A, B) + np.einsum("ii", A @ B.T)

def rng_inside(x):
    rng = np.random.default_rng(0)
    noise = rng.normal(size=x.shape)
    return np.sum((x + noise) ** 2)

def list_of_arrays(ws, x):
    h = x
    for W in ws:
        h = np.tanh(W @ h)
    return h.sum()

def tuple_state(x):
    state = (x, 0.0)
    for _ in range(5):
        p, v = state
        state = (p + 0.1 * v, v - 0.1 * p)
    return state[0] + state[1]

def kwargs_user(x, **kw):
    return x * kw.get("scale", 1.0) + kw.get("shift", 0.0)

def call_kwargs_user(x):
    return kwargs_user(x, scale=3.0, shift=x)

def outer_inner(x, y):
    return np.sum(np.outer(x, y) ** 2) + np.inner(x, y)

def abs_max_min(x):
    return np.max(np.abs(x)) + np.min(x) + max(x[0], x[1]) + abs(x[2])

def astype_copy(x):
    y = x.astype(np.float32).copy()
    return np.sum(y * y)

def arange_linspace(x):
    t = np.linspace(0, 1, 5)
    return np.sum(np.sin(x * t) * np.arange(5))
