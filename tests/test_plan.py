"""plan_update: literal tables plus properties (foreign keys untouched, idempotent, no-op when equal)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mig_labeler.sinks.plan import plan_update

KEYS = st.sampled_from([f"nvidia.com/{k}" for k in ("gpu.product", "gpu.count", "mig.config", "mig-1g.5gb.count",
                                                   "gpu.deploy.dcgm", "mig.strategy")])
VALUES = st.sampled_from(["a", "b", "8", ""])
MAPS = st.dictionaries(KEYS, VALUES, max_size=6)


def test_plan_lists_adds_changes_removals_and_adoptions():
    live = {"nvidia.com/gpu.count": "8", "nvidia.com/mig-3g.20gb.count": "2", "nvidia.com/mig.config": "x",
            "nvidia.com/gpu.product": "A100"}
    owned = {"nvidia.com/gpu.count", "nvidia.com/mig-3g.20gb.count"}
    desired = {"nvidia.com/gpu.count": "7", "nvidia.com/mig-1g.5gb.count": "7", "nvidia.com/gpu.product": "A100"}
    plan = plan_update(live, owned, desired)
    assert plan.add == {"nvidia.com/mig-1g.5gb.count": "7"}
    assert plan.change == {"nvidia.com/gpu.count": ("8", "7")}
    assert plan.remove == {"nvidia.com/mig-3g.20gb.count": "2"}
    assert plan.adopt == ("nvidia.com/gpu.product",)
    assert plan.lines() == [
        "~ nvidia.com/gpu.count: '8' -> '7'",
        "* nvidia.com/gpu.product=A100 (already set; mig-labeler takes ownership)",
        "+ nvidia.com/mig-1g.5gb.count=7",
        "- nvidia.com/mig-3g.20gb.count (was '2')",
    ]


def test_plan_is_empty_when_everything_is_live_and_owned():
    labels = {"nvidia.com/gpu.count": "8"}
    assert plan_update(labels | {"nvidia.com/mig.config": "x"}, set(labels), labels).empty


@given(MAPS, st.sets(KEYS), MAPS)
def test_never_removes_or_changes_a_key_it_does_not_own_or_want(live, owned, desired):
    plan = plan_update(live, owned, desired)
    assert set(plan.remove) <= owned
    assert set(plan.change) <= set(desired)
    foreign = set(live) - owned - set(desired)
    assert not foreign & (set(plan.remove) | set(plan.change) | set(plan.add))


@given(MAPS, st.sets(KEYS), MAPS)
def test_applying_a_plan_then_planning_again_is_a_no_op(live, owned, desired):
    plan = plan_update(live, owned, desired)
    after = {k: v for k, v in live.items() if k not in plan.remove} | desired
    assert plan_update(after, set(desired), desired).empty
