"""Unit tests live in folders that mirror the code (module_utils/, plugins/...); the shared samples
(fleet_samples.py) stay here, importable from every folder."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
