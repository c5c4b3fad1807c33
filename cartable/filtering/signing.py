"""Ed25519 keys and the detached signature of the list manifest.

Files (all text but the private key's PEM):

- private key `KEY`: PKCS#8 PEM, unencrypted, mode 0600 — on the mirror host only (or in
  ansible-vault); never on a school server;
- public key `KEY.pub`: one line `cartable-filter-ed25519 <base64 of the 32-byte key> <comment>`
  — goes to the inventory, and to each school server;
- signature `manifest.json.sig`: one line
  `cartable-filter-signature 1 <SHA-256 hex of manifest.json> <base64 of the 64-byte signature>`.
  The SHA-256 in clear is not trusted: it only tells a manifest and a signature of two
  different publications apart (the fetcher then retries later) from a bad signature.

Runs on the school server too (verification): Python 3.11 + Debian's python3-cryptography.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from cartable.errors import InputError, Problem

PUBLIC_TAG = "cartable-filter-ed25519"
SIGNATURE_TAG = "cartable-filter-signature"


class SignatureError(Exception):
    """The manifest's signature is absent, malformed, or not made by the expected key."""


class SignatureMismatch(SignatureError):
    """The signature belongs to another manifest (a publication happened between the two
    downloads): try again later."""


def generate(out: Path, comment: str = "cartable filter lists") -> Path:
    """Write a new private key at `out` (0600) and its public key at `out`.pub; refuse to
    overwrite either. Returns the public key's path."""
    pub = out.with_name(out.name + ".pub")
    existing = [p for p in (out, pub) if p.exists() or p.is_symlink()]
    if existing:
        raise InputError([Problem(str(p), "already exists: refusing to overwrite a key",
                                  hint="choose another --out, or remove the old key yourself "
                                  "(schools holding its public key would reject new lists)")
                          for p in existing])
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        pub.write_text(public_text(key.public_key(), comment), encoding="ascii")
    except OSError as exc:
        raise InputError(Problem(str(exc.filename or out), f"cannot write the key: "
                                 f"{exc.strerror or exc}", hint="check the folder")) from None
    return pub


def public_text(key: Ed25519PublicKey, comment: str) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    clean = " ".join(comment.split())
    return f"{PUBLIC_TAG} {base64.b64encode(raw).decode('ascii')} {clean}\n".replace(" \n", "\n")


def load_private(path: Path) -> Ed25519PrivateKey:
    """The private key of a PEM file; InputError saying what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(Problem(str(path), f"cannot read the private key: "
                                 f"{exc.strerror or exc}",
                                 hint="create one with `cartable filter keygen --out KEY`")) \
            from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(Problem(str(path), f"not an unencrypted PEM private key ({exc})",
                                 hint="give the file written by `cartable filter keygen` "
                                 "(decrypted from ansible-vault if it is stored there)")) \
            from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(Problem(str(path), "not an Ed25519 private key",
                                 hint="create one with `cartable filter keygen --out KEY`"))
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """The public key of a `KEY.pub` file; InputError saying what is wrong."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise InputError(Problem(str(path), f"cannot read the public key: {reason or exc}",
                                 hint="give the KEY.pub written by `cartable filter keygen`")) \
            from None
    words = text.split()
    try:
        if len(words) < 2 or words[0] != PUBLIC_TAG:
            raise ValueError(f"the line must start with {PUBLIC_TAG!r}")
        raw = base64.b64decode(words[1], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise InputError(Problem(str(path), f"not a Cartable filter public key ({exc})", 1,
                                 hint=f"one line: {PUBLIC_TAG} <base64 key> [comment]")) \
            from None


def sign(key: Ed25519PrivateKey, manifest: bytes) -> str:
    """The text of the detached signature file of `manifest`."""
    signature = base64.b64encode(key.sign(manifest)).decode("ascii")
    return f"{SIGNATURE_TAG} 1 {hashlib.sha256(manifest).hexdigest()} {signature}\n"


def verify(key: Ed25519PublicKey, manifest: bytes, signature: bytes) -> None:
    """Nothing when `signature` (the .sig file's bytes) is `key`'s signature of `manifest`;
    SignatureMismatch when it is the signature of another manifest, SignatureError else."""
    words = signature.decode("ascii", "replace").split()
    if len(words) != 4 or words[0] != SIGNATURE_TAG or words[1] != "1":
        raise SignatureError("the signature file is not a Cartable filter signature "
                             f"({SIGNATURE_TAG} 1 <sha256> <base64>)")
    if words[2] != hashlib.sha256(manifest).hexdigest():
        raise SignatureMismatch("the signature is for another manifest (published meanwhile?)")
    try:
        raw = base64.b64decode(words[3], validate=True)
        key.verify(raw, manifest)
    except (ValueError, binascii.Error, InvalidSignature):
        raise SignatureError("the manifest's signature does not verify with the public key "
                             "(wrong key, or the manifest was modified after signing)") from None
