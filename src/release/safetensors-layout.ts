/**
 * The tensors of a safetensors header, held to the file as the safetensors library holds them
 * (safetensors' `Metadata::validate` and `read_metadata`): known dtypes, shapes and offsets of whole
 * numbers, each tensor exactly its elements' bytes, and the tensors, in offset order, covering the
 * data section from its first byte to its last without a hole or an overlap. A file that passes is
 * read alike by torch's loader and by this tool; one that does not, torch refuses.
 */

/** The header's most bytes (safetensors' MAX_HEADER_SIZE). */
export const MAX_SAFETENSORS_HEADER = 100_000_000;

/** Bits per element of every dtype the safetensors library knows (its Dtype::bitsize). */
const DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8], ['F8_E5M2', 8], ['F8_E4M3', 8], ['F8_E8M0', 8],
  ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32], ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
]);

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range in the data section. */
  begin: number;
  end: number;
}

/** Why a header is not one the safetensors library reads; the caller names the file. */
export class SafetensorsLayoutError extends Error {}

const RESERVED = '__metadata__';
const LONE_SURROGATE = /\p{Surrogate}/u;

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The tensors of header `json` (in the header's order) over a data section of `dataBytes`; throws
 * SafetensorsLayoutError naming what the library would refuse.
 */
export function safetensorsLayout(json: string, dataBytes: number): SafetensorsTensor[] {
  if (!json.startsWith('{')) throw new SafetensorsLayoutError('its header does not start with {');
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new SafetensorsLayoutError('its header is not JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new SafetensorsLayoutError('its header is not a JSON object');
  const entries = doc as Record<string, unknown>;
  const metadata = entries[RESERVED];
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata) || !Object.values(metadata).every((v) => typeof v === 'string')) {
      throw new SafetensorsLayoutError(`its ${RESERVED} is not a map of strings`);
    }
  }
  // JSON's \u escapes can spell a lone surrogate, which JavaScript keeps and the library's JSON
  // reader (serde_json, into Rust strings) refuses.
  const strings = [...Object.keys(entries), ...(metadata && typeof metadata === 'object' ? [...Object.keys(metadata), ...Object.values(metadata)] : [])];
  const lone = strings.find((v) => LONE_SURROGATE.test(v));
  if (lone !== undefined) throw new SafetensorsLayoutError(`its header holds a string that is not valid Unicode (a lone surrogate): ${JSON.stringify(lone)}`);
  const tensors: SafetensorsTensor[] = [];
  for (const [name, value] of Object.entries(entries)) {
    if (name === RESERVED) continue;
    const t = (value && typeof value === 'object' && !Array.isArray(value) ? value : {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bits = typeof t.dtype === 'string' ? DTYPE_BITS.get(t.dtype) : undefined;
    if (bits === undefined) throw new SafetensorsLayoutError(`tensor "${name}" has no known dtype`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw new SafetensorsLayoutError(`tensor "${name}" has a shape that is not a list of non-negative integers`);
    const offsets = t.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) throw new SafetensorsLayoutError(`tensor "${name}" has bad data offsets`);
    const [begin, end] = offsets as [number, number];
    const numel = (t.shape as number[]).reduce((n, d) => n * d, 1);
    if (!Number.isSafeInteger(numel * bits)) throw new SafetensorsLayoutError(`tensor "${name}" has a shape too large to hold`);
    if ((numel * bits) % 8 !== 0) throw new SafetensorsLayoutError(`tensor "${name}" does not end on a byte`);
    if (end < begin || (numel * bits) / 8 !== end - begin) throw new SafetensorsLayoutError(`tensor "${name}" has ${end - begin} bytes for a shape of ${numel} elements`);
    tensors.push({ name, dtype: t.dtype as string, shape: t.shape as number[], begin, end });
  }
  const ranges = tensors.map((t) => [t.begin, t.end] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [begin, end] of ranges) {
    if (begin !== at) throw new SafetensorsLayoutError(begin > at ? `its data has a hole at byte ${at}` : `two tensors overlap at byte ${begin}`);
    at = end;
  }
  if (at !== dataBytes) throw new SafetensorsLayoutError(`its tensors cover ${at} bytes of a ${dataBytes}-byte data section`);
  return tensors;
}
