# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DescribeInstances pages with MaxResults/NextToken (PageNumber is being retired)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_api as api
from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_client as ec


class Pages:
    def __init__(self, *replies):
        self.replies = list(replies)
        self.queries = []

    def __call__(self, method, scheme, host, port, target, headers, body, timeout, context):
        self.queries.append(dict(parse_qsl(urlsplit(target).query)))
        reply = dict({"RequestId": "rid"}, **self.replies.pop(0))
        return ec.HttpReply(200, {}, json.dumps(reply).encode())


def page(ids, token=""):
    return {"NextToken": token, "Instances": {"Instance": [{"InstanceId": i} for i in ids]}}


def client(transport):
    return ec.EcsClient(ec.Credentials("AKID", "sec"), "cn-hangzhou", "http://127.0.0.1:1", transport=transport,
                        sleep=lambda s: None)


def test_every_page_once_following_the_tokens():
    transport = Pages(page(["i-1", "i-2"], "t1"), page(["i-3"], "t2"), page([]))
    found = api.describe_instances(client(transport), status="Running")
    assert [i["InstanceId"] for i in found] == ["i-1", "i-2", "i-3"]
    assert [q.get("NextToken") for q in transport.queries] == [None, "t1", "t2"]
    assert {q["MaxResults"] for q in transport.queries} == {"100"}
    assert not any("PageNumber" in q or "PageSize" in q for q in transport.queries)


@pytest.mark.parametrize("replies, words", [
    ((page(["i-1"], "t1"), page(["i-2"], "t1")), "NextToken repeats"),
    ((dict(page(["i-1"]), NextToken=5),), "NextToken is not a string"),
])
def test_a_token_that_would_loop_or_is_malformed_is_an_error(replies, words):
    with pytest.raises(ec.EcsApiError, match=words) as failed:
        api.describe_instances(client(Pages(*replies)))
    assert failed.value.code == "MalformedResponse"
