"""The HTTP API and website: ``create_app(Settings(...))`` gives an ASGI app (FastAPI)."""

from sandik.api.app import create_app
from sandik.api.settings import Settings

__all__ = ["Settings", "create_app"]
