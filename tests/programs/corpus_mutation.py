"""Whole programs that write into arrays in place: fills, recurrences, views, aliases, arguments."""
import numpy as np


def fill(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = np.sin(x[i]) * (out[i - 1] if i > 0 else 1.0)
    return np.sum(out ** 2)


def fill_2d(x):
    A = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            A[i, j] = x[i] * x[j] + i
    return np.sum(A @ A)


def recurrence(x0, dt):
    x = np.zeros(30)
    x[0] = x0
    for i in range(1, 30):
        x[i] = x[i - 1] + dt * np.sin(x[i - 1])
    return x[-1] + 0.5 * x[10]


def in_place_arithmetic(x, s):
    u = x.copy()
    u += s * x
    u *= 2.0
    u /= s
    u -= x ** 2
    u[u < 0.1] = 0.0
    return np.sum(u ** 2)


def heat_in_place(u0, k):
    u = u0.copy()
    for _ in range(20):
        u[1:-1] += k * (u[2:] - 2 * u[1:-1] + u[:-2])
    return np.sum(u ** 2)


def heat_out_of_place(u0, k):
    u = u0
    for _ in range(20):
        u = np.concatenate([u[:1], u[1:-1] + k * (u[2:] - 2 * u[1:-1] + u[:-2]), u[-1:]])
    return np.sum(u ** 2)


def index_array_writes(x, v):
    y = x.copy()
    idx = np.array([0, 2, 2])
    y[idx] = v            # repeated index: the last write wins (NumPy semantics)
    z = x.copy()
    z[idx] += v           # z[idx] = z[idx] + v: a repeated index is added once
    return np.sum(y * y) + np.sum(z * x)


def ellipsis_write(x, y):
    z = np.zeros_like(x)
    z[...] = y * 2.0
    return np.sum(z * x)


def alias_then_write(x):
    a = x.copy()
    b = a              # the same array under two names
    b[0] = a[1] * 3.0
    return np.sum(a * a)


def view_then_write(u):
    v = u.copy()
    inner = v[1:-1]    # a view
    inner *= 2.0
    inner += v[:-2]
    return np.sum(v ** 2)


def transpose_and_reshape_views(x):
    a = x.copy()
    a.T[0] = a.T[0] * 3.0                  # writes a[:, 0]
    a.reshape(-1)[1] = 5.0 * a[0, 0]       # writes a[0, 1]
    b = a[::2]
    b += 1.0
    return np.sum(a ** 2)


def rhs(du, u, p):
    du[0] = p[0] * u[0] - p[1] * u[0] * u[1]
    du[1] = p[1] * u[0] * u[1] - p[2] * u[1]


def euler_with_in_place_rhs(u0, p):
    u = u0.copy()
    du = np.zeros(2)
    for _ in range(50):
        rhs(du, u, p)
        u = u + 0.01 * du
    return u[0] + u[1]


def scale_into(out, x, s):
    out[:] = x * s


def same_array_twice(x, s):
    y = x.copy()
    scale_into(y, y, s)   # reads and writes the same array
    return np.sum(y ** 2)


def trajectory(x0, k):
    state = x0.copy()
    traj = []
    for _ in range(10):
        state[0] += k * state[1]
        state[1] -= k * state[0]
        traj.append(state.copy())
    return np.sum(np.stack(traj) ** 2)


class Simulator:
    def __init__(self, x, v):
        self.x = x.copy()
        self.v = v.copy()
        self.t = 0.0

    def step(self, dt, k):
        self.v -= dt * k * self.x
        self.x += dt * self.v
        self.t = self.t + dt


def simulate(x0, k):
    sim = Simulator(x0, np.zeros_like(x0))
    for _ in range(20):
        sim.step(0.05, k)
    return np.sum(sim.x ** 2) + sim.t


def mutate_argument_top_level(x):
    x[0] = x[1] * 2.0
    return np.sum(x ** 2)


def numpy_in_place_functions(x, v):
    y = np.zeros(4)
    np.add.at(y, np.array([0, 1, 1, 3]), v * x[:4])
    z = np.empty(4)
    np.copyto(z, x[:4] * 2.0)
    w = np.empty(3)
    w.fill(v)
    out = np.empty(4)
    np.multiply(x[:4], y, out=out)
    np.sin(out, out=out)
    return np.sum(y * z) + np.sum(w * x[:3]) + np.sum(out)


class Box:
    def __init__(self, v):
        self.v = v


def list_alias(x):
    a = []
    b = a
    b.append(x * 2.0)
    b.append(x * x)
    return a[0] * 3.0 + a[-1]


def dict_alias(x):
    d = {}
    e = d
    e["k"] = x * 2.0
    e.update({"j": x ** 3})
    return d["k"] * 3.0 + d.get("j") + d.pop("k")


def object_alias(x):
    o = Box(1.0)
    p = o
    p.v = x * 2.0
    q = [o, o]
    q[1].v = q[0].v * x
    return o.v * 3.0


def nested_list_alias(x):
    inner = [0.0, 1.0]
    outer = [inner, inner]
    inner[0] = x * 2.0
    outer[1][1] = outer[0][0] * x
    return outer[0][0] * 3.0 + inner[1]


def append_helper(lst, v):
    lst.append(v * v)
    lst[0] = lst[0] * v


def list_written_by_helper(x):
    a = [x, 2.0]
    append_helper(a, x)
    return a[0] + a[2] * a[1]


def list_methods_in_loop(x):
    stack = []
    for i in range(5):
        stack.append(x * i)
        if i % 2 == 1:
            v = stack.pop()
            stack.insert(0, v * 2.0)
    stack.sort()
    stack.reverse()
    del stack[1]
    return sum(stack) + stack[0] * stack[-1]


def state_dict_threaded(x):
    state = {"pos": x, "vel": 0.0, "trace": []}
    for _ in range(6):
        state["vel"] = state["vel"] - 0.2 * state["pos"]
        state["pos"] = state["pos"] + 0.2 * state["vel"]
        state["trace"].append(state["pos"])
    return sum(state["trace"]) + state["vel"]


def list_read_in_loop(xs):
    total = 0.0
    for i in range(len(xs)):
        total = total + xs[i] * xs[len(xs) - 1 - i]
    return total


def pops_argument(xs):
    v = xs.pop()
    return 2.0 * v + xs[0]


def appends_to_argument(xs):
    xs.append(2.0 * xs[0])
    return sum(xs)


def adds_key_to_argument(d):
    d["new"] = 3.0 * d["a"]
    return d["new"] + d["a"]


def dict_update_keywords(x):
    d = {}
    d.update(b=x * x)
    d.update({"c": 2.0 * x}, e=x)
    return d["b"] + d["c"] * d["e"]


def sort_with_keywords(x):
    xs = [x, 2.0 * x, -x]
    xs.sort(reverse=True, key=abs)
    return xs[0] * 3.0 + xs[2]


def fill_diagonal_inside(x):
    a = np.zeros((3, 3))
    np.fill_diagonal(a, x)
    b = np.ones((2, 2))
    np.fill_diagonal(b, np.array([x, 2.0 * x]) * x)
    return a.sum() + np.sum(b * b)


def out_into_zero_dim(x):
    a = np.zeros(())
    np.sum(x, out=a)
    b = np.zeros(())
    np.multiply(x[0], x[1], out=b)
    return a * 2.0 + float(b)


class Temperature:
    def __init__(self, kelvin):
        self._kelvin = kelvin

    @property
    def celsius(self):
        return self._kelvin - 273.15

    @celsius.setter
    def celsius(self, value):
        self._kelvin = value * 1.0 + 273.15


def property_setter(x):
    t = Temperature(300.0)
    t.celsius = x * x
    return t._kelvin * 2.0 + t.celsius
