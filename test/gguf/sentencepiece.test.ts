/** tokenizer.model read without SentencePiece, held to what SentencePiece itself said (fixtures/make-gguf.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addedTokensDecoder, addedTokensJson, repeatedToken, vocabulary, type AddedToken } from '../../src/output/gguf-vocabulary.js';
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { isUtf8At, pieceBytes, PIECE_TYPE, readPieceTable, readSentencePiece } from '../../src/release/sentencepiece.js';
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

  it('tells pieces apart among thousands (prefixes, the empty piece, equal lengths) and finds a repeat far from its first', () => {
    // Every string of up to two letters of a-z: prefixes of each other, many of one length.
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const texts = [''];
    for (const a of letters) texts.push(a);
    for (const a of letters) for (const b of letters) texts.push(a + b);
    const many = Buffer.concat(texts.map((t) => piece(t)));
    expect(readPieceTable(many, 't').count).toBe(texts.length);
    for (const again of ['', 'a', 'zz', 'mq']) {
      expect(() => readPieceTable(Buffer.concat([many, piece(again)]), 't')).toThrow(`the piece "${again}" appears twice`);
    }
    // The real tokenizer with one of its pieces (a byte piece, far back) given again at the end.
    expect(() => readPieceTable(Buffer.concat([model, piece('<0x0A>', 6)]), 't')).toThrow('the piece "<0x0A>" appears twice');
  });
  it('keeps every piece, in order, when there are more than its first guess holds (about a piece every 16 bytes)', () => {
    // Every string of up to three letters of a-p, with types 1-6 in turn: 4369 pieces of 9-12 bytes.
    const letters = 'abcdefghijklmnop';
    const texts = [''];
    for (let n = 0; n < 3; n++) for (const t of texts.filter((x) => x.length === n)) for (const c of letters) texts.push(t + c);
    const file = Buffer.concat(texts.map((t, i) => piece(t, 1 + (i % 6))));
    expect(Math.max(1024, file.length >>> 4)).toBeLessThan(texts.length);
    const table = readPieceTable(file, 't');
    expect(table.count).toBe(texts.length);
    expect(table.starts.length).toBe(texts.length);
    expect(texts.filter((t, i) => Buffer.from(pieceBytes(table, i)).toString('utf8') !== t)).toEqual([]);
    expect(Array.from(table.types)).toEqual(texts.map((_, i) => 1 + (i % 6)));
    expect(Array.from(table.scores).every((x) => x === -1)).toBe(true);
    expect(() => readPieceTable(Buffer.concat([file, piece('ab')]), 't')).toThrow('the piece "ab" appears twice');
  });
});

describe('isUtf8At', () => {
  it("says what node:buffer's isUtf8 says: every lead byte with every second byte, cut short or not, and random bytes", () => {
    let checked = 0;
    const wrong: string[] = [];
    const seen = { valid: 0, invalid: 0 };
    for (let lead = 0; lead < 256; lead++) {
      for (let second = 0; second < 256; second++) {
        for (const tail of [[], [0x80], [0x80, 0xbf], [0x41, 0x80], [0xbf, 0xbf, 0x41]]) {
          const b = Buffer.from([0x41, lead, second, ...tail]);
          for (let end = 1; end <= b.length; end++) {
            const want = isUtf8(b.subarray(1, end));
            if (isUtf8At(b, 1, end) !== want) wrong.push(b.subarray(1, end).toString('hex'));
            seen[want ? 'valid' : 'invalid']++;
            checked++;
          }
        }
      }
    }
    for (let i = 0; i < 20000; i++) {
      const b = randomBytes(1 + (i % 12));
      // Mostly continuation bytes and leads, where the rules are.
      for (let k = 0; k < b.length; k++) if (b[k]! < 0x80 && k % 3 !== 0) b[k]! |= 0x80;
      if (isUtf8At(b, 0, b.length) !== isUtf8(b)) wrong.push(b.toString('hex'));
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(1_000_000);
    expect(seen.valid).toBeGreaterThan(10_000);
    expect(seen.invalid).toBeGreaterThan(10_000);
  });
});

/** Tokens added as added_tokens.json adds them: user-defined, score -1000. */
const user = (pairs: [number, string][]): AddedToken[] => pairs.map(([id, text]) => ({ id, text, score: -1000, type: PIECE_TYPE.USER_DEFINED, file: 'added_tokens.json' }));

describe('vocabulary (a GGUF\'s tokens)', () => {
  it('the pieces, then added tokens, then [PADn] up to the vocabulary size; user-defined pieces go in as normal', () => {
    const table = readPieceTable(Buffer.concat([piece('<unk>', 2), piece('é', 1), piece('<x>', 4)]), 't');
    const v = vocabulary(table, user([[3, '<|model|>']]), 6);
    const tokens = Array.from(v.tokens.ends, (end, i) => Buffer.from(v.tokens.bytes.subarray(v.tokens.starts[i], end)).toString('utf8'));
    expect(v.count).toBe(6);
    expect(tokens).toEqual(['<unk>', 'é', '<x>', '<|model|>', '[PAD4]', '[PAD5]']);
    expect(Array.from(v.types)).toEqual([PIECE_TYPE.UNKNOWN, PIECE_TYPE.NORMAL, PIECE_TYPE.NORMAL, PIECE_TYPE.USER_DEFINED, PIECE_TYPE.UNUSED, PIECE_TYPE.UNUSED]);
    expect(Array.from(v.scores)).toEqual([-1, -1, -1, -1000, -10000, -10000]);
    expect(repeatedToken(v)).toBeUndefined();
  });

  it("as convert fills them: an added token at a piece's id replaces it (score -1000, user-defined), one past vocab_size is left out, [PADn] score -10000", () => {
    const table = readPieceTable(Buffer.concat([piece('<unk>', 2), piece('é', 1), piece('<x>', 4)]), 't');
    const v = vocabulary(table, user([[1, '<|user|>'], [4, '<|model|>'], [9, '<|far|>']]), 5);
    const tokens = Array.from(v.tokens.ends, (end, i) => Buffer.from(v.tokens.bytes.subarray(v.tokens.starts[i], end)).toString('utf8'));
    expect(tokens).toEqual(['<unk>', '<|user|>', '<x>', '[PAD3]', '<|model|>']);
    expect(Array.from(v.types)).toEqual([PIECE_TYPE.UNKNOWN, PIECE_TYPE.USER_DEFINED, PIECE_TYPE.NORMAL, PIECE_TYPE.UNUSED, PIECE_TYPE.USER_DEFINED]);
    expect(Array.from(v.scores)).toEqual([-1, -1000, -1, -10000, -1000]);
    expect(v.made).toEqual([1, 3, 4]);
    // A replaced piece's text is free again; the replacing text is held to the other pieces.
    expect(repeatedToken(vocabulary(table, user([[1, 'é']]), 3))).toBeUndefined();
    expect(repeatedToken(vocabulary(table, user([[1, '<x>']]), 3))).toEqual({ id: 1, other: 2, text: '<x>' });
  });

  it('repeatedToken finds an added token or a [PADn] whose text another token has (llama.cpp loads no such GGUF)', () => {
    const table = readPieceTable(Buffer.concat([piece('<unk>', 2), piece('é', 1), piece('[PAD4]', 1), piece('<x>', 4)]), 't');
    // An added token with a piece's text, one with another added token's, and [PAD4] past the pieces: each found.
    expect(repeatedToken(vocabulary(table, user([[4, 'é']]), 6))).toEqual({ id: 4, other: 1, text: 'é' });
    expect(repeatedToken(vocabulary(table, user([[4, 'a'], [5, 'a']]), 6))).toEqual({ id: 5, other: 4, text: 'a' });
    expect(repeatedToken(vocabulary(table, user([[5, '[PAD4]']]), 6))).toEqual({ id: 5, other: 4, text: '[PAD4]' });
    expect(repeatedToken(vocabulary(table, [], 5))).toEqual({ id: 4, other: 2, text: '[PAD4]' });
    // Texts of equal length that differ, and no tokens past the pieces: none.
    expect(repeatedToken(vocabulary(table, user([[4, 'è']]), 6))).toBeUndefined();
    expect(repeatedToken(vocabulary(table, [], 4))).toBeUndefined();
  });
});

describe('added tokens, read as convert_hf_to_gguf reads them', () => {
  const table = readPieceTable(Buffer.concat([piece('<unk>', 2), piece('<s>', 3), piece('</s>', 3), piece('é', 1)]), 't');
  const texts = (v: ReturnType<typeof vocabulary>) => Array.from(v.tokens.ends, (end, i) => Buffer.from(v.tokens.bytes.subarray(v.tokens.starts[i], end)).toString('utf8'));

  it("tokenizer_config.json's added_tokens_decoder after added_tokens.json: special or special-looking ones are control tokens, others user-defined with U+2581 read as a space", () => {
    const json = addedTokensJson({ '<a>': 4, '<b>': 5 }, 'added_tokens.json');
    const decoder = addedTokensDecoder(
      {
        added_tokens_decoder: {
          '0': { content: '<unk>', special: true },
          '5': { content: '<|im_start|>', special: false },
          '6': { content: '\u2581hi\u2581there', special: false },
          ' +7 ': { content: '<mask>' },
          '8': { content: '\u2581x', special: 'yes' },
          '9': { content: 'tail', special: [] },
          '10': { content: '<far>', special: true },
        },
      },
      'tokenizer_config.json',
    );
    const v = vocabulary(table, [...json, ...decoder], 10);
    expect(texts(v)).toEqual(['<unk>', '<s>', '</s>', 'é', '<a>', '<|im_start|>', ' hi there', '<mask>', '\u2581x', 'tail']);
    const { NORMAL, UNKNOWN, CONTROL, USER_DEFINED } = PIECE_TYPE;
    expect(Array.from(v.types)).toEqual([CONTROL, CONTROL, CONTROL, NORMAL, USER_DEFINED, CONTROL, USER_DEFINED, CONTROL, CONTROL, USER_DEFINED]);
    expect(UNKNOWN).not.toBe(CONTROL);
    expect(Array.from(v.scores)).toEqual([-1000, -1, -1, -1, -1000, -1000, -1000, -1000, -1000, -1000]);
    // Token 5 given by both files, and 0 a piece replaced: each once among the made ids.
    expect(v.made).toEqual([0, 4, 5, 6, 7, 8, 9]);
    expect(repeatedToken(v)).toBeUndefined();
    expect(addedTokensDecoder({ bos_token: '<s>' }, 't')).toEqual([]);
  });

  it('refuses what convert cannot read or what two readers could read differently, naming the file', () => {
    const decoder = (d: unknown) => () => addedTokensDecoder({ added_tokens_decoder: d }, '/m/tokenizer_config.json');
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(thrown(decoder([{ content: 'x' }]))).toMatchObject({ file: '/m/tokenizer_config.json', message: 'has an "added_tokens_decoder" that is not an object', exitCode: 2 });
    expect(decoder({ x1: { content: 'x' } })).toThrow(/key "x1", which is no token id/);
    expect(decoder({ '-1': { content: 'x' } })).toThrow(/key "-1", which is no token id/);
    expect(decoder({ '7': { special: true } })).toThrow(/has no text \("content"\) for added token 7/);
    expect(decoder({ '7': 'x' })).toThrow(/has no text/);
    // Python's int() reads both as 7; which wins would depend on key order, kept differently here.
    expect(decoder({ '7': { content: 'a' }, '07': { content: 'b' } })).toThrow(/names token 7 twice/);
    expect(decoder({ '1_0': { content: 'a' } })().map((t) => t.id)).toEqual([10]);
    // JSON can spell a lone surrogate; Python's UTF-8 encoder refuses it where a Buffer writes U+FFFD.
    expect(decoder(JSON.parse('{"5": {"content": "a\\ud800"}}'))).toThrow(/gives added token 5 a text that is not Unicode/);
    expect(() => addedTokensJson(JSON.parse('{"\\udc00x": 5}'), 'added_tokens.json')).toThrow(/gives token 5 a text that is not Unicode/);
    expect(decoder({ '5': { content: 'a\u{1F600}' } })().map((t) => t.text)).toEqual(['a\u{1F600}']);
    expect(thrown(() => addedTokensJson({ a: '4' }, '/m/added_tokens.json'))).toMatchObject({ file: '/m/added_tokens.json', message: 'gives "a" the id "4", which is no token id' });
    expect(() => addedTokensJson({ a: -1 }, 'added_tokens.json')).toThrow(/which is no token id/);
  });
});
