"""The examples in the Python docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["wengert", "wengert._compile", "wengert._arrays", "wengert._transforms", "wengert._core", "wengert._debug"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
