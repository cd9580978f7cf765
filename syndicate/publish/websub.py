"""Telling a WebSub hub that feeds changed (W3C WebSub §7, "Publishing").

The feeds name the hub with ``rel="hub"``; after a feed's bytes change we POST
``hub.mode=publish`` with the feed's URL as ``hub.url`` (and ``hub.topic``, which some hubs
read instead), once per format. A hub that is down or refuses is logged and never fails the
publish: subscribers fall back to polling, and the next change pings again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..types import ServiceConfig

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

TIMEOUT = (5.0, 10.0)  # connect, read: a slow hub must not hold up publishing for long


def notify_hub(service: ServiceConfig, feed_ids: Iterable[str],
               session: requests.Session | None = None) -> list[str]:
    """Ping the configured hub for every format of the given feeds; return the URLs the hub
    accepted (2xx)."""
    if not service.websub_hub:
        return []
    import requests  # only with a hub configured: most runs never need it

    from .render import EXTENSIONS, feed_url

    http = session or requests.Session()
    accepted = []
    for feed_id in feed_ids:
        for fmt in EXTENSIONS:
            topic = feed_url(service, feed_id, fmt)
            data = {"hub.mode": "publish", "hub.url": topic, "hub.topic": topic}
            try:
                response = http.post(service.websub_hub, data=data, timeout=TIMEOUT,
                                     headers={"User-Agent": service.user_agent})
            except requests.RequestException as e:
                log.warning("WebSub hub %s not reached for %s: %s", service.websub_hub, topic, e)
                continue
            if 200 <= response.status_code < 300:
                accepted.append(topic)
            else:
                log.warning("WebSub hub %s answered HTTP %d for %s", service.websub_hub,
                            response.status_code, topic)
    if accepted:
        log.info("WebSub hub %s notified of %d feed URLs", service.websub_hub, len(accepted))
    return accepted
