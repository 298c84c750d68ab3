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
        current (or O(alicloud_profile)) profile of the Alibaba Cloud CLI file C(~/.aliyun/config.json).
      - Without an AccessKey in the options or the environment, E(ALIBABA_CLOUD_ROLE_ARN),
        E(ALIBABA_CLOUD_OIDC_PROVIDER_ARN) and E(ALIBABA_CLOUD_OIDC_TOKEN_FILE) (RRSA on ACK; session
        name E(ALIBABA_CLOUD_ROLE_SESSION_NAME)) assume that role with the OIDC token, before the profile file.
      - An AccessKey ID and its secret are always taken from the same place; an ID without its
        secret fails saying the secret is missing and where the ID came from. The source used is
        shown as C(credentials_source) in the result at C(-vvv).
    type: str
    aliases: [access_key]
  alicloud_secret_key:
    description:
      - The AccessKey secret that belongs to O(alicloud_access_key).
      - Set together with O(alicloud_access_key). Without options, E(ALIBABA_CLOUD_ACCESS_KEY_SECRET),
        E(ALICLOUD_SECRET_KEY) or E(ALICLOUD_ACCESS_KEY_SECRET) goes with an ID from the environment.
      - Never shown in output; a secret read from the environment or the profile file is masked too.
    type: str
    aliases: [secret_key]
  alicloud_security_token:
    description:
      - An STS security token, for temporary credentials.
      - Taken with the AccessKey it belongs to, from the same place; E(ALIBABA_CLOUD_SECURITY_TOKEN) or
        E(ALICLOUD_SECURITY_TOKEN) with an AccessKey from the environment, the C(sts_token) of a
        C(StsToken) profile.
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
      - The profile of the Alibaba Cloud CLI file C(~/.aliyun/config.json) (or O(shared_credentials_file))
        to take the credentials from. Set as an option, the profile comes before the environment's
        AccessKey; otherwise the file's current profile, or the one E(ALIBABA_CLOUD_PROFILE),
        E(ALIBABACLOUD_PROFILE) or E(ALICLOUD_PROFILE) names, is used when neither the options nor the
        environment hold an AccessKey.
      - Modes C(AK), C(StsToken), C(RamRoleArn) (the profile's AccessKey assumes C(ram_role_arn)),
        C(ChainableRamRoleArn) (the credentials of C(source_profile) assume C(ram_role_arn)), C(EcsRamRole)
        (the instance's role C(ram_role_name), see O(ecs_role_name)) and C(OIDC) (the token of
        C(oidc_token_file) assumes C(ram_role_arn) through C(oidc_provider_arn)) are served; any other mode
        fails naming it.
      - After the CLI profile file, the section of that name (else C(default)) of the official SDKs'
        credentials file E(ALIBABA_CLOUD_CREDENTIALS_FILE), by default C(~/.alibabacloud/credentials)
        (or C(credentials.ini) there), types C(access_key), C(ram_role_arn), C(ecs_ram_role) and C(oidc_role_arn).
      - The file is not read unless named by this option when E(ALIBABA_CLOUD_CLI_PROFILE_DISABLED) is V(true).
    type: str
    aliases: [profile]
  shared_credentials_file:
    description:
      - The path of the Alibaba Cloud CLI profile file, instead of C(~/.aliyun/config.json).
      - If not set, E(ALICLOUD_SHARED_CREDENTIALS_FILE).
    type: path
  alicloud_assume_role_arn:
    description:
      - The ARN of a RAM role, C(acs:ram::<account id>:role/<name>), to assume with the credentials found
        (options, environment or profile) by a call to STS AssumeRole; the module then works with the
        temporary credentials, which are kept in memory only.
      - If not set, O(alicloud_assume_role.role_arn), then E(ALICLOUD_ASSUME_ROLE_ARN).
    type: str
    aliases: [assume_role_arn]
  alicloud_assume_role_session_name:
    description:
      - The session name of the assumed role, 2 to 64 letters, digits or C(.@-_).
      - If not set, O(alicloud_assume_role.session_name), then E(ALICLOUD_ASSUME_ROLE_SESSION_NAME),
        else C(ansible).
    type: str
    aliases: [assume_role_session_name]
  alicloud_assume_role_session_expiration:
    description:
      - How long the temporary credentials last, in seconds, 900 to 43200 (no more than the role's
        maximum session duration).
      - If not set, O(alicloud_assume_role.session_expiration), then
        E(ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION), else what STS gives (3600).
    type: int
    aliases: [assume_role_session_expiration]
  alicloud_assume_role:
    description:
      - The role to assume, as alibaba.alicloud takes it; the flat options above win over its keys.
    type: dict
    aliases: [assume_role]
    suboptions:
      role_arn:
        description: The ARN of the role.
        type: str
      session_name:
        description: The session name.
        type: str
      session_expiration:
        description: How long the temporary credentials last, in seconds.
        type: int
      policy:
        description: A policy document (JSON) that narrows what the temporary credentials may do.
        type: str
      external_id:
        description: The external ID the role's trust policy asks for.
        type: str
  ecs_role_name:
    description:
      - The RAM role of the ECS instance this runs on; its temporary credentials are read from the
        instance metadata service (a token first, then without one unless E(ALIBABA_CLOUD_IMDSV1_DISABLED)
        is V(true)). Set as an option, this comes before the environment.
      - Without any other credentials (options, environment, CLI profile file, credentials file), the
        instance's role is used anyway, named by E(ALIBABA_CLOUD_ECS_METADATA) or E(ALICLOUD_ECS_ROLE_NAME)
        or else asked of the metadata service, unless E(ALIBABA_CLOUD_ECS_METADATA_DISABLED) is V(true).
      - E(ALIBABA_CLOUD_ECS_METADATA_ENDPOINT) (a URL; this collection's own variable, for tests and
        proxies) replaces C(http://100.100.100.200).
    type: str
    aliases: [role_name]
  alicloud_sts_endpoint:
    description:
      - The STS endpoint used to assume roles, a host name (HTTPS) or a URL; an option of this
        collection, for tests and private endpoints.
      - If not set, E(ALIBABA_CLOUD_STS_ENDPOINT), else C(sts.<region>.aliyuncs.com), or
        C(sts-vpc.<region>.aliyuncs.com) when E(ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED) is V(true); the
        region is E(ALIBABA_CLOUD_STS_REGION), else the profile's C(sts_region), else O(alicloud_region).
    type: str
    aliases: [sts_endpoint]
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
