"""SSRF-safe, size-capped download of caller URLs.

Built on the RunPod SDK's maintained guard (``runpod.serverless.utils.rp_ssrf``):
its resolver refuses loopback, private, link-local, reserved, multicast and
CGNAT addresses and IPv4-mapped IPv6, and its adapter pins the connection to
the address that was checked, so DNS rebinding cannot swap it afterwards. On
top, this module refuses IPv6 forms that carry an IPv4 address to a gateway
(NAT64, 6to4, Teredo), re-checks every redirect hop itself, and bounds size,
redirects and wall-clock time.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

from worker.core.errors import FETCH_FAILED, FORBIDDEN_URL, PAYLOAD_TOO_LARGE, WorkerError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
TOTAL_TIMEOUT = 120
CHUNK = 64 * 1024
REDIRECTS = frozenset((301, 302, 303, 307, 308))
# Prefixes whose addresses a gateway translates into an embedded IPv4 address.
_GATEWAY_PREFIXES = tuple(ipaddress.ip_network(net) for net in
                          ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32"))


def describe(url: str) -> str:
    """The URL without query or credentials, safe for logs and messages."""
    parsed = urlparse(url)
    host = parsed.hostname or "?"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def fetch_to_file(url: str, dest: Path, max_bytes: int, allow_private: bool = False) -> int:
    """Download ``url`` into ``dest``; return the byte count."""
    deadline = time.monotonic() + TOTAL_TIMEOUT
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        response = _get(current, allow_private)
        try:
            if response.status_code in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise WorkerError(FETCH_FAILED, f"{describe(current)} redirected nowhere")
                current = urljoin(current, location)
                continue
            if response.status_code != 200:
                raise WorkerError(FETCH_FAILED, f"{describe(current)} answered HTTP "
                                  f"{response.status_code}; send a URL that serves the file")
            return _save(response, dest, max_bytes, deadline)
        finally:
            response.close()
    raise WorkerError(FETCH_FAILED, f"{describe(url)} redirected more than {MAX_REDIRECTS} times")


def _get(url: str, allow_private: bool):
    import requests
    from runpod.serverless.utils.rp_ssrf import PinnedIPAdapter

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WorkerError(FORBIDDEN_URL, f"{describe(url)}: only http(s) URLs with a host "
                          "are accepted")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    address = resolve(parsed.hostname, port, allow_private)[0]
    session = requests.Session()
    # Env proxies would resolve the host themselves and undo the pinning.
    session.trust_env = False
    session.mount("http://", PinnedIPAdapter(address))
    session.mount("https://", PinnedIPAdapter(address))
    try:
        response = session.get(url, stream=True, allow_redirects=False,
                               timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
    except requests.RequestException as exc:
        session.close()
        raise WorkerError(FETCH_FAILED, f"{describe(url)} could not be fetched "
                          f"({type(exc).__name__})") from None
    response.close = _closing_both(response.close, session.close)
    return response


def _closing_both(first, second):
    def close():
        try:
            first()
        finally:
            second()
    return close


def resolve(host: str, port: int, allow_private: bool) -> list:
    """Addresses of ``host``, all of them public unless ``allow_private``."""
    from runpod.serverless.utils import rp_ssrf

    if allow_private:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise WorkerError(FETCH_FAILED, f"host {host} does not resolve") from None
        return list(dict.fromkeys(info[4][0] for info in infos))
    try:
        addresses = rp_ssrf.resolve_and_validate(host, port)
    except rp_ssrf.SSRFError as exc:
        if "could not resolve" in str(exc) or "no addresses" in str(exc):
            raise WorkerError(FETCH_FAILED, f"host {host} does not resolve") from None
        raise WorkerError(FORBIDDEN_URL, f"{host} is not a public address; voice URLs must "
                          "point to the public internet") from None
    if any(_via_gateway(address) for address in addresses):
        raise WorkerError(FORBIDDEN_URL, f"{host} is an IPv6 address that embeds an IPv4 "
                          "address; use a plain public address")
    return addresses


def _via_gateway(address: str) -> bool:
    parsed = ipaddress.ip_address(address.split("%")[0])
    return parsed.version == 6 and any(parsed in net for net in _GATEWAY_PREFIXES)


def _save(response, dest: Path, max_bytes: int, deadline: float) -> int:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise WorkerError(PAYLOAD_TOO_LARGE, f"the file has {declared} bytes; the limit is "
                          f"{max_bytes}")
    total = 0
    try:
        with open(dest, "wb") as handle:
            for chunk in response.iter_content(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise WorkerError(PAYLOAD_TOO_LARGE, f"the file is over the limit of "
                                      f"{max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise WorkerError(FETCH_FAILED, f"the download took over {TOTAL_TIMEOUT} s")
                handle.write(chunk)
    except OSError as exc:
        raise WorkerError(FETCH_FAILED, f"the download broke off ({type(exc).__name__})") from None
    except Exception as exc:  # requests' stream errors are not OSError subclasses
        if isinstance(exc, WorkerError):
            raise
        raise WorkerError(FETCH_FAILED, f"the download broke off ({type(exc).__name__})") from None
    return total
