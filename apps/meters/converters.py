"""URL converters of the meters app."""

from __future__ import annotations


class SerialConverter:
    """A meter serial in a path: anything but a slash or a NUL (PostgreSQL text cannot hold
    one, so such a path can name no meter and resolves to nothing: 404)."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
