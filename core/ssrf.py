"""SSRF guard for URLs that Herald (or a device, on Herald's say-so) will fetch.

``check_public_url`` refuses a URL unless it is http(s), carries no userinfo, and every address
its host resolves to is public: loopback, private (RFC 1918, IPv6 ULA), link-local (incl. the
cloud metadata address 169.254.169.254), multicast, reserved, unspecified, shared (CGNAT) and
IPv4-mapped / 6to4 / NAT64 forms of those are refused. Addresses inside
``settings.HERALD_ALLOWED_PRIVATE_NETWORKS`` (CIDRs; the simulators run on loopback) are allowed,
and only for those is plain http accepted.

Numeric host forms that resolvers accept (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) are read
as the address they denote, so they cannot smuggle loopback past the check.

DNS rebinding: a host checked now may resolve elsewhere a moment later. ``resolve_public_url``
returns the checked addresses, and ``PinnedUrl.curl_resolve`` turns them into libcurl's
``CURLOPT_RESOLVE`` entries, so the request connects to exactly what was checked. Callers must
also never follow redirects (``CURLOPT_FOLLOWLOCATION`` off, libcurl's default; set it anyway).

Unresolvable hosts raise ``UnresolvableHost`` (a subclass of ``UnsafeUrl``), so a caller may
choose to accept them when nothing is fetched yet (registration) and refuse them when sending.

Hand-written: no maintained library covers address pinning for libcurl; the address tests are
the standard library's ``ipaddress`` classifications plus the embedded-IPv4 forms it ignores.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass, replace
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Resolved addresses are reused this long. Safe against rebinding: the request is pinned to the
# addresses that were checked, whatever DNS says later.
DNS_CACHE_SECONDS = 30.0
DNS_CACHE_MAX = 4096
MAX_URL_LENGTH = 2048

# What resolvers read as an IPv4 address besides the dotted quad: 1 to 4 parts, each decimal,
# octal (leading 0) or hex (0x).
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
_HOSTNAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
# Characters that URL parsers disagree about (Python strips tabs and newlines, libcurl does not).
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeUrl(ValueError):
    """The URL may not be fetched; the message says why, naming the purpose."""


class UnresolvableHost(UnsafeUrl):
    """The host has no address (NXDOMAIN, no network, DNS failure)."""


@dataclass(frozen=True)
class PinnedUrl:
    """A checked URL and the public (or allowed) addresses its host resolved to."""

    url: str
    scheme: str
    host: str  # lowercase, without IPv6 brackets
    port: int
    addresses: tuple[str, ...]
    literal: bool  # the host is an IP address: nothing to resolve

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` as browsers serialise it (RFC 6454), the VAPID ``aud``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"https": 443, "http": 80}[self.scheme]
        return f"{self.scheme}://{host}" if self.port == default else f"{self.scheme}://{host}:{self.port}"

    def curl_resolve(self) -> list[str]:
        """``CURLOPT_RESOLVE`` entries that pin this host:port to the checked addresses."""
        if self.literal:
            return []
        addresses = ",".join(f"[{a}]" if ":" in a else a for a in self.addresses)
        return [f"{self.host}:{self.port}:{addresses}"]


def check_public_url(
    url: str, *, purpose: str, allow_unresolvable: bool = False, require_https: bool = True
) -> None:
    """Raise ``UnsafeUrl`` unless ``url`` may be fetched (see the module docstring).

    ``allow_unresolvable`` accepts a host that does not resolve at all (nothing can be fetched
    from it now; the sender checks again, with pinning, when it sends). ``require_https=False``
    accepts plain http to public addresses too (image URLs, which devices fetch).
    """
    try:
        resolve_public_url(url, purpose=purpose, require_https=require_https)
    except UnresolvableHost:
        if not allow_unresolvable:
            raise


def resolve_public_url(url: str, *, purpose: str, require_https: bool = True) -> PinnedUrl:
    """Check ``url`` and return it with the addresses to connect to (see ``PinnedUrl``)."""
    scheme, host, port = _parse(url, purpose)
    literal, canonical = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a) for a in _resolve(host, port, purpose)]
        except UnresolvableHost:
            if require_https and scheme != "https":
                raise UnsafeUrl(f"{purpose} must use https") from None
            raise
    for address in addresses:
        if _allowed(address):
            continue
        problem = non_public_reason(address)
        if problem is not None:
            if literal is None:
                what = f"{host} resolves to {address}, {problem}"
            elif canonical:
                what = f"{host} is {problem}"
            else:
                what = f"{host} is {literal}, {problem}"
            raise UnsafeUrl(f"{purpose} must not point at a non-public address: {what}"[:300])
    if require_https and scheme != "https" and not all(_allowed(a) for a in addresses):
        raise UnsafeUrl(f"{purpose} must use https")
    return PinnedUrl(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        addresses=tuple(str(a) for a in addresses),
        # A non-standard numeric form ("2130706433") still gets a CURLOPT_RESOLVE entry, in case
        # libcurl treats it as a name.
        literal=canonical,
    )


def non_public_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address.sixtofour is not None and non_public_reason(address.sixtofour):
            return "a 6to4 address of a non-public IPv4 address"
        if address.teredo is not None:
            return "a Teredo address"
        if address in _NAT64:
            # DNS64 answers every IPv4-only name with these: judge the embedded address.
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            if non_public_reason(embedded):
                return "a NAT64 address of a non-public IPv4 address"
            return None
        if address.is_site_local:
            return "a site-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


def clear_dns_cache() -> None:
    with _cache_lock:
        _dns_cache.clear()


# --- internals ------------------------------------------------------------------------------------


class OriginMemo:
    """``resolve_public_url`` for many URLs of few origins, such as one step of Web Push
    endpoints (thousands of subscriptions at the same push service): an origin's checks and
    addresses are worked out once, and every URL still gets the checks that read its whole text.
    In a profile of a mixed fan-out the per-URL check was 6% of the delivery worker's time. Keep
    one for a batch at most: it never looks again (DNS answers have their own cache)."""

    def __init__(self, *, purpose: str, require_https: bool = True):
        self.purpose = purpose
        self.require_https = require_https
        self._origins: dict[str, PinnedUrl | tuple[type[UnsafeUrl], str]] = {}

    def resolve(self, url: str) -> PinnedUrl:
        _check_text(url, self.purpose)
        key = _origin_key(url)
        found = self._origins.get(key) if key else None
        if found is None:
            try:
                found = resolve_public_url(url, purpose=self.purpose, require_https=self.require_https)
            except UnsafeUrl as exc:
                found = (type(exc), str(exc))  # a new exception each time, not one re-raised
            if key:
                self._origins[key] = found
        if isinstance(found, tuple):
            raise found[0](found[1])
        return found if found.url == url else replace(found, url=url)


def _origin_key(url: str) -> str | None:
    """``scheme://authority``: the URL up to the first "/" after "://". The authority ends at the
    first "/", "?" or "#", so URLs that share this prefix share scheme, host, port and userinfo,
    everything ``resolve_public_url`` decides on but the text checks."""
    start = url.find("://")
    end = url.find("/", start + 3) if start >= 0 else -1
    return url[:end] if end >= 0 else None


def _check_text(url: str, purpose: str) -> None:
    if not isinstance(url, str) or not url:
        raise UnsafeUrl(f"{purpose} must be a URL")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"{purpose} must be at most {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHARS.search(url):
        raise UnsafeUrl(f"{purpose} must not contain spaces, control characters or backslashes")


def _parse(url: str, purpose: str) -> tuple[str, str, int]:
    _check_text(url, purpose)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"{purpose} is not a valid URL: {exc}"[:300]) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl(f"{purpose} must be an https URL")
    if "@" in parts.netloc:
        raise UnsafeUrl(f"{purpose} must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise UnsafeUrl(f"{purpose} has no host")
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UnsafeUrl(f"{purpose} has an invalid IPv6 address") from exc
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise UnsafeUrl(f"{purpose} has an invalid host name") from exc
        if not _HOSTNAME.match(host):
            raise UnsafeUrl(f"{purpose} has an invalid host name")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _literal_address(host: str) -> tuple[IPAddress | None, bool]:
    """The address an IP-literal host denotes, in any form a resolver would accept, and whether
    the host is written in the standard form."""
    try:
        return ipaddress.ip_address(host), True
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip("."))), False
        except OSError:
            return None, False
    return None, False


def _allowed(address: IPAddress) -> bool:
    networks = _allowed_networks(tuple(settings.HERALD_ALLOWED_PRIVATE_NETWORKS))
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(c in n for c in candidates for n in networks if c.version == n.version)


@cache
def _allowed_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"HERALD_ALLOWED_PRIVATE_NETWORKS: {exc}") from exc


_cache_lock = threading.Lock()
_dns_cache: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}


def _resolve(host: str, port: int, purpose: str) -> tuple[str, ...]:
    now = time.monotonic()
    with _cache_lock:
        hit = _dns_cache.get((host, port))
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"{purpose} host {host} cannot be resolved") from exc
    # Scope ids ("fe80::1%eth0") are dropped: link-local is refused anyway.
    addresses = tuple(dict.fromkeys(info[4][0].split("%")[0] for info in infos))
    if not addresses:
        raise UnresolvableHost(f"{purpose} host {host} cannot be resolved")
    with _cache_lock:
        if len(_dns_cache) >= DNS_CACHE_MAX:
            _dns_cache.clear()
        _dns_cache[(host, port)] = (now + DNS_CACHE_SECONDS, addresses)
    return addresses
