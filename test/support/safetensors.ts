/** Reading a safetensors file back in tests, and comparing its tensors with what torch.load gave. */
import { expect } from 'vitest';
import { sha256 } from './helpers.js';

/** Parses a safetensors file: the header, and each tensor's bytes. */
export function parseSafetensors(file: Buffer) {
  const length = Number(file.readBigUInt64LE(0));
  const json = file.subarray(8, 8 + length).toString('utf8');
  const header = JSON.parse(json) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> };
  const data = file.subarray(8 + length);
  const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
  return { length, json, metadata: header.__metadata__, tensors, data };
}

const TORCH_DTYPE: Record<string, string> = { 'torch.float16': 'F16', 'torch.bfloat16': 'BF16', 'torch.float32': 'F32' };

export function expectSameTensors(file: Buffer, expected: Record<string, { dtype: string; shape: number[]; sha256: string }>) {
  const st = parseSafetensors(file);
  expect(st.length % 8).toBe(0);
  expect(st.metadata).toEqual({ format: 'pt' });
  // Contiguous, without holes or overlaps, covering the data section exactly.
  const ranges = st.tensors.map(([, t]) => t.data_offsets).sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [b, e] of ranges) {
    expect(b).toBe(at);
    at = e;
  }
  expect(at).toBe(st.data.length);
  expect(Object.fromEntries(st.tensors.map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, sha256: sha256(st.data.subarray(t.data_offsets[0], t.data_offsets[1])) }]))).toEqual(
    Object.fromEntries(Object.entries(expected).map(([k, t]) => [k, { dtype: TORCH_DTYPE[t.dtype], shape: t.shape, sha256: t.sha256 }])),
  );
}

