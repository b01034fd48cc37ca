"""Device profiles shipped in configs/devices/."""

from __future__ import annotations

import pytest

from latency_models import DeviceProfile, device_names, load_profile
from search_space import InputError


def test_documented_devices_ship():
    assert {"cpu", "cuda", "iphone"} <= set(device_names())


@pytest.mark.parametrize("name", device_names())
def test_every_device_loads(name):
    profile = load_profile(name)
    assert isinstance(profile, DeviceProfile)
    assert profile.name == name
    assert profile.description.strip()
    assert profile.source in ("measured", "imported", "analytic")
    assert profile.precisions
    assert set(profile.precisions) <= {4, 8, 16, 32}
    assert all(isinstance(v, str) and v for v in profile.precisions.values())


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(InputError) as info:
        load_profile("no-such-device")
    message = str(info.value)
    assert "no-such-device" in message
    for name in device_names():
        assert name in message


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        ({"description": "x", "source": "analytic", "precisions": {32: "fp32"}}, "dev.name: missing"),
        ({"name": "d", "description": "x", "source": "guessed", "precisions": {32: "fp32"}}, "dev.source: "),
        ({"name": "d", "description": "x", "source": "analytic", "precisions": {3: "fp32"}},
         "dev.precisions.3: unknown key"),
        ({"name": "d", "description": "x", "source": "analytic", "precisions": [32]},
         "dev.precisions: expected a mapping"),
        ([1, 2], "dev: expected a mapping"),
    ],
)
def test_malformed_profiles_name_the_field(data, prefix):
    with pytest.raises(InputError) as info:
        DeviceProfile.from_dict(data, field="dev")
    assert str(info.value).startswith(prefix)


def test_extra_fields_are_kept_as_parameters():
    profile = DeviceProfile.from_dict({"name": "d", "description": "x", "source": "analytic",
                                       "precisions": {8: "int8"}, "peak_tops": 11.0})
    assert profile.params == {"peak_tops": 11.0}
    assert profile.precisions == {8: "int8"}
