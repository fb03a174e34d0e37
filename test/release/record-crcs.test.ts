/**
 * Per-record CRC checks on real torch 1.13 files (issue 20, item 6): every record found where the
 * central directory says, in any chunking; a changed byte is pinned to its record.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RecordCrcs } from '../../src/release/record-crcs.js';
import { readZipDirectory } from '../../src/release/zip-directory.js';
import { TORCH } from '../support/helpers.js';

const FILES = [
  join(TORCH, 'llama-base', 'pytorch_model-00001-of-00003.bin'),
  join(TORCH, 'meta', 'mp2', 'consolidated.01.pth'),
  join(TORCH, 'dtypes', 'pytorch_model-00001-of-00002.bin'),
  join(TORCH, 'dtypes', 'zip64', 'pytorch_model-00001-of-00002.bin'),
];

function run(bytes: Buffer, piece: number) {
  const crcs = new RecordCrcs();
  for (let at = 0; at < bytes.length; at += piece) crcs.feed(bytes.subarray(at, at + piece));
  return crcs.finish();
}

function dataAt(bytes: Buffer, localOffset: number): number {
  return localOffset + 30 + bytes.readUInt16LE(localOffset + 26) + bytes.readUInt16LE(localOffset + 28);
}

describe('RecordCrcs', () => {
  for (const file of FILES) {
    it(`finds every record of ${file.split('/').slice(-2).join('/')} where its central directory does, all intact, in any chunking`, () => {
      const bytes = readFileSync(file);
      const directory = readZipDirectory(bytes, 0);
      const expected = directory.records.map((r) => ({ name: r.name, at: dataAt(bytes, r.localOffset), size: r.size, ok: true }));
      for (const piece of [1, 3, 17, 64, 4096, bytes.length]) {
        const report = run(bytes, piece);
        expect(report.broken, `piece ${piece}`).toBeUndefined();
        expect(report.complete).toBe(true);
        expect(report.records, `piece ${piece}`).toEqual(expected);
      }
    });
  }

  it('pins a changed byte to its record, and only that one', () => {
    const bytes = Buffer.from(readFileSync(FILES[0]!));
    const directory = readZipDirectory(bytes, 0);
    const victim = directory.records.find((r) => r.size > 100)!;
    bytes[dataAt(bytes, victim.localOffset) + 50]! ^= 0x04;
    for (const piece of [5, 1000]) {
      const report = run(bytes, piece);
      expect(report.complete).toBe(true);
      expect(report.records.filter((r) => !r.ok).map((r) => r.name)).toEqual([victim.name]);
    }
  });

  it('says where the records stop being readable, and that a cut file ends inside them', () => {
    const bytes = Buffer.from(readFileSync(FILES[0]!));
    const second = readZipDirectory(bytes, 0).records[1]!;
    const broken = Buffer.from(bytes);
    broken[second.localOffset]! ^= 0xff;
    const report = run(broken, 100);
    expect(report.broken).toContain('no zip record at byte');
    expect(report.records).toHaveLength(1);
    expect(run(bytes.subarray(0, bytes.length >> 1), 64).broken).toMatch(/the file ends inside its records/);
  });
});
