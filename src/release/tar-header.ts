/**
 * Tar headers read exactly as CPython 3.11's tarfile reads them (TarInfo.frombuf, nti, _proc_pax),
 * because torch.load hands a legacy checkpoint to tarfile: the members it finds decide what is
 * unpickled. Where tarfile's reading is hard to follow (pax header charsets, sparse files, chained
 * pax headers) the header is named as such and the caller refuses the file.
 */

export const TAR_BLOCK = 512;

/** str.strip()'s whitespace among ASCII characters. */
const PY_SPACE = /^[ \t\n\r\x0b\x0c\x1c-\x1f]+|[ \t\n\r\x0b\x0c\x1c-\x1f]+$/g;
/** int(text, 8): a sign, an optional 0o prefix, digits with single underscores between them. */
const PY_OCTAL = /^([+-]?)(?:0[oO]_?)?([0-7](?:_?[0-7])*)$/;

/**
 * tarfile's nti(): a number field, GNU base-256 when its first byte is 0x80 or 0xff, else octal text
 * up to the first NUL. Undefined where nti raises (tarfile then takes the block as no header).
 */
export function tarNumber(field: Uint8Array): number | undefined {
  if (field[0] === 0x80 || field[0] === 0xff) {
    let n = 0n;
    for (let i = 1; i < field.length; i++) n = (n << 8n) | BigInt(field[i]!);
    if (field[0] === 0xff) n -= 256n ** BigInt(field.length - 1);
    return Number(n);
  }
  const end = field.indexOf(0);
  const bytes = end < 0 ? field : field.subarray(0, end);
  if (bytes.some((b) => b >= 0x80)) return undefined;
  const text = Buffer.from(bytes).toString('latin1').replace(PY_SPACE, '') || '0';
  const m = PY_OCTAL.exec(text);
  if (!m) return undefined;
  const v = Number.parseInt(m[2]!.replace(/_/g, ''), 8);
  return m[1] === '-' ? -v : v;
}

/** tarfile's nts(): the bytes up to the first NUL (latin1, so that each byte stays one character). */
function tarString(field: Uint8Array): string {
  const end = field.indexOf(0);
  return Buffer.from(end < 0 ? field : field.subarray(0, end)).toString('latin1');
}

export type TarBlock =
  /** All 512 bytes zero: the end of the archive. */
  | { kind: 'end' }
  /** A bad checksum or a number field nti() cannot read: tarfile stops (or, at byte 0, sees no tar). */
  | { kind: 'invalid' }
  | { kind: 'header'; header: TarHeader };

export interface TarHeader {
  /** The member's name as tarfile gives it (prefix joined, directory slashes stripped), before pax. */
  name: string;
  /** The type flag as one character ('0', '\0', '5', 'x', ...); a '\0' whose name ends in '/' is '5'. */
  type: string;
  size: number;
}

/** One 512-byte block, as TarInfo.frombuf reads it. */
export function tarBlock(block: Uint8Array): TarBlock {
  if (block.every((b) => b === 0)) return { kind: 'end' };
  const chksum = tarNumber(block.subarray(148, 156));
  const numbers = [[100, 108], [108, 116], [116, 124], [124, 136], [136, 148], [329, 337], [337, 345]].map(([a, b]) => tarNumber(block.subarray(a, b)));
  if (chksum === undefined || numbers.includes(undefined)) return { kind: 'invalid' };
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < TAR_BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned += block[i]!;
    signed += block[i]! >= 128 ? block[i]! - 256 : block[i]!;
  }
  if (chksum !== unsigned && chksum !== signed) return { kind: 'invalid' };
  let name = tarString(block.subarray(0, 100));
  let type = String.fromCharCode(block[156]!);
  const prefix = tarString(block.subarray(345, 500));
  if (type === '\0' && name.endsWith('/')) type = '5';
  if (type === '5') name = name.replace(/\/+$/, '');
  if (prefix && !'LKS'.includes(type)) name = `${prefix}/${name}`;
  return { kind: 'header', header: { name, type, size: numbers[3]! } };
}

/** Whether Python's tarfile would open the file: its first block is a header. */
export function isTar(head: Uint8Array): boolean {
  return head.length >= TAR_BLOCK && tarBlock(head.subarray(0, TAR_BLOCK)).kind === 'header';
}

/** Blocks a member's data fills (tarfile's _block). */
export function tarPadded(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

/** The bytes of a per-file pax header ('x') longer than this are refused: real ones are tiny. */
export const MAX_PAX_BYTES = 1 << 20;

/**
 * The records of a pax header ('x') as _proc_pax reads them from its padded data, or a string saying
 * why this reading might not be tarfile's: records must tile the stated size exactly and the padding
 * must be NULs (tarfile goes on matching records into the padding), with no charset or sparse keys.
 * Of the keys, only `path` and `size` change what the next member is.
 */
export function paxRecords(padded: Uint8Array, size: number): Map<string, string> | string {
  const text = Buffer.from(padded).toString('latin1');
  if (text.includes('hdrcharset=')) return 'a pax header names a character set';
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < size) {
    const m = /^([1-9][0-9]*) ([^=]+)=/.exec(text.slice(pos, size));
    if (!m) return `a pax header record at byte ${pos} is malformed`;
    const length = Number(m[1]);
    const end = pos + length;
    if (end > size || end - 1 < pos + m[0].length || text[end - 1] !== '\n') return `a pax header record at byte ${pos} is malformed`;
    const key = m[2]!;
    if (key.startsWith('GNU.sparse.')) return 'a pax header describes a sparse file';
    records.set(key, text.slice(pos + m[0].length, end - 1));
    pos = end;
  }
  if (padded.subarray(size).some((b) => b !== 0)) return 'a pax header has bytes after its records';
  return records;
}
