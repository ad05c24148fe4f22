"""Plans are built from the pinned dataset copy beside the checkout, as the manifest tests' are."""

from tests.manifest.conftest import data_env  # noqa: F401 - the same autouse fixture: never a user's cache or the net
