"""Invariants over generated topologies: validity, determinism, order independence, no escapes."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mig_labeler.label_names import key_error, ownable, validate_labels, value_error
from mig_labeler.labels import compute_labels

from .conftest import make_config, read
from .strategies import node_fixtures, sharing_configs

STRATEGIES = st.sampled_from(["none", "single", "mixed"])
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(node_fixtures(), STRATEGIES, sharing_configs())
def test_every_key_is_valid_and_only_over_long_values_are_rejected(doc, strategy, sharing):
    labels = compute_labels(read(doc), make_config(strategy, sharing, no_timestamp=False), 1_700_000_000)
    for key, value in labels.items():
        assert key_error(key) is None, key
        assert ownable(key), key  # the admission policy lets us write it
        assert value_error(value) is None or len(value) > 63, (key, value)
    valid, rejected = validate_labels(labels)
    assert set(valid) | {r.key for r in rejected} == set(labels)
    assert all(value_error(v) is None for v in valid.values())


@SETTINGS
@given(node_fixtures(), STRATEGIES, sharing_configs(), st.randoms(use_true_random=False))
def test_labels_are_deterministic_and_independent_of_gpu_order(doc, strategy, sharing, rnd):
    config = make_config(strategy, sharing)
    topology = read(doc)
    first = compute_labels(topology, config, 1)
    assert compute_labels(read(doc), config, 1) == first
    gpus = list(topology.gpus)
    rnd.shuffle(gpus)
    assert compute_labels(dataclasses.replace(topology, gpus=tuple(gpus)), config, 1) == first


@SETTINGS
@given(node_fixtures(), STRATEGIES)
def test_single_strategy_never_mixes_mig_and_full_gpu_products(doc, strategy):
    labels = compute_labels(read(doc), make_config(strategy), 1)
    product = labels.get("nvidia.com/gpu.product", "")
    if "-MIG-" in product:
        assert strategy == "single"
        assert labels["nvidia.com/mig.strategy"] == "single"
