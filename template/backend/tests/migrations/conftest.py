"""A database of its own for the tests that migrate one from nothing."""

from collections.abc import Iterator

import pytest

from tests.conftest import Servers
from tests.database import temporary_database


@pytest.fixture
def empty_database_url(servers: Servers) -> Iterator[str]:
    with temporary_database(servers.database_url) as url:
        yield url
