/**
 * The JSON side files a rebuild writes are held to the digests published for the base conversions
 * (shared/reference/published-checksums.md): every file made must match one, by every algorithm
 * published for it, so none of them is a guess.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LLAMA_DIMS } from '../../src/rebuild/llama-shapes.js';
import { BASE_TARGETS, sideFiles, targetOfDims, type BaseTarget } from '../../src/rebuild/side-files.js';
import { findModel, modelEntries } from '../../src/release/models.js';

const everyBase = (Object.keys(BASE_TARGETS) as BaseTarget[]).flatMap((t) => modelEntries(findModel(t)!));

describe('side files of the 2023 base conversions', () => {
  for (const target of Object.keys(BASE_TARGETS) as BaseTarget[]) {
    it(`${target}: each file made matches every digest published for it`, () => {
      const published = modelEntries(findModel(target)!);
      const files = sideFiles(target);
      expect(files.size).toBeGreaterThanOrEqual(3);
      for (const [name, bytes] of files) {
        // A file some base lists without a digest must equal one that another base publishes.
        const own = published.filter((e) => e.name === name);
        const entries = own.length > 0 ? own : everyBase.filter((e) => e.name === name && createHash('sha256').update(bytes).digest('hex') === e.digest);
        expect(entries.length, `${target} ${name} has a published digest`).toBeGreaterThan(0);
        for (const e of entries) expect(createHash(e.algorithm === 'sha256' ? 'sha256' : e.algorithm).update(bytes).digest('hex'), `${name} (${e.source})`).toBe(e.digest);
      }
    });
  }

  it('leaves out what nobody reproduced: the 7B and 13B config.json, and tokenizer.json everywhere', () => {
    expect(sideFiles('llama-13b-hf').has('config.json')).toBe(false);
    for (const t of Object.keys(BASE_TARGETS) as BaseTarget[]) expect(sideFiles(t).has('tokenizer.json')).toBe(false);
  });

  it('knows the base by its dims, and no base for other dims', () => {
    expect(targetOfDims(LLAMA_DIMS['13B'])).toBe('llama-13b-hf');
    expect(targetOfDims(LLAMA_DIMS['30B'])).toBe('llama-30b-hf');
    expect(targetOfDims(LLAMA_DIMS['65B'])).toBeUndefined();
  });
});
