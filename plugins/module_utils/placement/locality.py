# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network locality: the summed hop distance of a location to a set of peers, in O(1).

There is one hop rule, ``fleet.hop_distance``. ``PeerCounter`` does not restate it: it counts the peers
per relation to a location (same ToR and row, same ToR in another row, same row, same datacenter, same
region, another region) and weighs each count with what ``fleet.hop_distance`` answers for a pair of
servers in that relation (``HOP_WEIGHTS``, asked once at import). What it assumes of the rule is only its
shape: servers in another region or datacenter are far whatever their row or ToR, and inside a
datacenter only the row and the ToR matter. tests/unit/module_utils/placement checks it against
``fleet.hop_distance`` on random locations, shared ToRs included.
"""

from __future__ import annotations

from collections import namedtuple

from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Location, hop_distance

__all__ = ["HOP_WEIGHTS", "PeerCounter", "peer_keys"]

_Server = namedtuple("_Server", "name location")


def _weights() -> dict[str, int]:
    here = _Server("a", Location("r", "d", "w", "k", tor="t"))

    def hops(region, datacenter, row, rack, tor):
        return hop_distance(here, _Server("b", Location(region, datacenter, row, rack, tor=tor)))

    return {
        "same ToR and row": hops("r", "d", "w", "k", "t"),  # two servers of one rack
        "same ToR, other row": hops("r", "d", "w2", "k2", "t"),
        "same row": hops("r", "d", "w", "k2", "t2"),
        "same datacenter": hops("r", "d", "w2", "k2", "t2"),
        "same region": hops("r", "d2", "w2", "k2", "t2"),
        "other region": hops("r2", "d2", "w2", "k2", "t2"),
    }


HOP_WEIGHTS = _weights()


def peer_keys(location: Location) -> tuple:
    """The counter keys of a location: region, datacenter, row, ToR, row and ToR (each scoped to its parent).

    Build them once per server and pass them to ``PeerCounter.add_keys`` / ``hop_sum_keys`` in hot loops.
    """
    region, dc = location.region, location.datacenter
    return (("region", region), ("dc", region, dc), ("row", region, dc, location.row),
            ("tor", region, dc, location.tor), ("row+tor", region, dc, location.row, location.tor))


class PeerCounter:
    """Peers counted per region, datacenter, row, ToR and row+ToR; ``hop_sum`` is the sum of
    ``fleet.hop_distance`` from a location to every peer (each peer another server)."""

    __slots__ = ("counts", "total")

    _W_RACK = HOP_WEIGHTS["same ToR and row"]
    _W_TOR = HOP_WEIGHTS["same ToR, other row"]
    _W_ROW = HOP_WEIGHTS["same row"]
    _W_DC = HOP_WEIGHTS["same datacenter"]
    _W_REGION = HOP_WEIGHTS["same region"]
    _W_FAR = HOP_WEIGHTS["other region"]

    def __init__(self):
        self.total = 0
        self.counts: dict[tuple, int] = {}

    def add(self, location: Location, delta: int = 1) -> None:
        self.add_keys(peer_keys(location), delta)

    def add_keys(self, keys: tuple, delta: int = 1) -> None:
        self.total += delta
        counts = self.counts
        for key in keys:
            counts[key] = counts.get(key, 0) + delta

    def hop_sum(self, location: Location) -> int:
        return self.hop_sum_keys(peer_keys(location))

    def hop_sum_keys(self, keys: tuple) -> int:
        get = self.counts.get
        k_region, k_dc, k_row, k_tor, k_both = keys
        region, dc, row, tor, both = get(k_region, 0), get(k_dc, 0), get(k_row, 0), get(k_tor, 0), get(k_both, 0)
        return (self._W_RACK * both + self._W_TOR * (tor - both) + self._W_ROW * (row - both)
                + self._W_DC * (dc - row - tor + both) + self._W_REGION * (region - dc)
                + self._W_FAR * (self.total - region))
