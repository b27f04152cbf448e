"""One blueprint per resource; each module's ``bp`` is mounted under /api/v1."""
