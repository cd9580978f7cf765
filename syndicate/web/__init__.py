"""The web front: rendered feeds with conditional GET and gzip, the index and status pages."""

from .app import App, FeedCache

__all__ = ["App", "FeedCache"]
