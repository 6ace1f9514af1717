import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../core/errors.js';
import { DROPZONE_PERMISSIONS, FILE_PERMISSIONS } from '../core/permissions.js';
import { MAX_GB_MONTHS } from '../core/quota.js';

/** Counts Unicode code points, so a 255-character name may hold emoji or CJK. */
const codePoints = (s: string) => [...s].length;
/** False for strings with lone surrogates: they cannot be stored as UTF-8, so such a name could not be kept verbatim. */
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

/** `POST /dropzones` body. */
export const createDropzoneBody = z.object({
  gb: z.number().finite().positive(),
  days: z.number().finite().positive(),
  name: z.string().min(1).max(255).refine(wellFormed, 'must be well-formed Unicode (no lone surrogates)').optional(),
});

/** `PATCH|PUT /dropzones/:id` body. */
export const updateDropzoneBody = z
  .object({
    gb: z.number().finite().positive().optional(),
    days: z.number().finite().positive().optional(),
  })
  .refine((b) => b.gb !== undefined || b.days !== undefined, { message: 'needs gb or days' });

/** `POST /files` and `POST /dropzones/:id/files` body. */
export const uploadRequestBody = z.object({
  name: z
    .string()
    .refine((s) => codePoints(s) >= 1 && codePoints(s) <= 255, 'must be 1 to 255 characters')
    .refine((s) => !s.includes('\0'), 'must not contain NUL')
    .refine(wellFormed, 'must be well-formed Unicode (no lone surrogates)'),
  type: z
    .string()
    .max(255)
    .regex(/^[\x20-\x7e]*$/, 'must be a printable ASCII media type')
    .default(''),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** Permission grant/revoke body: SDK 0.4+ names the grantee by `publicId`, 0.3 by its `apiKey`; `anyone` means everybody. */
export const permissionsBody = (kind: 'dropzone' | 'file') =>
  z
    .object({
      publicId: z.string().min(1).max(200).optional(),
      apiKey: z.string().min(1).max(200).optional(),
      permissions: z.array(z.string().min(1).max(100)).min(1).max(50),
    })
    .refine((b) => b.publicId !== undefined || b.apiKey !== undefined, { message: 'needs publicId (or apiKey)', path: ['publicId'] })
    .describe(`Permissions: ${(kind === 'dropzone' ? DROPZONE_PERMISSIONS : FILE_PERMISSIONS).join(', ')}`);

/** `POST /apikeys` body. */
export const createApiKeyBody = z.object({
  name: z.string().max(100).optional(),
  permissions: z.array(z.string()).max(10).optional(),
  gbMonths: z.number().finite().min(0).max(MAX_GB_MONTHS).optional(),
});

/** `POST /apikeys/:publicId/transfer-gbmonths` body. */
export const transferBody = z.object({ gbMonths: z.number().finite().positive().max(MAX_GB_MONTHS) });

/** A dropzone as the API shows it. Units: bytes, milliseconds, epoch ms for deleteTime; 1 GB = 10^9 bytes. */
export const dropzoneSchema = z.object({
  _id: z.string().describe("the x-dropzone-id credential for owners; the shareId for everyone else"),
  shareId: z.string().describe('public handle: names the dropzone in /dropzones/:id paths; no credential'),
  name: z.string().nullable(),
  tier: z.string(),
  hidden: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
  code: z.string().optional().describe('page code; only for callers who may upload'),
  maxDuration: z.number().describe('milliseconds'),
  maxSize: z.number().describe('bytes'),
  maxFileSize: z.number().describe('bytes'),
  usedSpace: z.number().describe('bytes, including reserved pending uploads; each file counts its size + 1000 + the UTF-8 bytes of its name and type'),
  deleteTime: z.number().describe('epoch milliseconds'),
  uploadUrl: z.string().optional().describe('the dropzone page; only for callers who may upload'),
  maxSizeGb: z.number(),
  maxDurationDays: z.number(),
});

/** A file as the API shows it. */
export const fileItemSchema = z.object({
  _id: z.string(),
  size: z.number(),
  type: z.string(),
  name: z.string(),
  meta: z.object({
    dropZoneCode: z.string().optional().describe('present when the caller may upload into the dropzone'),
    createdAt: z.string(),
    dropZoneId: z.string().optional().describe('present when the caller may see the dropzone'),
    s3Status: z.enum(['pending', 'uploaded']),
    scanStatus: z
      .enum(['scanning', 'clean', 'quarantined', 'scan_failed'])
      .optional()
      .describe('virus scan (only when the server scans): scanning, then clean, quarantined (never served) or scan_failed'),
  }),
});

/** An API key as the API shows it (never the secret, except once at creation). */
export const apiKeySchema = z.object({
  publicId: z.string(),
  name: z.string(),
  gbMonths: z.number().nullable().describe('null: unlimited'),
  permissions: z.array(z.string()),
  admin: z.boolean(),
  createdAt: z.string(),
});

/** `{status:"success", data}` around `data`. */
export const envelope = <T extends z.ZodType>(data: T) => z.object({ status: z.literal('success'), data });
/** Error body: `code` is the stable code of the error catalog (src/core/errors.ts), `message` a human sentence. */
export const errorSchema = z.object({
  status: z.literal('error'),
  code: z.enum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]]).describe('stable error code; clients branch on it, not on the message'),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});
/** `{status:"success", message}` — answers that carry no data (deletions). */
export const successMessageSchema = z.object({ status: z.literal('success'), message: z.string() });
/** A documented error response with the standard error body. */
export const errorResponse = (description: string) => ({ description, schema: errorSchema });
/** A permission list for one resource. */
export const permissionListSchema = z.array(z.object({ publicId: z.string(), permissions: z.array(z.string()) }));
/** Answer of an upload-URL request. */
export const uploadResponseSchema = z.object({
  fileId: z.string(),
  signedUrl: z.string(),
  method: z.literal('PUT'),
  headers: z.record(z.string(), z.string()).describe('headers the PUT must carry exactly'),
  expiresAt: z.number().describe('epoch ms'),
  file: fileItemSchema,
});

/** `POST /files/:fileId/multipart` answer: the upload to send parts to, and the part size the server proposes. */
export const multipartStartSchema = z.object({
  uploadId: z.string().describe('the multipart upload pinned to this file; starting again answers the same one until it completes or is aborted'),
  partSize: z.number().describe('proposed bytes of every part but the last (at least 5 MiB, at most 10,000 parts in all)'),
  partCount: z.number().describe('parts of partSize the file takes'),
  minPartSize: z.number().describe('smallest part but the last, bytes'),
  maxParts: z.number().describe('highest part number'),
});

/** `POST /files/:fileId/multipart/:uploadId/sign` body: the part numbers to sign (any order, at most 1000). */
export const signPartsBody = z.object({
  partNumbers: z.array(z.number().int().min(1).max(10_000)).min(1).max(1000),
});

/** `POST /files/:fileId/multipart/:uploadId/sign` answer. */
export const signedPartsSchema = z.object({
  parts: z.array(
    z.object({
      partNumber: z.number(),
      url: z.string().describe('PUT the part\'s bytes here; the answer\'s ETag header goes into the completion list'),
      method: z.literal('PUT'),
      headers: z.record(z.string(), z.string()).describe('headers the PUT must carry exactly'),
      expiresAt: z.number().describe('epoch ms'),
    }),
  ),
});

/** A part as S3 (and Uppy's S3 plugin) names it: listed for resume, and sent back in the completion list. */
export const multipartPartSchema = z.object({
  PartNumber: z.number().int().min(1).max(10_000),
  ETag: z.string().min(1).max(200),
});

/** `GET /files/:fileId/multipart/:uploadId` answer: the parts stored so far. */
export const listPartsSchema = z.object({
  parts: z.array(multipartPartSchema.extend({ Size: z.number() })),
});

/** `POST /files/:fileId/multipart/:uploadId/complete` body: every part, in ascending part-number order. */
export const completeMultipartBody = z.object({
  parts: z.array(multipartPartSchema).min(1).max(10_000),
});
