"""ORM models. Subclass ``app.db.Base`` in a module here and import it below so
that metadata (and migrations) see every table."""
