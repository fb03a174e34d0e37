/**
 * The GGUF header writer against a plain encoding of the same values written here (one Buffer per
 * field, BigInt sizes, as the container's spec lays them out): headers that cross the writer's
 * buffer growth at every kind of field, so that no write lands in a buffer already replaced; and a
 * vocabulary held packed (UTF-8 where it lies, with scores and types in typed arrays) written as
 * the same values.
 * (The first version of the one-buffer writer read its buffer before growing it: a string or number
 * that crossed 64 KiB went into the old buffer.)
 */
import { describe, expect, it } from 'vitest';
import { GGML_TYPE, GGUF_ALIGNMENT, ggufHeader, padTo, type GgufTensorInfo, type GgufValue } from '../../src/output/gguf-format.js';

const u32 = (v: number) => Buffer.from(new Uint32Array([v]).buffer);
const u64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);
const TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, str: 8, array: 9 };

function plainValue(v: GgufValue): Buffer {
  switch (v.type) {
    case 'u32':
      return Buffer.concat([u32(TYPE.u32), u32(v.value)]);
    case 'f32':
      return Buffer.concat([u32(TYPE.f32), Buffer.from(new Float32Array([v.value]).buffer)]);
    case 'bool':
      return Buffer.concat([u32(TYPE.bool), Buffer.from([v.value ? 1 : 0])]);
    case 'str':
      return Buffer.concat([u32(TYPE.str), str(v.value)]);
    case 'str[]':
      if (!Array.isArray(v.value)) throw new Error('the plain encoding takes strings');
      return Buffer.concat([u32(TYPE.array), u32(TYPE.str), u64(v.value.length), ...(v.value as string[]).map(str)]);
    case 'f32[]':
      return Buffer.concat([u32(TYPE.array), u32(TYPE.f32), u64(v.value.length), Buffer.from(Float32Array.from(v.value).buffer)]);
    case 'i32[]':
      return Buffer.concat([u32(TYPE.array), u32(TYPE.i32), u64(v.value.length), Buffer.from(Int32Array.from(v.value).buffer)]);
  }
}

function plainHeader(kv: [string, GgufValue][], tensors: GgufTensorInfo[]): Buffer {
  const parts: Buffer[] = [Buffer.from('GGUF'), u32(3), u64(tensors.length), u64(kv.length)];
  for (const [k, v] of kv) parts.push(str(k), plainValue(v));
  let offset = 0;
  for (const t of tensors) {
    parts.push(str(t.name), u32(t.ne.length), ...t.ne.map(u64), u32(t.type), u64(offset));
    offset += t.bytes + padTo(t.bytes);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, Buffer.alloc(padTo(body.length))]);
}

describe('GGUF header', () => {
  it('equals a plain encoding, for headers whose fields fall across each buffer growth (0..40 bytes shifted)', () => {
    const tensors: GgufTensorInfo[] = [
      { name: 'token_embd.weight', ne: [64, 100], type: GGML_TYPE.F16, bytes: 12800 },
      { name: 'output_norm.weight', ne: [64], type: GGML_TYPE.F32, bytes: 256 },
    ];
    for (let shift = 0; shift <= 40; shift++) {
      const tokens = Array.from({ length: 9000 }, (_, i) => `▁tok${i}${'é'.repeat(i % 3)}`);
      const kv: [string, GgufValue][] = [
        ['general.name', { type: 'str', value: 'x'.repeat(shift) }],
        ['tokenizer.ggml.tokens', { type: 'str[]', value: tokens }],
        ['tokenizer.ggml.scores', { type: 'f32[]', value: tokens.map((_, i) => -i / 7) }],
        ['tokenizer.ggml.token_type', { type: 'i32[]', value: tokens.map((_, i) => (i % 7) - 1) }],
      ];
      // Small fields, many of them, past the first growths.
      for (let i = 0; i < 3000; i++) {
        const kind = i % 4;
        kv.push([`k.${i}`, kind === 0 ? { type: 'u32', value: i * 2654435761 % 2 ** 32 } : kind === 1 ? { type: 'f32', value: i / 3 } : kind === 2 ? { type: 'bool', value: i % 8 === 2 } : { type: 'str', value: 'v'.repeat(i % 11) }]);
      }
      const { header, offsets } = ggufHeader(kv, tensors);
      const want = plainHeader(kv, tensors);
      // The same tokens packed (UTF-8 where they lie, other bytes between, found by their starts and
      // ends), scores and types in typed arrays, as a vocabulary is held.
      const encoded = tokens.flatMap((t, i) => [Buffer.from('#'.repeat(i % 4)), Buffer.from(t, 'utf8')]);
      const starts = new Uint32Array(tokens.length);
      const ends = new Uint32Array(tokens.length);
      for (let i = 0, at = 0; i < tokens.length; i++) {
        starts[i] = at += encoded[2 * i]!.length;
        ends[i] = at += encoded[2 * i + 1]!.length;
      }
      const packed = { bytes: Buffer.concat(encoded), starts, ends };
      const typed: Record<string, GgufValue> = {
        'tokenizer.ggml.tokens': { type: 'str[]', value: packed },
        'tokenizer.ggml.scores': { type: 'f32[]', value: Float32Array.from(tokens, (_, i) => -i / 7) },
        'tokenizer.ggml.token_type': { type: 'i32[]', value: Int32Array.from(tokens, (_, i) => (i % 7) - 1) },
      };
      const packedKv = kv.map(([k, v]): [string, GgufValue] => [k, typed[k] ?? v]);
      expect(ggufHeader(packedKv, tensors).header.equals(want), `packed, shifted by ${shift}`).toBe(true);
      expect(header.length).toBeGreaterThan(4 * 65536);
      expect(header.length % GGUF_ALIGNMENT).toBe(0);
      expect(header.equals(want), `shifted by ${shift}`).toBe(true);
      expect(offsets).toEqual([0, 12800 + padTo(12800)]);
    }
  });
});
