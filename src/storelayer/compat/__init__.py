"""The APIs of the two documents storelayer was specified from, as thin layers over its
core, so that code written against those documents runs as written:

* :mod:`storelayer.compat.guide`: the sync "Database Layer Guide" (module-level
  ``init_db()``/``get_session()``, ``DatabaseManager``, ``UserQueries``...);
* :mod:`storelayer.compat.aio`: the async "Database API" (``DatabaseConnectionManager``,
  ``DatabaseMonitor``, ``BaseRepository``, ``BaseModel``).

storelayer's own style passes the ``Database`` around (``with db.session() as s``); these
modules keep a default database for the documents' module-level functions. The mapping
from each document's sections to storelayer's API is docs/guide/from-the-guides.md.
"""
