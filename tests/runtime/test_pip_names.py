"""Import names -> pip distributions: the table the plan and the start-up error share."""

from __future__ import annotations

import pytest

from packager.runtime.pip_names import PIP_NAMES, canonical, is_known, pip_name


@pytest.mark.parametrize("module, name", [
    ("yaml", "pyyaml"),
    ("cv2", "opencv-python"),
    ("PIL.Image", "pillow"),
    ("sklearn.linear_model", "scikit-learn"),
    ("opentelemetry.trace", "opentelemetry-api"),
    ("opentelemetry.sdk.trace", "opentelemetry-sdk"),  # the longest dotted prefix wins
    ("google.protobuf.json_format", "protobuf"),
    ("google.cloud.storage", "google-cloud-storage"),
    ("prometheus_client", "prometheus-client"),  # the fallback: `_` written `-`
    ("Levenshtein", "levenshtein"),
    ("torch.nn", "torch"),
])
def test_pip_name(module: str, name: str) -> None:
    assert pip_name(module) == name


def test_is_known_only_for_the_table() -> None:
    assert is_known("yaml.constructor") and is_known("opentelemetry.context")
    assert not is_known("torch") and not is_known("google.auth")


def test_table_values_are_canonical() -> None:
    assert {v for v in PIP_NAMES.values() if canonical(v) != v} == set()
