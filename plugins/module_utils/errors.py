# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error base of the collection (docs/architecture.md).

Every error raised on purpose is a ``BaremetalError``: it says where (a file,
an option, an object), what is wrong, and how to fix it. Modules and the
inventory plugin catch ``BaremetalError`` and show ``str(exc)``; anything else
is a bug. The message reads ``WHERE: PATH: PROBLEM. Fix: FIX``, leaving out
the parts that are not known.

The tree (each subclass lives beside the code that raises it)::

    BaremetalError
    +-- LocatedError                       built as (WHERE, PATH, PROBLEM, FIX)
    |   +-- FleetError (fleet_model.py)    the fleet file
    |   |   +-- FleetValidationError       several problems at once
    |   +-- StoreError (ledger_store.py)   a ledger store cannot be read or written
    |   +-- LedgerError (ledger_store.py)  a ledger's content is malformed
    |   +-- AllocationError (ipam.py)      a pool is exhausted, or the ledger disagrees with the fleet
    |   +-- LiveStateError (live_state.py) an API server could not be read
    +-- LockTimeout (atomic_file.py)       another run holds a file lock
    +-- K8sClientError (k8s_client.py)     no usable Kubernetes credentials
    +-- PlacementError (placement/model.py) an intent or option the planner cannot use
    +-- EtcdError (etcd_client.py)         an etcd request failed (EtcdConfigError: bad options)
    +-- EtcdBackupError (etcd_backup.py)   bad input to snapshots, retention or the PKI bundle
    |   +-- PkiBundleError                 a PKI bundle will not open (wrong passphrase, damaged)
    |   +-- RestoreCheckError (etcd_restore_check.py) the restore check cannot run (a tool, an image)
    |   +-- TimerConfigError (etcd_backup_timer.py)   the backup timer's config is wrong
    +-- DrainError (k8s_drain_model.py)    a drain could not finish (DrainOptionError: bad options)
    +-- NodeHealthError (node_health.py)   bad input to the health assessment
    +-- RemediationError (remediation.py)  bad input to the remediation policy
    +-- RecoveryStateError (recovery_state.py) the recovery state or a call on it does not fit
    +-- MaintenanceError (maintenance.py)  bad input to the maintenance plan
    +-- DriftError (drift.py)              bad input to a drift comparison
    +-- NodeMetadataError (node_metadata.py) bad input to the labels and taints comparison
    +-- ArtifactError (k8s_artifacts.py)   the artifact request or manifest does not fit
    +-- BootstrapError, HostSettingError, LoadBalancerError, ArtifactPlanError (bootstrap_*.py)
                                           a role's inputs its decision cannot use
"""

from __future__ import annotations


class BaremetalError(Exception):
    """Where, problem, fix. ``where`` and ``path`` locate the problem (file and field, option, object)."""

    def __init__(self, problem, fix=None, *, where=None, path=None):
        self.where = where
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(format_error(where, path, problem, fix))


class LocatedError(BaremetalError):
    """An error at a place in a named source (a file, a ledger store, an API server).

    Built as ``LocatedError(WHERE, PATH, PROBLEM, FIX)``; a missing PATH reads ``(top level)``.
    """

    def __init__(self, where, path, problem, fix):
        super().__init__(problem, fix, where=where, path=path or "(top level)")

    @property
    def file(self):
        return self.where


def format_error(where, path, problem, fix):
    """``WHERE: PATH: PROBLEM. Fix: FIX`` without the parts that are None."""
    text = ": ".join(str(part) for part in (where, path, problem) if part)
    return f"{text}. Fix: {fix}" if fix else text
