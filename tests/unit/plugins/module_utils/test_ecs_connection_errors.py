# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection failures say what to fix, and only the ones another try can mend are retried.

Real sockets where the failure is a socket's (a plain HTTP server spoken to in TLS, a port
nobody listens on); a scripted transport for the replies of the service.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_client as ec
from ansible_collections.sshkeys.ecs.plugins.module_utils import _endpoints as ep


class _PlainHttp(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.dumps({"RequestId": "rid", "KeyPairs": {"KeyPair": []}, "TotalCount": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def plain_http_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainHttp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _client(endpoint, region="cn-hangzhou", **kwargs):
    sleeps = []
    client = ec.EcsClient(ec.Credentials("AKID", "sec"), region, endpoint, retries=3, sleep=sleeps.append, **kwargs)
    return client, sleeps


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_tls_to_a_plain_http_endpoint_without_scheme_says_https_was_assumed(plain_http_port):
    client, sleeps = _client(f"127.0.0.1:{plain_http_port}")
    with pytest.raises(ec.EcsApiError) as failed:
        client.call("DescribeKeyPairs", {})
    message = str(failed.value)
    assert failed.value.code == "SSLError"
    assert "no scheme, so HTTPS was assumed" in message
    assert f"write http://127.0.0.1:{plain_http_port}" in message
    assert client.calls == 1 and sleeps == []  # a wrong scheme is not retried
    # The same endpoint with its scheme works: the hint is right.
    fixed, _sleeps = _client(f"http://127.0.0.1:{plain_http_port}")
    assert fixed.call("DescribeKeyPairs", {})["RequestId"] == "rid"


def test_an_explicit_https_endpoint_gets_no_scheme_hint(plain_http_port):
    client, _sleeps = _client(f"https://127.0.0.1:{plain_http_port}")
    with pytest.raises(ec.EcsApiError) as failed:
        client.call("DescribeKeyPairs", {})
    assert failed.value.code == "SSLError" and "assumed" not in str(failed.value)


def test_connection_refused_names_host_and_port():
    port = _free_port()
    client, sleeps = _client(f"http://127.0.0.1:{port}")
    with pytest.raises(ec.EcsApiError) as failed:
        client.call("DescribeKeyPairs", {})
    assert failed.value.code == "ConnectionError"
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in str(failed.value)
    assert client.calls == 4 and len(sleeps) == 3  # a service restarting may come back: retried


def test_the_default_port_is_named_too():
    error = ec.TransportError("x")
    assert ec.host_and_port("https", "h", None) == "h:443" and ec.host_and_port("http", "h", None) == "h:80"
    assert not error.unresolved


def _unresolvable(monkeypatch, unresolvable):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == unresolvable:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_region_typo_on_the_default_endpoint_is_not_retried_and_names_close_regions(monkeypatch):
    _unresolvable(monkeypatch, "ecs.cn-hangzhuo.aliyuncs.com")
    client, sleeps = _client(None, region="cn-hangzhuo")
    with pytest.raises(ec.EcsApiError) as failed:
        client.call("DescribeKeyPairs", {})
    message = str(failed.value)
    assert failed.value.code == "UnknownHost" and not failed.value.sent
    assert "cannot resolve the host name ecs.cn-hangzhuo.aliyuncs.com" in message
    assert "region 'cn-hangzhuo': the region may be wrong (close region ids: cn-hangzhou" in message
    assert client.calls == 1 and sleeps == []


def test_an_unresolvable_endpoint_of_the_user_points_at_the_option(monkeypatch):
    _unresolvable(monkeypatch, "ecs.example.invalid")
    client, sleeps = _client("ecs.example.invalid")
    with pytest.raises(ec.EcsApiError) as failed:
        client.call("DescribeKeyPairs", {})
    assert "check ecs_endpoint" in str(failed.value) and "region may be wrong" not in str(failed.value)
    assert client.calls == 1 and sleeps == []


def test_close_regions():
    assert ep.close_regions("cn-hangzhuo")[0] == "cn-hangzhou"
    assert ep.close_regions("eu-centrl-1")[0] == "eu-central-1"
    assert ep.close_regions("zz-nowhere-9") == [] and ep.close_regions(None) == []


# ---------------------------------------------------------------------------------------------
# Replies of the service.


class _Replies:
    def __init__(self, *replies):
        self.replies = list(replies)

    def __call__(self, *args):
        return self.replies.pop(0)


def _reply(status, data, headers=None):
    return ec.HttpReply(status, dict(headers or {}), json.dumps(dict({"RequestId": "rid"}, **data)).encode())


def _scripted(*replies, **kwargs):
    sleeps = []
    client = ec.EcsClient(ec.Credentials("AKID", "sec"), "cn-hangzhou", "http://127.0.0.1:1", retries=3,
                          transport=_Replies(*replies), sleep=sleeps.append, **kwargs)
    return client, sleeps


def test_the_region_the_service_refused_is_named_with_close_ones():
    refused = _reply(404, {"Code": "InvalidRegionId.NotFound", "Message": "The specified RegionId does not exist."})
    client, _sleeps = _scripted(refused, refused)
    with pytest.raises(ec.EcsApiError) as failed:
        client.call("DescribeKeyPairs", {"RegionId": "cn-shangai"})
    assert "RegionId 'cn-shangai' was sent; close region ids: cn-shanghai" in str(failed.value)
    assert failed.value.http_status == 404


@pytest.mark.parametrize("header, wait", [("3000", 3.0), ("60000", 20.0)])
def test_retry_waits_at_least_what_x_acs_retry_after_asks_capped(header, wait):
    throttled = _reply(400, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."},
                       {"x-acs-retry-after": header})
    client, sleeps = _scripted(throttled, _reply(200, {}), backoff_base=0.01)
    assert client.call("DescribeKeyPairs", {})["RequestId"] == "rid"
    assert sleeps == [wait]


@pytest.mark.parametrize("header", ["", "soon", "0", "-5"])
def test_a_missing_or_malformed_retry_after_leaves_the_backoff(header):
    throttled = _reply(400, {"Code": "Throttling.User", "Message": "flow control"}, {"x-acs-retry-after": header})
    client, sleeps = _scripted(throttled, _reply(200, {}), backoff_base=0.01)
    client.call("DescribeKeyPairs", {})
    assert len(sleeps) == 1 and sleeps[0] <= 0.01
    assert ec.retry_after_seconds({"x-acs-retry-after": header}) is None
