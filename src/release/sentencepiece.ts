/**
 * A SentencePiece `tokenizer.model` read without SentencePiece: the ModelProto's pieces (field 1),
 * each a piece string (1), score (2, a float) and type (3, NORMAL when absent), from
 * sentencepiece_model.proto (shared/reference/gguf.md, 2.2). Only what a GGUF needs is kept; the
 * other fields are skipped by their wire types. Anything that does not parse is refused, naming why.
 */
import { InputError } from '../errors.js';

/** sentencepiece's ModelProto.SentencePiece.Type, which GGUF's token types equal. */
export const PIECE_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface Piece {
  piece: string;
  score: number;
  type: number;
}

class Reader {
  at = 0;
  constructor(
    readonly b: Uint8Array,
    readonly end = b.length,
  ) {}

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.end) throw new Error('it ends inside a number');
      const byte = this.b[this.at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw new Error('a number is out of range');
        return value;
      }
      scale *= 128;
    }
    throw new Error('a number is longer than 10 bytes');
  }

  /** A length-delimited field's bounds. */
  span(): { start: number; end: number } {
    const length = this.varint();
    const start = this.at;
    if (start + length > this.end) throw new Error('a field runs past its end');
    this.at = start + length;
    return { start, end: start + length };
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.span();
    else if (wire === 5) this.advance(4);
    else throw new Error(`wire type ${wire} is not one protobuf uses here`);
  }

  advance(n: number): void {
    if (this.at + n > this.end) throw new Error('a field runs past its end');
    this.at += n;
  }
}

/** One decoder for every piece: a vocabulary has tens of thousands of them. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function readPiece(b: Uint8Array, start: number, end: number): Piece {
  const r = new Reader(b, end);
  r.at = start;
  let piece: string | undefined;
  let score = 0;
  let type: number = PIECE_TYPE.NORMAL;
  while (r.at < end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) {
      const s = r.span();
      piece = UTF8.decode(b.subarray(s.start, s.end));
    } else if (field === 2 && wire === 5) {
      score = new DataView(b.buffer, b.byteOffset + r.at, 4).getFloat32(0, true);
      r.advance(4);
    } else if (field === 3 && wire === 0) {
      type = r.varint();
      if (type < 1 || type > 6) throw new Error(`a piece has type ${type}, which sentencepiece does not define`);
    } else r.skip(wire);
  }
  if (piece === undefined) throw new Error('a piece has no text');
  return { piece, score, type };
}

/** The pieces of a tokenizer.model, in id order. */
export function readSentencePiece(bytes: Uint8Array, path: string): Piece[] {
  const pieces: Piece[] = [];
  try {
    const r = new Reader(bytes);
    while (r.at < bytes.length) {
      const key = r.varint();
      if (key >> 3 === 1 && (key & 7) === 2) {
        const s = r.span();
        pieces.push(readPiece(bytes, s.start, s.end));
      } else r.skip(key & 7);
    }
    if (pieces.length === 0) throw new Error('it holds no pieces');
    const seen = new Set<string>();
    for (const p of pieces) {
      if (seen.has(p.piece)) throw new Error(`the piece "${p.piece}" appears twice`);
      seen.add(p.piece);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`is not a SentencePiece model: ${(err as Error).message}`, { file: path, hint: "use the tokenizer.model of the model's release (or of LLaMA)" });
  }
  return pieces;
}
