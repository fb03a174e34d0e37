/**
 * The base rebuilt from Meta's original files (fixtures/make-meta.py): byte for byte what torch 1.13
 * saved after convert_llama_weights_to_hf.py's steps, from model parallel 1 and 2 (each layer's
 * tensors views into one storage), read in pieces of several sizes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRebuilt, planRebuild } from '../../src/rebuild/rebuild-plan.js';
import { readWhole, TORCH } from '../support/helpers.js';

const DIR = join(TORCH, 'meta');

async function rebuiltFrom(folder: string, piece: number): Promise<Buffer> {
  const plan = (await planRebuild(join(DIR, folder)))!;
  expect(plan.origin.kind).toBe('meta');
  const input = plan.files.get('pytorch_model.bin')!;
  const source = await openRebuilt('pytorch_model.bin', input);
  return readWhole(source, piece);
}

describe('a base rebuilt from Meta\'s original release', () => {
  it.each([
    ['mp1', 4096],
    ['mp2', 4096],
    ['mp2', 333],
    ['mp1', 1 << 20],
    ['mp2', 1 << 20],
    ['mp2', 77],
    ['mp2', 1],
  ])('%s, read %i bytes at a time: byte-exact to the 2023 conversion', async (folder, piece) => {
    const expected = readFileSync(join(DIR, `hf-from-${folder}`, 'pytorch_model.bin'));
    const got = await rebuiltFrom(folder, piece);
    expect(got.length).toBe(expected.length);
    expect(got.equals(expected)).toBe(true);
  });

  it('takes tokenizer.model from beside the size folder, unchanged, as the conversion copies it', async () => {
    const plan = (await planRebuild(join(DIR, 'mp2')))!;
    const t = plan.files.get('tokenizer.model');
    expect(t?.kind === 'bytes' && t.data.equals(readFileSync(join(DIR, 'tokenizer.model')))).toBe(true);
    expect(plan.dims).toEqual({ dim: 64, layers: 2, heads: 4, vocab: 96, intermediate: 256 });
  });
});
