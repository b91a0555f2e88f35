"""What the differential fuzzer (tests/test_fuzz.py) found, kept as regression tests."""

import wengert as wg


def test_second_derivatives_at_the_fold_of_symmetric_rules():
    # tanh', sigmoid' and softplus' fold x to |x| so exp never overflows; abs's
    # derivative at 0 (the subgradient 0) then made every higher derivative at exactly 0
    # come out as if the function were flat there: softplus''(0) was 0, not 1/4.
    f = wg.softplus
    assert wg.compile(f).hessian(0.0) == 0.25
    assert wg.grad(wg.grad(f))(0.0) == 0.25
    assert wg.derivative(wg.derivative(wg.derivative(wg.sigmoid)))(0.0) == -0.125
    assert wg.derivative(wg.derivative(wg.derivative(wg.tanh)))(0.0) == -2.0
