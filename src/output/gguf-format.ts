/**
 * The GGUF container, version 3 (shared/reference/gguf.md, section 1): "GGUF", the version, the
 * tensor and key counts, the typed key-value pairs, the tensor infos (dims innermost first, type,
 * offset), zero padding to the alignment, then each tensor's data padded to it. llama.cpp
 * checks value types exactly, so every value says its type.
 */
import { endianness } from 'node:os';

/**
 * The data alignment, written as general.alignment: a page rather than the default 32, so that every
 * tensor (and each shard's run of them) starts where direct writes can begin; it costs under a page
 * a tensor.
 */
export const GGUF_ALIGNMENT = 4096;

/** ggml tensor types this writer makes. */
export const GGML_TYPE = { F32: 0, F16: 1, Q5_0: 6, Q8_0: 8, Q4_K: 12, Q6_K: 14, BF16: 30 } as const;
export type GgmlType = (typeof GGML_TYPE)[keyof typeof GGML_TYPE];

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'str'; value: string }
  | { type: 'str[]'; value: readonly string[] | PackedStrings }
  | { type: 'f32[]'; value: ArrayLike<number> }
  | { type: 'i32[]'; value: ArrayLike<number> };

/** Strings as UTF-8 bytes where they lie: string i is bytes[starts[i], ends[i]). */
export interface PackedStrings {
  bytes: Uint8Array;
  starts: Uint32Array;
  ends: Uint32Array;
}

export interface GgufTensorInfo {
  name: string;
  /** The torch shape reversed: the innermost, contiguous dimension first. */
  ne: number[];
  type: GgmlType;
  /** The data's size before padding. */
  bytes: number;
}

const VALUE_TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, str: 8, array: 9 } as const;

export const padTo = (n: number, alignment = GGUF_ALIGNMENT) => (alignment - (n % alignment)) % alignment;

/**
 * The header's bytes, written into one buffer grown as needed: a vocabulary is tens of thousands of
 * strings, and a buffer each made enough garbage to grow the young generation by tens of MB.
 */
class Writer {
  private buf = Buffer.alloc(64 << 10);
  length = 0;

  /** Where the next `n` bytes go; the buffer may be replaced, so callers read `this.buf` after it. */
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const grown = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  /**
   * Strings held packed, each as its u64 length and its bytes, in one loop: a vocabulary's 32000
   * tokens through u64() and a copy each took 20 ms of a GGUF's start, its code run once and cold.
   */
  packed(list: PackedStrings): void {
    const { bytes, starts, ends } = list;
    let total = 8 * ends.length;
    for (let i = 0; i < ends.length; i++) total += ends[i]! - starts[i]!;
    let at = this.room(total);
    const buf = this.buf;
    for (let i = 0; i < ends.length; i++) {
      const start = starts[i]!;
      const end = ends[i]!;
      const n = end - start;
      buf[at] = n & 0xff;
      buf[at + 1] = (n >>> 8) & 0xff;
      buf[at + 2] = (n >>> 16) & 0xff;
      buf[at + 3] = n >>> 24;
      buf[at + 4] = buf[at + 5] = buf[at + 6] = buf[at + 7] = 0;
      at += 8;
      for (let k = start; k < end; k++) buf[at++] = bytes[k]!;
    }
  }
  u8(v: number): void {
    const at = this.room(1);
    this.buf.writeUInt8(v, at);
  }
  u32(v: number): void {
    const at = this.room(4);
    this.buf.writeUInt32LE(v, at);
  }
  f32(v: number): void {
    const at = this.room(4);
    this.buf.writeFloatLE(v, at);
  }
  u64(v: number): void {
    // Sizes and offsets stay below 2^53: two 32-bit halves, without a BigInt each.
    const at = this.room(8);
    this.buf.writeUInt32LE(v % 2 ** 32, at);
    this.buf.writeUInt32LE(Math.floor(v / 2 ** 32), at + 4);
  }
  str(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    const at = this.room(n);
    this.buf.write(s, at, n, 'utf8');
  }
  done(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** GGUF is little-endian: where this machine is too, a typed array's bytes are the values as GGUF writes them. */
const LITTLE_ENDIAN = endianness() === 'LE';
const bytesOf = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function writeValue(w: Writer, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      w.u32(VALUE_TYPE.u32);
      w.u32(v.value);
      return;
    case 'f32':
      w.u32(VALUE_TYPE.f32);
      w.f32(v.value);
      return;
    case 'bool':
      w.u32(VALUE_TYPE.bool);
      w.u8(v.value ? 1 : 0);
      return;
    case 'str':
      w.u32(VALUE_TYPE.str);
      w.str(v.value);
      return;
    case 'str[]': {
      w.u32(VALUE_TYPE.array);
      w.u32(VALUE_TYPE.str);
      const list = v.value;
      if ('ends' in list) {
        w.u64(list.ends.length);
        w.packed(list);
        return;
      }
      w.u64(list.length);
      for (const s of list) w.str(s);
      return;
    }
    case 'f32[]':
      w.u32(VALUE_TYPE.array);
      w.u32(VALUE_TYPE.f32);
      w.u64(v.value.length);
      if (v.value instanceof Float32Array && LITTLE_ENDIAN) w.bytes(bytesOf(v.value));
      else for (let i = 0; i < v.value.length; i++) w.f32(v.value[i]!);
      return;
    case 'i32[]':
      w.u32(VALUE_TYPE.array);
      w.u32(VALUE_TYPE.i32);
      w.u64(v.value.length);
      if (v.value instanceof Int32Array && LITTLE_ENDIAN) w.bytes(bytesOf(v.value));
      // Two's complement: an i32's bytes are its u32's.
      else for (let i = 0; i < v.value.length; i++) w.u32(v.value[i]! >>> 0);
  }
}

/** The header up to the data (padded), and each tensor's offset within the data. */
export function ggufHeader(kv: readonly (readonly [string, GgufValue])[], tensors: readonly GgufTensorInfo[]): { header: Buffer; offsets: number[]; dataBytes: number } {
  const keys = new Set<string>();
  const w = new Writer();
  w.bytes(Buffer.from('GGUF', 'latin1'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const [key, value] of kv) {
    if (!key || keys.has(key)) throw new Error(`GGUF key "${key}" is empty or repeated`);
    keys.add(key);
    w.str(key);
    writeValue(w, value);
  }
  const offsets: number[] = [];
  let offset = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    // ggml refuses names of 64 bytes or more, and names seen twice.
    if (Buffer.byteLength(t.name) >= 64 || names.has(t.name)) throw new Error(`GGUF tensor name "${t.name}" is too long or repeated`);
    names.add(t.name);
    w.str(t.name);
    w.u32(t.ne.length);
    for (const n of t.ne) w.u64(n);
    w.u32(t.type);
    w.u64(offset);
    offsets.push(offset);
    offset += t.bytes + padTo(t.bytes);
  }
  w.bytes(new Uint8Array(padTo(w.length)));
  return { header: w.done(), offsets, dataBytes: offset };
}
