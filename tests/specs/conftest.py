"""Spec files (rubrics, guard formats) and their parsers; plans built here read the pinned dataset copy only."""

from tests.manifest.conftest import data_env  # noqa: F401 - the same autouse fixture: never a user's cache or the net
