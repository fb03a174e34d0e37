import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTar } from '../../src/release/tar-header.js';
import { StreamTail } from '../../src/release/stream-tail.js';
import { foldName, readZipDirectory, torchArchive, ZipStructureError } from '../../src/release/zip-directory.js';
import { seededBytes, TORCH } from '../support/helpers.js';

const SHARD = readFileSync(join(TORCH, 'llama-base', 'pytorch_model-00001-of-00003.bin'));
const ZIP64 = readFileSync(join(TORCH, 'dtypes', 'zip64', 'pytorch_model-00001-of-00002.bin'));

describe('readZipDirectory', () => {
  it.each([
    ['a torch 1.13 shard', SHARD],
    ['a zip64 archive', ZIP64],
  ])('reads %s as miniz does: data.pkl first, every record stored', (_what, bytes) => {
    const dir = readZipDirectory(bytes, 0);
    const view = torchArchive(dir);
    expect(view.record('data.pkl')).toMatchObject({ localOffset: 0, method: 0 });
    expect(view.record('DATA.PKL')).toBe(view.record('data.pkl'));
    expect(dir.records.every((r) => r.localOffset < dir.start)).toBe(true);
    // From a tail that holds only the directory, at its absolute offset.
    expect(readZipDirectory(bytes.subarray(dir.start), dir.start)).toEqual(dir);
  });

  it('refuses what two readers could read differently, saying what', () => {
    const junk = Buffer.concat([SHARD, Buffer.from('x')]);
    expect(() => readZipDirectory(junk, 0)).toThrow(/end record does not end the file/);
    const dir = readZipDirectory(SHARD, 0);
    expect(() => readZipDirectory(SHARD.subarray(dir.start + 1), dir.start + 1)).toThrow(/larger than the \d+ bytes kept/);
    expect(() => readZipDirectory(Buffer.from('no zip here'), 0)).toThrow(ZipStructureError);
  });

  it('refuses a record name holding a NUL byte (torch lists names as C strings, finds them by their whole names)', () => {
    const dir = readZipDirectory(SHARD, 0);
    const last = dir.records.at(-1)!;
    const named = (name: string) => ({ ...dir, records: [...dir.records.slice(0, -1), { ...last, name }] });
    expect(() => torchArchive(named(`${last.name}\0x`))).toThrow(/has a NUL byte in its name/);
    expect(torchArchive(named(`${last.name}x`)).record(`${last.name.split('/')[1]}x`)).toBeDefined();
  });

  it('folds only ASCII letters, as miniz does', () => {
    expect(foldName('A/DATA.PKL')).toBe('a/data.pkl');
    expect(foldName('É')).toBe('É');
  });
});

describe('StreamTail', () => {
  const bytes = seededBytes(100_000, 3);
  it.each([1, 7, 4096, 100_000])('keeps the last bytes, fed in pieces of %i, with and without the size', (step) => {
    for (const size of [bytes.length, undefined]) {
      const tail = new StreamTail(size, 1000);
      for (let i = 0; i < bytes.length; i += step) tail.push(bytes.subarray(i, i + step));
      const got = tail.bytes()!;
      expect(got.start).toBe(bytes.length - 1000);
      expect(got.data.equals(bytes.subarray(bytes.length - 1000))).toBe(true);
    }
  });
  it('holds a stream shorter than its window whole, and nothing for a stream cut short of its size', () => {
    const tail = new StreamTail(10, 1000);
    tail.push(bytes.subarray(0, 10));
    expect(tail.bytes()).toEqual({ data: bytes.subarray(0, 10), start: 0 });
    const cut = new StreamTail(10, 1000);
    cut.push(bytes.subarray(0, 9));
    expect(cut.bytes()).toBeUndefined();
  });
});

describe('isTar (as Python\'s tarfile opens a file)', () => {
  it('takes a tar, and no checkpoint, pickle or random bytes', () => {
    expect(isTar(readFileSync(join(TORCH, 'hostile', 'pickle', 'legacy-tar.bin')))).toBe(true);
    expect(isTar(readFileSync(join(TORCH, 'llama-base-legacy', 'pytorch_model-00001-of-00003.bin')))).toBe(false);
    expect(isTar(SHARD)).toBe(false);
    expect(isTar(Buffer.alloc(512))).toBe(false);
    expect(isTar(seededBytes(512, 9))).toBe(false);
  });
  it('takes a checksum field written with a sign, a 0o prefix or underscores, as int(x, 8) does', () => {
    const tar = Buffer.from(readFileSync(join(TORCH, 'hostile', 'pickle', 'legacy-tar.bin')).subarray(0, 512));
    const sum = Number.parseInt(tar.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8);
    const digits = sum.toString(8);
    for (const field of [`0o${digits}`, `+${digits}`, `${digits[0]}_${digits.slice(1)}`]) {
      const t = Buffer.from(tar);
      t.fill(0x20, 148, 156);
      t.write(field.padEnd(7, ' ') + '\0', 148, 'latin1');
      // The checksum covers the field as spaces, so only the field's text changes.
      expect(isTar(t), field).toBe(true);
    }
  });
});
