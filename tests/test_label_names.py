"""GFD's sanitise byte for byte, and Kubernetes label validation."""

from __future__ import annotations

import pytest

from mig_labeler.label_names import key_error, product_value, sanitise, validate_labels, value_error


@pytest.mark.parametrize(
    ("raw", "expected"),
    [  # gfd-reference §3 test pairs
        ("a space separated string", "a-space-separated-string"),
        ("some(thing)else", "somethingelse"),
        ("some ( thing )else", "some-thing-else"),
        ("NVIDIA-TITAN-X-(Pascal)", "NVIDIA-TITAN-X-Pascal"),
        ("some [ / thing / ]else", "some-thing-else"),
        ("some-thing.else_new", "some-thing.else_new"),
        ("A - B", "A---B"),
        ("tab\tseparated", "tabseparated"),
        ("Grüße GPU", "Gre-GPU"),
    ],
)
def test_sanitise_matches_gfd(raw, expected):
    assert sanitise(raw) == expected


def test_product_joins_parts_and_appends_shared():
    assert product_value("NVIDIA A100-SXM4-40GB", "MIG", "1g.5gb", shared=True) == \
        "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED"


@pytest.mark.parametrize("value", ["", "a", "A100", "12.4", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "x" * 63])
def test_valid_values(value):
    assert value_error(value) is None


@pytest.mark.parametrize("value", ["-a", "a.", "a b", "0.5x ", "x" * 64, "a/b"])
def test_invalid_values(value):
    assert value_error(value) is not None


@pytest.mark.parametrize("key", ["nvidia.com/gpu.product", "nvidia.com/mig-1g.10gb.me.count", "plain"])
def test_valid_keys(key):
    assert key_error(key) is None


@pytest.mark.parametrize("key", ["Nvidia.com/x", "nvidia.com/", "nvidia.com/-x", "nvidia.com/" + "a" * 64, "/x"])
def test_invalid_keys(key):
    assert key_error(key) is not None


def test_validate_labels_reports_rejections_instead_of_dropping_them_silently():
    long = "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition-MIG-1g.24gb.me.all-SHARED"
    valid, rejected = validate_labels({"nvidia.com/gpu.product": long, "nvidia.com/gpu.count": "1"})
    assert valid == {"nvidia.com/gpu.count": "1"}
    assert [(r.key, r.reason) for r in rejected] == [("nvidia.com/gpu.product", "value is 70 characters, more than 63")]
