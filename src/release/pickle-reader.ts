/** Reading a pickle's bytes: opcode arguments, lengths and lines, with errors that say what went wrong. */
/** A symbolic value: what the pickle would build, without building it. */
export type Value =
  | { t: 'str'; v: string }
  | { t: 'int'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'none' }
  | { t: 'other' }
  | { t: 'tuple'; items: Value[] }
  | { t: 'list'; items: Value[] }
  | { t: 'dict'; items: [Value, Value][] }
  | { t: 'global'; ref: string }
  | { t: 'call'; fn: Value; args: Value; items: [Value, Value][] }
  | { t: 'persid'; id: Value };

export class PickleError extends Error {}
/** The bytes ended before the pickle's STOP: feed more. */
export class PickleIncomplete extends PickleError {}

export class Reader {
  pos: number;
  constructor(
    private readonly bytes: Uint8Array,
    start: number,
  ) {
    this.pos = start;
  }
  need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new PickleIncomplete('the pickle continues past the bytes at hand');
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }
  le(n: number): number {
    this.need(n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.bytes[this.pos + i]!;
    this.pos += n;
    if (n === 4 && v >= 2 ** 31) v -= 2 ** 32; // BININT is signed
    return v;
  }
  size(n: number): number {
    this.need(n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.bytes[this.pos + i]!;
    this.pos += n;
    if (!Number.isSafeInteger(v)) throw new PickleError('a length field is too large');
    return v;
  }
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  line(): string {
    const start = this.pos;
    for (;;) {
      this.need(1);
      if (this.bytes[this.pos++] === 0x0a) return Buffer.from(this.bytes.subarray(start, this.pos - 1)).toString('latin1');
    }
  }
}

export function text(bytes: Uint8Array): Value {
  return { t: 'str', v: Buffer.from(bytes).toString('utf8') };
}

/** Signed little-endian two's complement (LONG1/LONG4); large values are not needed, only small ones. */
export function longValue(bytes: Uint8Array): Value {
  if (bytes.length === 0) return { t: 'int', v: 0 };
  if (bytes.length > 6) return { t: 'other' };
  let v = 0;
  for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
  if (bytes[bytes.length - 1]! & 0x80) v -= 2 ** (8 * bytes.length);
  return { t: 'int', v };
}

