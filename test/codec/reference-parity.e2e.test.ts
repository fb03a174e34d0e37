/**
 * Parity with the reference approach: the same release decoded by a model of xor_codec.py (Python,
 * numpy, 4096-byte blocks) and by metharme-xor must give identical bytes.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HAS_NUMPY, REFERENCE_CODEC, removeDir, runCli, runCommand, seededBytes, tempDir, writeRelease, type ReleaseFile } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});

describe.skipIf(!HAS_NUMPY)('parity with the reference decoder (python3 + numpy)', () => {
  const sizes: [number, number][] = [
    [0, 0],
    [1, 1],
    [7, 3],
    [4095, 4095],
    [4096, 4096],
    [4097, 4097],
    [4097, 1],
    [8193, 4096],
    [1_000_003, 999_999],
    [999_999, 1_000_003],
    [9_437_189, 9_437_189],
  ];

  it('decodes raw payloads to the same bytes', async () => {
    const files: ReleaseFile[] = sizes.map(([n, m], i) => ({ name: `f${i}-${n}-${m}.dat`, fine: seededBytes(n, i + 1), base: seededBytes(m, i + 100) }));
    const root = join(work, 'rel');
    const { baseDir, xorDir, outDir } = await writeRelease(root, files);
    const refOut = join(work, 'ref');
    const ref = await runCommand('python3', [REFERENCE_CODEC, refOut, xorDir, baseDir, '--decode']);
    expect(ref.code).toBe(0);
    const ours = await runCli(['decode', outDir, xorDir, baseDir, '--no-verify']);
    expect(ours.code).toBe(0);
    const names = (await readdir(refOut)).sort();
    expect(names).toHaveLength(sizes.length);
    for (const name of names) {
      const [a, b] = await Promise.all([readFile(join(refOut, name)), readFile(join(outDir, name))]);
      expect(b.equals(a), name).toBe(true);
    }
  });

  it('decodes payloads the reference encoded with --compress to the same bytes as the fine-tuned files', async () => {
    const files: ReleaseFile[] = sizes.map(([n, m], i) => ({ name: `g${i}.dat`, fine: seededBytes(n, i + 7), base: seededBytes(m, i + 70) }));
    const root = join(work, 'rel');
    const { baseDir, manifest } = await writeRelease(root, files);
    // Fine-tuned files -> gzip XOR payloads, made by the reference encoder.
    const fineDir = join(root, 'fine');
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(fineDir);
    for (const f of files) await writeFile(join(fineDir, f.name), f.fine);
    const gzDir = join(root, 'xor-gz');
    const enc = await runCommand('python3', [REFERENCE_CODEC, gzDir, fineDir, baseDir, '--encode', '--compress']);
    expect(enc.code).toBe(0);
    await rm(join(root, 'xor'), { recursive: true });
    const out = join(work, 'out');
    const ours = await runCli(['decode', out, gzDir, baseDir, '--manifest', manifest, '--json']);
    expect(ours.stderr).toBe('');
    expect(ours.code).toBe(0);
    const doc = JSON.parse(ours.stdout);
    expect(doc.files.every((f: { action: string; status: string }) => f.action === 'xor-gzip' && f.status === 'verified')).toBe(true);
  });
});
