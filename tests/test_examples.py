"""The example gallery runs, and achieves what it claims.

Each script in examples/ is imported by path and its ``main(quick=True)`` run;
the test asserts on the numbers it returns. Plots go to a temporary folder
(when matplotlib is installed) so that the plotting code is exercised too.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"morula_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def run_main(module, tmp_path):
    return module.main(quick=True, plot=True, outdir=tmp_path)


def test_every_example_is_tested():
    scripts = sorted(p.stem for p in EXAMPLES.glob("[0-9]*.py"))
    assert scripts == ["01_taylor_sine", "02_polynomial_fit", "03_digits_classifier", "04_heat_equation",
                       "05_newton_hessian"], (
        "a new example needs assertions in tests/test_examples.py")


def test_taylor_sine(tmp_path, capsys):
    example = load_example("01_taylor_sine")
    result = run_main(example, tmp_path)
    assert result["points"] >= 5
    assert result["max_grad_error"] < 1e-10
    assert result["max_value_error"] < 1e-10
    out = capsys.readouterr().out
    assert "terms" in out                          # the print inside the differentiated function ran
    if has_matplotlib():
        assert (tmp_path / "01_taylor_sine.png").stat().st_size > 0


def test_taylor_sine_grad_is_cos_everywhere(capsys):
    import morula as mo

    example = load_example("01_taylor_sine")
    dsin = mo.grad(example.taylor_sin)
    for x in np.linspace(-6.0, 6.0, 25):
        assert abs(dsin(float(x), verbose=False) - math.cos(x)) < 1e-10
    assert capsys.readouterr().out == ""           # verbose=False reaches the function


def test_polynomial_fit(tmp_path):
    example = load_example("02_polynomial_fit")
    result = run_main(example, tmp_path)
    assert result["max_coef_error"] < 0.1
    assert result["max_coef_error"] < result["lstsq_max_coef_error"]   # robust beats least squares
    assert result["final_loss"] < 0.5 * result["initial_loss"]
    if has_matplotlib():
        assert (tmp_path / "02_polynomial_fit.png").stat().st_size > 0


def test_polynomial_fit_gradient_matches_finite_differences():
    import morula as mo

    example = load_example("02_polynomial_fit")
    x, y, _ = example.make_data(30, 3)
    coeffs = np.array([0.3, -0.7, -1.5, 1.0])      # a point with residuals on both sides of delta
    mo.testing.check_grads(example.huber_loss, (coeffs, x, y), modes="rev")


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")
def test_digits_classifier(tmp_path):
    example = load_example("03_digits_classifier")
    result = run_main(example, tmp_path)
    assert result["test_accuracy"] > 0.85
    assert result["final_loss"] < 0.5 * result["initial_loss"]
    if has_matplotlib():
        assert (tmp_path / "03_digits_classifier.png").stat().st_size > 0


def test_heat_equation_inverse_problem(tmp_path):
    example = load_example("04_heat_equation")
    result = run_main(example, tmp_path)
    assert result["gradient_difference"] < 1e-10      # in place == out of place
    assert result["relative_error"] < 0.1              # the initial condition is recovered
    assert result["relative_error"] < result["final_state_error"] / 3
    if has_matplotlib():
        assert (tmp_path / "04_heat_equation.png").stat().st_size > 0


def test_newton_with_exact_hessians(tmp_path):
    example = load_example("05_newton_hessian")
    result = run_main(example, tmp_path)
    assert result["hessian_error"] < 1e-12 and result["hvp_error"] < 1e-12
    assert result["gradient_norm"] < 1e-5                   # Newton converged in 6 steps
    assert result["newton_loss"] <= result["gd_loss"] + 1e-12
    assert result["accuracy"] > 0.9
    if has_matplotlib():
        assert (tmp_path / "05_newton_hessian.png").stat().st_size > 0
