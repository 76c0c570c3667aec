"""``make resource``: a CRUD resource (model, schemas, routes, migration, tests) in the service's style.

    python -m devtools.resource agent "name:str(3..80):unique voice:enum(alloy,echo)=alloy:filter" [--plural agents]
    python -m devtools.resource note "body:text" --owned yes   # rows of their creator's (auth=bearer)

Run in backend/ (``make resource NAME=... FIELDS=...`` does). ``spec.py`` reads the
arguments; ``plan.py`` checks them against the service; ``render.py`` fills the Jinja
templates of ``templates/`` with what ``kinds.py`` says of each field and ``parents.py``
of the tables its refs name; ``migration.py`` has Alembic write the revision;
``files.py`` formats every file with ruff and writes all of them or none;
``registration.py`` edits the v1 router. What it writes is the team's code from then
on: nothing keeps it in sync with this generator.
"""
