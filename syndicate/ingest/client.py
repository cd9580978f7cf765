"""The connection pools that ``fetch`` sends its requests through: urllib3, shared by every
fetch thread, keep-alive per host.

Why urllib3 and not a requests ``Session`` (requests is urllib3 underneath): a conditional GET
that answers 304 cost 520–570 µs of CPU through ``Session.get`` and 110–150 µs through
urllib3, measured on the same loopback server. With a thousand sources answering 304, that
difference is most of a re-poll. ``fetch`` uses none of what the session adds: it follows
redirects itself, sends no credentials (a session reads ~/.netrc before every request) and
keeps no cookies between feeds.

What the session did that matters is done here once, at start: certificates are verified
against the bundle requests uses (certifi), or the one ``REQUESTS_CA_BUNDLE`` or
``CURL_CA_BUNDLE`` names (how operators trust a private CA, kept as it was); proxies come from
the environment (``http_proxy``, ``https_proxy``, ``all_proxy``, ``no_proxy``), as requests
reads them, credentials in a proxy's URL included.
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import certifi
import urllib3

# Pools kept for this many hosts (least recently used dropped): enough that the sources of one
# host, which dispatch spreads apart, still find their connection open.
HOST_POOLS = 256


class HttpClient:
    """urllib3 pools (direct, and one per proxy) that are safe to share between threads."""

    def __init__(self, connections_per_host: int = 8) -> None:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        # A file of certificates, or (as requests accepts too) a directory of them.
        trusted = {"ca_cert_dir": bundle} if bundle and os.path.isdir(bundle) else {
            "ca_certs": bundle or certifi.where()}
        # More connections than a host's pool keeps are opened when needed and closed after
        # use (block=False): never a wait, never a warning.
        self._options: dict[str, Any] = {
            "num_pools": HOST_POOLS, "maxsize": connections_per_host, "retries": False,
            "cert_reqs": "CERT_REQUIRED", **trusted}
        self.direct = urllib3.PoolManager(**self._options)
        environment = urllib.request.getproxies()
        self._proxies: dict[str, str] = {}
        for scheme in ("http", "https"):
            proxy = environment.get(scheme) or environment.get("all")
            if proxy:
                self._proxies[scheme] = proxy
        self._no_proxy = environment.get("no")
        self._proxied: dict[str, urllib3.ProxyManager] = {}

    def pool_for(self, url: str) -> urllib3.PoolManager:
        """The pool that reaches ``url``: through the environment's proxy unless ``no_proxy``
        names its host; with no proxy configured (the usual case), no look-up at all."""
        if not self._proxies:
            return self.direct
        # requests' reading of no_proxy (host names, domains, ports, CIDR ranges).
        from requests.utils import should_bypass_proxies

        proxy = self._proxies.get(urlsplit(url).scheme)
        if proxy is None or should_bypass_proxies(url, no_proxy=self._no_proxy):
            return self.direct
        pool = self._proxied.get(proxy)
        if pool is None:  # two threads may both make one: one of them is kept
            pool = self._proxied.setdefault(proxy, _proxy_manager(proxy, self._options))
        return pool

    @property
    def proxies(self) -> dict[str, str]:
        """The proxy of each scheme, from the environment when this client was made."""
        return dict(self._proxies)

    def close(self) -> None:
        self.direct.clear()
        for pool in self._proxied.values():
            pool.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _proxy_manager(proxy: str, options: dict[str, Any]) -> urllib3.ProxyManager:
    """A pool through ``proxy``; credentials in its URL (http://user:pass@host:port) become
    a Proxy-Authorization header, as requests sends them (urllib3 would drop them)."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return urllib3.ProxyManager(proxy, **options)
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return urllib3.ProxyManager(bare, proxy_headers=urllib3.make_headers(
        proxy_basic_auth=credentials), **options)
