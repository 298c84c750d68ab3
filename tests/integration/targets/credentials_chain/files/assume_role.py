# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assumes a role with the official STS client (alibabacloud_sts20150401) and prints the
temporary credentials as `export` lines of the ALIBABA_CLOUD_* variables.

usage: assume_role.py ROLE_ARN   (environment: ALIBABA_CLOUD_ECS_ENDPOINT, the emulator, and
ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET, the base credentials)
"""

from __future__ import annotations

import os
import shlex
import sys
from urllib.parse import urlsplit

from alibabacloud_sts20150401 import models
from alibabacloud_sts20150401.client import Client
from alibabacloud_tea_openapi import models as open_api_models


def main(argv: list) -> int:
    endpoint = urlsplit(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"])
    client = Client(open_api_models.Config(
        access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        endpoint=endpoint.netloc, protocol=endpoint.scheme, region_id=os.environ.get("ALIBABA_CLOUD_REGION_ID")))
    body = client.assume_role(models.AssumeRoleRequest(role_arn=argv[1], role_session_name="sdk-helper")).body
    for name, value in (("ALIBABA_CLOUD_ACCESS_KEY_ID", body.credentials.access_key_id),
                        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", body.credentials.access_key_secret),
                        ("ALIBABA_CLOUD_SECURITY_TOKEN", body.credentials.security_token)):
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
