"""``make resource``: a CRUD resource (model, schemas, routes, migration, tests) in the service's style.

    python -m devtools.resource agent "name:str:unique description:text? enabled:bool" [--plural agents]

Run in backend/ (``make resource NAME=... FIELDS=...`` does). Every file is worked out
and checked first; then all are written, or none. What it writes is the team's code
from then on: nothing keeps it in sync with this generator.
"""
