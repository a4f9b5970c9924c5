"""``mig-labeler check``: can a GPU workload land on these nodes, and if not, why not.

A package along the check's sections: ``model`` (nodes, workloads, problems), ``workloads``
(finding pod templates), ``index`` (a node set's labels), ``selection`` (nodeSelector and node
affinity as the scheduler evaluates them), ``resources`` (GPU extended resources), ``rules`` (one
workload against a node set), ``input`` (files, fixtures, saved labels, the cluster: the only
module here that reads anything) and ``report`` (text and JSON). Everything but ``input`` is pure.
"""

from mig_labeler.check.index import NodeIndex
from mig_labeler.check.model import ERROR, WARNING, Node, Problem, Result, Workload
from mig_labeler.check.resources import is_gpu_resource
from mig_labeler.check.rules import check
from mig_labeler.check.selection import expression_matches
from mig_labeler.check.workloads import workloads

__all__ = ["ERROR", "WARNING", "Node", "NodeIndex", "Problem", "Result", "Workload", "check", "expression_matches",
           "is_gpu_resource", "workloads"]
