/**
 * End to end (issue 20, item 6): a decoded torch zip's records are checked against their CRC-32 as
 * they stream by; a failed digest then names the tensors whose bytes are wrong, or says that no
 * input was damaged (a CRC of XORed bytes is the XOR of their CRCs, so a consistent base of other
 * bytes passes every record).
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readZipDirectory } from '../../src/release/zip-directory.js';
import { finalNames, jsonDoc, removeDir, runCli, SHARD1, tempDir, TORCH, TORCH_BASE, TORCH_SUMS, TORCH_XOR } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

/** Flips a byte inside storage `key` of SHARD1 in a copy of `from` (an XOR file has the base's layout). */
async function damaged(from: string, key: string): Promise<string> {
  const dir = join(work, 'copy');
  await cp(from, dir, { recursive: true });
  const bytes = await readFile(join(dir, SHARD1));
  const layout = await readFile(join(TORCH_BASE, SHARD1));
  const record = readZipDirectory(layout, 0).records.find((r) => r.name.endsWith(`/data/${key}`))!;
  bytes[record.localOffset + 30 + layout.readUInt16LE(record.localOffset + 26) + layout.readUInt16LE(record.localOffset + 28) + 1]! ^= 0x21;
  await writeFile(join(dir, SHARD1), bytes);
  return dir;
}

const decode = (out: string, xor: string, base: string) => runCli(['decode', out, xor, base, '--manifest', TORCH_SUMS, '--json', '--keep-going']);

describe('per-tensor proof from the records\' CRC-32', () => {
  it('a damaged XOR file: the one tensor whose bytes are wrong is named, and the pattern says a damaged file (exit 1, nothing kept)', async () => {
    const xor = await damaged(TORCH_XOR, '10');
    const out = join(work, 'out');
    const r = await decode(out, xor, TORCH_BASE);
    expect(r.code).toBe(1);
    const failed = jsonDoc(r.stdout).files.find((f) => f.name === SHARD1)!;
    expect(failed.status).toBe('mismatch');
    const tensors = failed.diagnosis.filter((d) => d.code === 'tensors-differ').map((d) => d.message);
    expect(tensors).toEqual([
      `${SHARD1}: model.layers.0.post_attention_layernorm.weight: bytes differ`,
      expect.stringMatching(new RegExp(`^${SHARD1}: only one storage differs \\(bytes \\d+ to \\d+\\): a damaged file, the XOR file or the base at that place$`)),
    ]);
    expect(r.stderr).toMatch(/model\.layers\.0\.post_attention_layernorm\.weight: bytes differ/);
    expect(failed.diagnosis.at(-1)!.message).toMatch(/^cause: /);
    expect(await finalNames(out)).not.toContain(SHARD1);
  });

  it('--safetensors (the zip is never on disk) decodes a failed shard once more and names the same tensor', async () => {
    const xor = await damaged(TORCH_XOR, '10');
    const out = join(work, 'out');
    const r = await runCli(['decode', out, xor, TORCH_BASE, '--manifest', TORCH_SUMS, '--json', '--keep-going', '--safetensors']);
    expect(r.code).toBe(1);
    const failed = jsonDoc(r.stdout).files.find((f) => f.name === SHARD1)!;
    expect(failed.diagnosis.find((d) => d.code === 'tensors-differ')?.message).toBe(`${SHARD1}: model.layers.0.post_attention_layernorm.weight: bytes differ`);
    expect((await finalNames(out)).filter((n) => n.startsWith('model-00001'))).toEqual([]);
  });

  it('--safetensors where the damage breaks the zip itself: the digest decides, a mismatch (exit 1), not a refusal to convert', async () => {
    // Regression: a stream that stopped parsing ended the run as unconvertible before its digest spoke.
    const xor = join(work, 'broken');
    await cp(TORCH_XOR, xor, { recursive: true });
    const bytes = await readFile(join(xor, SHARD1));
    const record = readZipDirectory(await readFile(join(TORCH_BASE, SHARD1)), 0).records.find((r) => r.name.endsWith('/data/10'))!;
    // A byte of the record's name in its local header.
    bytes[record.localOffset + 30 + record.name.length - 1]! ^= 0x08;
    await writeFile(join(xor, SHARD1), bytes);
    const out = join(work, 'out');
    const r = await runCli(['decode', out, xor, TORCH_BASE, '--manifest', TORCH_SUMS, '--json', '--keep-going', '--safetensors']);
    expect(r.code, r.stderr).toBe(1);
    expect(jsonDoc(r.stdout).files.find((f) => f.name === SHARD1)!.status).toBe('mismatch');
    expect(r.stderr).not.toMatch(/cannot be written as safetensors/);
    expect((await finalNames(out)).filter((n) => n.startsWith('model-00001'))).toEqual([]);
  });

  it('--safetensors with a damaged base names the base\'s tensor from the inputs decoded once more', async () => {
    const base = await damaged(TORCH_BASE, '3');
    const r = await runCli(['decode', join(work, 'out'), TORCH_XOR, base, '--manifest', TORCH_SUMS, '--json', '--keep-going', '--safetensors']);
    expect(r.code).toBe(1);
    const failed = jsonDoc(r.stdout).files.find((f) => f.name === SHARD1)!;
    expect(failed.diagnosis.find((d) => d.code === 'tensors-differ')?.message).toMatch(/^pytorch_model-00001-of-00003\.bin: model\.layers\.0\.self_attn\.\w+_proj\.weight: bytes differ$/);
  });

  it('a damaged base file is pinned the same way', async () => {
    const base = await damaged(TORCH_BASE, '3');
    const r = await decode(join(work, 'out'), TORCH_XOR, base);
    expect(r.code).toBe(1);
    const failed = jsonDoc(r.stdout).files.find((f) => f.name === SHARD1)!;
    const named = failed.diagnosis.find((d) => d.code === 'tensors-differ')!.message;
    expect(named).toMatch(/^pytorch_model-00001-of-00003\.bin: model\.layers\.0\.self_attn\.\w+_proj\.weight: bytes differ$/);
  });

  it('a whole base with q/k permuted otherwise passes every record: the diagnosis says no input was damaged', async () => {
    const r = await decode(join(work, 'out'), TORCH_XOR, join(TORCH, 'llama-base-qk'));
    expect(r.code).toBe(1);
    const failed = jsonDoc(r.stdout).files.filter((f) => f.status === 'mismatch');
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) {
      expect(f.diagnosis.find((d) => d.code === 'tensors-differ')?.message).toMatch(
        /every record holds its CRC-32 \(\d+ checked\), so neither input was damaged in transit or on disk: the base is a whole file of the same layout with other bytes \(another conversion, such as another q\/k permutation, or another model\)/,
      );
    }
  });

  it('a verified file says nothing of its records', async () => {
    const r = await decode(join(work, 'out'), TORCH_XOR, TORCH_BASE);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/CRC-32|bytes differ/);
  });
});
