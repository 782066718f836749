"""A detector in the table without a firing test and a quiet-on-humans test fails the suite
(like CrowdSec's hub coverage: every scenario has its test)."""

import importlib
import pkgutil

import tests
from node.detectors import REGISTRY
from tests.detector_kit import FIRES, QUIET


def test_every_detector_has_firing_and_quiet_tests():
    for mod in pkgutil.iter_modules(tests.__path__):
        if mod.name.startswith(("test_detectors", "test_behavior")):
            importlib.import_module(f"tests.{mod.name}")
    missing_fire = sorted(set(REGISTRY) - FIRES)
    missing_quiet = sorted(set(REGISTRY) - QUIET)
    assert not missing_fire, f"detectors without a firing test: {missing_fire}"
    assert not missing_quiet, f"detectors without a quiet-on-humans test: {missing_quiet}"
