"""How each upstream is reached, as plain data (NET-01, NET-02): its :class:`Route` (name, proxy, TLS
settings), the proxy URL and the environment's proxy variables. Sans-I/O: the connecting is the upstream
client's (``client/route.py``, ``client/proxy.py``, ``client/tls.py``).

Theory of operation: the configuration resolves, once per upstream at start, the proxy URL it uses (its
own ``proxy`` setting, else the environment's variables unless ``env_proxy = false``) with
:meth:`ProxyEnvironment.for_url`; ``make_upstream`` turns it and the TLS settings into the upstream's
:class:`Route`, which the exchange hands the upstream client with every call (``Upstream.route``).

The environment, as curl, httpx and requests read it (there is no standard: see
https://about.gitlab.com/blog/2021/01/27/we-need-to-talk-no-proxy/):
- ``https_proxy`` for https URLs, ``http_proxy`` for http URLs, ``all_proxy`` for either when the
  scheme's own is unset; each also in upper case, the lower-case name winning when both are set (as
  Python's ``urllib.request.getproxies_environment``, which httpx and requests use: a lower-case
  variable set to the empty string disables the upper-case one);
- ``no_proxy`` (or ``NO_PROXY``): entries separated by commas or spaces; ``*`` alone bypasses every
  host; a name matches itself and every name below it, a leading ``.`` or ``*.`` being optional
  (``corp.example`` and ``.corp.example`` both match ``api.corp.example``, not ``mycorp.example``:
  https://curl.se/libcurl/c/CURLOPT_NOPROXY.html); an IP address matches itself, and CIDR notation a
  network (curl 7.86); names are never resolved to match an address. An entry with a port
  (``host:8080``, ``[::1]:8080``) matches that port only (as Go's and Python's do); one without matches
  every port (curl: "ample.com" matches ample.com:80).
- A proxy URL without a scheme is ``http://``; ``user:password@`` in it (percent-decoded) becomes
  ``Proxy-Authorization: Basic`` (RFC 7617). Only ``http://`` proxies are taken: another scheme is a
  configuration error naming the variable. The credentials are never in a ``repr``, a message or a log.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import UpstreamUnreachable

__all__ = [
    "ProxyEnvironment",
    "ProxyURL",
    "Route",
    "TLSSettings",
    "authority",
    "bypass",
    "parse_proxy",
    "redacted",
    "route",
]

_PROXY_NAMES = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """An HTTP proxy: where it is and the ``Proxy-Authorization`` value (never shown)."""

    host: str
    port: int
    authorization: bytes | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The proxy as messages and logs name it: without the credentials."""
        return f"http://{authority(self.host, self.port)}"

    def __str__(self) -> str:
        return self.shown


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def redacted(url: str) -> str:
    """A proxy URL as it may be shown: its ``user:password@`` replaced by ``***@``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    _, at, hostpart = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{hostpart if at else rest}"


def parse_proxy(url: str) -> ProxyURL:
    """``http://[user:password@]host[:port]`` (the scheme optional) -> ProxyURL; raises ValueError whose
    message shows the URL without its credentials."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # curl's default for a proxy without a scheme
    try:
        parts = urlsplit(text)
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"proxy {redacted(url)!r} is not a valid URL") from None
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"proxy {redacted(url)!r}: only http:// proxies are supported (got {parts.scheme}://)"
        )
    if not parts.hostname:
        raise ValueError(f"proxy {redacted(url)!r} has no host")
    authorization = None
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        authorization = b"Basic " + base64.b64encode(pair.encode("utf-8"))
    return ProxyURL(parts.hostname, port, authorization)


@dataclass(frozen=True, slots=True)
class ProxyEnvironment:
    """The environment's proxy variables, read once by config/load.py (the only reader of the
    environment); shown without credentials."""

    https: str | None = None
    http: str | None = None
    all: str | None = None
    no: str | None = None

    @classmethod
    def of(cls, environ: Mapping[str, str]) -> ProxyEnvironment:
        def pick(name: str) -> str | None:
            value = environ.get(name, environ.get(name.upper()))  # lower case wins, even when empty
            return value.strip() or None if value is not None else None

        return cls(*(pick(name) for name in _PROXY_NAMES))

    def __repr__(self) -> str:
        shown = (f"{n}={redacted(v)!r}" for n, v in zip(_PROXY_NAMES, self._values(), strict=True) if v)
        return f"ProxyEnvironment({', '.join(shown)})"

    def _values(self) -> tuple[str | None, ...]:
        return (self.https, self.http, self.all, self.no)

    def for_url(self, url: str) -> tuple[str, str] | None:
        """(the variable's name, the proxy URL) the environment sets for ``url``, or None: direct."""
        parts = urlsplit(url)
        https = parts.scheme == "https"
        chosen = ("https_proxy", self.https) if https else ("http_proxy", self.http)
        if chosen[1] is None:
            chosen = ("all_proxy", self.all)
        if chosen[1] is None:
            return None
        port = parts.port or (443 if https else 80)
        if self.no is not None and bypass(parts.hostname or "", port, self.no):
            return None
        return chosen[0], chosen[1]


def bypass(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` says ``host:port`` is reached directly (rules: the module's docstring)."""
    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.replace(",", " ").split():
        entry = entry.lower()
        if entry == "*":
            return True
        entry, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass  # a name: it never matches an address
            continue
        name = entry.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:8080`` / ``[::1]:8080`` -> (host, 8080); a bare IPv6 address has no port."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return inside, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """How one upstream's TLS is set up; the default is certifi's bundle, verified."""

    ca_file: str | None = None
    ca_dir: str | None = None
    cert_file: str | None = None  # a client certificate (mutual TLS), with key_file
    key_file: str | None = None
    verify: bool = True

    @property
    def default(self) -> bool:
        return self == _DEFAULT


_DEFAULT = TLSSettings()


_HINTS = {
    407: "the proxy wants credentials: put them in the proxy URL (http://user:password@host:port)",
    403: "the proxy refuses this host: ask for it to be allowed, or list it in NO_PROXY",
}


class Route:
    """How one upstream is reached; made by :func:`route` (one object per distinct setting)."""

    __slots__ = ("name", "proxy", "targets", "tls")

    def __init__(self, name: str, proxy: ProxyURL | None, tls: TLSSettings) -> None:
        self.name = name
        self.proxy = proxy
        self.tls = tls
        self.targets: dict[str, Any] = {}  # the upstream client's cache: URL -> what it sends there

    def __repr__(self) -> str:
        via = f" via {self.proxy.shown}" if self.proxy is not None else ""
        return f"Route({self.name!r}{via})"

    @property
    def special(self) -> bool:
        """Anything but a direct connection with the default TLS."""
        return self.proxy is not None or not self.tls.default

    def refused(self, status: int, reason: str) -> UpstreamUnreachable:
        """The proxy refused: its status, never the credentials."""
        assert self.proxy is not None
        said = f"{status} {reason}".strip() if status else reason
        hint = _HINTS.get(status)
        return self.failed(
            f"the proxy {self.proxy.shown} answered {said}" + (f"; hint: {hint}" if hint else "")
        )

    def unreachable(self, why: str) -> UpstreamUnreachable:
        if self.proxy is not None:
            return self.failed(f"cannot reach the proxy {self.proxy.shown} ({why})")
        return self.failed(why)

    def failed(self, why: str) -> UpstreamUnreachable:
        return UpstreamUnreachable(f"could not connect to upstream {self.name!r}: {why}")


@functools.lru_cache(maxsize=1024)
def route(name: str, proxy: ProxyURL | None, tls: TLSSettings) -> Route:
    """The route of these settings: the same object again for the same settings (a reload keeps its
    pooled connections; a changed proxy or TLS setting makes a new route and new connections)."""
    return Route(name, proxy, tls)
