"""cnnlab.shapes: output sizes against torch's own conv output, padding, parameter counts against
torch modules, and the errors that teach."""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.shapes import conv_output_size, conv_param_count, fc_param_count, same_padding


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 20), f=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3))
def test_conv_output_size_is_torchs_when_the_filter_fits_and_an_error_otherwise(n, f, s, p):
    if n + 2 * p < f:
        with pytest.raises(ValueError, match=f"a {f}x{f} filter is larger than a {n}x{n} input"):
            conv_output_size(n, f, s, p)
    elif (n + 2 * p - f) % s:
        with pytest.raises(ValueError, match=f"does not fit a {n}x{n} input with stride {s}"):
            conv_output_size(n, f, s, p)
    else:
        out = torch.nn.functional.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f),
                                         stride=s, padding=p)
        assert conv_output_size(n, f, s, p) == out.shape[-1]


@pytest.mark.parametrize("f", [1, 3, 5, 7, 9, 11])
def test_same_padding_keeps_the_size_at_stride_1(f):
    p = same_padding(f)
    assert conv_output_size(32, f, 1, p) == 32


@pytest.mark.parametrize("f", [2, 4, 6])
def test_same_padding_of_an_even_filter_is_an_error(f):
    with pytest.raises(ValueError, match=f"odd filter size: F = {f} gives P = \\(F - 1\\) / 2"):
        same_padding(f)


@pytest.mark.parametrize("f, c, k", [(5, 3, 10), (3, 64, 64), (1, 64, 32), (11, 3, 96)])
def test_conv_param_count_equals_a_torch_conv_layer(f, c, k):
    layer = torch.nn.Conv2d(c, k, f)
    assert conv_param_count(f, c, k) == sum(p.numel() for p in layer.parameters())
    assert conv_param_count(f, c, k) == f * f * c * k + k


@pytest.mark.parametrize("n_in, n_out", [(3072, 10), (1, 1), (120, 84)])
def test_fc_param_count_equals_a_torch_linear_layer(n_in, n_out):
    layer = torch.nn.Linear(n_in, n_out)
    assert fc_param_count(n_in, n_out) == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: conv_output_size(7, 3, 0), "stride S must be a whole number >= 1, got 0"),
        (lambda: conv_output_size(7, 3, 1, -1), "pad P must be a whole number >= 0, got -1"),
        (lambda: conv_output_size(7, 0), r"f \(the filter size F\) must be a whole number >= 1"),
        (lambda: conv_output_size(0, 3), r"n \(the input size N\) must be a whole number >= 1"),
        (lambda: conv_output_size(7.5, 3), r"n .* must be a whole number >= 1, got 7.5"),
        (lambda: conv_output_size(7, 3, True), "stride S must be a whole number"),
        (lambda: conv_output_size(7, 3, 4, 1),
         r"does not fit a 7x7 input with stride 4 and pad 1: \(7 \+ 2\*1 - 3\) / 4 \+ 1 = 2.5 "),
        (lambda: conv_param_count(3, 0, 4), r"c \(the input channels C\)"),
        (lambda: fc_param_count(0, 4), "n_in must be a whole number >= 1"),
    ],
)
def test_bad_values_raise_a_value_error_naming_the_rule(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_whole_floats_are_accepted():
    assert conv_output_size(7.0, 3.0, 2.0) == 3


@pytest.mark.parametrize(
    "call, args, position, name, minimum",
    [
        (conv_output_size, (7, 3, 1, 0), 0, "n (the input size N)", 1),
        (conv_output_size, (7, 3, 1, 0), 1, "f (the filter size F)", 1),
        (conv_output_size, (7, 3, 1, 0), 2, "stride S", 1),
        (conv_output_size, (7, 3, 1, 0), 3, "pad P", 0),
        (same_padding, (3,), 0, "f (the filter size F)", 1),
        (conv_param_count, (3, 2, 4), 0, "f (the filter size F)", 1),
        (conv_param_count, (3, 2, 4), 1, "c (the input channels C)", 1),
        (conv_param_count, (3, 2, 4), 2, "k (the number of filters K)", 1),
        (fc_param_count, (3, 4), 0, "n_in", 1),
        (fc_param_count, (3, 4), 1, "n_out", 1),
    ],
)
def test_every_argument_is_checked_by_name_down_to_its_minimum(call, args, position, name, minimum):
    """The smallest allowed value works, one less is a ValueError naming that argument, its rule
    and the value (so a message can never blame the wrong argument)."""
    at_minimum = [1, 1, 1, 0] if call is conv_output_size else list(args)   # 1x1 on 1 pixel fits
    at_minimum[position] = minimum
    call(*at_minimum)
    below = list(args)
    below[position] = minimum - 1
    rule = f"{name} must be a whole number >= {minimum}, got {minimum - 1}"
    with pytest.raises(ValueError, match=re.escape(rule)):
        call(*below)


def test_the_boundary_values_give_the_right_numbers():
    assert conv_output_size(1, 1) == 1
    assert conv_output_size(5, 5) == 1                # the filter as large as the input
    assert conv_output_size(3, 5, pad=1) == 1         # ... as large as the padded input
    assert conv_param_count(1, 1, 1) == 2
    assert fc_param_count(1, 1) == 2
    assert same_padding(1) == 0


def test_defaults_and_the_wording_of_each_error():
    """Survivors of `make mutants` that were real bugs: a default stride other than 1, "padded by
    0" in the message of an unpadded input, the wrong number in same_padding's message."""
    assert conv_output_size(7, 3) == 5                          # stride 1, pad 0 by default
    with pytest.raises(ValueError) as err:
        conv_output_size(3, 5)
    assert str(err.value) == (
        "a 5x5 filter is larger than a 3x3 input: F = 5 > N + 2P = 3, so no window position exists"
    )
    with pytest.raises(ValueError, match=re.escape("P = (F - 1) / 2 = 1.5, not a whole number")):
        same_padding(4)


def test_fractions_are_printed_short():
    from cnnlab.shapes import _fmt

    assert [_fmt(v) for v in (7 / 3, 2.5, 4.0, 0.5, 10.0)] == ["2.33", "2.5", "4", "0.5", "10"]
