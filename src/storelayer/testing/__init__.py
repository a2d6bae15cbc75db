"""Testing support: the pytest plugin's fixtures and the exported conformance suite.

A third-party backend runs the conformance suite with one line in a test module::

    from storelayer.testing.suite import *  # noqa: F403
"""

from storelayer.testing._provision import Provisioner, Unavailable, in_ci, server_url_variable
from storelayer.testing.plugin import provision_or_skip, selected_backends, skip_or_fail
from storelayer.testing.proxy import FaultProxy, fault_proxy
from storelayer.testing.replicas import ReplicaSet, replica_set, start_replicas

__all__ = [
    "FaultProxy",
    "Provisioner",
    "ReplicaSet",
    "Unavailable",
    "fault_proxy",
    "in_ci",
    "provision_or_skip",
    "replica_set",
    "selected_backends",
    "server_url_variable",
    "skip_or_fail",
    "start_replicas",
]
