/**
 * The text arguments of pickle opcodes, decoded as CPython's unpickler decodes them with the
 * `encoding='utf-8'` torch.load passes it. A tensor's name or a global's that this reader decoded
 * otherwise would be another name to torch, so every decoding here is CPython's, refusals included.
 */
import { PickleError } from './pickle-reader.js';

const STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * UTF-8 as Python's codec reads it: strict, a BOM kept as a character; with `surrogatePass` (what
 * BINUNICODE uses) an encoded surrogate (ED A0-BF 80-BF) is the surrogate, not an error.
 */
export function utf8(bytes: Uint8Array, what: string, surrogatePass: boolean): string {
  try {
    return STRICT.decode(bytes);
  } catch {
    if (!surrogatePass) throw new PickleError(`${what} is not UTF-8`);
  }
  // 0xED is always a lead byte, so splitting at it cuts no other sequence.
  let out = '';
  let from = 0;
  for (let i = 0; i + 2 < bytes.length; i++) {
    const b1 = bytes[i + 1]!;
    const b2 = bytes[i + 2]!;
    if (bytes[i] !== 0xed || b1 < 0xa0 || b1 > 0xbf || (b2 & 0xc0) !== 0x80) continue;
    out += utf8(bytes.subarray(from, i), what, false) + String.fromCharCode(0xd000 | ((b1 & 0x3f) << 6) | (b2 & 0x3f));
    from = i + 3;
    i += 2;
  }
  return out + utf8(bytes.subarray(from), what, false);
}

/** UNICODE's argument (a line read as latin-1): Python's raw-unicode-escape. */
export function rawUnicodeEscape(line: string, what: string): string {
  let out = '';
  let i = 0;
  while (i < line.length) {
    if (line[i] !== '\\') {
      out += line[i++];
      continue;
    }
    let j = i;
    while (line[j] === '\\') j++;
    const kind = line[j];
    // \u and \U are escapes only after an odd run of backslashes; every other backslash is itself.
    if ((j - i) % 2 === 0 || (kind !== 'u' && kind !== 'U')) {
      out += line.slice(i, j);
      i = j;
      continue;
    }
    out += line.slice(i, j - 1);
    const digits = line.slice(j + 1, j + 1 + (kind === 'u' ? 4 : 8));
    if (!/^[0-9A-Fa-f]+$/.test(digits) || digits.length !== (kind === 'u' ? 4 : 8)) throw new PickleError(`${what} has a truncated \\${kind} escape`);
    const code = parseInt(digits, 16);
    if (code > 0x10ffff) throw new PickleError(`${what} has a \\U escape out of range`);
    out += String.fromCodePoint(code);
    i = j + 1 + digits.length;
  }
  return out;
}

const SIMPLE_ESCAPES: Record<string, number> = { '\\': 0x5c, "'": 0x27, '"': 0x22, b: 0x08, f: 0x0c, t: 0x09, n: 0x0a, r: 0x0d, v: 0x0b, a: 0x07 };

/**
 * STRING's argument (a line read as latin-1): quoted, its escapes decoded as Python's bytes literals
 * decode them (an unknown escape keeps its backslash, an octal escape above 0o377 keeps its low
 * byte), then UTF-8.
 */
export function quotedString(line: string, what: string): string {
  const quote = line[0];
  if (line.length < 2 || (quote !== "'" && quote !== '"') || line[line.length - 1] !== quote) throw new PickleError(`${what} is not quoted`);
  const body = line.slice(1, -1);
  const out: number[] = [];
  for (let i = 0; i < body.length; ) {
    const c = body[i++]!;
    if (c !== '\\') {
      out.push(c.charCodeAt(0));
      continue;
    }
    if (i === body.length) throw new PickleError(`${what} ends in a backslash`);
    const e = body[i++]!;
    if (e in SIMPLE_ESCAPES) out.push(SIMPLE_ESCAPES[e]!);
    else if (e >= '0' && e <= '7') {
      let v = e.charCodeAt(0) - 48;
      for (let k = 0; k < 2 && i < body.length && body[i]! >= '0' && body[i]! <= '7'; k++) v = v * 8 + body.charCodeAt(i++) - 48;
      out.push(v & 0xff);
    } else if (e === 'x') {
      const hex = body.slice(i, i + 2);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new PickleError(`${what} has an invalid \\x escape`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(0x5c, e.charCodeAt(0));
  }
  return utf8(Uint8Array.from(out), what, false);
}
