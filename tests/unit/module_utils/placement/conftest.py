# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement engine tests: ``placement_samples`` (this directory) and ``fleet_samples`` (tests/unit) importable.

tests/conftest.py makes the collection importable as ansible_collections.baremetal.k8s.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.dirname(os.path.dirname(HERE))
for path in (HERE, UNIT):
    if path not in sys.path:
        sys.path.insert(0, path)
