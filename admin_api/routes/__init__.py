"""One blueprint per resource; each module's ``bp`` is mounted under /api/v1."""

from admin_api.routes import door, events, faces, notifications, people, schedules, system

API_PREFIX = "/api/v1"
BLUEPRINTS = tuple(m.bp for m in (system, people, faces, schedules, events, door, notifications))
