/**
 * The safetensors header: built from a Map (a tensor named `__proto__` is a name like any other, and
 * none may be `__metadata__`), and read back strictly before the file gets its final name, as the
 * safetensors library would read it (release/safetensors-layout.ts), every name once.
 */
import { safetensorsLayout, SafetensorsLayoutError } from '../release/safetensors-layout.js';

/** Element sizes of the dtypes this tool writes. */
export const DTYPE_BYTES: ReadonlyMap<string, number> = new Map([
  ['F16', 2], ['BF16', 2], ['F32', 4], ['F64', 8], ['I64', 8], ['I32', 4], ['I16', 2], ['I8', 1], ['U8', 1], ['BOOL', 1],
]);

export interface HeaderTensor {
  name: string;
  dtype: string;
  shape: readonly number[];
  /** Byte range in the data section. */
  begin: number;
  end: number;
}

export class HeaderProblem extends Error {}

const RESERVED = '__metadata__';

/** The 8-byte length and the JSON, padded with spaces to a multiple of 8. */
export function buildHeader(tensors: readonly HeaderTensor[], metadata: ReadonlyMap<string, string>): Buffer {
  const entries = new Map<string, string>();
  entries.set(RESERVED, `{${[...metadata].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  for (const t of tensors) {
    if (t.name === RESERVED) throw new HeaderProblem(`a tensor is named ${RESERVED}, which safetensors reserves for metadata`);
    if (entries.has(t.name)) throw new HeaderProblem(`the tensor name "${t.name}" appears twice`);
    entries.set(t.name, JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] }));
  }
  let json = `{${[...entries].map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const bytes = Buffer.alloc(8 + Buffer.byteLength(json));
  bytes.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  bytes.write(json, 8, 'utf8');
  return bytes;
}

/**
 * Reads a finished header back; throws HeaderProblem when a reader could take it differently than
 * meant. `dataBytes`: the size of the data section that follows; `count`: the tensors meant.
 */
export function checkHeader(bytes: Buffer, dataBytes: number, count: number): void {
  const length = Number(bytes.readBigUInt64LE(0));
  if (length + 8 !== bytes.length || length % 8 !== 0) throw new HeaderProblem('its header length does not match the header');
  let tensors;
  try {
    tensors = safetensorsLayout(bytes.toString('utf8', 8), dataBytes);
  } catch (err) {
    if (err instanceof SafetensorsLayoutError) throw new HeaderProblem(err.message);
    throw err;
  }
  // JSON.parse keeps the last of two equal keys: a count that fell shows a name written twice.
  if (tensors.length !== count) throw new HeaderProblem(`its header names ${tensors.length} tensors, ${count} were written`);
}
