/** tokenizer.model read without SentencePiece, held to what SentencePiece itself said (fixtures/make-gguf.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIECE_TYPE, readSentencePiece } from '../../src/release/sentencepiece.js';
import { ROOT } from '../support/helpers.js';

const DIR = join(ROOT, 'fixtures', 'gguf');
const reference = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as { pieces: string[]; scores: number[] };
const model = readFileSync(join(DIR, 'bfloat16', 'tokenizer.model'));

describe('readSentencePiece', () => {
  it("gives every piece and score SentencePiece gives, in id order, with LLaMA's types", () => {
    const pieces = readSentencePiece(model, 'tokenizer.model');
    expect(pieces.map((p) => p.piece)).toEqual(reference.pieces);
    expect(pieces.map((p) => p.score)).toEqual(reference.scores.map((s) => Math.fround(s)));
    expect(pieces.slice(0, 4).map((p) => p.type)).toEqual([PIECE_TYPE.UNKNOWN, PIECE_TYPE.CONTROL, PIECE_TYPE.CONTROL, PIECE_TYPE.BYTE]);
    expect(pieces[13]).toEqual({ piece: '<0x0A>', score: 0, type: PIECE_TYPE.BYTE });
    expect(pieces.slice(3, 259).every((p) => p.type === PIECE_TYPE.BYTE)).toBe(true);
    expect(pieces.slice(259).every((p) => p.type === PIECE_TYPE.NORMAL)).toBe(true);
  });

  it('refuses what does not parse, naming the file (exit 2)', () => {
    expect(() => readSentencePiece(model.subarray(0, 1000), '/x/tokenizer.model')).toThrow(/is not a SentencePiece model: a field runs past its end/);
    expect(() => readSentencePiece(Buffer.from('{"model": "json"}'), '/x/tokenizer.model')).toThrow(/is not a SentencePiece model/);
    expect(() => readSentencePiece(Buffer.alloc(0), 't')).toThrow(/holds no pieces/);
  });
});
