/** LLaMA's tokenizer in TypeScript, held to SentencePiece's own tokenization (fixtures/make-gguf.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSentencePiece } from '../../src/release/sentencepiece.js';
import { SpmTokenizer } from '../../src/release/spm-tokenizer.js';
import { ROOT } from '../support/helpers.js';

const DIR = join(ROOT, 'fixtures', 'gguf');
const reference = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as { tokenized: Record<string, number[]> };

describe('SpmTokenizer', () => {
  const tokenizer = new SpmTokenizer(readSentencePiece(readFileSync(join(DIR, 'float16', 'tokenizer.model')), 'tokenizer.model'));
  for (const [text, ids] of Object.entries(reference.tokenized)) {
    it(`gives SentencePiece's ids for ${JSON.stringify(text)} (byte fallback included)`, () => {
      expect(tokenizer.encode(text)).toEqual(ids);
    });
  }
  it('gives nothing for nothing', () => {
    expect(tokenizer.encode('')).toEqual([]);
  });
});
