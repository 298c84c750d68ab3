"""Fault injection (admin endpoint and CLI flag) and the admin token."""

from __future__ import annotations

import http.client

import pytest

from support import REGION, SDKS, ApiFailure, EmulatorProcess, raw, unique, v1_call, v1_query

DESCRIBE = {"Action": "DescribeKeyPairs", "RegionId": REGION}


@pytest.fixture
def faulty():
    proc = EmulatorProcess().start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_admin_needs_token(faulty, token):
    for method, body in (("GET", None), ("POST", {"faults": [{"action": "*", "kind": "internal"}]}), ("DELETE", None)):
        status, out = faulty.admin(method, "/_admin/faults", body, token=token)
        assert (status, out["Code"]) == (403, "Forbidden.AdminToken")
    # nothing was installed by the refused requests
    assert v1_call(faulty.port, faulty.key(0), DESCRIBE)[0] == 200


def test_throttling_next_n_calls(faulty):
    status, out = faulty.admin("POST", "/_admin/faults",
                               {"faults": [{"action": "DescribeKeyPairs", "kind": "throttling", "count": 2}]})
    assert status == 200 and out["Faults"][0]["count"] == 2
    for _call in range(2):
        status, body = v1_call(faulty.port, faulty.key(0), DESCRIBE)
        assert (status, body["Code"]) == (400, "Throttling")
        assert body["RequestId"]
    assert v1_call(faulty.port, faulty.key(0), DESCRIBE)[0] == 200
    assert faulty.admin("GET", "/_admin/faults")[1]["Faults"] == []


@pytest.mark.parametrize("kind, status, code", [("internal", 500, "InternalError"),
                                                ("unavailable", 503, "ServiceUnavailable"),
                                                ("throttling-user", 400, "Throttling.User")])
def test_error_kinds_through_sdk(faulty, kind, status, code):
    faulty.admin("POST", "/_admin/faults", {"faults": [{"action": "*", "kind": kind, "count": 1}]})
    client = SDKS["sdk3"](faulty.endpoint, faulty.key(0))
    with pytest.raises(ApiFailure) as info:
        client.call("DescribeKeyPairs", RegionId=REGION)
    assert (info.value.status, info.value.code) == (status, code)


def test_status_and_code_override(faulty):
    faulty.admin("POST", "/_admin/faults", {"faults": [
        {"action": "DescribeKeyPairs", "kind": "throttling", "count": 1, "status": 429, "code": "Rejected.Throttling"}]})
    status, body = v1_call(faulty.port, faulty.key(0), DESCRIBE)
    assert (status, body["Code"]) == (429, "Rejected.Throttling")


def test_probability_zero_never_fires(faulty):
    faulty.admin("POST", "/_admin/faults", {"faults": [{"action": "*", "kind": "internal", "probability": 0.0}]})
    for _call in range(20):
        assert v1_call(faulty.port, faulty.key(0), DESCRIBE)[0] == 200


def test_drop_connection(faulty):
    faulty.admin("POST", "/_admin/faults", {"faults": [{"action": "DescribeKeyPairs", "kind": "drop", "count": 1}]})
    conn = http.client.HTTPConnection("127.0.0.1", faulty.port, timeout=10)
    conn.request("POST", "/?" + v1_query(faulty.key(0), DESCRIBE))
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine)):
        conn.getresponse().read()
    conn.close()
    assert v1_call(faulty.port, faulty.key(0), DESCRIBE)[0] == 200


def test_latency_still_answers(faulty):
    faulty.admin("POST", "/_admin/faults", {"faults": [{"action": "*", "kind": "latency", "latency_ms": 50, "count": 1}]})
    assert v1_call(faulty.port, faulty.key(0), DESCRIBE)[0] == 200


def test_after_phase_applies_the_change(faulty):
    """The 'lost response' case: the key pair exists although the client saw a 500."""
    faulty.admin("POST", "/_admin/faults", {"faults": [{"action": "CreateKeyPair", "kind": "internal", "count": 1,
                                                        "phase": "after"}]})
    name = unique()
    status, body = v1_call(faulty.port, faulty.key(0), {"Action": "CreateKeyPair", "RegionId": REGION, "KeyPairName": name})
    assert (status, body["Code"]) == (500, "InternalError")
    assert "PrivateKeyBody" not in body
    status, body = v1_call(faulty.port, faulty.key(0), dict(DESCRIBE, KeyPairName=name))
    assert body["TotalCount"] == 1


@pytest.mark.parametrize("doc", [{"faults": [{"kind": "explode"}]}, {"faults": [{"probability": 2}]},
                                 {"faults": [{"count": 0}]}, {"faults": [{"nope": 1}]}, {"faults": "x"}, [1]])
def test_admin_rejects_bad_faults(faulty, doc):
    status, body = faulty.admin("POST", "/_admin/faults", doc)
    assert (status, body["Code"]) == (400, "InvalidParameter.Faults")


def test_cli_fault_flag():
    proc = EmulatorProcess("--fault", "DescribeKeyPairs=unavailable,count=1").start()
    try:
        status, body = v1_call(proc.port, proc.key(0), DESCRIBE)
        assert (status, body["Code"]) == (503, "ServiceUnavailable")
        assert v1_call(proc.port, proc.key(0), DESCRIBE)[0] == 200
    finally:
        proc.stop()


def test_request_log_has_no_secrets(faulty):
    name = unique()
    status, body = v1_call(faulty.port, faulty.key(0), {"Action": "CreateKeyPair", "RegionId": REGION, "KeyPairName": name})
    assert status == 200
    faulty.stop()
    with open(faulty.log) as fh:
        log = fh.read()
    assert '"action": "CreateKeyPair", "account": "default", "status": 200' in log
    assert body["PrivateKeyBody"].splitlines()[1] not in log
    assert faulty.key(0)[1] not in log
    faulty.start()


def test_unknown_admin_path(faulty):
    assert faulty.admin("GET", "/_admin/nothing")[0] == 404
    assert raw(faulty.port, "GET", "/_health")[0] == 200
