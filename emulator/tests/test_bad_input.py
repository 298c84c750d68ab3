"""Bad input gets its documented error and the server keeps serving; fuzzed with hypothesis.

What the fuzzer finds is kept: hypothesis' example database lives in tests/corpus/hypothesis,
and hand-kept raw requests (one file each) in tests/corpus/raw/ are replayed on every run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from support import REGION, raw, v1_call, v1_query

CORPUS = Path(__file__).parent / "corpus"
FUZZ = settings(max_examples=int(os.environ.get("ECS_EMULATOR_FUZZ_EXAMPLES", "150")), deadline=None,
                database=DirectoryBasedExampleDatabase(str(CORPUS / "hypothesis")),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ACTIONS = ["CreateKeyPair", "ImportKeyPair", "DescribeKeyPairs", "DeleteKeyPairs", "AttachKeyPair", "DetachKeyPair",
           "TagResources", "UntagResources", "ListTagResources", "RunInstances", "DescribeInstances",
           "StartInstance", "StopInstance", "RebootInstance", "StartInstances", "StopInstances", "RebootInstances",
           "DeleteInstance", "DeleteInstances", "ModifyInstanceAttribute", "NoSuchAction"]
PARAMS = ["RegionId", "KeyPairName", "KeyPairNames", "PublicKeyBody", "InstanceIds", "InstanceId", "InstanceId.1",
          "PageSize", "PageNumber", "Tag.1.Key", "Tag.1.Value", "Tag.21.Key", "ResourceType", "ResourceId.1",
          "TagKey.1", "All", "Force", "ImageId", "Amount", "Password", "IncludePublicKey", "KeyPairFingerPrint",
          "Status", "NextToken", "ResourceGroupId"]


def send_bytes(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def alive(emu) -> None:
    assert v1_call(emu.port, emu.key(0), {"Action": "DescribeKeyPairs", "RegionId": REGION})[0] == 200


def test_malformed_http(emu):
    reply = send_bytes(emu.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400") and b'"Code":"MalformedRequest"' in reply
    alive(emu)


def test_unknown_action(emu):
    status, body = v1_call(emu.port, emu.key(0), {"Action": "FormatAllDisks", "RegionId": REGION})
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")


def test_wrong_version(emu):
    status, body = raw(emu.port, "POST", "/?" + v1_query(emu.key(0), {"Action": "DescribeKeyPairs", "Version": "2099-01-01"}))
    assert (status, body["Code"]) == (400, "InvalidVersion")


def test_repeated_parameter(emu):
    query = v1_query(emu.key(0), {"Action": "DescribeKeyPairs", "RegionId": REGION}) + "&RegionId=cn-shanghai"
    status, body = raw(emu.port, "POST", "/?" + query)
    assert (status, body["Code"]) == (400, "InvalidParameter.Duplicated")


def test_oversized_body(emu):
    status, body = raw(emu.port, "POST", "/", body=b"A=" + b"x" * (1024 * 1024 + 10),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body["Code"]) == (413, "RequestTooLarge")
    alive(emu)


def test_non_utf8(emu):
    status, body = raw(emu.port, "POST", "/?Action=DescribeKeyPairs&RegionId=%ff%fe")
    assert (status, body["Code"]) == (400, "InvalidParameter.Encoding")
    reply = send_bytes(emu.port, b"POST /?A=\xff HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 4")
    alive(emu)


def test_unsigned_request(emu):
    status, body = raw(emu.port, "POST", f"/?Action=DescribeKeyPairs&Version=2014-05-26&RegionId={REGION}")
    assert (status, body["Code"]) == (400, "MissingParameter")


def test_injection_like_names_are_just_names(emu):
    for name in ["x' OR '1'='1", "*' --", "%", "_", "\\"]:
        status, body = v1_call(emu.port, emu.key(0), {"Action": "DescribeKeyPairs", "RegionId": REGION,
                                                      "KeyPairName": name})
        assert status == 200 and body["TotalCount"] == 0
        status, body = v1_call(emu.port, emu.key(0), {"Action": "CreateKeyPair", "RegionId": REGION, "KeyPairName": name})
        assert (status, body["Code"]) == (400, "InvalidKeyPairName.Malformed")


@pytest.mark.parametrize("path", sorted((CORPUS / "raw").glob("*.bin")), ids=lambda p: p.name)
def test_corpus_replay(emu, path):
    reply = send_bytes(emu.port, path.read_bytes())
    if reply:
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, reply[:200]
    alive(emu)


@FUZZ
@given(data=st.binary(max_size=600))
def test_fuzz_raw_bytes(emu, data):
    reply = send_bytes(emu.port, data)
    if reply:
        assert reply.startswith(b"HTTP/1.")
        assert not reply.startswith(b"HTTP/1.1 500") and not reply.startswith(b"HTTP/1.0 500")


@FUZZ
@given(action=st.sampled_from(ACTIONS),
       params=st.dictionaries(st.sampled_from(PARAMS), st.one_of(
           st.text(max_size=60), st.sampled_from(["[]", '["a"]', "[1]", "{}", "null", "true", "0", "-1", "51", "*",
                                                  "ssh-rsa AAAA", "i-x", "cn-hangzhou", "keypair"])), max_size=6))
def test_fuzz_signed_actions(emu, action, params):
    """Any signed request with any parameters: a JSON answer, never an internal error."""
    params = {k: v for k, v in params.items() if "\x00" not in v}
    status, body = v1_call(emu.port, emu.key(0), {"Action": action, **params})
    assert status != 500, body
    assert body and body.get("RequestId")
    if status != 200:
        assert body["Code"] and body["Message"]
