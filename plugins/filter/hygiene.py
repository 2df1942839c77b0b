# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role k8s_hygiene's decisions as Jinja filters: thin shells over module_utils/hygiene.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import hygiene
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "hygiene_kubeadm_certs": hygiene.kubeadm_certs,
    "hygiene_certs_due": hygiene.certs_due,
    "hygiene_restarts": hygiene.restarts,
    "hygiene_expiring": hygiene.expiring,
    "hygiene_tokens_due": hygiene.tokens_due,
    "hygiene_secrets_due": hygiene.secrets_due,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
