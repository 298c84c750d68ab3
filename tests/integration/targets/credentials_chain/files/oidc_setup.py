# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writes an emulator accounts file with an OIDC provider (a fresh RSA key) and a token that
provider signed, as a cluster's RRSA would give a pod.

usage: oidc_setup.py ACCOUNTS_JSON TOKEN_FILE UID
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://oidc.emulator.test/credentials-chain"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def main(argv: list) -> int:
    accounts, token_file, uid = argv[1:4]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    with open(accounts, "w", encoding="utf-8") as handle:
        json.dump({"accounts": [{
            "name": "cluster", "uid": uid,
            "access_keys": [{"id": "LTAI5t" + secrets.token_hex(9), "secret": secrets.token_urlsafe(22)}],
            "oidc_providers": [{"name": "ack", "issuer": ISSUER, "client_ids": ["sts.aliyuncs.com"],
                                "public_key": pem}]}]}, handle)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "sts.aliyuncs.com", "sub": "system:serviceaccount:ci:runner",
              "iat": now, "exp": now + 3600}
    head = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    with open(token_file, "w", encoding="ascii") as handle:
        handle.write(head + "." + b64(key.sign(head.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
