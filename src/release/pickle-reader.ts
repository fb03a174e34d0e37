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

export const MARK: unique symbol = Symbol('mark');
export type Slot = Value | typeof MARK;
export const OTHER: Value = { t: 'other' };

/** Every opcode byte of pickle protocols 0-5. */
const OPCODES = new Set(Buffer.from('28292e303132424346474a4b4c4d4e50515253545556585d616263646567686a696c6f707172737475497d808182838485868788898a8b8c8d8e8f909192939495969798', 'hex'));

export function isPickleOpcode(byte: number): boolean {
  return OPCODES.has(byte);
}

export class PickleError extends Error {
  /**
   * The globals the pickle referenced before it broke: CPython has imported and applied them by
   * then, so a pickle that breaks after its payload is judged by them (set by the walker).
   */
  globalsBefore: { ref: string; ops: string[] }[] = [];
}
/** The bytes ended before the pickle's STOP: feed more. */
export class PickleIncomplete extends PickleError {}

/**
 * A decimal argument on a text line (INT, LONG, PUT, GET). CPython's int() also takes `1_0`, `+1`,
 * spaces and (for INT) `0x..`; INT reads `010` as octal 8 and `-0` as False, LONG refuses `010`;
 * JavaScript's Number() differs again (`0x..`, `1e3`, ``): two readers that disagree on a memo key
 * or a shape see different pickles. Every real pickler writes plain decimals without a leading
 * zero, so anything else is refused.
 */
export function decimalLine(line: string, what: string): number | undefined {
  if (!/^(0|-?[1-9][0-9]*)$/.test(line)) throw new PickleError(`${what} has the argument ${JSON.stringify(line.slice(0, 40))}, which is not a plain decimal`);
  const v = Number(line);
  return Number.isSafeInteger(v) ? v : undefined;
}

/** A memo key on a text line (PUT, GET): canonical (no sign, no leading zero) as well as decimal. */
export function memoKeyLine(line: string, what: string): number {
  const v = decimalLine(line, what);
  if (v === undefined || v < 0 || String(v) !== line) throw new PickleError(`${what} has the memo key ${JSON.stringify(line.slice(0, 40))}, which is not canonical`);
  return v;
}

export class Reader {
  pos: number;
  /** Where the last FRAME ends (see frame()); -1 before the first. */
  private frameEnd = -1;
  constructor(
    private readonly bytes: Uint8Array,
    start: number,
  ) {
    this.pos = start;
  }

  /**
   * A FRAME of `length` bytes begins after its opcode (at `at`). CPython's C unpickler reads a frame
   * into its buffer in one read; a later read that runs past the frame's end drops the frame's bytes
   * left in the buffer and reads on from the file after the frame (a file without peek(), such as
   * the BytesIO torch reads data.pkl from), where this reader would go on from the same byte: a
   * name or memo key read across a frame's end is another name or key to Python. So is a FRAME
   * inside a frame, and a STOP before its frame's end leaves the file after the frame for the next
   * pickle. The pure-Python unpickler refuses such pickles and no pickler writes them: all are
   * refused here.
   */
  frame(length: number, at: number): void {
    if (at < this.frameEnd) throw new PickleError(`FRAME at byte ${at} begins inside the frame that ends at byte ${this.frameEnd}, which CPython reads differently from its documented format`);
    this.frameEnd = this.pos + length;
  }

  /** A STOP just read: it must end its frame, if it is in one. */
  stopped(at: number): void {
    if (this.pos < this.frameEnd) throw new PickleError(`STOP at byte ${at} ends the pickle before its FRAME ends at byte ${this.frameEnd}, where CPython would read the next pickle from`);
  }

  private crossing(start: number): PickleError {
    return new PickleError(`the argument read at byte ${start} runs past the end of its FRAME at byte ${this.frameEnd}; CPython reads other bytes there`);
  }

  need(n: number): void {
    if (this.pos < this.frameEnd && this.pos + n > this.frameEnd) throw this.crossing(this.pos);
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
    const end = start < this.frameEnd ? this.frameEnd : Infinity;
    for (;;) {
      if (this.pos === end) throw this.crossing(start);
      this.need(1);
      if (this.bytes[this.pos++] === 0x0a) return Buffer.from(this.bytes.subarray(start, this.pos - 1)).toString('latin1');
    }
  }
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

