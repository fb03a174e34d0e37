import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatManifest, parseManifest } from '../../src/release/manifest.js';
import { detectModelFromPaths, findModel, listModels, modelEntries, modelFileCount, primaryEntries } from '../../src/release/models.js';
import { ROOT } from '../support/helpers.js';

describe('built-in manifests', () => {
  it('has every release and base conversion the project supports', () => {
    expect(listModels().map((m) => `${m.name}:${m.kind}`).sort()).toEqual([
      'llama-13b-hf:base',
      'llama-30b-hf:base',
      'llama-7b-hf:base',
      'metharme-13b:release',
      'metharme-7b:release',
      'oasst-sft-6-llama-30b:release',
      'pygmalion-13b:release',
      'pygmalion-7b:release',
    ]);
  });

  it('holds the metharme-13b model card list verbatim (copied from the seed card into fixtures/)', () => {
    const card = readFileSync(join(ROOT, 'fixtures', 'metharme-13b.model-card.sha256'), 'utf8');
    const model = findModel('metharme-13b')!;
    expect(formatManifest(primaryEntries(model))).toBe(card);
  });

  it('keeps alternative digests, each labelled with where it was published', () => {
    const entries = modelEntries(findModel('metharme-13b')!).filter((e) => e.name === 'config.json');
    expect(entries.map((e) => [e.digest.slice(0, 8), e.source])).toEqual([
      ['be2c2768', expect.stringContaining('model card PygmalionAI/metharme-13b')],
      ['85467905', expect.stringContaining('commit 9e066ba')],
    ]);
    const p7 = modelEntries(findModel('pygmalion-7b')!).filter((e) => e.name === 'tokenizer_config.json');
    expect(p7.map((e) => e.algorithm)).toEqual(['md5', 'md5', 'sha256']);
  });

  it.each([
    ['metharme-13b', 9],
    ['metharme-7b', 9],
    ['pygmalion-13b', 10],
    ['pygmalion-7b', 9],
    ['oasst-sft-6-llama-30b', 14],
    ['llama-7b-hf', 9],
    ['llama-13b-hf', 9],
    ['llama-30b-hf', 14],
  ])('%s lists %i files, and its data parses as a manifest', (name, files) => {
    const model = findModel(name)!;
    expect(modelFileCount(model)).toBe(files);
    for (const source of model.sources) {
      expect(() => parseManifest(source.lines, source.label)).not.toThrow();
    }
  });

  it('names the base conversion of every release', () => {
    for (const m of listModels().filter((m) => m.kind === 'release')) {
      expect(findModel(m.base!)?.kind).toBe('base');
    }
  });
});

describe('recognising a release from paths', () => {
  it.each([
    ['/home/u/metharme-13b/xor_encoded_files', 'metharme-13b'],
    ['/c/hub/models--PygmalionAI--pygmalion-7b/snapshots/abc123/xor_encoded_files', 'pygmalion-7b'],
    ['/d/oasst-sft-6-llama-30b-xor/oasst-sft-6-llama-30b-xor', 'oasst-sft-6-llama-30b'],
    ['/d/Metharme-7B/xor', 'metharme-7b'],
    ['/d/pygmalion-13b/inner/metharme-13b/xor_encoded_files', 'metharme-13b'],
  ])('%s -> %s', (path, name) => {
    expect(detectModelFromPaths([path])?.model.name).toBe(name);
  });

  it.each(['/d/llama-13b-hf', '/d/xor_encoded_files', '/d/my-metharme-130b/x', '/d/metharme-13bx/x'])(
    'recognises nothing in %s (bases and near-misses are not releases)',
    (path) => {
      expect(detectModelFromPaths([path])).toBeUndefined();
    },
  );

  it('accepts a release name followed by a suffix after a separator', () => {
    expect(detectModelFromPaths(['/d/metharme-13b-xor/files'])?.model.name).toBe('metharme-13b');
  });

  it('tries paths in order', () => {
    expect(detectModelFromPaths(['/x/xor', '/y/pygmalion-13b'])?.model.name).toBe('pygmalion-13b');
  });
});
