"""Testing support: the pytest plugin's fixtures and the exported conformance suite.

A third-party backend runs the conformance suite with one line in a test module::

    from storelayer.testing.suite import *  # noqa: F403
"""

from storelayer.testing._provision import (
    Provisioner,
    Unavailable,
    in_ci,
    provision_or_skip,
    server_url_variable,
    skip_or_fail,
)
from storelayer.testing.app import AppSchema, async_rolled_back, rolled_back
from storelayer.testing.clusters import galera_cluster, pg_failover, pgbouncer
from storelayer.testing.clusters_galera import GaleraCluster
from storelayer.testing.clusters_pg import PgAutoFailover, PgBouncerPool
from storelayer.testing.plugin import selected_backends
from storelayer.testing.proxy import FaultProxy, fault_proxy
from storelayer.testing.replicas import ReplicaSet, replica_set, start_replicas

__all__ = [
    "AppSchema",
    "FaultProxy",
    "GaleraCluster",
    "PgAutoFailover",
    "PgBouncerPool",
    "Provisioner",
    "ReplicaSet",
    "Unavailable",
    "async_rolled_back",
    "fault_proxy",
    "galera_cluster",
    "in_ci",
    "pg_failover",
    "pgbouncer",
    "provision_or_skip",
    "replica_set",
    "rolled_back",
    "selected_backends",
    "server_url_variable",
    "skip_or_fail",
    "start_replicas",
]
