/**
 * A SentencePiece `tokenizer.model` read without SentencePiece: the ModelProto's pieces (field 1),
 * each a piece string (1), score (2, a float) and type (3, NORMAL when absent), from
 * sentencepiece_model.proto (shared/reference/gguf.md, 2.2). Only what a GGUF needs is kept; the
 * other fields are skipped by their wire types. Anything that does not parse is refused, naming why.
 */
import { isUtf8 } from 'node:buffer';
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

/**
 * The pieces of a tokenizer.model without a JavaScript string or object each: their UTF-8 bytes
 * where they lie in the file, scores and types in typed arrays. A GGUF's vocabulary is built from
 * this; tens of thousands of small objects that live through the decode's first collections made
 * the main thread's young generation grow by 12 MB.
 */
export interface PieceTable {
  readonly count: number;
  /** The file's bytes; piece i is text[starts[i], ends[i]). */
  readonly text: Uint8Array;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly scores: Float32Array;
  readonly types: Uint8Array;
}

/** One piece's fields into row `i` of the table being filled. */
function readPiece(b: Uint8Array, view: DataView, start: number, end: number, table: PieceTable, i: number): void {
  const r = new Reader(b, end);
  r.at = start;
  let text: { start: number; end: number } | undefined;
  let score = 0;
  let type: number = PIECE_TYPE.NORMAL;
  while (r.at < end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) {
      text = r.span();
      if (!isUtf8(b.subarray(text.start, text.end))) throw new Error('a piece is not UTF-8');
    } else if (field === 2 && wire === 5) {
      r.advance(4);
      score = view.getFloat32(r.at - 4, true);
    } else if (field === 3 && wire === 0) {
      type = r.varint();
      if (type < 1 || type > 6) throw new Error(`a piece has type ${type}, which sentencepiece does not define`);
    } else r.skip(wire);
  }
  if (text === undefined) throw new Error('a piece has no text');
  table.starts[i] = text.start;
  table.ends[i] = text.end;
  table.scores[i] = score;
  table.types[i] = type;
}

/** Pieces x and y in byte order, read in place: a view each made half a million objects for a sort. */
function comparePieces(t: PieceTable, x: number, y: number): number {
  const a = t.starts[x]!;
  const b = t.starts[y]!;
  const n = Math.min(t.ends[x]! - a, t.ends[y]! - b);
  for (let i = 0; i < n; i++) {
    const d = t.text[a + i]! - t.text[b + i]!;
    if (d !== 0) return d;
  }
  return t.ends[x]! - a - (t.ends[y]! - b);
}

/** Piece i's bytes. */
export const pieceBytes = (t: PieceTable, i: number): Uint8Array => t.text.subarray(t.starts[i], t.ends[i]);

/** The pieces of a tokenizer.model, in id order, as a table. */
export function readPieceTable(bytes: Uint8Array, path: string): PieceTable {
  try {
    const spans: number[] = [];
    const r = new Reader(bytes);
    while (r.at < bytes.length) {
      const key = r.varint();
      if (key >> 3 === 1 && (key & 7) === 2) {
        const s = r.span();
        spans.push(s.start, s.end);
      } else r.skip(key & 7);
    }
    const count = spans.length / 2;
    if (count === 0) throw new Error('it holds no pieces');
    const table: PieceTable = { count, text: bytes, starts: new Uint32Array(count), ends: new Uint32Array(count), scores: new Float32Array(count), types: new Uint8Array(count) };
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) readPiece(bytes, view, spans[2 * i]!, spans[2 * i + 1]!, table, i);
    // A piece twice: found as neighbours once the pieces are in byte order.
    const order = Uint32Array.from({ length: count }, (_, i) => i).sort((x, y) => comparePieces(table, x, y));
    for (let k = 1; k < count; k++) {
      if (comparePieces(table, order[k - 1]!, order[k]!) === 0) throw new Error(`the piece "${UTF8.decode(pieceBytes(table, order[k]!))}" appears twice`);
    }
    return table;
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`is not a SentencePiece model: ${(err as Error).message}`, { file: path, hint: "use the tokenizer.model of the model's release (or of LLaMA)" });
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The pieces of a tokenizer.model, in id order. */
export function readSentencePiece(bytes: Uint8Array, path: string): Piece[] {
  const t = readPieceTable(bytes, path);
  return Array.from({ length: t.count }, (_, i) => ({ piece: UTF8.decode(pieceBytes(t, i)), score: t.scores[i]!, type: t.types[i]! }));
}
