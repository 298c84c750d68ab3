# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ECS client: signing vectors, agreement with the official SDKs, retries, paging, errors."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_api as api
from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_client as ec

V1_VECTOR = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}


def test_v1_published_vector():
    assert ec.sign_v1("GET", V1_VECTOR, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_v1_ignores_an_existing_signature_parameter():
    params = dict(V1_VECTOR, Signature="whatever")
    assert ec.sign_v1("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


@pytest.mark.parametrize("raw, encoded", [
    ("a b", "a%20b"),
    ("a+b", "a%2Bb"),
    ("*", "%2A"),
    ("~-_.", "~-_."),
    ("/", "%2F"),
    ("é", "%C3%A9"),
    ('["a","b"]', "%5B%22a%22%2C%22b%22%5D"),
])
def test_percent_encoding_is_rfc3986(raw, encoded):
    assert ec.percent_encode(raw) == encoded


def test_canonical_query_sorts_by_byte_order_and_drops_none():
    assert ec.canonical_query({"b": "2", "B": "1", "a": None, "Tag.1.Key": "x y"}) == "B=1&Tag.1.Key=x%20y&b=2"


def test_v3_known_answer():
    # Worked by hand from the published algorithm, then pinned: any change to canonicalisation
    # or hashing changes it.
    headers = {"host": "ecs.cn-hangzhou.aliyuncs.com", "x-acs-action": "DescribeKeyPairs",
               "x-acs-version": "2014-05-26", "x-acs-date": "2026-01-02T03:04:05Z",
               "x-acs-signature-nonce": "n1", "x-acs-content-sha256": ec.EMPTY_BODY_SHA256}
    canonical, names = ec.v3_canonical_request("POST", "/", {"RegionId": "cn-hangzhou", "PageSize": "50"},
                                               headers, ec.EMPTY_BODY_SHA256)
    assert names == "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    assert canonical.split("\n")[:3] == ["POST", "/", "PageSize=50&RegionId=cn-hangzhou"]
    assert canonical.endswith("\n" + names + "\n" + ec.EMPTY_BODY_SHA256)
    signature, _names = ec.sign_v3("POST", "/", {"RegionId": "cn-hangzhou", "PageSize": "50"}, headers,
                                   ec.EMPTY_BODY_SHA256, "secret")
    import hashlib
    import hmac
    expected = hmac.new(b"secret", ("ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()).encode(),
                        hashlib.sha256).hexdigest()
    assert signature == expected and len(signature) == 64


# ---------------------------------------------------------------------------------------------
# Agreement with the official SDKs: they sign a request, a local server captures it, and our
# signer must produce the same signature from the same inputs (and the reverse for our client).


class _Capture(BaseHTTPRequestHandler):
    captured: list = []

    def do_POST(self):  # noqa: N802 - http.server naming
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.captured.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body": body})
        reply = json.dumps({"RequestId": "req-1", "TotalCount": 0, "PageNumber": 1, "PageSize": 50,
                            "KeyPairs": {"KeyPair": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture()
def capture_server():
    _Capture.captured = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Capture.captured
    server.shutdown()
    server.server_close()


def _sdk_env(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("token", [None, "sts-token-value"])
def test_v3_signature_equals_the_current_official_sdk(capture_server, monkeypatch, token):
    ecs_client = pytest.importorskip("alibabacloud_ecs20140526.client")
    ecs_models = pytest.importorskip("alibabacloud_ecs20140526.models")
    openapi_models = pytest.importorskip("alibabacloud_tea_openapi.models")
    _sdk_env(monkeypatch)
    port, captured = capture_server
    config = openapi_models.Config(access_key_id="AKID-test", access_key_secret="s3cr3t/+= value",
                                   security_token=token, endpoint=f"127.0.0.1:{port}", protocol="http",
                                   region_id="cn-hangzhou")
    client = ecs_client.Client(config)
    request = ecs_models.DescribeKeyPairsRequest(
        region_id="cn-hangzhou", key_pair_name="web key*", include_public_key=True, page_size=50,
        tag=[ecs_models.DescribeKeyPairsRequestTag(key="team", value="a b/c~")])
    client.describe_key_pairs(request)
    seen = captured[-1]
    authorization = seen["headers"]["authorization"]
    algorithm, _sep, fields = authorization.partition(" ")
    parts = dict(item.split("=", 1) for item in fields.split(","))
    assert algorithm == "ACS3-HMAC-SHA256" and parts["Credential"] == "AKID-test"
    signed_names = parts["SignedHeaders"].split(";")
    signed = {name: seen["headers"][name] for name in signed_names}
    query = dict(parse_qsl(urlsplit(seen["path"]).query, keep_blank_values=True))
    signature, names = ec.sign_v3("POST", "/", query, signed, seen["headers"]["x-acs-content-sha256"],
                                  "s3cr3t/+= value")
    assert names == parts["SignedHeaders"]
    assert signature == parts["Signature"]


def test_our_v3_request_verifies_with_the_official_sdk_signer():
    utils = pytest.importorskip("alibabacloud_tea_openapi.utils")
    creds = ec.Credentials("AKID", "secret value", "token")
    client = ec.EcsClient(creds, "cn-hangzhou", "http://127.0.0.1:9", nonce=lambda: "nonce-1",
                          clock=lambda: 1767322800.0)
    target, headers, body = client.build_request("ImportKeyPair", {
        "KeyPairName": "k1", "PublicKeyBody": "ssh-ed25519 AAAA+/= comment here", "Tag.1.Key": "a"})
    assert body == b""
    query = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))

    class Req:
        method = "POST"
        pathname = "/"

    req = Req()
    req.query = query
    req.headers = {k: v for k, v in headers.items() if k.startswith("x-acs-") or k == "host"}
    expected = utils.Utils.get_authorization(req, "ACS3-HMAC-SHA256", ec.EMPTY_BODY_SHA256, "AKID", "secret value")
    assert headers["authorization"] == expected
    assert headers["x-acs-date"] == "2026-01-02T03:00:00Z"
    assert headers["x-acs-security-token"] == "token"


def test_v1_signature_equals_the_legacy_official_sdk(capture_server, monkeypatch):
    acs = pytest.importorskip("aliyunsdkcore.client")
    legacy = pytest.importorskip("aliyunsdkecs.request.v20140526.DescribeKeyPairsRequest")
    _sdk_env(monkeypatch)
    port, captured = capture_server
    client = acs.AcsClient("AKID-legacy", "legacy secret+/", "cn-hangzhou")
    request = legacy.DescribeKeyPairsRequest()
    request.set_endpoint(f"127.0.0.1:{port}")
    request.set_protocol_type("http")
    request.set_KeyPairName("name with space*")
    request.set_PageSize(50)
    request.set_accept_format("json")
    client.do_action_with_exception(request)
    seen = captured[-1]
    params = dict(parse_qsl(urlsplit(seen["path"]).query, keep_blank_values=True))
    params.update(dict(parse_qsl(seen["body"].decode(), keep_blank_values=True)))
    assert ec.sign_v1("POST", params, "legacy secret+/") == params["Signature"]


def test_our_v1_request_carries_a_valid_signature():
    client = ec.EcsClient(ec.Credentials("AKID", "sec"), "cn-hangzhou", "127.0.0.1:9",
                          signature_version="v1", nonce=lambda: "n", clock=lambda: 0.0)
    target, headers, _body = client.build_request("DeleteKeyPairs", {"KeyPairNames": ["a", "b"]})
    params = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    assert params["KeyPairNames"] == '["a","b"]'
    assert params["Timestamp"] == "1970-01-01T00:00:00Z" and params["RegionId"] == "cn-hangzhou"
    assert ec.sign_v1("POST", params, "sec") == params["Signature"]
    assert headers["host"] == "127.0.0.1:9"


def test_the_client_talks_http_to_a_real_server(capture_server):
    port, captured = capture_server
    client = ec.EcsClient(ec.Credentials("AKID", "sec"), "cn-hangzhou", f"http://127.0.0.1:{port}")
    assert api.describe_key_pairs(client, name="x") == []
    assert captured[-1]["headers"]["host"] == f"127.0.0.1:{port}"
    assert captured[-1]["headers"]["x-acs-action"] == "DescribeKeyPairs"
    assert "sec" not in json.dumps(captured[-1]["headers"])


# ---------------------------------------------------------------------------------------------
# Endpoint parsing.


@pytest.mark.parametrize("endpoint, expected", [
    (None, ("https", "ecs.cn-shanghai.aliyuncs.com", None)),
    ("ecs-vpc.cn-shanghai.aliyuncs.com", ("https", "ecs-vpc.cn-shanghai.aliyuncs.com", None)),
    ("http://127.0.0.1:18080", ("http", "127.0.0.1", 18080)),
    ("https://example.test/", ("https", "example.test", None)),
    ("127.0.0.1:8080", ("https", "127.0.0.1", 8080)),
])
def test_parse_endpoint(endpoint, expected):
    assert ec.parse_endpoint(endpoint, "cn-shanghai") == expected


@pytest.mark.parametrize("endpoint", ["ftp://x", "http://x/path", "http://:80", "http://x:99999"])
def test_parse_endpoint_rejects(endpoint):
    with pytest.raises(ValueError):
        ec.parse_endpoint(endpoint, "r")


def test_https_verifies_certificates_by_default():
    import ssl
    client = ec.EcsClient(ec.Credentials("a", "b"), "cn-hangzhou")
    assert client._context.verify_mode == ssl.CERT_REQUIRED and client._context.check_hostname
    insecure = ec.EcsClient(ec.Credentials("a", "b"), "cn-hangzhou", validate_certs=False)
    assert insecure._context.verify_mode == ssl.CERT_NONE


def test_credentials_repr_hides_the_secret():
    assert "topsecret" not in repr(ec.Credentials("id", "topsecret"))


# ---------------------------------------------------------------------------------------------
# A scripted transport for retries, paging and error handling.


class Script:
    """Replays replies (HttpReply or exceptions) and records each request."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.requests = []

    def __call__(self, method, scheme, host, port, target, headers, body, timeout, context):
        query = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
        self.requests.append({"target": target, "headers": dict(headers), "query": query})
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(data, status=200):
    data = dict({"RequestId": "rid"}, **data)
    return ec.HttpReply(status, {"Content-Type": "application/json"}, json.dumps(data).encode())


def err(code, status, request_id="rid-err"):
    return ec.HttpReply(status, {}, json.dumps({"Code": code, "Message": f"msg {code}",
                                               "RequestId": request_id}).encode())


def make_client(script, retries=3, **kwargs):
    sleeps = []
    client = ec.EcsClient(ec.Credentials("AKID", "sec"), "cn-hangzhou", "http://127.0.0.1:1",
                          transport=script, sleep=sleeps.append, retries=retries, **kwargs)
    return client, sleeps


@pytest.mark.parametrize("failure", [
    err("Throttling.User", 400), err("Throttling", 429), err("Rejected.Throttling", 400),
    err("ServiceUnavailable", 503), err("InternalError", 500), err("SomethingElse", 502),
    ec.HttpReply(502, {}, b"<html>bad gateway</html>"),
    ec.TransportError("reset", sent=True), ec.TransportError("timed out", timeout=True),
    ec.TransportError("refused", sent=False),
])
def test_retryable_failures_are_retried_with_fresh_nonce_and_timestamp(failure):
    nonces = iter(["n1", "n2", "n3"])
    times = iter([100.0, 200.0, 300.0])
    script = Script(failure, ok({"KeyPairName": "k"}))
    client, sleeps = make_client(script, nonce=lambda: next(nonces), clock=lambda: next(times))
    assert client.call("DescribeKeyPairs", {})["KeyPairName"] == "k"
    assert len(script.requests) == 2 and len(sleeps) == 1
    first, second = (r["headers"] for r in script.requests)
    assert first["x-acs-signature-nonce"] != second["x-acs-signature-nonce"]
    assert first["x-acs-date"] != second["x-acs-date"]
    assert first["authorization"] != second["authorization"]


@pytest.mark.parametrize("code, status", [
    ("KeyPair.AlreadyExist", 400), ("InvalidKeyPairName.Malformed", 400), ("QuotaExceed.KeyPair", 403),
    ("SignatureDoesNotMatch", 400), ("InvalidAccessKeyId.NotFound", 404), ("Forbidden.RAM", 403),
])
def test_request_errors_are_not_retried(code, status):
    script = Script(err(code, status))
    client, sleeps = make_client(script)
    with pytest.raises(ec.EcsApiError) as info:
        client.call("CreateKeyPair", {"KeyPairName": "k"})
    assert (info.value.code, info.value.http_status, info.value.request_id) == (code, status, "rid-err")
    assert info.value.message == f"msg {code}" and info.value.action == "CreateKeyPair"
    assert code in str(info.value) and "rid-err" in str(info.value)
    assert len(script.requests) == 1 and sleeps == []


@pytest.mark.parametrize("failure, retried", [
    (ec.TransportError("reset after send", sent=True), False),
    (ec.TransportError("timeout after send", timeout=True), False),
    (err("InternalError", 500), False),
    (ec.TransportError("refused", sent=False), True),
    (err("Throttling.User", 400), True),
    (err("ServiceUnavailable", 503), True),
])
def test_non_idempotent_calls_retry_only_when_nothing_happened(failure, retried):
    script = Script(failure, ok({"KeyPairName": "k"}))
    client, _sleeps = make_client(script)
    if retried:
        assert client.call("CreateKeyPair", {}, idempotent=False)["KeyPairName"] == "k"
    else:
        with pytest.raises(ec.EcsApiError):
            client.call("CreateKeyPair", {}, idempotent=False)
    assert len(script.requests) == (2 if retried else 1)


def test_retries_give_up_after_the_limit_with_the_last_error():
    script = Script(*[err("Throttling", 400, request_id=f"r{i}") for i in range(4)])
    client, sleeps = make_client(script, retries=3)
    with pytest.raises(ec.EcsApiError) as info:
        client.call("DescribeKeyPairs")
    assert info.value.code == "Throttling" and info.value.request_id == "r3"
    assert len(script.requests) == 4 and len(sleeps) == 3 and client.calls == 4


def test_backoff_is_exponential_capped_and_jittered():
    assert ec.backoff_delay(0, 0.5, 20, rng=lambda: 1.0) == 0.5
    assert ec.backoff_delay(3, 0.5, 20, rng=lambda: 1.0) == 4.0
    assert ec.backoff_delay(10, 0.5, 20, rng=lambda: 1.0) == 20
    assert ec.backoff_delay(3, 0.5, 20, rng=lambda: 0.25) == 1.0
    assert all(0 <= ec.backoff_delay(4, 0.5, 20) <= 8 for _try in range(50))


def test_certificate_errors_are_not_retried():
    error = ec.EcsApiError(code="SSLError", message="bad cert", sent=False)
    assert not ec.is_retryable(error)


@pytest.mark.parametrize("reply, message", [
    (ec.HttpReply(200, {}, b"not json"), "not a JSON object"),
    (ec.HttpReply(200, {}, b"[1, 2]"), "not a JSON object"),
    (ec.HttpReply(200, {}, b""), "not a JSON object"),
    (ec.HttpReply(200, {}, b'{"KeyPairName": "x"}'), "no RequestId"),
])
def test_malformed_replies_raise_a_clear_error(reply, message):
    client, _sleeps = make_client(Script(reply))
    with pytest.raises(ec.EcsApiError) as info:
        client.call("DescribeKeyPairs")
    assert info.value.code == "MalformedResponse" and message in info.value.message


def test_malformed_page_raises():
    client, _sleeps = make_client(Script(ok({"TotalCount": 3, "KeyPairs": "oops"})))
    with pytest.raises(ec.EcsApiError, match="expected an object at KeyPairs"):
        api.describe_key_pairs(client)
    client, _sleeps = make_client(Script(ok({"TotalCount": 3})))
    with pytest.raises(ec.EcsApiError, match="no 'KeyPairs'"):
        api.describe_key_pairs(client)
    client, _sleeps = make_client(Script(ok({"KeyPairs": {"KeyPair": [{"KeyPairName": "a"}]}})))
    with pytest.raises(ec.EcsApiError, match="TotalCount"):
        api.describe_key_pairs(client)


def _pages(total, size):
    names = [f"k{i:03d}" for i in range(total)]
    replies = []
    for start in range(0, max(total, 1), size):
        chunk = names[start:start + size]
        replies.append(ok({"TotalCount": total, "PageNumber": start // size + 1, "PageSize": size,
                           "KeyPairs": {"KeyPair": [{"KeyPairName": n} for n in chunk]}}))
    return names, replies


@pytest.mark.parametrize("total, calls", [(0, 1), (1, 1), (50, 1), (51, 2), (500, 10), (501, 11)])
def test_paging_uses_the_largest_page_and_the_fewest_calls(total, calls):
    names, replies = _pages(total, 50)
    script = Script(*replies)
    client, _sleeps = make_client(script)
    found = api.describe_key_pairs(client)
    assert [item["KeyPairName"] for item in found] == names
    assert client.calls == calls
    assert [r["query"]["PageNumber"] for r in script.requests] == [str(n) for n in range(1, calls + 1)]
    assert {r["query"]["PageSize"] for r in script.requests} == {"50"}


def test_describe_instances_chunks_ids_and_pages_by_100():
    ids = [f"i-{n}" for n in range(150)]
    script = Script(
        ok({"TotalCount": 100, "Instances": {"Instance": [{"InstanceId": i} for i in ids[:100]]}}),
        ok({"TotalCount": 50, "Instances": {"Instance": [{"InstanceId": i} for i in ids[100:]]}}),
    )
    client, _sleeps = make_client(script)
    found = api.describe_instances(client, instance_ids=ids)
    assert [i["InstanceId"] for i in found] == ids
    assert json.loads(script.requests[0]["query"]["InstanceIds"]) == ids[:100]
    assert json.loads(script.requests[1]["query"]["InstanceIds"]) == ids[100:]
    assert script.requests[0]["query"]["MaxResults"] == "100" and "PageNumber" not in script.requests[0]["query"]


def test_get_key_pair_matches_the_exact_name_and_treats_not_found_as_absent():
    client, _sleeps = make_client(Script(ok({"TotalCount": 1, "KeyPairs": {"KeyPair": [{"KeyPairName": "ab"}]}})))
    assert api.get_key_pair(client, "a") is None
    client, _sleeps = make_client(Script(err("InvalidKeyPair.NotFound", 404)))
    assert api.get_key_pair(client, "a") is None


def test_params_are_stringified_for_the_wire():
    assert ec.stringify({"a": True, "b": False, "c": None, "d": 5, "e": ["x"]}) == {
        "a": "true", "b": "false", "d": "5", "e": '["x"]'}
    assert api.tag_params({"b": "2", "a": None}) == {"Tag.1.Key": "a", "Tag.1.Value": "", "Tag.2.Key": "b",
                                                     "Tag.2.Value": "2"}
    assert list(ec.chunks(list(range(5)), 2)) == [[0, 1], [2, 3], [4]]


def test_error_messages_never_carry_the_secret():
    script = Script(err("SignatureDoesNotMatch", 400))
    client = ec.EcsClient(ec.Credentials("AKID", "very-secret-value"), "cn-hangzhou", "http://127.0.0.1:1",
                          transport=script, sleep=lambda s: None)
    with pytest.raises(ec.EcsApiError) as info:
        client.call("DescribeKeyPairs")
    assert "very-secret-value" not in str(info.value) and "very-secret-value" not in repr(info.value.as_dict())
    assert "very-secret-value" not in json.dumps(script.requests)
