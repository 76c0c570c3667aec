"""Columns most tables share: a UUID primary key and database-set timestamps.

They live here, beside ``Base``, not in ``app.models``: that package holds only the
team's tables, and every module in it is a set of tables for Alembic.
"""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, func
from sqlalchemy.orm import Mapped, mapped_column


class UUIDPrimaryKeyMixin:
    """``id``: a random UUID, the convention for ids that leave the service.

    Unguessable and free of row counts, it can go in URLs and to other systems, and a
    row's id is known before it is inserted. Tables whose ids never leave the service
    (join tables, logs) may use ``id: Mapped[int] = mapped_column(Identity(), primary_key=True)``.
    """

    # The database's default serves rows inserted by SQL alone (data migrations, scripts).
    # sort_order: the first column of the table, before the model's own.
    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid(), sort_order=-1
    )


class TimestampMixin:
    """``created_at`` and ``updated_at``: timezone-aware, set by the database's clock.

    ``updated_at`` is refreshed by every ORM or Core ``UPDATE`` of the row; plain SQL
    updates must set it themselves.
    """

    # sort_order: the last columns of the table, after the model's own.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), sort_order=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), sort_order=1
    )
