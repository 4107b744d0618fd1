"""The result a patch returns: the file's new text and what happened to each part."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    ADDED = "added"
    APPLIED = "already applied"
    CONFLICT = "conflict"
    REPLACED = "replaced (--force)"
    UPDATED = "updated from an older patcher version"


@dataclass(frozen=True)
class Part:
    """One independently checkable piece of a patch, such as the config fields."""

    name: str
    status: Status
    detail: str = ""

    def describe(self) -> str:
        text = f"{self.name}: {self.status.value}"
        if self.detail:
            text += f" ({self.detail})"
        return text


@dataclass(frozen=True)
class PatchResult:
    """The new text of one file and the status of every part the patch looked at.

    When any part is a conflict, `new_text` contains only the changes that do
    not conflict, and the caller must not write it unless the user forced the patch.
    """

    new_text: str
    parts: tuple[Part, ...]

    @property
    def conflicts(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if part.status is Status.CONFLICT)
