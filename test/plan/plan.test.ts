import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { planDecode } from '../../src/plan/plan.js';
import { removeDir, seededBytes, sha256, tempDir } from '../support/helpers.js';

let root: string;
let xorDir: string;
let baseDir: string;
beforeEach(async () => {
  root = await tempDir();
  xorDir = join(root, 'xor');
  baseDir = join(root, 'base');
  await mkdir(xorDir);
  await mkdir(baseDir);
});
afterEach(() => removeDir(root));

async function put(dir: string, name: string, data: string | Buffer) {
  await writeFile(join(dir, name), data);
}

describe('planDecode', () => {
  it('orders files smallest first and chooses xor, xor-gzip or copy for each', async () => {
    await put(xorDir, 'big.bin', seededBytes(3000, 1));
    await put(baseDir, 'big.bin', seededBytes(3000, 2));
    await put(xorDir, 'config.json', '{"plain": true}');
    await put(baseDir, 'config.json', '{"base": 1}');
    await put(xorDir, 'gz.bin', gzipSync(seededBytes(100, 3)));
    await put(baseDir, 'gz.bin', seededBytes(100, 4));
    await put(xorDir, 'added_tokens.json', '{"<x>": 1}');
    const plan = await planDecode({ outputDir: join(root, 'out'), xorDir, baseDir });
    expect(plan.files.map((f) => [f.name, f.action])).toEqual([
      ['added_tokens.json', 'copy'],
      ['config.json', 'copy'],
      ['gz.bin', 'xor-gzip'],
      ['big.bin', 'xor'],
    ]);
    expect(plan.files.find((f) => f.name === 'added_tokens.json')!.basePath).toBeUndefined();
    expect(plan.expectations).toBeUndefined();
  });

  it('ignores hidden files and checksum lists, and takes the shipped SHA256SUMS as the manifest', async () => {
    const payload = seededBytes(64, 5);
    await put(xorDir, 'a.bin', payload);
    await put(baseDir, 'a.bin', seededBytes(64, 6));
    await put(xorDir, '.gitattributes', '*.bin filter=lfs');
    await put(xorDir, 'SHA256SUMS', `${sha256(payload)}  a.bin\n${sha256(payload)}  gone.bin\n`);
    const plan = await planDecode({ outputDir: join(root, 'out'), xorDir, baseDir });
    expect(plan.files.map((f) => f.name)).toEqual(['a.bin']);
    expect(plan.ignored).toEqual(['.gitattributes', 'SHA256SUMS']);
    expect(plan.expectations?.how).toBe('xor-folder');
    expect(plan.missing).toEqual(['gone.bin']);
  });

  it('refuses a non-JSON payload without a base counterpart, naming it', async () => {
    await put(xorDir, 'lonely.bin', seededBytes(10, 1));
    const err = await planDecode({ outputDir: join(root, 'out'), xorDir, baseDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).file).toBe(join(xorDir, 'lonely.bin'));
  });

  it('refuses git-lfs pointers before anything is decoded, counting them', async () => {
    const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:' + 'a'.repeat(64) + '\nsize 123\n';
    await put(xorDir, 'a.bin', pointer);
    await put(xorDir, 'b.bin', pointer);
    await put(baseDir, 'a.bin', seededBytes(200, 1));
    await put(baseDir, 'b.bin', seededBytes(200, 1));
    await expect(planDecode({ outputDir: join(root, 'out'), xorDir, baseDir })).rejects.toThrow(/git-lfs pointer file.*\(and 1 more/);
  });

  it.each([
    ['the XOR folder', () => xorDir],
    ['inside the base folder', () => join(baseDir, 'sub')],
  ])('refuses an output folder that is %s', async (_what, out) => {
    await expect(planDecode({ outputDir: out(), xorDir, baseDir })).rejects.toThrow(/output folder is (the same as|inside) the/);
  });

  it('refuses a broken symlink among the payloads (an interrupted download)', async () => {
    await symlink(join(root, 'nowhere'), join(xorDir, 'x.bin'));
    await expect(planDecode({ outputDir: join(root, 'out'), xorDir, baseDir })).rejects.toThrow(/broken symbolic link/);
  });
});
