"""Unit tests live in folders that mirror the code (module_utils/, plugins/...); the shared samples
(fleet_samples.py) stay here, importable from every folder.

The hypothesis profiles are registered once, here: ``ci`` (derandomized, the default) and ``deep``
(``HYPOTHESIS_PROFILE=deep`` explores more). A test that needs another count says so with ``@settings``.
"""

import os
import sys

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
