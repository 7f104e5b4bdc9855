#!/usr/bin/python3
"""Sigstore (cosign) key-based signing of a registry image, for tests.

Debian 12 has no cosign, and its skopeo (1.9) refuses `--sign-by-sigstore-private-key`
("Debian-local change: sigstore disabled"). This makes what `cosign sign --key` makes, with
python3-cryptography: an ECDSA P-256 key pair (PEM), and the signature artifact as an OCI
layout to push with `skopeo copy oci:DIR docker://REPO:sha256-<hex>.sig`:

- one layer, media type application/vnd.dev.cosign.simplesigning.v1+json, whose blob is the
  payload {"critical": {"identity": {"docker-reference": REF}, "image":
  {"docker-manifest-digest": DIGEST}, "type": "cosign container image signature"},
  "optional": null};
- the layer's annotation dev.cosignproject.cosign/signature: base64 of the ASN.1 DER ECDSA
  signature over the SHA-256 of the payload;
- a config naming the payload as its one diff ID, as cosign writes it.

Usage:
  sigstore-sign.py keygen PRIVATE_OUT PUBLIC_OUT
  sigstore-sign.py sign PRIVATE REFERENCE DIGEST LAYOUT_OUT
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def keygen(private_out: str, public_out: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with open(private_out, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(public_out, "wb") as f:
        f.write(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def blob(layout: str, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def sign(private: str, reference: str, digest: str, layout: str) -> None:
    with open(private, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }, separators=(",", ":")).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    layer = blob(layout, payload)
    config = blob(layout, json.dumps({
        "architecture": "", "os": "", "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }, separators=(",", ":")).encode())
    manifest = blob(layout, json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", **layer,
            "annotations": {"dev.cosignproject.cosign/signature": signature},
        }],
    }, separators=(",", ":")).encode())
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
            "annotations": {"org.opencontainers.image.ref.name": "sig"},
        }]}, f)


if __name__ == "__main__":
    if sys.argv[1:2] == ["keygen"] and len(sys.argv) == 4:
        keygen(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["sign"] and len(sys.argv) == 6:
        sign(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
