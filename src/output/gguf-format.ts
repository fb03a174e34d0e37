/**
 * The GGUF container, version 3 (shared/reference/gguf.md, section 1): "GGUF", the version, the
 * tensor and key counts, the typed key-value pairs, the tensor infos (dims innermost first, type,
 * offset), zero padding to the alignment, then each tensor's data padded to it. llama.cpp
 * checks value types exactly, so every value says its type.
 */

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
  | { type: 'str[]'; value: readonly string[] }
  | { type: 'f32[]'; value: ArrayLike<number> }
  | { type: 'i32[]'; value: ArrayLike<number> };

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

class Writer {
  private parts: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  typed(array: ArrayLike<number>, bytes: 4, write: (b: Buffer, v: number, at: number) => void): void {
    const b = Buffer.alloc(array.length * bytes);
    for (let i = 0; i < array.length; i++) write(b, array[i]!, i * bytes);
    this.push(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function writeValue(w: Writer, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      w.u32(VALUE_TYPE.u32);
      w.u32(v.value);
      return;
    case 'f32': {
      w.u32(VALUE_TYPE.f32);
      const b = Buffer.alloc(4);
      b.writeFloatLE(v.value);
      w.push(b);
      return;
    }
    case 'bool':
      w.u32(VALUE_TYPE.bool);
      w.push(Buffer.from([v.value ? 1 : 0]));
      return;
    case 'str':
      w.u32(VALUE_TYPE.str);
      w.str(v.value);
      return;
    case 'str[]':
      w.u32(VALUE_TYPE.array);
      w.u32(VALUE_TYPE.str);
      w.u64(v.value.length);
      for (const s of v.value) w.str(s);
      return;
    case 'f32[]':
      w.u32(VALUE_TYPE.array);
      w.u32(VALUE_TYPE.f32);
      w.u64(v.value.length);
      w.typed(v.value, 4, (b, x, at) => b.writeFloatLE(x, at));
      return;
    case 'i32[]':
      w.u32(VALUE_TYPE.array);
      w.u32(VALUE_TYPE.i32);
      w.u64(v.value.length);
      w.typed(v.value, 4, (b, x, at) => b.writeInt32LE(x, at));
  }
}

/** The header up to the data (padded), and each tensor's offset within the data. */
export function ggufHeader(kv: readonly (readonly [string, GgufValue])[], tensors: readonly GgufTensorInfo[]): { header: Buffer; offsets: number[]; dataBytes: number } {
  const keys = new Set<string>();
  const w = new Writer();
  w.push(Buffer.from('GGUF', 'latin1'));
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
  w.push(Buffer.alloc(padTo(w.length)));
  return { header: w.done(), offsets, dataBytes: offset };
}
