"""Latency budgets as users type them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latency_models import format_ms, parse_duration_ms
from search_space import InputError


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2ms", 2.0),
        ("2 ms", 2.0),
        (" 2ms ", 2.0),
        ("1.5ms", 1.5),
        (".5ms", 0.5),
        ("500us", 0.5),
        ("500µs", 0.5),  # micro sign
        ("500μs", 0.5),  # Greek mu
        ("0.002s", 2.0),
        ("1e-3s", 1.0),
        ("2E0ms", 2.0),
        ("1500ns", 0.0015),
    ],
)
def test_parses_durations(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms, rel=1e-12)


@pytest.mark.parametrize(
    "text",
    ["abc", "2", "", "   ", "-2ms", "0ms", "0.0s", "2 parsecs", "nanms", "inf ms", "infms", "2msms",
     "ms", "2 m s", "1e999s", "2,5ms", "2ms 3ms", "+2ms", "0x10ms"],
)
def test_rejects_malformed_budgets(text):
    with pytest.raises(InputError) as info:
        parse_duration_ms(text)
    message = str(info.value)
    assert message.startswith("budget ")
    assert "\n" not in message


@pytest.mark.parametrize("value", [2, 2.0, None, b"2ms"])
def test_rejects_non_strings(value):
    with pytest.raises(InputError, match="budget"):
        parse_duration_ms(value)


def test_bare_number_asks_for_a_unit():
    with pytest.raises(InputError, match="unit"):
        parse_duration_ms("2")


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_format_ms_parses_back(ms):
    text = format_ms(ms)
    assert text.endswith("ms")
    assert math.isclose(parse_duration_ms(text), ms, rel_tol=1e-5)


@given(st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False, allow_infinity=False))
def test_format_ms_parses_back_over_the_whole_float_range(ms):
    assert math.isclose(parse_duration_ms(format_ms(ms)), ms, rel_tol=1e-5)
