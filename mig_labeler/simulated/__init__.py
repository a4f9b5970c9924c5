"""Demo and test tooling: the fake NVML, the fixture format and bundled fixtures, and a fake sysfs.

The daemon imports this package only when ``--fixture`` is given (``sources.open_source``);
``tests/test_architecture.py`` checks that nothing else does at import time.
"""
