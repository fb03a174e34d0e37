/** tokenizer.model read without SentencePiece, held to what SentencePiece itself said (fixtures/make-gguf.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vocabulary } from '../../src/output/gguf-llama.js';
import { pieceBytes, PIECE_TYPE, readPieceTable, readSentencePiece } from '../../src/release/sentencepiece.js';
import { ROOT } from '../support/helpers.js';

const DIR = join(ROOT, 'fixtures', 'gguf');
const reference = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as { pieces: string[]; scores: number[] };
const model = readFileSync(join(DIR, 'bfloat16', 'tokenizer.model'));

/** One ModelProto piece (field 1): its text (1), score -1 (2, a float) and type (3). */
function piece(text: string | Buffer, type = 1): Buffer {
  const t = Buffer.from(text);
  const body = Buffer.concat([Buffer.from([0x0a, t.length]), t, Buffer.from([0x15, 0, 0, 0x80, 0xbf, 0x18, type])]);
  return Buffer.concat([Buffer.from([0x0a, body.length]), body]);
}

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

  it('the piece table holds the same pieces as bytes, scores and types in typed arrays', () => {
    const table = readPieceTable(model, 'tokenizer.model');
    const pieces = readSentencePiece(model, 'tokenizer.model');
    expect(table.count).toBe(pieces.length);
    pieces.forEach((p, i) => {
      expect(Buffer.from(pieceBytes(table, i)).toString('utf8')).toBe(p.piece);
      expect(table.scores[i]).toBe(p.score);
      expect(table.types[i]).toBe(p.type);
    });
  });

  it('refuses a piece given twice and a piece that is not UTF-8, naming the file', () => {
    const ok = Buffer.concat([piece('a'), piece('b'), piece('ab')]);
    expect(readPieceTable(ok, 't').count).toBe(3);
    expect(() => readPieceTable(Buffer.concat([ok, piece('b')]), '/x/tokenizer.model')).toThrow(/is not a SentencePiece model: the piece "b" appears twice/);
    expect(() => readPieceTable(Buffer.concat([ok, piece(Buffer.from([0xc3, 0x28]))]), '/x/tokenizer.model')).toThrow(/is not a SentencePiece model: a piece is not UTF-8/);
  });
});

describe('vocabulary (a GGUF\'s tokens)', () => {
  it('the pieces, then added tokens, then [PADn] up to the vocabulary size; user-defined pieces go in as normal', () => {
    const table = readPieceTable(Buffer.concat([piece('<unk>', 2), piece('é', 1), piece('<x>', 4)]), 't');
    const v = vocabulary(table, new Map([[3, '<|model|>']]), 6);
    let start = 0;
    const tokens = Array.from(v.tokens.ends, (end) => Buffer.from(v.tokens.bytes.subarray(start, (start = end))).toString('utf8'));
    expect(v.count).toBe(6);
    expect(tokens).toEqual(['<unk>', 'é', '<x>', '<|model|>', '[PAD4]', '[PAD5]']);
    expect(Array.from(v.types)).toEqual([PIECE_TYPE.UNKNOWN, PIECE_TYPE.NORMAL, PIECE_TYPE.NORMAL, PIECE_TYPE.USER_DEFINED, PIECE_TYPE.UNUSED, PIECE_TYPE.UNUSED]);
    expect(Array.from(v.scores)).toEqual([-1, -1, -1, -1000, -1000, -1000]);
  });
});
