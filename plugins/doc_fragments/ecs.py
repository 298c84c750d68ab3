# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options shared by every module that calls the ECS API."""

    DOCUMENTATION = r"""
options:
  alicloud_access_key:
    description:
      - The AccessKey ID used to sign requests.
      - If not set, the first of the environment variables E(ALIBABA_CLOUD_ACCESS_KEY_ID),
        E(ALICLOUD_ACCESS_KEY) and E(ALICLOUD_ACCESS_KEY_ID) that is set is used, then the
        current (or O(alicloud_profile)) profile of the Alibaba Cloud CLI file C(~/.aliyun/config.json)
        in C(AK) or C(StsToken) mode.
    type: str
    aliases: [access_key]
  alicloud_secret_key:
    description:
      - The AccessKey secret that belongs to O(alicloud_access_key).
      - If not set, E(ALIBABA_CLOUD_ACCESS_KEY_SECRET), E(ALICLOUD_SECRET_KEY) or
        E(ALICLOUD_ACCESS_KEY_SECRET), then the CLI profile file.
      - Never shown in output; a secret read from the environment or the profile file is masked too.
    type: str
    aliases: [secret_key]
  alicloud_security_token:
    description:
      - An STS security token, for temporary credentials.
      - If not set, E(ALIBABA_CLOUD_SECURITY_TOKEN) or E(ALICLOUD_SECURITY_TOKEN), then the
        C(sts_token) of a C(StsToken) profile.
    type: str
    aliases: [security_token]
  alicloud_region:
    description:
      - The region, for example C(cn-hangzhou).
      - If not set, E(ALIBABA_CLOUD_REGION_ID), E(ALICLOUD_REGION) or E(ALICLOUD_REGION_ID), then
        the C(region_id) of the CLI profile.
    type: str
    aliases: [region]
  alicloud_profile:
    description:
      - The profile of the Alibaba Cloud CLI file C(~/.aliyun/config.json) to read when the
        credentials or the region are not given otherwise. Defaults to the file's current profile.
      - If not set, E(ALIBABA_CLOUD_PROFILE), E(ALIBABACLOUD_PROFILE) or E(ALICLOUD_PROFILE).
      - The file is not read when E(ALIBABA_CLOUD_CLI_PROFILE_DISABLED) is V(true).
    type: str
    aliases: [profile]
  ecs_endpoint:
    description:
      - The ECS API endpoint, as a host name (HTTPS is used) or a URL such as
        C(http://127.0.0.1:18080).
      - If not set, E(ALIBABA_CLOUD_ECS_ENDPOINT) or E(ALICLOUD_ECS_ENDPOINT), else the endpoint of
        the region as the official SDK picks it, C(ecs.<region>.aliyuncs.com) for most regions
        (C(ecs-cn-hangzhou.aliyuncs.com) for C(cn-hangzhou), the central C(ecs.aliyuncs.com) for the
        few regions the SDK sends there), or C(ecs-vpc.<region>.aliyuncs.com) with
        O(ecs_endpoint_type=vpc).
    type: str
    aliases: [endpoint]
  ecs_endpoint_type:
    description:
      - Which endpoint of the region to use when O(ecs_endpoint) is not set. V(public) is the
        Internet endpoint; V(vpc) is C(ecs-vpc.<region>.aliyuncs.com), reachable only from a VPC of
        that region (for example from an ECS instance or an ACK pod), without Internet access.
      - If not set, E(ALIBABA_CLOUD_ECS_ENDPOINT_TYPE) (a variable of this collection), else V(public).
    type: str
    choices: [public, vpc]
  ecs_signature_version:
    description:
      - How requests are signed. V(v3) is ACS3-HMAC-SHA256, what the current official SDK uses;
        V(v1) is the older HMAC-SHA1 scheme.
    type: str
    choices: [v3, v1]
    default: v3
  ecs_timeout:
    description:
      - Seconds to wait for the endpoint on each request.
    type: float
    default: 30
  ecs_retries:
    description:
      - How many times a request is retried after throttling, a server error, a timeout or a
        dropped connection, with jittered exponential backoff and a fresh signature each time.
      - Errors about the request itself (a bad name, a name already taken, a quota) are never retried.
    type: int
    default: 5
  ecs_retry_delay:
    description:
      - Base of the exponential backoff, in seconds. The wait before retry N is a random time up
        to O(ecs_retry_delay) * 2^N, capped at 20 seconds.
    type: float
    default: 0.5
  validate_certs:
    description:
      - Whether to verify the endpoint's TLS certificate. Only turn this off for a test endpoint
        you control.
    type: bool
    default: true
notes:
  - This module calls the ECS API from wherever it runs; run it on the controller
    (a play on C(localhost), or C(delegate_to) set to C(localhost)).
  - Use C(module_defaults) with the action group C(group/sshkeys.ecs.ecs) to set the credentials once.
"""
