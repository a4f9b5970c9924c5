"""``mig-labeler diff``: the plan ``run --oneshot`` would execute, as lines. Writes nothing.

Owns: one read of the Node (and of the mig-parted ConfigMap, if named) within a time limit,
retries included (each logged), the labels a pass would want, the Node's MIG config request
verified as a pass verifies it, and the plan against the Node's labels and ownership.
"""

from __future__ import annotations

import os
from dataclasses import replace

from mig_labeler.config import Config
from mig_labeler.daemon.live_settings import ConfigSource, fetch_mig_parted_configmap
from mig_labeler.gpu_operator import mig_request, runs_dra_driver
from mig_labeler.kube.connection import connect
from mig_labeler.kube.retry import api_retry_policy
from mig_labeler.labels.desired import labels_for_topology
from mig_labeler.node_configs import choose_config
from mig_labeler.sinks.plan import plan_update
from mig_labeler.sources import open_source
from mig_labeler.stop import Stop
from mig_labeler.text_files import config_names


def label_diff(config: Config, started_at: int, host: str | None = None, timeout: float = 30.0,
               stop: Stop | None = None, options: ConfigSource | None = None,
               since: float | None = None) -> tuple[list[str], list[str]]:
    """Diff lines and warnings. ``stop`` ends a request in flight at once (Ctrl-C); ``options``: the
    command line's options, to read the config the node's device-plugin.config label picks;
    ``since``: when ``timeout`` started counting (``time.monotonic()``: the process's start)."""
    source = open_source(config.fixture, config.machine_type_file, config.driver_root)
    topology = source.read()
    kube = connect(config.kubeconfig, host=host, stop=stop, within=timeout, since=since, qps=config.kube_api_qps,
                   burst=config.kube_api_burst, context=config.kube_context)
    retry = api_retry_policy(stop=stop, deadline=timeout)
    try:
        node = retry(kube.read_node, config.node_name or "")
        configs = config.node_configs
        if configs is not None and options is not None:  # the node's own config, as run picks it
            name = choose_config(node.labels.get(configs.label, ""), config_names(configs.directory), configs.default,
                                 configs.fallbacks)
            config = options.read_with(os.path.join(configs.directory, name) if name else None)
        if config.mig_parted_configmap is not None:
            fetched = fetch_mig_parted_configmap(kube, retry, config.mig_parted_configmap, config.node_name)
            config = replace(config, mig_parted=fetched[1])
    finally:
        kube.close()
    dra = config.resource_api == "auto" and runs_dra_driver(node.labels)  # run's first test, no request
    desired = labels_for_topology(topology, config, started_at, mig_request=mig_request(node.labels, {}), dra=dra)
    plan = plan_update(node.labels, node.owned, desired.labels, node.shared)
    unchanged = len(desired.labels) - len(plan.add) - len(plan.change) - len(plan.adopt)
    lines = plan.lines() or ["no changes"]
    lines.append(f"# {plan.summary()}, {unchanged} unchanged; labels owned by others are never touched")
    warnings = list(desired.warnings)
    if desired.verification.mismatch:
        warnings.append(f"MIG layout mismatch: {desired.verification.mismatch}")
    return lines, warnings
