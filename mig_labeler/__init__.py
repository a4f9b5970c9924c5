"""mig-labeler: GFD-compatible Kubernetes node labels for NVIDIA GPUs and MIG devices.

This module holds the version only; it imports nothing heavy so that ``mig-labeler --version``
and ``mig-labeler labels`` start fast.
"""

__version__ = "0.1.0"
