"""A node that is not this one: the fixture format and bundled fixtures (``fixture``), MIG placement
rules (``layout``), the fake NVML behind ``--fixture`` and its structs (``fake_nvml``,
``nvml_structs``), a fake sysfs, and predicted nodes (``predict``: ``labels --gpu``, ``check --gpu``).

Product paths, not test tooling: ``make demo``, ``--fixture`` and predictions run through here. It
is imported only when a fixture or a prediction is asked for (``sources.open_source``,
``sources.open_predicted_source``); ``tests/test_architecture.py`` checks that nothing else imports
it at import time.
"""
