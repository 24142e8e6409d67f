"""core.ssrf: which URLs may be fetched, DNS answers judged address by address, and pinning."""

from __future__ import annotations

import http.server
import io
import socket
import threading
from collections.abc import Iterator

import pycurl
import pytest

from core import ssrf
from core.ssrf import PinnedUrl, UnresolvableHost, UnsafeUrl, check_public_url, resolve_public_url


@pytest.fixture(autouse=True)
def _fresh(settings) -> Iterator[None]:
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    ssrf.clear_dns_cache()
    yield
    ssrf.clear_dns_cache()


class FakeDns(dict):
    """Hostname -> addresses; anything else is NXDOMAIN. ``calls`` lists the names looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def getaddrinfo(self, host, port, *args, **kwargs):
        self.calls.append(host)
        if host not in self:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self[host]
        ]


@pytest.fixture
def fake_dns(monkeypatch) -> FakeDns:
    dns = FakeDns()
    monkeypatch.setattr(ssrf.socket, "getaddrinfo", dns.getaddrinfo)
    return dns


def refused(url: str, **kwargs) -> str:
    with pytest.raises(UnsafeUrl) as caught:
        check_public_url(url, purpose="endpoint", **kwargs)
    return str(caught.value)


# --- literal addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/send", "127.0.0.1 is a loopback address"),
        ("https://127.8.9.10:8443/", "127.8.9.10 is a loopback address"),
        ("https://10.0.0.1/", "10.0.0.1 is a private address"),
        ("https://10.1.2.3/", "10.1.2.3 is a private address"),
        ("https://10.255.255.255/", "is a private address"),
        ("https://172.16.0.1/", "is a private address"),
        ("https://192.168.1.1/", "is a private address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("https://100.64.0.1/", "is a non-public address"),
        ("https://224.0.0.251/", "is a multicast address"),
        ("https://240.0.0.1/", "is a"),
        ("https://255.255.255.255/", "is a"),
        ("https://[::1]/", "::1 is a loopback address"),
        ("https://[::]/", "is an unspecified address"),
        ("https://[::ffff:127.0.0.1]/", "is an IPv4-mapped IPv6 address"),
        ("https://[::ffff:8.8.8.8]/", "is an IPv4-mapped IPv6 address"),
        ("https://[fe80::1]/", "is a link-local address"),
        ("https://[fc00::1]/", "is a private address"),
        ("https://[fd12:3456::1]/", "is a private address"),
        ("https://[ff02::1]/", "is a multicast address"),
        ("https://[2002:7f00:1::1]/", "6to4 address of a non-public"),
        ("https://[64:ff9b::a9fe:a9fe]/", "NAT64 address of a non-public"),
    ],
)
def test_non_public_literal_addresses_are_refused(url, reason):
    message = refused(url)
    assert message.startswith("endpoint must not point at a non-public address: ")
    assert reason in message


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "https://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://017700000001/",
        "http://127.0.0.1./",
    ],
)
def test_decimal_octal_hex_and_short_ip_forms_are_read_as_the_address_they_denote(url):
    message = refused(url)
    assert "is 127.0.0.1, a loopback address" in message


def test_numeric_forms_of_public_addresses_are_pinned_to_that_address():
    pinned = resolve_public_url("https://134744072/push", purpose="endpoint")
    assert pinned.addresses == ("8.8.8.8",)
    assert pinned.curl_resolve() == ["134744072:443:8.8.8.8"]


def test_public_literal_addresses_pass_without_dns(fake_dns):
    pinned = resolve_public_url("https://8.8.8.8:8443/p", purpose="endpoint")
    assert pinned == PinnedUrl("https://8.8.8.8:8443/p", "https", "8.8.8.8", 8443, ("8.8.8.8",), True)
    assert pinned.curl_resolve() == []
    assert pinned.origin == "https://8.8.8.8:8443"
    assert fake_dns.calls == []
    v6 = resolve_public_url("https://[2606:4700::1111]/p", purpose="endpoint")
    assert v6.origin == "https://[2606:4700::1111]"


# --- names -----------------------------------------------------------------------------------------


def test_localhost_resolves_to_loopback_and_is_refused():
    assert "localhost resolves to " in refused("https://localhost/push")
    assert "a loopback address" in refused("https://localhost:9103/push")


def test_every_resolved_address_must_be_public(fake_dns):
    fake_dns["mixed.example"] = ["93.184.216.34", "10.0.0.7"]
    fake_dns["metadata.example"] = ["169.254.169.254"]
    fake_dns["v6.example"] = ["2606:2800:220:1::1", "::1"]

    assert "mixed.example resolves to 10.0.0.7, a private address" in refused("https://mixed.example/")
    assert "169.254.169.254, a link-local address" in refused("https://metadata.example/")
    assert "::1, a loopback address" in refused("https://v6.example/")


def test_a_public_name_is_pinned_to_the_addresses_checked(fake_dns):
    fake_dns["push.example"] = ["93.184.216.34", "2606:2800:220:1::1"]

    pinned = resolve_public_url("https://push.example/send/abc", purpose="endpoint")

    assert pinned.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    assert pinned.curl_resolve() == ["push.example:443:93.184.216.34,[2606:2800:220:1::1]"]
    assert pinned.origin == "https://push.example"


def test_lookups_are_cached_briefly(fake_dns):
    fake_dns["push.example"] = ["93.184.216.34"]
    for _ in range(3):
        check_public_url("https://push.example/a", purpose="endpoint")
    assert fake_dns.calls == ["push.example"]


def test_unresolvable_names_are_their_own_error_which_callers_may_accept(fake_dns):
    with pytest.raises(UnresolvableHost, match=r"endpoint host nowhere\.example cannot be resolved"):
        check_public_url("https://nowhere.example/x", purpose="endpoint")
    check_public_url("https://nowhere.example/x", purpose="endpoint", allow_unresolvable=True)
    # ...but never as a way around https.
    assert refused("http://nowhere.example/x", allow_unresolvable=True) == "endpoint must use https"


def test_internationalised_names_are_resolved_in_their_ascii_form(fake_dns):
    fake_dns["xn--mnchen-3ya.example"] = ["10.9.9.9"]
    assert "xn--mnchen-3ya.example resolves to 10.9.9.9" in refused("https://münchen.example/")


# --- URL shape -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://8.8.8.8/x", "must be an https URL"),
        ("file:///etc/passwd", "must be an https URL"),
        ("gopher://8.8.8.8/", "must be an https URL"),
        ("//8.8.8.8/x", "must be an https URL"),
        ("http://8.8.8.8/x", "must use https"),
        ("https://user:pass@8.8.8.8/", "user name or password"),
        ("https://8.8.8.8@127.0.0.1/", "user name or password"),
        ("https://evil.example\\@127.0.0.1/", "backslashes"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/\n", "control characters"),
        ("https:///path", "has no host"),
        ("https://8.8.8.8:99999/", "not a valid URL"),
        ("https://[not-ip]/", "not a valid URL"),
        ("https://exa_mple..com/", "invalid host name"),
        ("", "must be a URL"),
    ],
)
def test_malformed_or_disallowed_urls_are_refused(url, reason):
    assert reason in refused(url)


def test_plain_http_is_accepted_for_public_addresses_only_when_asked():
    check_public_url("http://8.8.8.8/icon.png", purpose="image", require_https=False)
    assert "loopback" in refused("http://127.0.0.1/icon.png", require_https=False)


# --- the allow-list ----------------------------------------------------------------------------


def test_listed_networks_are_allowed_and_may_use_http(settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8", "::1/128"]

    check_public_url("https://127.0.0.1:9103/push/abc", purpose="endpoint")
    check_public_url("http://127.0.0.1:9103/push/abc", purpose="endpoint")
    check_public_url("https://localhost:9103/push/abc", purpose="endpoint")
    check_public_url("https://[::1]:9103/push/abc", purpose="endpoint")
    check_public_url("https://[::ffff:127.0.0.1]:9103/", purpose="endpoint")
    check_public_url("http://2130706433/", purpose="endpoint")
    assert "10.1.2.3 is a private address" in refused("https://10.1.2.3/")
    assert "169.254.169.254 is a link-local address" in refused("https://169.254.169.254/")


def test_a_private_range_can_be_allowed(settings, fake_dns):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["10.0.0.0/8"]
    fake_dns["push.internal"] = ["10.20.30.40"]

    pinned = resolve_public_url("https://push.internal/p", purpose="endpoint")

    assert pinned.curl_resolve() == ["push.internal:443:10.20.30.40"]
    assert "loopback" in refused("https://127.0.0.1/")


def test_public_addresses_still_need_https_when_a_network_is_allowed(settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    assert refused("http://8.8.8.8/") == "endpoint must use https"


def test_a_bad_allow_list_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["not-a-cidr"]
    with pytest.raises(ImproperlyConfigured, match="HERALD_ALLOWED_PRIVATE_NETWORKS"):
        check_public_url("https://8.8.8.8/", purpose="endpoint")


# --- pinning and redirects with libcurl ------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def _curl(url: str, resolve: list[str]) -> tuple[int, str, int]:
    curl = pycurl.Curl()
    try:
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.RESOLVE, resolve)
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.WRITEDATA, io.BytesIO())
        curl.setopt(pycurl.TIMEOUT, 10)
        curl.perform()
        return (
            curl.getinfo(pycurl.RESPONSE_CODE),
            curl.getinfo(pycurl.PRIMARY_IP),
            curl.getinfo(pycurl.REDIRECT_COUNT),
        )
    finally:
        curl.close()


def test_curl_resolve_entries_make_libcurl_connect_to_the_checked_address(settings, fake_dns, local_server):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    fake_dns["rebind.example"] = ["127.0.0.1"]
    pinned = resolve_public_url(f"http://rebind.example:{local_server}/push", purpose="endpoint")
    # Whatever DNS answers now ("rebind.example" does not exist for libcurl's resolver), the
    # request goes to the address that was checked.
    status, ip, _ = _curl(pinned.url, pinned.curl_resolve())
    assert (status, ip) == (200, "127.0.0.1")


def test_redirects_are_not_followed(settings, local_server):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    pinned = resolve_public_url(f"http://127.0.0.1:{local_server}/redirect", purpose="endpoint")
    status, ip, redirects = _curl(pinned.url, pinned.curl_resolve())
    assert (status, ip, redirects) == (302, "127.0.0.1", 0)


# --- many URLs of few origins (OriginMemo) -------------------------------------------------------

MEMO_URLS = [
    "https://push.example/send/a",
    "https://push.example/send/b",
    "https://push.example/send/with space",
    "https://push.example/" + "x" * 3000,
    "https://push.example/back\\slash",
    "https://private.example/send/a",
    "https://private.example/send/b",
    "https://nowhere.example/send/a",
    "https://user@push.example/send/a",
    "http://push.example/send/a",
    "https://push.example?q=1/x",
    "https://push.example:99999/send/a",
    "https://0x7f.1/send/a",
    "https://[::1]/send/a",
    "https://93.184.216.34/send/a",
    "https://93.184.216.34",
    "ftp://push.example/send/a",
    "not a url",
]


def answer(resolve, url: str) -> PinnedUrl | tuple[type, str]:
    try:
        return resolve(url)
    except UnsafeUrl as exc:
        return (type(exc), str(exc))


def test_a_memo_answers_every_url_as_resolve_public_url_does(fake_dns):
    fake_dns["push.example"] = ["93.184.216.34"]
    fake_dns["private.example"] = ["10.0.0.7"]
    memo = ssrf.OriginMemo(purpose="endpoint")
    for url in MEMO_URLS * 2:  # the second time round, every origin is already in the memo
        expected = answer(lambda u: resolve_public_url(u, purpose="endpoint"), url)
        assert answer(memo.resolve, url) == expected, url


def test_a_memo_looks_each_origin_up_once_and_pins_each_url(fake_dns):
    fake_dns["push.example"] = ["93.184.216.34"]
    fake_dns["other.example"] = ["93.184.216.35"]
    memo = ssrf.OriginMemo(purpose="endpoint")
    pinned = []
    for i in range(20):
        for host in ("push.example", "other.example"):
            ssrf.clear_dns_cache()  # so that only the memo can spare a lookup
            pinned.append(memo.resolve(f"https://{host}/send/{i}"))
    assert fake_dns.calls == ["push.example", "other.example"]
    assert [p.url for p in pinned[-2:]] == ["https://push.example/send/19", "https://other.example/send/19"]
    assert pinned[-1].curl_resolve() == ["other.example:443:93.184.216.35"]
