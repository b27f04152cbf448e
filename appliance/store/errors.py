"""The store's errors, shared by every domain module (the admin API maps them to responses)."""


class NotFound(LookupError):
    """No row with that id (or it is a tombstone)."""


class InUse(ValueError):
    """A row cannot be deleted while others still refer to it."""
