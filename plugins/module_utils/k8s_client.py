# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a ``kubernetes.client.ApiClient`` the same way in every module.

Pure Python (no Ansible imports) so tests and scripts can use it directly.
Order of precedence: explicit kubeconfig path, in-cluster service account
(when asked for, or when running in a pod and no kubeconfig exists), an
explicit ``host`` alone (no kubeconfig read at all), then the client's default
(``$KUBECONFIG`` or ``~/.kube/config``). ``host``, ``api_key`` and the
certificate options override what the kubeconfig says, as in kubernetes.core.
"""

from __future__ import annotations

import os

from .errors import BaremetalError

try:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:  # reported by the modules through missing_required_lib
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc

# Options every Kubernetes-facing module accepts (merged into its argument_spec).
# Documented once in plugins/doc_fragments/k8s_auth.py.
CLIENT_ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path", "no_log": False},
    "in_cluster": {"type": "bool", "default": False},
    "validate_certs": {"type": "bool", "default": True},
}


# Environment variables the options fall back to, named as in kubernetes.core.
CLIENT_ENV = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
    "validate_certs": "K8S_AUTH_VERIFY_SSL",
}


def module_argument_spec() -> dict:
    """CLIENT_ARGUMENT_SPEC with the K8S_AUTH_* environment fallbacks, for AnsibleModule."""
    from ansible.module_utils.basic import env_fallback

    spec = {name: dict(option) for name, option in CLIENT_ARGUMENT_SPEC.items()}
    for name, var in CLIENT_ENV.items():
        spec[name]["fallback"] = (env_fallback, [var])
    return spec


class K8sClientError(BaremetalError):
    """No usable Kubernetes client configuration (the message says which option to set)."""


def _in_pod() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def api_client(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    in_cluster: bool = False,
    validate_certs: bool = True,
    pool_size: int = 16,
    host: str | None = None,
    api_key: str | None = None,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
):
    """Return a configured ApiClient.

    POOL_SIZE is the urllib3 connection pool size; raise it to the number of
    threads that share the client (the default of 4 drops connections).
    """
    if not HAS_KUBERNETES:
        raise K8sClientError(f"the 'kubernetes' Python package is required: {KUBERNETES_IMPORT_ERROR}")
    cfg = k8s.Configuration()
    default_kubeconfig = os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0])
    for option, path in (("kubeconfig", kubeconfig), ("ca_cert", ca_cert), ("client_cert", client_cert),
                         ("client_key", client_key)):
        if path and not os.path.isfile(path):
            raise K8sClientError(f"{option}: file {path} does not exist")
    try:
        if kubeconfig:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        elif in_cluster or (_in_pod() and not os.path.exists(default_kubeconfig)):
            k8s_config.load_incluster_config(client_configuration=cfg)
        elif not host:
            k8s_config.load_kube_config(context=context, client_configuration=cfg)
    except (k8s_config.ConfigException, OSError) as exc:
        raise K8sClientError(
            f"cannot load Kubernetes client configuration: {exc} (set kubeconfig, host or in_cluster)"
        ) from None
    except Exception as exc:  # a kubeconfig that is not YAML, or not a mapping: any parser error
        raise K8sClientError(
            f"cannot load Kubernetes client configuration: {kubeconfig or default_kubeconfig} is not a kubeconfig "
            f"({type(exc).__name__}: {exc})",
            "point kubeconfig at a kubeconfig file (YAML with clusters, users and contexts)",
        ) from None
    if host:
        cfg.host = host
    if api_key:
        cfg.api_key = {"authorization": f"Bearer {api_key}"}
    if ca_cert:
        cfg.ssl_ca_cert = ca_cert
    if client_cert:
        cfg.cert_file = client_cert
    if client_key:
        cfg.key_file = client_key
    if not validate_certs:
        cfg.verify_ssl = False
    cfg.connection_pool_maxsize = max(pool_size, 4)
    return k8s.ApiClient(cfg)


def client_from_params(params: dict, pool_size: int = 16):
    """api_client() from a module's params (keys of CLIENT_ARGUMENT_SPEC)."""
    return api_client(
        kubeconfig=params.get("kubeconfig"),
        context=params.get("context"),
        in_cluster=bool(params.get("in_cluster")),
        validate_certs=params.get("validate_certs", True),
        pool_size=pool_size,
        host=params.get("host"),
        api_key=params.get("api_key"),
        ca_cert=params.get("ca_cert"),
        client_cert=params.get("client_cert"),
        client_key=params.get("client_key"),
    )


def core_v1(kubeconfig=None, context=None, **options):
    """A CoreV1Api over api_client() (the ledger store and the inventory's live state use it)."""
    return k8s.CoreV1Api(api_client(kubeconfig, context, **options))


def api_error_text(exc):
    """A short sentence for an API or transport error (never urllib3's retry dump)."""
    status = getattr(exc, "status", None)
    if status:
        return f"the API server answered {status} {getattr(exc, 'reason', '') or ''}".strip()
    reason = getattr(exc, "reason", None) or exc  # urllib3's MaxRetryError carries the root cause in .reason
    return f"cannot reach the API server ({type(reason).__name__}: {str(reason).split(': ', 1)[-1][:200]})"
