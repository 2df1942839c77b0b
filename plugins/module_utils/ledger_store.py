# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the fleet's ledgers live: one store interface for all of them (docs/ipam.md).

A *ledger* is a plain dict that the collection remembers between runs:

- ``allocations``: pod prefix and WireGuard address per node (ipam.py);
- ``placement``: which servers placement gave to which node group, and the tenant workloads (placement.py);
- ``recovery``: the recovery lock and each node's remediation progress (recovery_state.py).

Every store offers the same calls:

- ``read() -> dict``: the current ledger (an empty one when none exists);
- ``update(mutate) -> dict``: read the ledger, call ``mutate(ledger)`` (which changes it in place and returns
  True when it did), persist the result so that no concurrent update is lost, and return the ledger.
  ``mutate`` may be called more than once (optimistic retries), so it must only depend on the ledger given;
- ``stamp()``: a value that changes whenever the ledger does (the inventory cache keys on it);
- ``description``: where it lives, for messages.

Backends:

- ``FileStore``: a file beside the fleet file (JSON, or YAML for ``.yml``), written by atomic rename under an
  exclusive lock; serialises concurrent runs on one machine or NFS.
- ``KubernetesStore``: one ConfigMap per ledger in a management cluster, replaced with the resourceVersion it
  was read at; a 409 Conflict means someone else wrote first, so re-read, recompute, retry. Survives AWX's
  throwaway execution environments.

Which store: the fleet file's ``allocations:`` section (it configures the store of every ledger), overridden
by the module's or plugin's options.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from dataclasses import dataclass

from .atomic_file import LockTimeout, atomic_write_text, locked
from .errors import LocatedError
from .vocabulary import LEDGER_STORES

try:  # the kubernetes client's transport; absent without it (then only the file store can be used)
    from urllib3.exceptions import HTTPError as _Urllib3Error

    TRANSPORT_ERRORS = (_Urllib3Error, OSError)
except ImportError:
    TRANSPORT_ERRORS = (OSError,)

DEFAULT_NAMESPACE = "baremetal-k8s"
# The store options of every module that reads or writes a ledger (doc fragment baremetal.k8s.ledger_store).
STORE_ARGUMENT_SPEC = {
    "allocation_store": {"type": "str", "choices": list(LEDGER_STORES)},
    "kubeconfig": {"type": "path", "aliases": ["allocation_kubeconfig"]},
    "context": {"type": "str", "aliases": ["allocation_context"]},
    "namespace": {"type": "str", "aliases": ["allocation_namespace"]},
    "configmap": {"type": "str", "aliases": ["allocation_configmap"]},
}
CONFIGMAP_KEY = "ledger.json"


@dataclass(frozen=True)
class LedgerKind:
    """What differs between ledgers: file name, ConfigMap name, the empty ledger, a header for files."""

    name: str
    file_suffix: str  # beside the fleet file: <fleet stem><file_suffix>
    configmap: str  # default ConfigMap name
    empty: dict
    header: str = ""  # written at the top of a YAML ledger file


ALLOCATIONS = LedgerKind("allocations", ".allocations.json", "baremetal-k8s-allocations",
                         {"version": 1, "clusters": {}})
PLACEMENT = LedgerKind(
    "placement", ".placement.yml", "baremetal-k8s-placement", {},
    "# Placement ledger written by baremetal.k8s.placement; plan changes through intents, not by hand.\n",
)
# Recovery state: the recovery lock and each node's progress (recovery_state.py). Never committed: it changes
# on every recovery run.
RECOVERY = LedgerKind("recovery", ".recovery.json", "baremetal-k8s-recovery",
                      {"version": 1, "lock": None, "nodes": {}, "halts": {}})
LEDGERS = {kind.name: kind for kind in (ALLOCATIONS, PLACEMENT, RECOVERY)}
# Kept for callers that knew the allocation ledger only.
DEFAULT_CONFIGMAP = ALLOCATIONS.configmap


class StoreError(LocatedError):
    """The store cannot be read or written."""


class LedgerError(LocatedError):
    """A ledger's content is malformed."""


def default_ledger_path(fleet_file, kind=ALLOCATIONS):
    """``fleet.yml`` -> ``fleet.allocations.json`` (or ``fleet.placement.yml``) in the same directory."""
    stem = os.path.splitext(os.path.basename(fleet_file))[0]
    return os.path.join(os.path.dirname(os.path.abspath(fleet_file)), stem + kind.file_suffix)


def configmap_name(kind, name=None):
    """The ConfigMap of a ledger. ``name`` (the store's ``name`` setting) names the allocation ledger's;
    the others are named after it: ``fleet-a-allocations`` -> ``fleet-a-placement``, ``ledger`` -> ``ledger-placement``.
    """
    if not name:
        return kind.configmap
    if kind is ALLOCATIONS:
        return name
    base = name[: -len("-allocations")] if name.endswith("-allocations") else name
    return f"{base}-{kind.name}"


def _yaml_file(source):
    return source.endswith((".yml", ".yaml"))


def _decode(text, source, kind):
    if not text.strip():
        return copy.deepcopy(kind.empty)
    try:
        if _yaml_file(source):
            import yaml

            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        else:
            data = json.loads(text)
    except Exception as exc:  # any parser error means the same thing here
        raise LedgerError(source, None, f"cannot parse the ledger ({exc})", "restore it from a backup") from None
    if data is None:
        return copy.deepcopy(kind.empty)
    if not isinstance(data, dict):
        raise LedgerError(source, None, "the ledger is not a mapping", "restore it from a backup")
    return data


def encode(ledger, source, kind=ALLOCATIONS):
    """The text a file store writes (YAML for .yml/.yaml, else JSON), sorted so diffs stay small."""
    if _yaml_file(source):
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return kind.header + yaml.dump(ledger, Dumper=dumper, sort_keys=True, default_flow_style=False)
    return json.dumps(ledger, indent=1, sort_keys=True) + "\n"


class FileStore:
    """A ledger file, read-modify-written under an exclusive lock."""

    def __init__(self, path, lock_timeout=60.0, kind=ALLOCATIONS):
        self.path = path
        self.kind = kind
        self.description = path
        self.lock_timeout = lock_timeout

    def read(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return _decode(handle.read(), self.path, self.kind)
        except FileNotFoundError:
            return copy.deepcopy(self.kind.empty)
        except UnicodeDecodeError:
            raise LedgerError(self.path, None, "the ledger is not UTF-8 text", "restore it from a backup") from None
        except OSError as exc:
            raise StoreError(self.path, None, f"cannot read the ledger ({exc.strerror})", "check permissions") from None

    def stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return [st.st_mtime_ns, st.st_size, st.st_ino]

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
                    atomic_write_text(self.path, encode(ledger, self.path, self.kind))
                return ledger
        except LockTimeout as exc:
            raise StoreError(self.path, None, str(exc), "wait for the other run, then retry") from None
        except OSError as exc:
            raise StoreError(
                self.path, None, f"cannot write the ledger ({exc.strerror})", "make its directory writable"
            ) from None


class KubernetesStore:
    """A ledger in one ConfigMap, updated with optimistic concurrency."""

    def __init__(self, core_v1, namespace=DEFAULT_NAMESPACE, name=DEFAULT_CONFIGMAP, max_attempts=20,
                 kind=ALLOCATIONS):
        self.api = core_v1
        self.namespace = namespace
        self.name = name
        self.kind = kind
        self.max_attempts = max_attempts
        self.description = f"configmap {namespace}/{name}"

    def _get(self):
        """(configmap or None, ledger)."""
        from kubernetes.client.exceptions import ApiException

        try:
            cm = self.api.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None, copy.deepcopy(self.kind.empty)
            raise self._error("read", exc) from None
        except TRANSPORT_ERRORS as exc:
            raise self._error("read", exc) from None
        return cm, _decode((cm.data or {}).get(CONFIGMAP_KEY, ""), self.description, self.kind)

    def read(self):
        return self._get()[1]

    def stamp(self):
        cm = self._get()[0]
        return cm.metadata.resource_version if cm is not None else None

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
            except TRANSPORT_ERRORS as exc:
                raise self._error("write", exc) from None
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # jitter so racing writers spread out
        raise StoreError(
            self.description,
            None,
            f"gave up after {self.max_attempts} conflicting updates",
            "too many runs allocate at once; retry the run",
        )

    def _error(self, verb, exc):
        from .k8s_client import api_error_text

        return StoreError(
            self.description,
            None,
            f"cannot {verb} the ledger: {api_error_text(exc)}",
            f"check the kubeconfig, that the API server answers, and that it may get, create and update "
            f"configmaps in namespace {self.namespace}",
        )


def kubernetes_core_api(kubeconfig=None, context=None):
    """The store's CoreV1Api, built by k8s_client (the one client builder)."""
    from .k8s_client import K8sClientError, core_v1

    try:
        return core_v1(kubeconfig, context)
    except K8sClientError as exc:
        raise StoreError(
            kubeconfig or "kubeconfig", None, f"cannot load the kubeconfig: {exc.problem}",
            "point kubeconfig (or allocations.kubernetes.kubeconfig) at a valid kubeconfig file",
        ) from None


def open_store(kind, fleet_file, *, ledger=ALLOCATIONS, file=None, kubeconfig=None, context=None, namespace=None,
               name=None):
    """Build the store of one ledger (plugin/module options override the fleet file).

    The store's ``settings`` are the arguments that build it again (the inventory cache keeps them).
    """
    if kind == "kubernetes":
        api = kubernetes_core_api(kubeconfig, context)
        store = KubernetesStore(api, namespace or DEFAULT_NAMESPACE, configmap_name(ledger, name), kind=ledger)
    elif kind in (None, "file"):
        if file and not os.path.isabs(file):
            file = os.path.join(os.path.dirname(os.path.abspath(fleet_file)), file)
        store = FileStore(file or default_ledger_path(fleet_file, ledger), kind=ledger)
    else:
        raise StoreError(fleet_file, "allocations.store", f"unknown store {kind!r}",
                         "use one of: " + ", ".join(LEDGER_STORES))
    store.settings = {"kind": kind, "file": file, "kubeconfig": kubeconfig, "context": context,
                      "namespace": namespace, "name": name}
    return store


def store_overrides(params, file=None):
    """The store settings given by a module's STORE_ARGUMENT_SPEC options (and a ledger file path)."""
    return {
        "kind": params.get("allocation_store"),
        "file": file,
        "kubeconfig": params.get("kubeconfig"),
        "context": params.get("context"),
        "namespace": params.get("namespace"),
        "name": params.get("configmap"),
    }


def store_for_fleet(fleet, overrides=None, ledger=ALLOCATIONS):
    """The store of ``fleet``'s ``ledger``: its ``allocations:`` section, then non-empty ``overrides``.

    The section's ``file`` is the allocation ledger's path; other ledgers sit beside the fleet file unless an
    override names their file.
    """
    settings = {"kind": fleet.allocations.store, "file": fleet.allocations.file if ledger is ALLOCATIONS else None}
    settings.update(fleet.allocations.kubernetes)
    settings.update({k: v for k, v in (overrides or {}).items() if v})
    return open_store(fleet_file=fleet.source, ledger=ledger, **settings)


def apply_operations(fleet, params, state):
    """FLEET as it is run, for a module with STORE_ARGUMENT_SPEC: the recovery STATE's marks (failed,
    maintenance) and then the placement ledger of its store applied on top of the fleet file. Returns the
    warnings of both."""
    from .placement.ledger import apply_placement
    from .recovery_state import apply_marks

    warnings = apply_marks(fleet, state)
    return warnings + apply_placement(fleet, store_for_fleet(fleet, store_overrides(params), ledger=PLACEMENT))


def recovery_store(fleet, params):
    """The recovery state's store for a module with STORE_ARGUMENT_SPEC and ``recovery_file`` options."""
    return store_for_fleet(fleet, store_overrides(params, file=params.get("recovery_file")), ledger=RECOVERY)
