/**
 * Checksum manifests: parsing the formats users paste from model cards, and printing them back.
 * The algorithm is implied by the digest length (32 hex = MD5, 64 hex = SHA-256).
 */
import { InputError } from '../errors.js';

import type { Algorithm } from '../types.js';

export interface ManifestEntry {
  /** Relative file name as written in the manifest (leading "./" removed). */
  name: string;
  algorithm: Algorithm;
  /** Lower-case hex. */
  digest: string;
  /** Where this digest was published (built-in manifests) or which line it came from. */
  source: string;
}

export interface Manifest {
  /** Shown to users: a built-in model name or the manifest file's path. */
  label: string;
  entries: ManifestEntry[];
}

/** A manifest larger than this is not a checksum list; refusing it avoids reading a shard by mistake. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const HEX = /^[0-9a-fA-F]+$/;
// GNU coreutils / rhash: "<hex>  <name>", "<hex> *<name>", and sloppy "<hex> <name>". A leading
// backslash marks a name with escapes. The name runs to the end of the line, spaces included.
const GNU_LINE = /^(\\?)([0-9a-fA-F]+) (?: |\*)?(.+)$/s;
// BSD / coreutils --tag: "SHA256 (<name>) = <hex>", escaped the same way.
const BSD_LINE = /^(\\?)(SHA256|SHA-256|MD5)\s?\((.+)\)\s?=\s?([0-9a-fA-F]+)$/is;

export function algorithmForDigest(hex: string): Algorithm | undefined {
  if (!HEX.test(hex)) return undefined;
  if (hex.length === 32) return 'md5';
  if (hex.length === 64) return 'sha256';
  return undefined;
}

/**
 * A manifest name must stay inside the folder it describes: no absolute paths, no "..", no NUL.
 * Returns the normalised name or a reason it is refused.
 */
export function checkManifestName(raw: string): { name: string } | { refused: string } {
  let name = raw;
  while (name.startsWith('./')) name = name.slice(2);
  if (name.length === 0) return { refused: 'empty file name' };
  if (name.includes('\0')) return { refused: 'file name contains a NUL byte' };
  // Backslashes count as separators here too: a manifest made on Windows must not escape either.
  if (/^([\\/]|[A-Za-z]:[\\/])/.test(name)) return { refused: `absolute path "${raw}"` };
  if (name.split(/[\\/]/).some((part) => part === '..')) return { refused: `path with ".." ("${raw}")` };
  return { name };
}

function unescapeName(name: string): string {
  // coreutils escapes "\", newline and (since 9.2) carriage return in names, marking such lines with a leading backslash.
  return name.replace(/\\(\\|n|r)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : '\\'));
}

/**
 * Parses manifest text. Throws InputError (exit 2) naming the file and line for anything it cannot
 * read as a checksum line, for unsafe names, and for one name given two different digests.
 */
export function parseManifest(text: string, label: string): Manifest {
  if (text.includes('\0')) {
    throw new InputError('is a binary file, not a checksum list', {
      file: label,
      hint: 'pass a text file with lines like "<sha256>  <file name>"',
    });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const entries: ManifestEntry[] = [];
  const seen = new Map<string, { digest: string; line: number }>();
  // Only CRLF/LF end a line; a name keeps its spaces (sha256sum writes names exactly), and a lone
  // carriage return inside a name is written escaped by coreutils.
  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const lineNo = index + 1;
    // Leading white space is skipped, as sha256sum -c does.
    const line = rawLine.replace(/^[ \t]+/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    let rawName: string;
    let digest: string;
    let declared: Algorithm | undefined;
    const bsd = BSD_LINE.exec(line);
    const gnu = bsd ? null : GNU_LINE.exec(line);
    if (bsd) {
      declared = bsd[2]!.toLowerCase().startsWith('md5') ? 'md5' : 'sha256';
      rawName = bsd[1] ? unescapeName(bsd[3]!) : bsd[3]!;
      digest = bsd[4]!;
    } else if (gnu) {
      digest = gnu[2]!;
      rawName = gnu[1] ? unescapeName(gnu[3]!) : gnu[3]!;
    } else {
      throw new InputError(`line ${lineNo} is not a checksum line`, {
        file: label,
        hint: 'expected "<hex>  <name>", "<hex> *<name>" or "SHA256 (<name>) = <hex>"',
      });
    }
    const algorithm = algorithmForDigest(digest);
    if (!algorithm) {
      throw new InputError(`line ${lineNo}: "${digest.slice(0, 80)}" is not an MD5 (32 hex) or SHA-256 (64 hex) digest`, {
        file: label,
        hint: 'fix or remove that line',
      });
    }
    if (declared && declared !== algorithm) {
      throw new InputError(`line ${lineNo}: a ${declared.toUpperCase()} line carries a ${digest.length}-digit digest`, {
        file: label,
        hint: 'fix or remove that line',
      });
    }
    const checked = checkManifestName(rawName);
    if ('refused' in checked) {
      throw new InputError(`line ${lineNo}: refusing ${checked.refused}`, {
        file: label,
        hint: 'manifest names must be relative to the folder they describe',
      });
    }
    const lower = digest.toLowerCase();
    const key = `${algorithm}:${checked.name}`;
    const previous = seen.get(key);
    if (previous) {
      if (previous.digest !== lower) {
        throw new InputError(
          `"${checked.name}" has two different ${algorithm.toUpperCase()} digests (lines ${previous.line} and ${lineNo})`,
          { file: label, hint: 'keep only the digest that belongs to the release you are decoding' },
        );
      }
      return;
    }
    seen.set(key, { digest: lower, line: lineNo });
    entries.push({ name: checked.name, algorithm, digest: lower, source: `${label}:${lineNo}` });
  });
  if (entries.length === 0) {
    throw new InputError('contains no checksum lines', {
      file: label,
      hint: 'expected lines like "<sha256>  <file name>" (sha256sum, rhash) or "SHA256 (<name>) = <hex>"',
    });
  }
  return { label, entries };
}

/** Prints entries in coreutils format ("<hex>  <name>"), which sha256sum -c / md5sum -c accept. */
export function formatManifest(entries: readonly ManifestEntry[]): string {
  return entries
    .map((e) => {
      // As coreutils writes them: a name with a backslash, newline or carriage return is escaped, the line marked.
      const escaped = e.name.replace(/[\\\n\r]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\'));
      return `${escaped === e.name ? '' : '\\'}${e.digest}  ${escaped}\n`;
    })
    .join('');
}

/** Groups entries by file name, keeping every published alternative. */
export function entriesByName(entries: readonly ManifestEntry[]): Map<string, ManifestEntry[]> {
  const map = new Map<string, ManifestEntry[]>();
  for (const e of entries) {
    const list = map.get(e.name);
    if (list) list.push(e);
    else map.set(e.name, [e]);
  }
  return map;
}
