"""OpenSSH certificates on ImportKeyPair, through both official SDKs.

Real certificates come from ssh-keygen during the test (a CA key signs a user key); the bad ones
are those certificates taken apart and put together again by the small wire helpers below. The
emulator does not verify a certificate's signature, so an edited certificate is refused only for
what the edit breaks.
"""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import REGION, SDKS, ApiFailure, EmulatorProcess, raw, unique, v1_call, v1_query

MALFORMED = ("InvalidPublicKeyBody.Malformed", 400)

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")


@dataclass(frozen=True)
class Cert:
    line: str          # as ssh-keygen wrote it: 'type base64 comment'
    md5: str           # ssh-keygen -l -E md5, without the 'MD5:' prefix (colon-separated)

    @property
    def key_type(self) -> str:
        return self.line.split()[0]

    @property
    def blob(self) -> bytes:
        return base64.b64decode(self.line.split()[1])

    @property
    def identity(self) -> str:
        return " ".join(self.line.split()[:2])


def keygen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)


def make_key(directory: Path, name: str, key_type: str) -> Path:
    """A key pair made by ssh-keygen; skips the test when this ssh-keygen cannot make that type."""
    kind, _sep, bits = key_type.partition(":")
    path = directory / name
    made = keygen("-q", "-t", kind, *(["-b", bits] if bits else []), "-N", "", "-C", f"{name}@test", "-f", str(path))
    if made.returncode != 0:
        pytest.skip(f"this ssh-keygen cannot make {key_type} keys: {made.stderr.strip()[:200]}")
    return path


def make_cert(directory: Path, key_type: str, ca_type: str = "rsa", identity: str = "cert-id") -> Cert:
    """ssh-keygen -s CA -I id -n user -V +1d key.pub -> key-cert.pub, and its MD5 fingerprint."""
    name = f"{key_type.replace(':', '')}-by-{ca_type.replace(':', '')}"
    ca = make_key(directory, f"ca-{name}", ca_type)
    key = make_key(directory, name, key_type)
    signed = keygen("-q", "-s", str(ca), "-I", identity, "-n", "user", "-V", "+1d", f"{key}.pub")
    if signed.returncode != 0:
        pytest.skip(f"this ssh-keygen cannot certify a {key_type} key with a {ca_type} CA: "
                    f"{signed.stderr.strip()[:200]}")
    cert_path = Path(f"{key}-cert.pub")
    listed = keygen("-l", "-E", "md5", "-f", str(cert_path))
    assert listed.returncode == 0, listed.stderr
    return Cert(cert_path.read_text().strip(), listed.stdout.split()[1].removeprefix("MD5:"))


# --- SSH wire helpers (RFC 4251): enough to take a certificate apart ---------------------------

def ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def split_strings(blob: bytes, count: int) -> tuple[list[bytes], bytes]:
    """The first `count` strings of a blob and the bytes after them."""
    out, pos = [], 0
    for _n in range(count):
        (size,) = struct.unpack(">I", blob[pos:pos + 4])
        out.append(blob[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out, blob[pos:]


def line_of(key_type: str, blob: bytes, comment: str = "edited") -> str:
    return f"{key_type} {base64.b64encode(blob).decode()} {comment}"


@dataclass(frozen=True)
class V01Tail:
    """The fields of a v01 certificate after the certified key (PROTOCOL.certkeys)."""

    serial: bytes
    kind: bytes
    key_id: bytes
    principals: bytes
    validity: bytes
    critical: bytes
    extensions: bytes
    reserved: bytes
    ca: bytes
    signature: bytes

    @classmethod
    def parse(cls, tail: bytes) -> "V01Tail":
        serial, kind, rest = tail[:8], tail[8:12], tail[12:]
        (key_id, principals), rest = split_strings(rest, 2)
        validity, rest = rest[:16], rest[16:]
        (critical, extensions, reserved, ca, signature), rest = split_strings(rest, 5)
        assert rest == b""
        return cls(serial, kind, key_id, principals, validity, critical, extensions, reserved, ca, signature)

    def but(self, **changes: bytes) -> "V01Tail":
        return V01Tail(**{**self.__dict__, **changes})

    def encode(self) -> bytes:
        return (self.serial + self.kind + ssh_string(self.key_id) + ssh_string(self.principals) + self.validity
                + b"".join(ssh_string(f) for f in (self.critical, self.extensions, self.reserved, self.ca,
                                                   self.signature)))


def rsa_cert_parts(cert: Cert) -> tuple[list[bytes], V01Tail]:
    """[type, nonce, e, n] and the rest of an ssh-rsa-cert-v01 blob."""
    head, tail = split_strings(cert.blob, 4)
    return head, V01Tail.parse(tail)


def rsa_cert(head: list[bytes], tail: V01Tail) -> bytes:
    return b"".join(ssh_string(f) for f in head) + tail.encode()


def mpint(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Cert | str]:
    """Certificates made once per module, by name; for one this ssh-keygen cannot make, the
    reason, so that only the tests that need it are skipped."""
    made: dict[str, Cert | str] = {}
    directory = tmp_path_factory.mktemp("certs")
    for name, key_type, ca_type in CASES:
        try:
            made[name] = make_cert(directory, key_type, ca_type)
        except pytest.skip.Exception as exc:
            made[name] = str(exc)
    return made


def cert_of(certs: dict[str, Cert | str], name: str) -> Cert:
    found = certs[name]
    if isinstance(found, str):
        pytest.skip(found)
    return found


def failure(fn, *args, **kwargs) -> ApiFailure:
    with pytest.raises(ApiFailure) as info:
        fn(*args, **kwargs)
    return info.value


def import_(sdk, body: str, name: str | None = None) -> dict:
    return sdk.call("ImportKeyPair", RegionId=REGION, KeyPairName=name or unique("cert"), PublicKeyBody=body)


def refused(sdk, body: str) -> ApiFailure:
    name = unique("cert")
    err = failure(import_, sdk, body, name)
    assert sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)["TotalCount"] == 0
    return err


# (test id, key type as ssh-keygen -t[:bits], CA key type)
CASES = [
    ("rsa", "rsa:2048", "rsa:2048"),
    ("rsa-by-ecdsa", "rsa:3072", "ecdsa:384"),
    ("dsa", "dsa", "rsa:2048"),
    ("ecdsa256", "ecdsa:256", "rsa:2048"),
    ("ecdsa384", "ecdsa:384", "ed25519"),
    ("ecdsa521", "ecdsa:521", "ecdsa:521"),
    ("ed25519", "ed25519", "rsa:2048"),
    ("rsa-by-dsa", "rsa:2048", "dsa"),
]


# --- accepted ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_import_certificate(sdk, certs, case):
    cert = cert_of(certs, case)
    name = unique("cert")
    out = import_(sdk, cert.line, name)
    assert out["KeyPairName"] == name
    # Create/Import answer plain hex; ssh-keygen prints the certified key's MD5 for a certificate.
    assert out["KeyPairFingerPrint"] == cert.md5.replace(":", "")
    listed = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, IncludePublicKey=True)
    item = listed["KeyPairs"]["KeyPair"][0]
    assert item["PublicKey"] == cert.identity
    assert item["KeyPairFingerPrint"] == cert.md5
    by_print = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairFingerPrint=cert.md5, PageSize=50)
    assert name in [k["KeyPairName"] for k in by_print["KeyPairs"]["KeyPair"]]


def test_certificate_in_rfc4716_form(sdk, certs, tmp_path):
    cert = cert_of(certs, "ecdsa256")
    (tmp_path / "cert.pub").write_text(cert.line + "\n")
    exported = keygen("-e", "-f", str(tmp_path / "cert.pub"))
    if exported.returncode != 0 or "BEGIN SSH2 PUBLIC KEY" not in exported.stdout:
        pytest.skip(f"this ssh-keygen does not export certificates: {exported.stderr.strip()[:200]}")
    name = unique("cert")
    out = import_(sdk, exported.stdout, name)
    assert out["KeyPairFingerPrint"] == cert.md5.replace(":", "")
    listed = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, IncludePublicKey=True)
    assert listed["KeyPairs"]["KeyPair"][0]["PublicKey"] == cert.identity


def test_certificate_and_its_key_share_the_fingerprint(sdk, certs, tmp_path):
    """ssh-keygen -l shows a certificate by its certified key, and so does the API."""
    cert = cert_of(certs, "ed25519")
    head, _tail = split_strings(cert.blob, 3)  # type, nonce, the Ed25519 key
    plain = f"ssh-ed25519 {base64.b64encode(ssh_string(b'ssh-ed25519') + ssh_string(head[2])).decode()}"
    (tmp_path / "plain.pub").write_text(plain + "\n")
    listed = keygen("-l", "-E", "md5", "-f", str(tmp_path / "plain.pub"))
    assert listed.stdout.split()[1] == f"MD5:{cert.md5}"
    assert import_(sdk, plain)["KeyPairFingerPrint"] == import_(sdk, cert.line)["KeyPairFingerPrint"]


def test_comment_whitespace_and_trailing_newline(sdk, certs):
    cert = cert_of(certs, "rsa")
    for body in (cert.line + "\n", cert.line + "\r\n", f"  \t{cert.identity}\n\n", cert.identity,
                 f"{cert.identity} a comment with  spaces\n"):
        name = unique("cert")
        assert import_(sdk, body, name)["KeyPairFingerPrint"] == cert.md5.replace(":", "")
        item = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, IncludePublicKey=True)
        assert item["KeyPairs"]["KeyPair"][0]["PublicKey"] == cert.identity


def test_non_utf8_key_id_kept_byte_for_byte(sdk, certs):
    """A key id is bytes to OpenSSH; the stored key is the blob as given, whatever it holds."""
    head, tail = rsa_cert_parts(cert_of(certs, "rsa"))
    blob = rsa_cert(head, tail.but(key_id=b"\xff\xfe caf\xe9 \xc3("))
    name = unique("cert")
    import_(sdk, line_of("ssh-rsa-cert-v01@openssh.com", blob), name)
    item = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, IncludePublicKey=True)
    assert item["KeyPairs"]["KeyPair"][0]["PublicKey"] == line_of("ssh-rsa-cert-v01@openssh.com", blob, "").strip()


def test_v00_certificate(sdk, certs):
    """The v00 layout (OpenSSH 5.4-6.x): no serial and no extensions, the nonce near the end.
    No current ssh-keygen writes it, so it is assembled from a v01 certificate's fields."""
    cert = cert_of(certs, "rsa")
    (_type, nonce, e, n), tail = rsa_cert_parts(cert)
    blob = (b"".join(ssh_string(f) for f in (b"ssh-rsa-cert-v00@openssh.com", e, n)) + tail.kind
            + ssh_string(tail.key_id) + ssh_string(tail.principals) + tail.validity + ssh_string(tail.critical)
            + b"".join(ssh_string(f) for f in (nonce, tail.reserved, tail.ca, tail.signature)))
    name = unique("cert")
    out = import_(sdk, line_of("ssh-rsa-cert-v00@openssh.com", blob), name)
    assert out["KeyPairFingerPrint"] == cert.md5.replace(":", "")
    # The v01 layout under the v00 name (and the other way round) does not parse.
    assert (refused(sdk, line_of("ssh-rsa-cert-v00@openssh.com",
                                 ssh_string(b"ssh-rsa-cert-v00@openssh.com") + cert.blob[32:])).code
            == MALFORMED[0])
    err = refused(sdk, line_of("ssh-rsa-cert-v01@openssh.com", ssh_string(b"ssh-rsa-cert-v01@openssh.com") + blob[32:]))
    assert (err.code, err.status) == MALFORMED


def test_large_certificate_within_the_limit(sdk, certs):
    head, tail = rsa_cert_parts(cert_of(certs, "rsa"))
    big = rsa_cert(head, tail.but(key_id=b"k" * 9000))
    line = line_of("ssh-rsa-cert-v01@openssh.com", big)
    assert 12 * 1024 < len(line) < 16 * 1024
    import_(sdk, line)


def test_certificate_signed_by_a_security_key(sdk, certs):
    """A CA on a FIDO token (PROTOCOL.u2f): its key ends with an application string and its
    signature with flags and a counter. Put together by hand: no token here to sign with."""
    head, tail = rsa_cert_parts(cert_of(certs, "rsa"))
    ca = b"".join(ssh_string(f) for f in (b"sk-ssh-ed25519@openssh.com", bytes(range(32)), b"ssh:"))
    signature = ssh_string(b"sk-ssh-ed25519@openssh.com") + ssh_string(bytes(64)) + b"\x01" + struct.pack(">I", 7)
    kind = "ssh-rsa-cert-v01@openssh.com"
    import_(sdk, line_of(kind, rsa_cert(head, tail.but(ca=ca, signature=signature))))
    err = refused(sdk, line_of(kind, rsa_cert(head, tail.but(ca=ca, signature=signature[:-5]))))
    assert (err.code, err.status) == MALFORMED


# --- refused ----------------------------------------------------------------------------------

def bad_variants(certs: dict[str, Cert | str]) -> dict[str, str]:
    rsa = cert_of(certs, "rsa")
    ecdsa = cert_of(certs, "ecdsa256")
    head, tail = rsa_cert_parts(rsa)
    t = rsa.key_type
    small_n = mpint((1 << 767) | 0xC0FFEE | 1)  # a 768-bit modulus: too small
    variants = {
        "truncated-end": line_of(t, rsa.blob[:-1]),
        "truncated-mid": line_of(t, rsa.blob[:len(rsa.blob) // 2]),
        "truncated-after-key": line_of(t, b"".join(ssh_string(f) for f in head)),
        "only-type": line_of(t, ssh_string(t.encode())),
        "trailing-byte": line_of(t, rsa.blob + b"\x00"),
        "trailing-string": line_of(t, rsa.blob + ssh_string(b"extra")),
        "line-type-not-blob-type": line_of("ecdsa-sha2-nistp256-cert-v01@openssh.com", rsa.blob),
        "plain-type-for-cert-blob": line_of("ssh-rsa", rsa.blob),
        "cert-type-for-plain-blob": line_of(t, ssh_string(b"ssh-rsa") + ssh_string(head[2]) + ssh_string(head[3])),
        "rsa-blob-ecdsa-name": line_of(ecdsa.key_type, rsa.blob),
        "ecdsa-blob-rsa-name": line_of(t, ecdsa.blob),
        "small-rsa": line_of(t, rsa_cert([head[0], head[1], head[2], small_n], tail)),
        "non-minimal-mpint": line_of(t, rsa_cert([head[0], head[1], b"\x00" + head[2], head[3]], tail)),
        "negative-mpint": line_of(t, rsa_cert([head[0], head[1], b"\xff" + head[2], head[3]], tail)),
        "cert-kind-3": line_of(t, rsa_cert(head, tail.but(kind=struct.pack(">I", 3)))),
        "nul-in-key-id": line_of(t, rsa_cert(head, tail.but(key_id=b"id\x00root"))),
        "bad-principals": line_of(t, rsa_cert(head, tail.but(principals=b"\x00\x00\x00\x09user"))),
        "bad-extensions": line_of(t, rsa_cert(head, tail.but(extensions=ssh_string(b"permit-pty")))),
        "ca-garbage": line_of(t, rsa_cert(head, tail.but(ca=b"not a key"))),
        "ca-empty": line_of(t, rsa_cert(head, tail.but(ca=b""))),
        "ca-trailing": line_of(t, rsa_cert(head, tail.but(ca=tail.ca + b"\x00"))),
        "ca-is-a-certificate": line_of(t, rsa_cert(head, tail.but(ca=rsa.blob))),
        "ca-small-rsa": line_of(t, rsa_cert(head, tail.but(ca=b"".join(
            ssh_string(f) for f in (b"ssh-rsa", b"\x01\x00\x01", small_n))))),
        "signature-empty": line_of(t, rsa_cert(head, tail.but(signature=b""))),
        "signature-trailing": line_of(t, rsa_cert(head, tail.but(signature=tail.signature + b"x"))),
    }
    # An ECDSA certificate whose point is off its curve (the last bit of y flipped).
    (etype, enonce, curve, point), etail = split_strings(ecdsa.blob, 4)
    off_curve = point[:-1] + bytes([point[-1] ^ 1])
    variants["ecdsa-off-curve"] = line_of(ecdsa.key_type, b"".join(
        ssh_string(f) for f in (etype, enonce, curve, off_curve)) + etail)
    variants["ecdsa-wrong-curve"] = line_of(ecdsa.key_type, b"".join(
        ssh_string(f) for f in (etype, enonce, b"nistp384", point)) + etail)
    # Certificate names off the accepted list, in the line and in the blob alike.
    for other in ("sk-ssh-ed25519-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
                  "ssh-rsa-cert-v02@openssh.com", "x509v3-ssh-rsa"):
        variants[f"type-{other}"] = line_of(other, ssh_string(other.encode()) + rsa.blob[4 + len(t):])
    return variants


BAD = ["truncated-end", "truncated-mid", "truncated-after-key", "only-type", "trailing-byte", "trailing-string",
       "line-type-not-blob-type", "plain-type-for-cert-blob", "cert-type-for-plain-blob", "rsa-blob-ecdsa-name",
       "ecdsa-blob-rsa-name", "small-rsa", "non-minimal-mpint", "negative-mpint", "cert-kind-3", "nul-in-key-id",
       "bad-principals", "bad-extensions", "ca-garbage", "ca-empty", "ca-trailing", "ca-is-a-certificate",
       "ca-small-rsa", "signature-empty", "signature-trailing", "ecdsa-off-curve", "ecdsa-wrong-curve",
       "type-sk-ssh-ed25519-cert-v01@openssh.com", "type-rsa-sha2-256-cert-v01@openssh.com",
       "type-ssh-rsa-cert-v02@openssh.com", "type-x509v3-ssh-rsa"]


@pytest.mark.parametrize("variant", BAD)
def test_bad_certificate(sdk, certs, variant):
    body = bad_variants(certs)[variant]
    err = refused(sdk, body)
    assert (err.code, err.status) == MALFORMED


ATTACKER_BODIES = {
    "whitespace-only": lambda c: " \t \n ",
    "two-lines": lambda c: c.line + "\n" + c.line,
    "nul-in-base64": lambda c: c.identity[:40] + "\x00" + c.identity[40:],
    "nul-after-base64": lambda c: c.identity + "\x00",
    "nul-in-comment": lambda c: c.identity + " user\x00@host",
    "escape-in-comment": lambda c: c.identity + " \x1b[31mred",
    "type-only": lambda c: c.key_type,
    "base64-only": lambda c: c.line.split()[1],
    "base64-bad-padding": lambda c: c.identity + "=",
    "base64-urlsafe": lambda c: c.key_type + " " + base64.urlsafe_b64encode(c.blob + b"\xfb\xff").decode(),
    "options-before-type": lambda c: 'command="/bin/sh" ' + c.line,
    "huge-comment": lambda c: c.identity + " " + "x" * (16 * 1024),
    "huge-blob": lambda c: c.key_type + " " + base64.b64encode(c.blob * 12).decode(),
    "private-key-marker": lambda c: c.line + " -----BEGIN OPENSSH PRIVATE KEY-----",
}


@pytest.mark.parametrize("variant", sorted(ATTACKER_BODIES))
def test_attacker_bodies(sdk, certs, variant):
    err = refused(sdk, ATTACKER_BODIES[variant](cert_of(certs, "rsa")))
    assert (err.code, err.status) == MALFORMED


def test_empty_body(sdk):
    err = refused(sdk, "")
    assert (err.code, err.status) == ("MissingParameter", 400)


def test_non_utf8_body_and_huge_request(emu, certs):
    """What no SDK sends: bytes that are not UTF-8, and a body over the request size limit."""
    cert = cert_of(certs, "rsa")
    name = unique("cert")
    query = v1_query(emu.key(0), {"Action": "ImportKeyPair", "RegionId": REGION, "KeyPairName": name})
    status, body = raw(emu.port, "POST", "/?" + query + "&PublicKeyBody=" + cert.key_type + "%20AAAA%FF%FE",
                       headers={"Content-Length": "0"})
    assert (status, body["Code"]) == (400, "InvalidParameter.Encoding")
    form = ("PublicKeyBody=" + cert.key_type + "%20" + "A" * (2 * 1024 * 1024)).encode()
    status, body = raw(emu.port, "POST", "/?" + query, body=form,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body["Code"]) == (413, "RequestTooLarge")
    status, body = v1_call(emu.port, emu.key(0),
                           {"Action": "DescribeKeyPairs", "RegionId": REGION, "KeyPairName": name})
    assert (status, body["TotalCount"]) == (200, 0)


def test_ed25519_certificate_follows_the_ed25519_switch(certs):
    """--ed25519 reject refuses the key and its certificate alike; a CA's type does not count."""
    ed_cert = cert_of(certs, "ed25519")
    by_ed_ca = cert_of(certs, "ecdsa384")  # an ECDSA key certified by an Ed25519 CA
    emu = EmulatorProcess("--ed25519", "reject").start()
    try:
        sdk = SDKS["sdk3"](emu.endpoint, emu.key(0))
        err = refused(sdk, ed_cert.line)
        assert (err.code, err.status) == MALFORMED
        assert import_(sdk, by_ed_ca.line)["KeyPairFingerPrint"] == by_ed_ca.md5.replace(":", "")
    finally:
        emu.stop()
