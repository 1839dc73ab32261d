"""Helpers shared by the framework tests."""

import importlib
import os

import pytest


def require(module: str):
    """The imported framework module; a failure (or a skip with CAIRN_FRAMEWORKS_OPTIONAL=1)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if os.environ.get("CAIRN_FRAMEWORKS_OPTIONAL") == "1":
            pytest.skip(f"{module} does not import: {e}")
        raise
