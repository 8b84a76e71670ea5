"""Every top-level name of ``zspace`` resolves (they are imported lazily, so a moved module breaks only on use)."""

from __future__ import annotations

import pytest

import zspace


@pytest.mark.parametrize("name", [n for n in zspace.__all__ if n != "__version__"])
def test_every_lazy_name_resolves_to_what_it_names(name):
    obj = getattr(zspace, name)
    assert getattr(obj, "__name__", name) == name or name == "explore"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = zspace.nope
