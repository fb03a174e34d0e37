import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deduceCause } from '../../src/verify/diagnose.js';
import { causeAndFix } from '../../src/verify/diagnosis-text.js';
import type { FilePlan } from '../../src/plan/plan.js';
import { judgeBaseDigests } from '../../src/verify/evidence.js';
import { isLfsPointer } from '../../src/plan/lfs.js';
import { isChecksumListName } from '../../src/plan/inputs.js';
import { isTruncatedZip, lacksBaseStructure, structureProblem } from '../../src/release/file-structure.js';
import { removeDir, tempDir } from '../support/helpers.js';

describe('structure checks on a file\'s first bytes', () => {
  const zip = Buffer.from('PK\u0003\u0004rest of a zip');
  it('accepts a zip or a legacy pickle as a .bin checkpoint', () => {
    expect(structureProblem('pytorch_model-00001-of-00002.bin', zip, 1000)).toBeUndefined();
    expect(structureProblem('old.bin', Buffer.from([0x80, 0x02, 0x8a, 0x0a]), 1000)).toBeUndefined();
  });

  it('finds a .bin whose first bytes are not a checkpoint (one flipped bit is enough)', () => {
    const bad = Buffer.from(zip);
    bad[1] ^= 0x01;
    expect(structureProblem('pytorch_model-00001-of-00002.bin', bad, 1000)).toMatchObject({ code: 'not-a-checkpoint' });
  });

  it('checks safetensors header length and JSON', () => {
    const header = Buffer.from('{"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}');
    const good = Buffer.concat([Buffer.alloc(8), header, Buffer.alloc(2)]);
    good.writeBigUInt64LE(BigInt(header.length));
    expect(structureProblem('model.safetensors', good, good.length)).toBeUndefined();
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(10n ** 12n);
    expect(structureProblem('model.safetensors', huge, huge.length)).toMatchObject({ code: 'invalid-safetensors' });
    const notJson = Buffer.from(good);
    notJson[9] = 0x00;
    expect(structureProblem('model.safetensors', notJson, notJson.length)).toMatchObject({ code: 'invalid-safetensors' });
    expect(structureProblem('model.safetensors', Buffer.from([1, 2, 3]), 3)).toMatchObject({ code: 'invalid-safetensors' });
  });

  it('parses a .json only when the whole file is in hand', () => {
    expect(structureProblem('config.json', Buffer.from('{"a": 1}'), 8)).toBeUndefined();
    expect(structureProblem('config.json', Buffer.from('{"a": \u0001}'), 8)).toMatchObject({ code: 'invalid-json' });
    expect(structureProblem('tokenizer.json', Buffer.from('{"a": '), 1_000_000)).toBe('unknown');
  });

  it('cannot tell anything about other files', () => {
    expect(structureProblem('tokenizer.model', Buffer.from([1, 2, 3]), 3)).toBe('unknown');
    expect(structureProblem('x.bin', Buffer.alloc(0), 0)).toBe('unknown');
  });

  it('refuses by structure only where the base has the structure the decoded bytes lack', () => {
    const notZip = Buffer.from('QK\u0003\u0004');
    expect(lacksBaseStructure('a.bin', { head: notZip, size: 100 }, { head: zip, size: 100 })).toMatchObject({ code: 'not-a-checkpoint' });
    // A base that is no checkpoint either proves nothing about the decoded bytes.
    expect(lacksBaseStructure('a.bin', { head: notZip, size: 100 }, { head: notZip, size: 100 })).toBeUndefined();
    expect(lacksBaseStructure('t.model', { head: notZip, size: 100 }, { head: zip, size: 100 })).toBeUndefined();
    expect(lacksBaseStructure('c.json', { head: Buffer.from('{x'), size: 2 }, { head: Buffer.from('{}'), size: 2 })).toMatchObject({ code: 'invalid-json' });
  });

  it('tells a zip archive cut short (no end record in its tail) from a whole one', () => {
    const end = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
    expect(isTruncatedZip(zip, Buffer.concat([Buffer.alloc(100), end]))).toBe(false);
    expect(isTruncatedZip(zip, Buffer.alloc(100))).toBe(true);
    expect(isTruncatedZip(Buffer.from([0x80, 0x02]), Buffer.alloc(100))).toBe(false);
  });
});

describe('the fix matches the cause', () => {
  const file = { name: 'a.bin', payloadPath: '/x/a.bin', basePath: '/b/a.bin' } as FilePlan;
  it('names the publisher\'s conversion recipe for a known release\'s base', () => {
    const line = causeAndFix(file, 'base', { label: 'the published llama-30b-hf conversion', recipe: 'transformers commit d04ec99' });
    expect(line.message).toMatch(/^cause: base\. Base file \/b\/a\.bin is not the one the release was made against \(transformers commit d04ec99\)/);
  });
  it.each([
    ['xor-file', /download it again/],
    ['manifest', /wrong or for another revision/],
    ['unknown', /--base-manifest .*--xor-manifest/],
  ] as const)('%s: %s', (cause, fix) => {
    expect(causeAndFix(file, cause, undefined).message).toMatch(fix);
  });
});

describe('deducing the cause from the evidence (the README table)', () => {
  it.each([
    ['differs', 'differs', 'xor-file'],
    ['differs', 'intact', 'xor-file'],
    ['differs', 'unknown', 'xor-file'],
    ['intact', 'intact', 'manifest'],
    ['intact', 'differs', 'base'],
    ['intact', 'unknown', 'base'],
    ['unknown', 'differs', 'base'],
    ['unknown', 'intact', 'xor-file'],
    ['unknown', 'unknown', 'unknown'],
  ] as const)('XOR file %s, base %s: %s', (payload, base, cause) => {
    expect(deduceCause(payload, base)).toBe(cause);
  });

  it('the strongest algorithm listed decides a base file, as an output: an MD5 match cannot outvote a SHA-256 mismatch', () => {
    const entries = [
      { name: 'a', algorithm: 'sha256' as const, digest: 'a'.repeat(64), source: 's' },
      { name: 'a', algorithm: 'md5' as const, digest: 'b'.repeat(32), source: 'm' },
    ];
    expect(judgeBaseDigests(entries, { sha256: 'c'.repeat(64), md5: 'b'.repeat(32) })).toBe('differs');
    // Changed (issue 22, one digest rule): the strongest algorithm listed decides, as for outputs; an
    // MD5 match alone says nothing where a SHA-256 is published and was not computed.
    expect(judgeBaseDigests(entries, { md5: 'b'.repeat(32) })).toBe('unknown');
    expect(judgeBaseDigests(entries, {})).toBe('unknown');
    expect(judgeBaseDigests(undefined, { md5: 'b'.repeat(32) })).toBe('unknown');
  });
});

describe('git-lfs pointers and checksum lists', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await removeDir(dir);
  });

  it('recognises a pointer file, and not data that merely starts with "version"', async () => {
    const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 9976576152\n';
    await writeFile(join(dir, 'p'), pointer);
    await writeFile(join(dir, 'd'), 'version 2 of something else entirely, long enough to be compared\n');
    expect(await isLfsPointer(join(dir, 'p'), pointer.length)).toBe(true);
    expect(await isLfsPointer(join(dir, 'd'), 66)).toBe(false);
    expect(await isLfsPointer(join(dir, 'p'), 5000)).toBe(false);
  });

  it.each([
    ['SHA256SUMS', true],
    ['SHA256SUMS.base', true],
    ['MD5SUMS', true],
    ['model.sha256', true],
    ['config.json', false],
    ['pytorch_model-00001-of-00003.bin', false],
  ])('%s is a checksum list: %s', (name, expected) => {
    expect(isChecksumListName(name)).toBe(expected);
  });
});

describe('what users read', () => {
  it('rates below 1 kB/s are whole bytes, not 49.156014981508086 B/s', async () => {
    const { formatRate, printable } = await import('../../src/format.js');
    expect(formatRate(49.156014981508086, 1)).toBe('49 B/s');
    expect(printable('a\u001b[2Jb\nc')).toBe('a\\x1b[2Jb\\x0ac');
  });

  it('an unreadable folder is told to be made readable as a folder', async () => {
    const { asReadError } = await import('../../src/errors.js');
    const err = Object.assign(new Error('x'), { code: 'EACCES' });
    expect(asReadError(err, '/d', 'folder').hint).toBe('permission denied; make the folder readable');
    expect(asReadError(err, '/f').hint).toBe('permission denied; make the file readable');
  });
});
