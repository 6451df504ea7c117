"""Shared test set-up: the plugin registered and mmseg as mmengine's default scope."""
import pytest
from mmengine.registry import init_default_scope

import fcn_plugin  # noqa: F401  (registers the plugin's components)


@pytest.fixture(autouse=True, scope='session')
def mmseg_default_scope():
    init_default_scope('mmseg')
