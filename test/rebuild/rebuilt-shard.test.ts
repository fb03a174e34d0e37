/**
 * A base rebuilt on the fly: the exact bytes torch 1.13 wrote for a tiny LLaMA saved the 2023 way
 * (fixtures/make-rebuild.py), produced from the same tensors held as a newer conversion holds them
 * (one safetensors file, names sorted, no inv_freq), read in pieces of every size.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hfStateDict, type LlamaDims } from '../../src/rebuild/llama-shapes.js';
import { RebuiltShard } from '../../src/rebuild/rebuilt-shard.js';
import { invFreqBytes } from '../../src/rebuild/inv-freq.js';
import { openLocated } from '../../src/rebuild/located-tensors.js';
import { locateSafetensors, safetensorsFiles } from '../../src/rebuild/safetensors-tensors.js';
import { binFiles, locateTensors } from '../../src/rebuild/torch-zip-tensors.js';
import { shardStateDict } from '../../src/rebuild/shards.js';
import { openRebuilt, planRebuild } from '../../src/rebuild/rebuild-plan.js';
import { readWhole, TORCH } from '../support/helpers.js';

const DIR = join(TORCH, 'rebuild');
const dims = JSON.parse(readFileSync(join(DIR, 'dims.json'), 'utf8')) as LlamaDims & { maxShardBytes: number; shards: number };

async function rebuilt(index: number, piece: number, origin: 'safetensors' | 'bin-resharded' = 'safetensors'): Promise<{ file: string; bytes: Buffer; size: number }> {
  const shards = shardStateDict(hfStateDict(dims), dims.maxShardBytes);
  const shard = shards[index]!;
  const headDim = dims.dim / dims.heads;
  const folder = join(DIR, origin);
  const reader =
    origin === 'safetensors'
      ? await openLocated(folder, await safetensorsFiles(folder), locateSafetensors, invFreqBytes(headDim))
      : await openLocated(folder, await binFiles(folder), locateTensors, invFreqBytes(headDim));
  reader.check(shard.tensors);
  const source = new RebuiltShard(`rebuilt ${shard.file}`, shard.file.replace(/\.bin$/, ''), shard.tensors, reader);
  return { file: shard.file, bytes: await readWhole(source, piece), size: source.size };
}

describe('RebuiltShard', () => {
  it('the shard rule cuts the tiny model where the generator did', () => {
    const shards = shardStateDict(hfStateDict(dims), dims.maxShardBytes);
    expect(shards.map((s) => s.file)).toEqual(Array.from({ length: dims.shards }, (_, i) => `pytorch_model-0000${i + 1}-of-0000${dims.shards}.bin`));
  });

  it.each([61, 4096, 1 << 20])('gives every shard byte for byte as torch.save wrote it, read %i bytes at a time', async (piece) => {
    for (let i = 0; i < dims.shards; i++) {
      const { file, bytes, size } = await rebuilt(i, piece);
      const original = readFileSync(join(DIR, 'hf-2023', file));
      expect(size, file).toBe(original.length);
      expect(bytes.length, file).toBe(original.length);
      expect(bytes.equals(original), file).toBe(true);
    }
  });

  it('gives the same bytes from torch .bin files of another sharding, without inv_freq', async () => {
    for (let i = 0; i < dims.shards; i++) {
      const { file, bytes } = await rebuilt(i, 1 << 20, 'bin-resharded');
      expect(bytes.equals(readFileSync(join(DIR, 'hf-2023', file))), file).toBe(true);
    }
  });

  it('refuses a source whose tensor has another dtype, saying which and why (a bf16 copy lost the fp16 bits)', async () => {
    const reader = await openLocated(join(DIR, 'safetensors'), ['model.safetensors'], locateSafetensors, invFreqBytes(dims.dim / dims.heads));
    try {
      const wanted = hfStateDict(dims).map((t) => (t.name === 'lm_head.weight' ? { ...t, dtype: 'F32' as const } : t));
      expect(() => reader.check(wanted)).toThrow(/holds "lm_head\.weight" as F16 \[96,64\], where the base needs F32 \[96,64\]/);
      expect(() => reader.check([{ name: 'model.extra.weight', dtype: 'F16', shape: [1] }])).toThrow(/has no tensor "model\.extra\.weight"/);
    } finally {
      await reader.close();
    }
  });
});

describe('a base rebuilt from a conversion in torch\'s legacy format', () => {
  async function bytesOf(dir: string): Promise<Buffer> {
    const plan = (await planRebuild(dir))!;
    const input = plan.files.get('pytorch_model.bin')!;
    return readWhole(await openRebuilt('pytorch_model.bin', input), 1 << 12);
  }

  it('gives the same bytes as from the same tensors saved as torch zips (the legacy storages found by their counts)', async () => {
    const legacy = await bytesOf(join(TORCH, 'llama-base-legacy'));
    expect(readFileSync(join(TORCH, 'llama-base-legacy', 'pytorch_model-00001-of-00003.bin')).subarray(0, 2)).toEqual(Buffer.from([0x80, 0x02]));
    expect(legacy.equals(await bytesOf(join(TORCH, 'llama-base')))).toBe(true);
  });
});
