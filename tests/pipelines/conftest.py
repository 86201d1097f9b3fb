from __future__ import annotations

from typing import Any

import pytest

TEST_STEPS = "tests.pipelines.steps_for_tests"


@pytest.fixture(autouse=True)
def _test_steps(settings: Any) -> None:
    settings.WINNOW_STEP_MODULES = [*settings.WINNOW_STEP_MODULES, TEST_STEPS]
