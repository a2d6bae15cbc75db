from storelayer.testing.suite import *  # noqa: F403
