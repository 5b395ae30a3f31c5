"""e2e fixtures: the images are built once per session through hack/images.sh (cached by its inputs)."""

from __future__ import annotations

import pytest

from tests.e2e.containers import Images, build_images


@pytest.fixture(scope="session")
def images() -> Images:
    return build_images()
