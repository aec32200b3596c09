// The uploads bucket, laid out like tusd's s3store: the object <id> (a multipart upload until
// the upload completes), <id>.info (upload info) and <id>.part (a tail smaller than the
// minimum S3 part size, kept between PATCH requests).

import {S3Store} from '@tus/s3-store'

class UploadsStore extends S3Store {
  // @tus/s3-store's remove() leaves <id>.part behind when an unfinished upload is
  // terminated; tusd's s3store deletes it too, so do the same.
  async remove(id) {
    await super.remove(id)
    await this.client.deleteObject({Bucket: this.bucket, Key: this.partKey(id, true)})
  }
}

export function createStore(s3) {
  return new UploadsStore({
    partSize: s3.partSize,
    // Object tags only serve @tus/s3-store's expiration feature, which is not used, and
    // not every S3 server implements tagging.
    useTags: false,
    s3ClientConfig: {
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: {accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey},
      // SeaweedFS (and MinIO) on a bare host:port cannot serve virtual-hosted buckets.
      forcePathStyle: true,
      // AWS SDK >= 3.729 adds CRC32 checksums (aws-chunked trailers) to every upload by
      // default; S3-compatible servers do not all accept them. Only send them where the
      // S3 API demands one.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    },
  })
}
