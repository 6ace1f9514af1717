import Uppy from '@uppy/core';
import AwsS3 from '@uppy/aws-s3';

/**
 * An Uppy that uploads into one dropzone through the Dropzone API: one PUT per file up to `multipartAbove` bytes,
 * multipart above. `api` is the API base (`https://dropzone.example.com/api/v1`), `dropzone` the dropzone's _id or
 * shareId, `auth` the headers that authorize uploading (`{ 'x-api-key': '<key with dropzone.upload>' }`).
 */
export function dropzoneUppy({ api, dropzone, auth, multipartAbove = 100 * 2 ** 20 }) {
  const MiB = 2 ** 20;
  const s3 = { ...auth, accept: 'application/xml' }; // the multipart routes then answer as S3 would
  const mp = (key, uploadId, rest = '') => `${api}/files/${key}/multipart/${encodeURIComponent(uploadId)}${rest}`;
  async function call(method, path, body) {
    const headers = { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) };
    const res = await fetch(api + path, { method, headers, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(json.message);
    return json.data;
  }
  const uppy = new Uppy();
  /** Reserves the Uppy file `id` in the dropzone; its fileId becomes the object key of every later request. */
  async function reserve(id) {
    const file = uppy.getFile(id);
    return call('POST', `/dropzones/${dropzone}/files`, { name: file.name, type: file.type || '', size: file.size });
  }
  uppy.use(AwsS3, {
    shouldUseMultipart: (file) => file.size > multipartAbove,
    getChunkSize: ({ size }) => Math.max(5 * MiB, Math.ceil(size / 10_000 / MiB) * MiB),
    generateObjectKey: (file) => file.id, // so signRequest finds the file to reserve
    async signRequest({ method, key, uploadId, partNumber }) {
      if (uploadId === undefined && method === 'PUT') {
        const up = await reserve(key); // single PUT
        return { url: up.signedUrl, headers: up.headers, key: up.fileId };
      }
      if (uploadId === undefined && method === 'POST') {
        const up = await reserve(key); // create the multipart upload
        return { url: `${api}/files/${up.fileId}/multipart`, headers: s3, key: up.fileId };
      }
      if (uploadId === undefined) return { url: `${api}/files/${key}`, headers: auth }; // DELETE object
      if (method === 'PUT') {
        const { parts } = await call('POST', `/files/${key}/multipart/${encodeURIComponent(uploadId)}/sign`, { partNumbers: [partNumber] });
        return { url: parts[0].url, headers: parts[0].headers };
      }
      if (method === 'POST') return { url: mp(key, uploadId, '/complete'), headers: s3 }; // completes and confirms
      return { url: mp(key, uploadId), headers: s3 }; // GET: list the parts (resume); DELETE: abort
    },
  });
  // a single PUT still needs the confirm; after a multipart completion it answers the confirmed file again
  uppy.on('upload-success', (file, res) => call('POST', `/files/${res.body.key}/confirm`));
  return uppy;
}
