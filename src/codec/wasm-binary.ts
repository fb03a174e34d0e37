/**
 * The few pieces of the WebAssembly binary format the hand-assembled kernels need (the XOR kernel,
 * the Q8_0 quantizer): integers in LEB128, sections, names, and a module of one function over an
 * imported memory.
 */

/** Unsigned LEB128. */
export function leb128(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer (i32.const's operand). */
export function sleb128(value: number): number[] {
  const out: number[] = [];
  value |= 0;
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** Value types of locals. */
export const WASM_TYPE = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;

/** A function body's local declarations: `types` in index order, run-length encoded. */
export function localDeclarations(types: readonly number[]): number[] {
  const groups: number[][] = [];
  for (const type of types) {
    const last = groups.at(-1);
    if (last && last[1] === type) last[0]!++;
    else groups.push([1, type]);
  }
  return [...leb128(groups.length), ...groups.flatMap(([count, type]) => [...leb128(count!), type!])];
}

const section = (id: number, bytes: number[]) => [id, ...leb128(bytes.length), ...bytes];
const name = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];

/**
 * A module importing env.memory (`memoryType`: the limits' bytes, e.g. shared or not) and exporting
 * one function `exportName` of type (i32, i32, i32) -> (), whose locals after the parameters have
 * the value types `locals` (in index order) and whose code is `code` (ending with `end`).
 */
export function oneFunctionModule(exportName: string, memoryType: number[], locals: readonly number[], code: number[]): Uint8Array {
  const body = [...localDeclarations(locals), ...code];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00]),
    ...section(2, [0x01, ...name('env'), ...name('memory'), 0x02, ...memoryType]),
    ...section(3, [0x01, 0x00]),
    ...section(7, [0x01, ...name(exportName), 0x00, 0x00]),
    ...section(10, [0x01, ...leb128(body.length), ...body]),
  ]);
}
