"""Whole programs exercising tuples, lists and dicts as inputs, outputs and intermediates."""
import numpy as np


def tuple_in_out(p):
    a, b = p
    return (a * b, a + b)


def list_building(x, n):
    out = []
    for i in range(n):
        out.append(x * i)
    out.extend([x, 2.0 * x])
    out.insert(0, x * x)
    last = out.pop()
    return sum(out) + last


def list_indexing_slicing(xs):
    head, *rest = xs
    mid = xs[1:3]
    return head * sum(rest) + mid[0] * mid[-1] + xs[-1]


def dict_params(params, x):
    h = np.tanh(params["W"] @ x + params["b"])
    return np.sum(h ** 2) + params["scale"] * 2.0


def dict_state_loop(x):
    state = {"pos": x, "vel": 0.0}
    for _ in range(5):
        state = {"pos": state["pos"] + 0.1 * state["vel"], "vel": state["vel"] - 0.1 * state["pos"]}
    return state["pos"] ** 2 + state["vel"]


def dict_mutation(x):
    d = {}
    d["a"] = x
    d["b"] = x * x
    d.update({"c": 3.0 * x})
    v = d.pop("a")
    d.setdefault("e", x)
    return v + d["b"] + d["c"] + d["e"]


def list_setitem(x):
    xs = [0.0, 0.0, 0.0]
    xs[0] = x
    xs[2] = x * x
    xs[1] = xs[0] + xs[2]
    return xs[1] * xs[2]


def nested_containers(data):
    total = 0.0
    for key, (a, b) in data["pairs"].items():
        total = total + a * b
    return total + data["list"][1][0] * 2.0


def returns_dict(x):
    return {"double": 2.0 * x, "square": x * x}


def stack_list_of_arrays(xs):
    rows = []
    for i in range(3):
        rows.append(xs * (i + 1.0))
    return np.sum(np.stack(rows) ** 2)


def star_display(x, y):
    t = (*[x, y], x * y)
    l = [x, *t]
    return sum(l)


def array_from_list(x, y):
    a = np.array([[x, y], [x * y, 1.0]])
    return np.sum(a @ a)
