/**
 * A dropzone's answer text is made once per frozen dropzone object (what the store shares within a read snapshot) and
 * view, and is exactly what presenting and serializing it gives, for every view: a text kept for one caller is never
 * the answer to another who may see less.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Dropzone } from '../../src/core/ports/metadata-store.js';
import type { DropzoneView } from '../../src/core/visibility.js';
import { dropzoneAnswerText, ok, presentDropzone } from '../../src/http/presenters.js';

const row = (): Dropzone => ({
  id: 'dz_owner_credential_id_0000000000',
  shareId: 'dzs_share_000000000000',
  code: 'upload_code_0000000000',
  name: 'Holiday "photos"',
  ownerKeyId: 1,
  tier: 'standard',
  hidden: false,
  sizeGb: 4,
  days: 30,
  maxSize: 4_000_000_000,
  maxFileSize: 4_000_000_000,
  usedSpace: 12_345,
  fileCount: 2,
  startTime: Date.UTC(2026, 10, 1),
  deleteTime: Date.UTC(2026, 11, 1),
  createdAt: Date.UTC(2026, 10, 1, 12, 0, 0, 7),
  updatedAt: Date.UTC(2026, 10, 2, 8, 30, 0, 999),
});

const owner = (dz: Dropzone): DropzoneView => ({ id: dz.id, showCode: true, visible: true });
const uploader = (dz: Dropzone): DropzoneView => ({ id: dz.shareId, showCode: true, visible: true });
const viewer = (dz: Dropzone): DropzoneView => ({ id: dz.shareId, showCode: false, visible: true });
const URL_A = 'https://files.example';
const URL_B = 'http://127.0.0.1:8080';
const expected = (dz: Dropzone, view: DropzoneView, url: string) => JSON.stringify(ok(presentDropzone(dz, view, url)));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('dropzoneAnswerText', () => {
  it('is the serialized presented answer for every view and public URL, in any order of asking, frozen or not', () => {
    for (const freeze of [false, true]) {
      const dz = freeze ? Object.freeze(row()) : row();
      const asks: [DropzoneView, string][] = [
        [owner(dz), URL_A],
        [viewer(dz), URL_A],
        [owner(dz), URL_A],
        [uploader(dz), URL_A],
        [owner(dz), URL_B],
        [viewer(dz), URL_B],
        [viewer(dz), URL_B],
        [uploader(dz), URL_B],
      ];
      for (const [view, url] of asks) expect(dropzoneAnswerText(dz, view, url)).toBe(expected(dz, view, url));
    }
  });

  it("never answers a viewer with the owner's credential id or the upload code kept for the owner", () => {
    const dz = Object.freeze(row());
    expect(dropzoneAnswerText(dz, owner(dz), URL_A)).toContain(dz.code);
    const seen = JSON.parse(dropzoneAnswerText(dz, viewer(dz), URL_A)).data;
    expect(seen._id).toBe(dz.shareId);
    expect(seen).not.toHaveProperty('code');
    expect(seen).not.toHaveProperty('uploadUrl');
    expect(JSON.stringify(seen)).not.toContain(dz.id);
  });

  it('serializes a frozen dropzone once per view and public URL', () => {
    const dz = Object.freeze(row());
    const stringify = vi.spyOn(JSON, 'stringify');
    for (let i = 0; i < 3; i++) dropzoneAnswerText(dz, owner(dz), URL_A);
    expect(stringify).toHaveBeenCalledTimes(1);
    dropzoneAnswerText(dz, viewer(dz), URL_A);
    dropzoneAnswerText(dz, viewer(dz), URL_A);
    expect(stringify).toHaveBeenCalledTimes(2);
    dropzoneAnswerText(dz, viewer(dz), URL_B);
    expect(stringify).toHaveBeenCalledTimes(3);
    // another frozen object with the same fields is another answer (a later snapshot's row)
    const later = Object.freeze({ ...row(), usedSpace: 99 });
    expect(JSON.parse(dropzoneAnswerText(later, viewer(later), URL_B)).data.usedSpace).toBe(99);
    expect(stringify).toHaveBeenCalledTimes(4);
  });

  it('presents a dropzone that is not frozen every time: a change to it shows', () => {
    const dz = row();
    const first = JSON.parse(dropzoneAnswerText(dz, owner(dz), URL_A)).data;
    dz.usedSpace = 777;
    dz.name = 'renamed';
    const second = JSON.parse(dropzoneAnswerText(dz, owner(dz), URL_A)).data;
    expect([first.usedSpace, first.name]).toEqual([12_345, 'Holiday "photos"']);
    expect([second.usedSpace, second.name]).toEqual([777, 'renamed']);
  });
});
