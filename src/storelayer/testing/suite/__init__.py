"""The storelayer conformance suite: the executable specification of a backend.

Run it against a backend with one line in a test module::

    from storelayer.testing.suite import *  # noqa: F403

pytest then collects every test below once per backend under test (see the
``backend_name`` fixture of the ``storelayer.testing`` pytest plugin). Tests gate on the
backend's declared ``Features`` with ``@pytest.mark.requires(...)``, never on its name.
The autouse ``conformance_tables`` fixture gives each test empty ``conformance_*``
tables. Guide: docs/plugins/testing.md.
"""

from inspect import isfunction

import pytest

from storelayer.testing.suite.fixtures import conformance_tables
from storelayer.testing.suite.test_concurrency import *  # noqa: F403
from storelayer.testing.suite.test_crud import *  # noqa: F403
from storelayer.testing.suite.test_filters import *  # noqa: F403
from storelayer.testing.suite.test_pagination import *  # noqa: F403
from storelayer.testing.suite.test_stream import *  # noqa: F403
from storelayer.testing.suite.test_transactions import *  # noqa: F403
from storelayer.testing.suite.test_types import *  # noqa: F403
from storelayer.testing.suite.test_writes import *  # noqa: F403

#: The fixture and every test function the star imports above brought in.
_tests = [n for n, f in dict(globals()).items() if n.startswith("test_") and isfunction(f)]
__all__ = ["conformance_tables", *sorted(_tests)]

# Every test runs through both faces of the API (see storelayer.testing._bridge).
for _name in _tests:
    pytest.mark.api_modes(globals()[_name])
