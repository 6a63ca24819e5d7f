"""cnnlab.gradcheck: the numerical gradient of functions whose gradient we know in closed form,
and rel_error's definition; both must also be able to report a disagreement."""

import numpy as np
import pytest

from cnnlab.gradcheck import numerical_gradient, rel_error


def test_numerical_gradient_of_a_matrix_product():
    rng = np.random.default_rng(0)
    A, x, dout = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    # d/dx sum((A @ x) * dout) = A.T @ dout
    assert rel_error(numerical_gradient(lambda v: A @ v, x, dout), A.T @ dout) < 1e-8


def test_numerical_gradient_of_elementwise_functions():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    dout = np.arange(12.0).reshape(3, 4) - 5
    assert rel_error(numerical_gradient(np.sin, x, dout), np.cos(x) * dout) < 1e-8
    assert rel_error(numerical_gradient(lambda v: v**3, x, dout), 3 * x**2 * dout) < 1e-7


def test_numerical_gradient_restores_x_and_keeps_its_dtype():
    x = np.random.default_rng(1).normal(size=(2, 3))
    before = x.copy()
    g = numerical_gradient(np.exp, x, np.ones_like(x))
    np.testing.assert_array_equal(x, before)
    assert g.shape == x.shape and g.dtype == x.dtype


def test_a_wrong_analytic_gradient_is_detected():
    x = np.linspace(0.1, 1, 10)
    num = numerical_gradient(np.sin, x, np.ones_like(x))
    assert rel_error(num, -np.cos(x)) > 0.5          # the sign error is caught
    assert rel_error(num, np.cos(x) * 1.01) > 1e-3   # so is a 1% error


def test_scalar_function_with_dout_one():
    x = np.array([1.0, -2.0, 3.0])
    g = numerical_gradient(lambda v: np.sum(v**2), x, 1.0)
    assert rel_error(g, 2 * x) < 1e-9


def test_numerical_gradient_rejects_non_float_arrays_and_bad_steps():
    with pytest.raises(ValueError, match="x must be a float ndarray.*int64"):
        numerical_gradient(np.sin, np.arange(3), np.ones(3))
    with pytest.raises(ValueError, match="x must be a float ndarray.*list"):
        numerical_gradient(np.sin, [1.0, 2.0], np.ones(2))
    with pytest.raises(ValueError, match="h must be > 0"):
        numerical_gradient(np.sin, np.ones(3), np.ones(3), h=0)


def test_rel_error_definition():
    a, b = np.array([1.0, -3.0, 0.0]), np.array([1.5, -3.0, 0.0])
    assert rel_error(a, b) == pytest.approx(0.5 / 2.5)    # max |a-b| / (|a| + |b|)
    assert rel_error(a, a) == 0.0
    assert rel_error(a, b) == rel_error(b, a)
    assert rel_error(np.zeros(2), np.full(2, 1e-12)) == pytest.approx(1e-4)  # floor 1e-8
    assert isinstance(rel_error(a, b), float)


def test_rel_error_of_different_shapes_is_an_error():
    with pytest.raises(ValueError, match=r"same shape.*\(2,\) and \(3,\)"):
        rel_error(np.ones(2), np.ones(3))
