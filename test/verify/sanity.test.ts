import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeBase, baseCandidates, baseAlgorithmsFor } from '../../src/verify/diagnose.js';
import { isLfsPointer } from '../../src/plan/lfs.js';
import { isChecksumListName } from '../../src/plan/inputs.js';
import { checkDecodedHead } from '../../src/verify/sanity.js';
import { removeDir, tempDir } from '../support/helpers.js';

describe('fail-fast checks on decoded bytes', () => {
  const zip = Buffer.from('PK\u0003\u0004rest of a zip');
  it('accepts a zip or a legacy pickle as a .bin checkpoint', () => {
    expect(checkDecodedHead('pytorch_model-00001-of-00002.bin', zip, 1000)).toBeUndefined();
    expect(checkDecodedHead('old.bin', Buffer.from([0x80, 0x02, 0x8a, 0x0a]), 1000)).toBeUndefined();
  });

  it('rejects a .bin whose first bytes are not a checkpoint (one flipped bit is enough)', () => {
    const bad = Buffer.from(zip);
    bad[1] ^= 0x01;
    expect(checkDecodedHead('pytorch_model-00001-of-00002.bin', bad, 1000)?.code).toBe('not-a-checkpoint');
  });

  it('checks safetensors header length and JSON', () => {
    const header = Buffer.from('{"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}');
    const good = Buffer.concat([Buffer.alloc(8), header, Buffer.alloc(2)]);
    good.writeBigUInt64LE(BigInt(header.length));
    expect(checkDecodedHead('model.safetensors', good, good.length)).toBeUndefined();
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(10n ** 12n);
    expect(checkDecodedHead('model.safetensors', huge, huge.length)?.code).toBe('invalid-safetensors');
    const notJson = Buffer.from(good);
    notJson[9] = 0x00;
    expect(checkDecodedHead('model.safetensors', notJson, notJson.length)?.code).toBe('invalid-safetensors');
    expect(checkDecodedHead('model.safetensors', Buffer.from([1, 2, 3]), 3)?.code).toBe('invalid-safetensors');
  });

  it('parses a decoded .json when the whole file is in hand', () => {
    expect(checkDecodedHead('config.json', Buffer.from('{"a": 1}'), 8)).toBeUndefined();
    expect(checkDecodedHead('config.json', Buffer.from('{"a": \u0001}'), 8)?.code).toBe('invalid-json');
    // Only part of a large JSON file: nothing to conclude yet.
    expect(checkDecodedHead('tokenizer.json', Buffer.from('{"a": '), 1_000_000)).toBeUndefined();
  });

  it('has nothing to say about other files or empty ones', () => {
    expect(checkDecodedHead('tokenizer.model', Buffer.from([1, 2, 3]), 3)).toBeUndefined();
    expect(checkDecodedHead('x.bin', Buffer.alloc(0), 0)).toBeUndefined();
  });
});

describe('judging a base file against the published conversions', () => {
  const published13 = 'dd20cdee2637408c6ab88c13f5c27d153bacd0e99f2d55f6a66fbd0269944436';
  const file = { name: 'pytorch_model-00001-of-00003.bin', basePath: '/m/llama-13b/pytorch_model-00001-of-00003.bin' };

  it('says the XOR file or manifest is at fault when the base is the published one', () => {
    const d = judgeBase(file, { sha256: published13 }, 'llama-13b-hf');
    expect(d?.code).toBe('base-is-published');
    expect(d?.message).toMatch(/matches the published llama-13b-hf conversion, so the XOR file or the manifest is at fault/);
  });

  it('says the base was probably converted with another transformers version otherwise', () => {
    const d = judgeBase(file, { sha256: 'ab'.repeat(32) }, 'llama-13b-hf');
    expect(d?.code).toBe('base-not-published');
    expect(d?.message).toMatch(/is not the published llama-13b-hf conversion; it was probably converted with another transformers version/);
  });

  it('names the pinned conversion for the 30B base', () => {
    const d = judgeBase({ name: 'config.json', basePath: '/b/config.json' }, { md5: '0'.repeat(32) }, 'llama-30b-hf');
    expect(d?.message).toMatch(/transformers commit d04ec99bec8a0b432fc03ed60cea9a1a20ebaf3c/);
  });

  it('without a known release, tries every base conversion listing the file', () => {
    expect(baseCandidates('tokenizer.model', undefined).map((c) => c.model.name)).toEqual(['llama-7b-hf', 'llama-13b-hf', 'llama-30b-hf']);
    expect(baseAlgorithmsFor('tokenizer.model', undefined).sort()).toEqual(['md5', 'sha256']);
    expect(judgeBase({ name: 'tokenizer.model', basePath: '/b' }, { md5: 'eeec4125e9c7560836b4873b6f8e3025' }, undefined)?.code).toBe('base-is-published');
    expect(judgeBase({ name: 'not-in-any-list.bin', basePath: '/b' }, {}, undefined)).toBeUndefined();
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
