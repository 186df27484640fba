"""The app: server-rendered pages for members, coordinators, partner staff and commissioners.

Pages call the API's own endpoint handlers (`web.bridge`), so the app has no business logic of
its own: the same roles, scheme isolation, validation and idempotency apply to both.
"""

from .routes import web_routes
from .visit import State, WebConfig

__all__ = ["State", "WebConfig", "web_routes"]
