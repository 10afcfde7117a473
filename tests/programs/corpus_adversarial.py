"""Programs that once broke morula (found by adversarial testing); kept as regression cases."""
import collections
import functools
import itertools
import math
from typing import NamedTuple

import numpy as np


class V:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __abs__(self):
        return math.sqrt(self.x ** 2 + self.y ** 2)

    def __float__(self):
        return self.x + self.y

    def __pow__(self, n):
        return V(self.x ** n, self.y)


def builtin_protocols(a, b):
    v = V(a, b)
    return abs(v) + float(v) * a + pow(v, 3).x


class Lazy:
    def __init__(self, data):
        self._data = data

    def __getattr__(self, name):
        return self._data[name] * 2.0


def dynamic_attributes(x):
    o = V(1.0, 2.0)
    setattr(o, "x", x * 3.0)
    vars(o)["y"] = x * x
    lazy = Lazy({"w": x})
    return o.x + o.__dict__["y"] + lazy.w


def container_inplace_operators(x):
    items = [1.0, x]
    alias = items
    items += [x * 3.0]
    items *= 2
    d = {"a": x}
    d |= {"h": x * 2.0}
    e = {"k": 1.0} | {"m": x}
    return alias[2] * 10.0 + items[4] + d["h"] + e["m"]


def closure_rebound(x):
    a = x

    def g(t):
        return a * t

    first = g(2.0)
    a = x * x
    return first + g(3.0)


def defaults_from_expressions(x):
    def g(t, s=2.0 * x):
        return t * s
    h = lambda t, s=x ** 2: t + s       # noqa: E731
    return g(1.0) + h(1.0)


def lambdas_in_comprehension(x):
    fs = [lambda t: t * k for k in range(1, 4)]
    return sum(fn(x) for fn in fs)


def writes_into_captured_containers(x):
    acc = [0.0]
    buf = np.zeros(2)

    def add(v):
        acc[0] += v * v
        buf[0] += v

    add(x)
    add(2.0 * x)
    return acc[0] + buf[0] * 3.0


class Particle:
    def __init__(self, pos):
        self.pos = pos


class World:
    def __init__(self, particles):
        self.ps = particles

    def energy(self):
        return sum(p.pos ** 2 for p in self.ps)


def nested_objects(world):
    return world.energy()


def floats_updated_in_place_but_unused(x):
    y = x
    y *= 2.0
    d = {"a": x, "b": 1.0}
    d["b"] *= 3.0
    return d["a"] * x


class Pt(NamedTuple):
    x: float
    y: float


def namedtuple_iteration_and_methods(x):
    p = Pt(x, 2.0 * x)
    total = sum(p)
    for v in p:
        total = total + v
    q = p._replace(y=x ** 3)
    r = Pt._make([x * 4.0, 1.0])
    return total + q.y + r.x + p._asdict()["y"]


class Series(list):
    pass


def list_subclass(x):
    s = Series([x, 2.0 * x])
    return sum(v * v for v in s)


def array_writes_from_lists(x):
    y = np.zeros(4)
    y[0:2] = (x, 3.0)
    y[np.array([2, 3])] = [x * x, 1.0]
    return np.sum(y * np.arange(1.0, 5.0))


def builtins_with_keywords_and_itertools(x):
    xs = [x, 2.0 * x, 0.5]
    total = sum(xs, start=1.0) + sum(i * v for i, v in enumerate(xs, start=1))
    total += functools.reduce(lambda a, b: a * b, xs)
    total += sum(a * b for a, b in itertools.combinations(xs, 2))
    total += list(itertools.accumulate(xs))[-1]
    total += sum(a - b for a, b in itertools.product(xs[:2], [1.0, x]))
    od = collections.OrderedDict(a=x)
    dd = collections.defaultdict(float, {"b": x})
    return total + od["a"] * dd["b"]


def array_overwritten_after_put_in_list(x):
    u = np.array([x, 2.0 * x])
    lst = [u]
    u[0] = x * x                       # lst[0] is u: the stack reads x*x
    return np.sum(np.stack(lst))


def trajectory_appends_the_same_array(u0, k):
    u = u0.copy()
    out = []
    for _ in range(3):
        u += k * u
        out.append(u)                  # no .copy(): every entry is the final u
    return np.sum(np.stack(out)) + np.sum(np.concatenate(out) ** 2)


def arrays_scaled_after_put_in_containers(x):
    u = np.array([x])
    w = np.array([x, x])
    d = {"u": u}
    lst = [w]
    u *= 2.0
    w[1] = 3.0 * x
    return np.sum(sum(d.values())) + np.sum(np.concatenate(lst)) + np.sum(np.array(lst) ** 2)


def list_slot_replaced_after_rule(x):
    u = np.array([x, x])
    lst = [u]
    s = np.stack(lst)
    lst[0] = np.array([5.0 * x, 1.0])  # the stack above read u
    return np.sum(s ** 2) + np.sum(np.stack(lst))


def nested_tolist(x):
    rows = x.tolist()
    rows[1] = [7.0, 8.0]               # replaced rows carry no gradient
    return rows[0][1] * 3.0 + sum(rows[1]) + rows[0][0] ** 2


def numpy_scalar_methods(x):
    s = np.dot(x, x)
    return (s.astype(np.float64) + s.reshape(()) + s.sum() + s.mean() + s.copy() + s.squeeze()
            + s.conj() + s.T + s.real + s.clip(0.0, 100.0) + np.float64(x[0]).item())


MIX = np.random.default_rng(1).standard_normal((3, 3))


def written_by_operator_setitem(x, w):
    import operator
    operator.setitem(x, 0, w[0])
    return np.sum(np.tanh(x @ MIX))


def written_by_dunder_setitem(x, w):
    x.__setitem__(0, w[0])
    put = lambda i: x.__setitem__(i, w[i] * 2.0)   # noqa: E731
    put(2)
    return np.sum(np.tanh(x @ MIX))


def written_by_partial_copyto(x, w):
    functools.partial(np.copyto, x)(w)
    return np.sum(np.tanh(x @ MIX))


def written_by_local_star_call(x, w):
    copy_into = np.copyto
    args = (x, w)
    copy_into(*args)
    return np.sum(np.tanh(x @ MIX))


def written_in_callbacks(x, w):
    def put(i):
        x[i] = w[i] * (i + 1.0)
        return i
    list(map(put, range(2)))
    sorted(range(3), key=lambda i: put(i) * 0 - i)
    functools.reduce(lambda acc, i: acc + put(i), [0, 1, 2], 0)
    list(filter(lambda i: put(i) > 0, [2]))
    list(itertools.accumulate([0, 1], lambda acc, i: put(i)))
    return np.sum(np.tanh(x @ MIX))


def written_in_apply_along_axis(x, w):
    def row(r):
        r[0] = w[0, 0] * 3.0
        return r.sum()
    np.apply_along_axis(row, 1, x)
    return np.sum(np.tanh(x @ MIX))


def written_in_vectorize(x, w):
    def scaled(v):
        log.append(v)
        x[0, 0] = w[1, 1] * v
        return v * w[0, 0]
    log = []
    y = np.vectorize(scaled)(np.array([1.0, 2.0]))
    return np.sum(np.tanh(x @ MIX)) + np.sum(y)


def zipped_arrays_mutated_later(x, w):
    a, b = x[0].copy(), w[1].copy()
    pairs = list(zip([a], [b]))
    a += b
    return np.sum(np.array(pairs) ** 2)


def augmented_assignment_evaluates_once(x, w):
    calls = []

    def k(i):
        calls.append(i)
        x[2, 2] = x[2, 2] + w[0, 0]     # a side effect that must happen once per evaluation
        return i

    y = np.zeros(3)
    for i in range(3):
        y[k(i)] += w[i, 1]
    return np.sum(y ** 2) + np.sum(np.tanh(x @ MIX)) + len(calls)


class WithProperty:
    def __init__(self, v):
        self.inner = np.zeros(2)
        self.count = np.zeros(1)
        self.v = v

    @property
    def p(self):
        self.count[0] = self.count[0] + self.v   # the getter's write must happen once
        return self.inner


def augmented_assignment_through_a_property(x, w):
    b = WithProperty(w[1, 0])
    b.p[0] += w[0, 0]
    return b.count[0] * w[2, 2] + b.inner[0] * w[0, 1] + np.sum(x)


def written_in_key_functions(x, w):
    def writer(i):
        x[i] = w[i] * 2.0
        return -i
    order = list(range(3))
    order.sort(key=writer)
    best = max(range(3), key=writer) + min([0, 1], key=writer)
    return np.sum(np.tanh(x @ MIX)) + best


def bound_builtin_methods_as_values(x, w):
    acc = []
    list(map(acc.append, [w[0, 0], w[1, 1]]))
    return np.sum(np.tanh(x @ MIX)) + acc[0] * acc[1]


def unbound_setitem_of_builtin_types(x, w):
    y = [0.0] * 2
    list.__setitem__(y, 1, w[1, 1] ** 2)
    type(y).__setitem__(y, 0, w[0, 1] * 3.0)
    d = {}
    dict.__setitem__(d, "a", w[0, 0] ** 3)
    return y[1] * w[2, 2] + d["a"] + y[0] + np.sum(x)


NESTED_CALLS = []


def _counted(o):
    NESTED_CALLS.append(1)
    return o


class _Node:
    pass


def nested_augmented_targets(w):
    cs = [[0.0, 1.0], [2.0, 3.0]]
    _counted(cs)[0][1] += w * 2.0
    cs[_counted(1)][1] += w * w
    o = _Node()
    o.a = _Node()
    o.a.b = 1.0
    o.l = [0.0, w]
    _counted(o).a.b += w ** 3
    _counted(o).l[1] += w
    arr = np.array([[1.0, 2.0], [3.0, 4.0]])
    _counted(arr)[_counted(1)][0] *= w
    return cs[0][1] + cs[1][1] + o.a.b + o.l[1] + arr[1, 0]


def callbacks_accumulating_into_a_closed_over_list(x):
    total = [0.0]

    def add(v):
        total[0] += v * v
        return v

    values = [x[0], x[1], x[2]]
    list(filter(lambda v: add(v) > 0, values))
    sorted(values, key=add)
    best = max(values, key=add) + min(x[0], x[1], key=add)
    ordered = list(values)
    ordered.sort(key=lambda v: -add(v), reverse=True)
    return total[0] * x[0] + best + ordered[0]


def partial_with_an_out_argument(x, w):
    y = np.zeros(3)
    functools.partial(np.multiply, out=y)(w[0], w[1])
    return np.sum(np.tanh(x @ MIX)) + np.sum(y ** 2)


LOOP_CALLS = []


def loops_whose_tests_call_writers(w):
    x = np.array([1.0, 2.0])
    state = [0]

    def step():
        LOOP_CALLS.append(1)
        x[0] = x[0] * w + 0.1
        state[0] += 1
        return state[0]

    total = 0.0
    while step() < 4:
        total = total + x[0]
        if state[0] == 10:
            break
    k = 0
    while k < 3 and step() > 0:
        k += 1
        if k == 2:
            continue
        total = total + x[0] * x[1]
    while step() > 0:
        if state[0] > 8:
            break
    if step() > 0 or step() > 100:
        total = total + x[0]
    return total + x[0]


def closure_calling_a_capturing_closure(x):
    # the inner closure's cotangent was distributed with the same temporaries as the outer one's,
    # so the outer closure lost the cotangents of the variables it captured after it
    y = x * x
    k = 2.0

    def scale(w):
        return w * k

    def pb(dy):
        return x / scale(y) + dy * y

    return pb(1.0)


def unused_in_place_update_of_a_numpy_scalar(x):
    k = x[0]
    y = k * 2.0
    k *= 1.5          # np.float64 has no __imul__: a rebinding whose result nobody reads
    return y + x[1]


def star_unpacking_an_array(x):
    a, *rest = x
    return a * rest[0] + rest[1] ** 2


def lambda_reads_a_variable_rebound_after_it(s):
    a = s
    g = lambda t: t * a      # noqa: E731   (called through the name it was assigned to)
    a = a * s
    return g(s)              # s ** 3


def partial_made_by_a_star_call(x, a):
    import functools
    args = (_times, x)
    p = functools.partial(*args)    # the bound argument's cotangent was dropped on this path
    return p(a) + p(x)


def _times(u, v):
    return u * v


def dict_copied_then_original_loses_the_key(x):
    d = {"e": x[1], "f": x[0]}
    d2 = dict(d)
    d.pop("e")
    del d["f"]
    return d2["e"] * d2["f"]


# --- closures read their variables when they run (late binding) ---------------------------------

def closures_made_in_a_loop_called_after_it(x):
    fs = []
    for i in range(3):
        a = x * (i + 1.0)
        fs.append(lambda t: t * a)        # every closure reads the last a (3x) when called
    return sum(g(2.0) for g in fs)


def closure_called_in_its_iteration_and_after(x):
    total = 0.0
    keep = None
    for i in range(3):
        a = x * (i + 1.0)
        f = lambda t: t * a * a           # noqa: E731
        total = total + _apply(f, x)      # this iteration's a
        keep = f
    a = a + x                             # rebound after the loop: keep() reads this one
    return total + keep(1.0)


def _apply(f, v):
    return f(v)


def _scaler_rebinding_its_parameter(k):
    scale = lambda v: v * k               # noqa: E731
    k = k * k                             # the returned closure reads k squared
    return scale


def returned_closure_reads_the_rebound_parameter(x):
    f = _scaler_rebinding_its_parameter(x)
    return f(3.0) + f(x)


def nested_closures_over_a_rebound_variable(x):
    a = x
    outer = lambda t: (lambda u: u * a)(t) + a     # noqa: E731
    first = outer(x)
    a = a * x
    return first + outer(2.0)


# --- inlined helpers next to mutation, views, containers, closures --------------------------------

_G = np.array([0.5, -1.0, 2.0])

def view_of(a):
    return a[1:]

def scale_row(a, k):
    return a * k

def caller_mutates_returned_view(x):
    buf = x * 1.0
    v = view_of(buf)          # inlined: returns a view of buf
    v[0] = v[0] * 3.0         # writes through the view into buf
    return np.sum(buf ** 2)

def caller_mutates_after_inlined_use(x):
    b = x * 2.0
    s = scale_row(b, 3.0)     # inlined
    b[0] = 10.0               # caller writes into b after the inlined read
    return np.sum(s * b)

def helper_reads_global(a):
    return a * _G

def uses_global_helper(x):
    return np.sum(helper_reads_global(x) ** 2)

def pair(a, b):
    return a + b, a * b

def swap_loop(x, y):
    for _ in range(3):
        x, y = pair(y, x)
    return x * y

def maybe_none(a, flag):
    if flag:
        return a * 2.0
    return None

def handles_none(x):
    r = maybe_none(x, False)
    s = maybe_none(x, True)
    return s if r is None else r

def list_helper(lst):
    return lst[0] * lst[1]

def mutates_list_after(x):
    lst = [x, x * 2.0]
    p = list_helper(lst)
    lst[0] = 5.0
    return p + lst[0] * x

def helper_with_closure_arg(f, v):
    return f(v) * 2.0

def passes_closure(x):
    a = x * 3.0
    g = lambda t: t * a
    r = helper_with_closure_arg(g, x)
    a = a + 1.0
    return r + g(1.0)

def nested_helper_calls(x):
    return pair(*pair(x, x * 0.5))[1]

def array_and_float_mix(x, k):
    acc = 0.0
    for i in range(3):
        acc = acc + np.sum(scale_row(x, k * i))
        k = k * 0.9 + 0.1
    return acc


# --- closure cells: several closures, loops, recursion, returned closures --------------------------

def shared_cell_alternating(x):
    a = x
    f = lambda t: t * a
    g = lambda t: t + a * a
    s = f(1.0) + g(0.0)
    a = a * x
    s = s + f(2.0)
    a = a + 1.0
    return s + g(1.0) * f(1.0)

def closure_over_array_mutated(x):
    w = x * 1.0
    f = lambda t: np.sum(w * t)
    r = f(1.0)
    w[0] = w[0] * 5.0        # in-place write: f reads the same (mutated) array
    return r + f(2.0)

def nested_loops_late(x):
    fs = []
    for i in range(2):
        for j in range(2):
            a = x * (i + 1.0) + j
            fs.append(lambda t: t * a)
        b = a * 2.0
    return sum(f(1.0) for f in fs) + b

def _make_adder(k):
    add = lambda v: v + k * k
    k = k * 3.0
    return add

def returned_closures(x):
    f = _make_adder(x)
    g = _make_adder(x * 2.0)
    return f(1.0) * g(x)

def recursive_closure(x):
    a = x
    def power(n):
        if n == 0:
            return 1.0
        return a * power(n - 1)
    p = power(3)
    a = a * 2.0
    return p + power(2)

def closure_in_comprehension(x):
    scales = [x * k for k in (1.0, 2.0, 3.0)]
    fs = [lambda t, s=s: t * s for s in scales]
    a = x
    h = lambda t: t * a
    a = x * x
    return sum(f(h(1.0)) for f in fs)

def closure_chain(x):
    a = x
    f = lambda t: t * a
    g = lambda t: f(t) + a
    a = a * 3.0
    return g(2.0)

def closure_param_rebound(x, y):
    f = lambda t: t * x * y
    x = x + y
    y = y * 2.0
    return f(1.0)


def iterate_after_writing_through_a_view(x):
    # the write through v changes u's entries 1..: the loop reads them afterwards
    u = x.copy()
    v = u[1:]
    v *= 1.5
    s = 0.0
    for r in u:
        s = s + r * r
    return s + sum(r for r in u[::2])

def alias_of_a_sum_then_written(x):
    u = x.copy()
    u *= 2.0
    w = u + 0.0        # a new array: the later write to u must not reach it
    u *= 1.5
    return np.sum(np.sin(w)) + np.sum(u)
