"""Shared fixtures for the harness's own tests."""
pytest_plugins = ["pytester"]

# Hypothesis profiles for the property tests (tests/test_oracle_properties.py,
# tests/test_shape_inference.py): "quick" runs in CI; "deep" checks thousands of
# random configurations (tox -e oracle-deep, or CONFORMANCE_HYPOTHESIS_PROFILE=deep).
# `pytest --hypothesis-profile=deep` works too.
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("quick", max_examples=100, deadline=None)
settings.register_profile("deep", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("CONFORMANCE_HYPOTHESIS_PROFILE", "quick"))

# Load OpenVINO and torch before any in-process pytester run: pytester restores sys.modules after
# each run, and a native extension dropped that way fails to import again ("'openvino._pyopenvino'
# is not a package") in every later test.
import openvino  # noqa: E402,F401
import torch  # noqa: E402,F401

# Likewise the harness's stages: the pytest plugin imports them only when a run collects case files
# (an xdist controller never does), so a first in-process run would import them and pytester would
# drop them after it, leaving objects made from the old classes (a cached RenderedIR) unpicklable.
import conformance.api  # noqa: E402,F401


def pytest_collection_modifyitems(config, items):
    """Harness tests marked ``slow`` (the full-size examples) run only with --runslow (tox -e slow)."""
    if config.getoption("runslow", default=False):
        return
    import pytest
    skip = pytest.mark.skip(reason="slow (full-size, ~12 GB): run with --runslow or tox -e slow")
    for item in items:
        if "slow" in item.keywords and item.path.suffix == ".py":
            item.add_marker(skip)
