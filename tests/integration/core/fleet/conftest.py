"""Fleet integration fixtures (see ``databases.py``)."""

from tests.integration.core.fleet.databases import fleet_db_url

__all__ = ["fleet_db_url"]
