"""GetBucketVersioning answers with S3's <VersioningConfiguration> root.

moto gap: moto serialises the result under a <GetBucketVersioningResponse>
root (moto/s3/responses.py S3Response.get_bucket_versioning), which the AWS
SDK for Rust rejects (it expects <VersioningConfiguration>), so bootstrap
could not check its config bucket.

Checked against moto 5.2.5 (the pinned release, the newest on PyPI): gap
still there (its raw answer is
<GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Status>Enabled</Status></GetBucketVersioningResponse>).  boto3 parses
either root, so no check of stack/tests sees it; the Rust integration tests
do.
"""

from __future__ import annotations


def install() -> str:
    from moto.s3.responses import S3Response

    def get_bucket_versioning(self):
        status = self.backend.get_bucket_versioning(self.bucket_name)
        inner = f"<Status>{status}</Status>" if status else ""
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"{inner}</VersioningConfiguration>")
        return 200, {"Content-Type": "application/xml"}, body

    S3Response.get_bucket_versioning = get_bucket_versioning
    return "S3Response.get_bucket_versioning: <VersioningConfiguration> root, as S3"
