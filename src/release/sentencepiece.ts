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
    /** Where the message being read ends (a piece's, within the file). */
    public end = b.length,
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

  /** A length-delimited field: its start (the reader moves to its end). */
  span(): number {
    const length = this.varint();
    const start = this.at;
    if (start + length > this.end) throw new Error('a field runs past its end');
    this.at = start + length;
    return start;
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

/** One piece's fields into row `i` of the table being filled, by a reader at its start. */
function readPiece(r: Reader, view: DataView, table: PieceTable, i: number): void {
  const b = r.b;
  let start = -1;
  let end = 0;
  let score = 0;
  let type: number = PIECE_TYPE.NORMAL;
  while (r.at < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) {
      start = r.span();
      end = r.at;
      if (!isUtf8At(b, start, end)) throw new Error('a piece is not UTF-8');
    } else if (field === 2 && wire === 5) {
      r.advance(4);
      score = view.getFloat32(r.at - 4, true);
    } else if (field === 3 && wire === 0) {
      type = r.varint();
      if (type < 1 || type > 6) throw new Error(`a piece has type ${type}, which sentencepiece does not define`);
    } else r.skip(wire);
  }
  if (start < 0) throw new Error('a piece has no text');
  table.starts[i] = start;
  table.ends[i] = end;
  table.scores[i] = score;
  table.types[i] = type;
}

/**
 * Whether bytes [start, end) are UTF-8 by the Unicode rules (no overlong forms, surrogates or code
 * points past U+10FFFF), as node:buffer's isUtf8 says, read in place: a view a piece for isUtf8 was
 * a third of reading LLaMA's tokenizer, whose pieces mostly start with U+2581.
 */
export function isUtf8At(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; ) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return false;
    if (i + more >= end) return false;
    const second = b[i + 1]!;
    if (second < lo || second > hi) return false;
    for (let k = 2; k <= more; k++) if ((b[i + k]! & 0xc0) !== 0x80) return false;
    i += more + 1;
  }
  return true;
}

/** Whether pieces x and y are the same bytes, read in place. */
function samePiece(t: PieceTable, x: number, y: number): boolean {
  const a = t.starts[x]!;
  const b = t.starts[y]!;
  const n = t.ends[x]! - a;
  if (t.ends[y]! - b !== n) return false;
  for (let i = 0; i < n; i++) if (t.text[a + i] !== t.text[b + i]) return false;
  return true;
}

/**
 * A piece that appears twice, or undefined: an open-addressed table of ids by the FNV-1a hash of
 * their bytes. Sorting the ids for it (a comparison of bytes at every step) took 40-60 ms of a
 * GGUF's start for LLaMA's 32000 pieces, while the other core waited.
 */
function repeatedPiece(t: PieceTable): number | undefined {
  let size = 1;
  while (size < 2 * t.count) size *= 2;
  const slots = new Int32Array(size).fill(-1);
  // Each slot's hash beside it: pieces are compared only when their hashes are equal.
  const hashes = new Int32Array(size);
  for (let id = 0; id < t.count; id++) {
    // An int32 from the start, as Math.imul gives and the table holds: the empty piece keeps it.
    let h = 0x811c9dc5 | 0;
    for (let i = t.starts[id]!; i < t.ends[id]!; i++) h = Math.imul(h ^ t.text[i]!, 0x01000193);
    for (let slot = h & (size - 1); ; slot = (slot + 1) & (size - 1)) {
      const other = slots[slot]!;
      if (other === -1) {
        slots[slot] = id;
        hashes[slot] = h;
        break;
      }
      if (hashes[slot] === h && samePiece(t, other, id)) return id;
    }
  }
  return undefined;
}

/** A table with room for `rows` pieces (its count is what was read into it). */
const emptyTable = (text: Uint8Array, rows: number): PieceTable => ({ count: 0, text, starts: new Uint32Array(rows), ends: new Uint32Array(rows), scores: new Float32Array(rows), types: new Uint8Array(rows) });

/** `t` copied into a table of `rows` rows. */
function grown(t: PieceTable, rows: number): PieceTable {
  const g = emptyTable(t.text, rows);
  g.starts.set(t.starts);
  g.ends.set(t.ends);
  g.scores.set(t.scores);
  g.types.set(t.types);
  return g;
}

/** Piece i's bytes. */
export const pieceBytes = (t: PieceTable, i: number): Uint8Array => t.text.subarray(t.starts[i], t.ends[i]);

/** The pieces of a tokenizer.model, in id order, as a table. */
export function readPieceTable(bytes: Uint8Array, path: string): PieceTable {
  try {
    // Tables rather than an array or object a piece, grown as pieces come: counting them in a pass
    // of their own cost a GGUF's start 5-8 ms, its code run once and cold. LLaMA's pieces take about
    // 20 bytes each; the first guess holds them.
    let table = emptyTable(bytes, Math.max(1024, bytes.length >>> 4));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const r = new Reader(bytes);
    const field = new Reader(bytes);
    let count = 0;
    while (r.at < bytes.length) {
      const key = r.varint();
      if (key >> 3 === 1 && (key & 7) === 2) {
        const start = r.span();
        field.at = start;
        field.end = r.at;
        if (count === table.starts.length) table = grown(table, 2 * count);
        readPiece(field, view, table, count++);
      } else r.skip(key & 7);
    }
    if (count === 0) throw new Error('it holds no pieces');
    table = { count, text: bytes, starts: table.starts.subarray(0, count), ends: table.ends.subarray(0, count), scores: table.scores.subarray(0, count), types: table.types.subarray(0, count) };
    const twice = repeatedPiece(table);
    if (twice !== undefined) throw new Error(`the piece "${UTF8.decode(pieceBytes(table, twice))}" appears twice`);
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
