"""Fixtures shared by the test files."""

import os

import pytest

from wengert import _core


@pytest.fixture
def engine_env():
    """`set(name, value)` sets (or, with None, removes) an engine variable such as
    WENGERT_JIT for this test and makes wengert read it (it reads them once, at first use);
    afterwards the environment and wengert's reading of it are as before."""
    saved: dict[str, str | None] = {}

    def set_env(name: str, value: str | None) -> None:
        saved.setdefault(name, os.environ.get(name))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
        _core._reload_settings()

    yield set_env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _core._reload_settings()
