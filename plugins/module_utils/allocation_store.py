# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the allocation ledger lives (docs/ipam.md).

Every store offers the same two calls:

- ``read() -> dict``: the current ledger (an empty one when none exists);
- ``update(mutate) -> dict``: read the ledger, call ``mutate(ledger)`` (which
  changes it in place and returns True when it did), persist the result so
  that no concurrent update is lost, and return the ledger. ``mutate`` may be
  called more than once (optimistic retries), so it must only depend on the
  ledger it is given.

Backends:

- ``FileStore``: a JSON (or YAML) file beside the fleet file; ``locked()`` +
  ``atomic_write_text()`` serialise concurrent runs on one machine / NFS.
- ``KubernetesStore``: one ConfigMap in a management cluster, replaced with
  the resourceVersion it was read at; a 409 Conflict means someone else
  wrote first, so re-read, recompute, retry. Survives AWX's throwaway
  execution environments.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time

from .atomic_file import LockTimeout, atomic_write_text, locked
from .fleet import FleetError
from .ipam import LedgerError, empty_ledger

DEFAULT_CONFIGMAP = "baremetal-k8s-allocations"
DEFAULT_NAMESPACE = "baremetal-k8s"
CONFIGMAP_KEY = "ledger.json"


class StoreError(FleetError):
    """The store cannot be read or written."""


def default_ledger_path(fleet_file):
    """``fleet.yml`` -> ``fleet.allocations.json`` in the same directory."""
    stem = os.path.splitext(os.path.basename(fleet_file))[0]
    return os.path.join(os.path.dirname(os.path.abspath(fleet_file)), stem + ".allocations.json")


def _decode(text, source):
    if not text.strip():
        return empty_ledger()
    try:
        if source.endswith((".yml", ".yaml")):
            import yaml

            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        else:
            data = json.loads(text)
    except Exception as exc:  # any parser error means the same thing here
        raise LedgerError(source, None, f"cannot parse the ledger ({exc})", "restore it from a backup") from None
    if not isinstance(data, dict):
        raise LedgerError(source, None, "the ledger is not a mapping", "restore it from a backup")
    return data


def _encode(ledger, source):
    if source.endswith((".yml", ".yaml")):
        import yaml

        return yaml.dump(ledger, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=True)
    return json.dumps(ledger, indent=1, sort_keys=True) + "\n"


class FileStore:
    """A ledger file, read-modify-written under an exclusive lock."""

    def __init__(self, path, lock_timeout=60.0):
        self.path = path
        self.description = path
        self.lock_timeout = lock_timeout

    def read(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return _decode(handle.read(), self.path)
        except FileNotFoundError:
            return empty_ledger()
        except OSError as exc:
            raise StoreError(self.path, None, f"cannot read the ledger ({exc.strerror})", "check permissions") from None

    def update(self, mutate):
        # Writes are atomic renames, so an unlocked read is consistent. When it
        # needs no change (the usual inventory run) we are done: no lock file,
        # and read-only checkouts work.
        ledger = self.read()
        if not mutate(copy.deepcopy(ledger)):
            return ledger
        try:
            with locked(self.path, timeout=self.lock_timeout):
                ledger = self.read()
                if mutate(ledger):
                    atomic_write_text(self.path, _encode(ledger, self.path))
                return ledger
        except LockTimeout as exc:
            raise StoreError(self.path, None, str(exc), "wait for the other run, then retry") from None
        except OSError as exc:
            raise StoreError(
                self.path, None, f"cannot write the ledger ({exc.strerror})", "make its directory writable"
            ) from None


class KubernetesStore:
    """A ledger in one ConfigMap, updated with optimistic concurrency."""

    def __init__(self, core_v1, namespace=DEFAULT_NAMESPACE, name=DEFAULT_CONFIGMAP, max_attempts=20):
        self.api = core_v1
        self.namespace = namespace
        self.name = name
        self.max_attempts = max_attempts
        self.description = f"configmap {namespace}/{name}"

    def _get(self):
        """(configmap or None, ledger)."""
        from kubernetes.client.exceptions import ApiException

        try:
            cm = self.api.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None, empty_ledger()
            raise self._error("read", exc) from None
        return cm, _decode((cm.data or {}).get(CONFIGMAP_KEY, ""), self.description)

    def read(self):
        return self._get()[1]

    def update(self, mutate):
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        for attempt in range(self.max_attempts):
            cm, ledger = self._get()
            work = copy.deepcopy(ledger)
            if not mutate(work):
                return work
            data = {CONFIGMAP_KEY: json.dumps(work, separators=(",", ":"), sort_keys=True)}
            try:
                if cm is None:
                    body = client.V1ConfigMap(
                        metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace), data=data
                    )
                    self.api.create_namespaced_config_map(self.namespace, body)
                else:
                    # resource_version makes the replace conditional: 409 if anyone wrote since our read.
                    cm.data = data
                    self.api.replace_namespaced_config_map(self.name, self.namespace, cm)
                return work
            except ApiException as exc:
                if exc.status != 409:
                    raise self._error("write", exc) from None
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # jitter so racing writers spread out
        raise StoreError(
            self.description,
            None,
            f"gave up after {self.max_attempts} conflicting updates",
            "too many runs allocate at once; retry the run",
        )

    def _error(self, verb, exc):
        return StoreError(
            self.description,
            None,
            f"cannot {verb} the ledger: {exc.status} {exc.reason}",
            f"check the kubeconfig and that it may get, create and update configmaps in namespace {self.namespace}",
        )


def kubernetes_core_api(kubeconfig=None, context=None):
    """A CoreV1Api from a kubeconfig, or the pod's service account when none is given."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise StoreError(
            "kubernetes store", None, "the kubernetes Python client is missing", "pip install kubernetes"
        ) from None
    try:
        if kubeconfig:
            return client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig, context=context))
        try:
            config.load_incluster_config()  # AWX execution environments run as pods
        except config.ConfigException:
            config.load_kube_config(context=context)
        return client.CoreV1Api()
    except (config.ConfigException, OSError, ValueError) as exc:
        raise StoreError(
            kubeconfig or "kubeconfig", None, f"cannot load the kubeconfig ({exc})", "point kubeconfig at a valid file"
        ) from None


def open_store(kind, fleet_file, *, file=None, kubeconfig=None, context=None, namespace=None, name=None):
    """Build the store a fleet asks for (plugin/module options override the fleet file)."""
    if kind == "kubernetes":
        api = kubernetes_core_api(kubeconfig, context)
        return KubernetesStore(api, namespace or DEFAULT_NAMESPACE, name or DEFAULT_CONFIGMAP)
    if kind not in (None, "file"):
        raise StoreError(fleet_file, "allocations.store", f"unknown store {kind!r}", "use file or kubernetes")
    if file and not os.path.isabs(file):
        file = os.path.join(os.path.dirname(os.path.abspath(fleet_file)), file)
    return FileStore(file or default_ledger_path(fleet_file))


def store_for_fleet(fleet, overrides=None):
    """The store of ``fleet``: its ``allocations:`` section, then non-empty ``overrides``."""
    settings = {"kind": fleet.allocations.store, "file": fleet.allocations.file}
    settings.update(fleet.allocations.kubernetes)
    settings.update({k: v for k, v in (overrides or {}).items() if v})
    return open_store(fleet_file=fleet.source, **settings)
