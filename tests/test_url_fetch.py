"""SSRF guard: refused addresses, every redirect hop re-checked, size caps.

Nothing here connects to a private or link-local address: refusals happen at
resolution, before any socket is opened to them.
"""
from __future__ import annotations

import pytest

from worker.core.errors import WorkerError
from worker.media import url_fetch

REFUSED = [
    "http://127.0.0.1/x.wav",
    "http://localhost/x.wav",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/x.wav",
    "http://192.168.1.1/x.wav",
    "http://172.16.0.1/x.wav",
    "http://100.64.0.1/x.wav",      # CGNAT
    "http://0.0.0.0/x.wav",
    "http://127.1/x.wav",           # short form of 127.0.0.1
    "http://0x7f000001/x.wav",      # hex integer form
    "http://2130706433/x.wav",      # decimal integer form
    "http://0177.0.0.1/x.wav",      # octal form
    "http://[::1]/x.wav",
    "http://[::ffff:127.0.0.1]/x.wav",     # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/x.wav",     # mapped 169.254.169.254, hex spelling
    "http://[64:ff9b::a9fe:a9fe]/x.wav",   # NAT64 of 169.254.169.254
    "http://[2002:a9fe:a9fe::1]/x.wav",    # 6to4 of 169.254.169.254
    "http://[fe80::1]/x.wav",
    "http://[fd00::1]/x.wav",
    "http://224.0.0.1/x.wav",       # multicast
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_encoded_addresses_are_refused(url, tmp_path):
    with pytest.raises(WorkerError) as caught:
        url_fetch.fetch_to_file(url, tmp_path / "out", 1024)
    assert caught.value.code == "forbidden_url", url


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.wav",
                                 "gopher://127.0.0.1/", "http:///nohost"])
def test_other_schemes_are_refused(url, tmp_path):
    with pytest.raises(WorkerError) as caught:
        url_fetch.fetch_to_file(url, tmp_path / "out", 1024)
    assert caught.value.code == "forbidden_url"


@pytest.fixture
def public_alias(monkeypatch):
    """Make the name ``public.test`` resolve to the local test server.

    A public host cannot exist in this sandbox (no network); this stands in for
    one, so that the redirect *from* a public host to a private one is tested.
    Every other name goes through the real, guarded resolver.
    """
    real = url_fetch.resolve

    def resolve(host, port, allow_private):
        if host == "public.test":
            return ["127.0.0.1"]
        return real(host, port, allow_private)

    monkeypatch.setattr(url_fetch, "resolve", resolve)
    return "public.test"


@pytest.mark.parametrize("target", [
    "http://127.0.0.1/admin", "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/x.wav", "http://[::ffff:10.0.0.1]/x.wav", "file:///etc/passwd"])
def test_a_redirect_to_a_private_address_is_refused(http_files, public_alias, target, tmp_path):
    port = http_files.base.rsplit(":", 1)[1]
    http_files.redirect("/hop", target)
    with pytest.raises(WorkerError) as caught:
        url_fetch.fetch_to_file(f"http://{public_alias}:{port}/hop", tmp_path / "out", 1024)
    assert caught.value.code == "forbidden_url"
    assert not (tmp_path / "out").exists()


def test_a_public_host_is_fetched_with_redirects(http_files, public_alias, tmp_path):
    port = http_files.base.rsplit(":", 1)[1]
    http_files.serve("/file.wav", b"RIFF-bytes")
    http_files.redirect("/hop", "/file.wav", status=301)
    size = url_fetch.fetch_to_file(f"http://{public_alias}:{port}/hop", tmp_path / "out", 1024)
    assert size == 10 and (tmp_path / "out").read_bytes() == b"RIFF-bytes"


def test_allow_private_lets_local_servers_through(http_files, tmp_path):
    url = http_files.serve("/ok.wav", b"x" * 100)
    assert url_fetch.fetch_to_file(url, tmp_path / "out", 1024, allow_private=True) == 100
    with pytest.raises(WorkerError) as caught:
        url_fetch.fetch_to_file(url, tmp_path / "out", 1024, allow_private=False)
    assert caught.value.code == "forbidden_url"


def test_size_cap_holds_with_a_declared_length(http_files, tmp_path):
    url = http_files.serve("/big.wav", b"x" * 5000)
    with pytest.raises(WorkerError) as caught:
        url_fetch.fetch_to_file(url, tmp_path / "out", 1000, allow_private=True)
    assert caught.value.code == "payload_too_large"


def test_size_cap_holds_without_a_declared_length(tmp_path):
    """A server that sends no Content-Length is cut off at the cap while streaming."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        try:
            for _ in range(64):
                conn.sendall(b"y" * 1024)
        except OSError:
            pass
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/stream"
    try:
        with pytest.raises(WorkerError) as caught:
            url_fetch.fetch_to_file(url, tmp_path / "out", 4096, allow_private=True)
        assert caught.value.code == "payload_too_large"
    finally:
        listener.close()


def test_unresolvable_host_is_fetch_failed(tmp_path):
    with pytest.raises(WorkerError) as caught:
        url_fetch.fetch_to_file("http://no-such-host.invalid/x.wav", tmp_path / "out", 1024)
    assert caught.value.code == "fetch_failed"


def test_describe_drops_query_and_credentials():
    assert url_fetch.describe("https://user:pw@host.example:8443/a.wav?X-Amz-Signature=s") == \
        "https://host.example:8443/a.wav"
