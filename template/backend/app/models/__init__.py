"""ORM models: one module per resource, each subclassing ``app.db.Base``.

Importing this package imports every module in it (subpackages too), so the metadata,
and with it Alembic's autogenerate, sees every table, and relationships named by
string resolve: there is no list of models to keep.
"""

import importlib
import pkgutil

for _module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
    importlib.import_module(_module.name)
