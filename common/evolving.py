"""Dataclasses that stay loadable from checkpoints written before they gained a field."""

from __future__ import annotations

import dataclasses
from typing import Any


class Evolving:
    """A mixin for checkpointed dataclasses: fields added since the pickle was written get their defaults.

    Unpickling restores ``__dict__`` without calling ``__init__``, so a field
    added in a later release would be missing on an object from an older
    checkpoint. Each new field must have a default (or default factory). A class's
    ``__post_init__`` runs after loading too, so a loaded object keeps the invariants a
    built one has (the tracked mappings of :mod:`common.tracked`, say).
    """

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for f in dataclasses.fields(self):  # type: ignore[arg-type]  # only dataclasses use the mixin
            if f.name in self.__dict__:
                continue
            if f.default is not dataclasses.MISSING:
                self.__dict__[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                self.__dict__[f.name] = f.default_factory()
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()
