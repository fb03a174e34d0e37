import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkManifestName, formatManifest, parseManifest } from '../../src/release/manifest.js';
import { InputError } from '../../src/errors.js';

const A = 'be2c276865d1b0759257c0934275f05e02ee520657c2d8ebe3f2a2db1562949a';
const B = 'a23652fc622a27b8863c39f524707796967095b2a85f334561b11422f71445a2';
const M = '4608facb4910118f8dfa80f090cbc4dc';

function names(text: string) {
  return parseManifest(text, 'm').entries.map((e) => [e.name, e.algorithm, e.digest]);
}

function parseError(text: string): InputError {
  try {
    parseManifest(text, 'SUMS');
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected parseManifest to throw');
}

describe('manifest parser', () => {
  it('reads GNU coreutils / rhash lines with two spaces, a binary marker, or one space', () => {
    expect(names(`${A}  config.json\n${B} *generation_config.json\n${M} tokenizer.model\n`)).toEqual([
      ['config.json', 'sha256', A],
      ['generation_config.json', 'sha256', B],
      ['tokenizer.model', 'md5', M],
    ]);
  });

  it('reads BSD lines for SHA256 and MD5', () => {
    expect(names(`SHA256 (config.json) = ${A}\nMD5 (tokenizer.model) = ${M}\n`)).toEqual([
      ['config.json', 'sha256', A],
      ['tokenizer.model', 'md5', M],
    ]);
  });

  it('ignores comments and blank lines, accepts CRLF, a BOM and upper-case hex', () => {
    const text = `\ufeff# from the model card\r\n\r\n${A.toUpperCase()}  config.json\r\n   \r\n# end\r\n`;
    expect(names(text)).toEqual([['config.json', 'sha256', A]]);
  });

  it('takes the algorithm from the digest length', () => {
    expect(parseManifest(`${M}  a\n${A}  b\n`, 'm').entries.map((e) => e.algorithm)).toEqual(['md5', 'sha256']);
  });

  it('keeps names with spaces and strips a leading ./', () => {
    expect(names(`${A}  ./my file.bin\n`)).toEqual([['my file.bin', 'sha256', A]]);
  });

  it('decodes coreutils-escaped names', () => {
    expect(names(`\\${A}  a\\\\b\\nc\n`)).toEqual([['a\\b\nc', 'sha256', A]]);
  });

  it('accepts an identical duplicate once, and the same name in two algorithms', () => {
    expect(names(`${A}  x\n${A}  x\n${M}  x\n`)).toEqual([
      ['x', 'sha256', A],
      ['x', 'md5', M],
    ]);
  });

  it('refuses a name given two different digests, naming both lines', () => {
    const err = parseError(`${A}  x\n${B}  x\n`);
    expect(err.oneLine()).toMatch(/SUMS: "x" has two different SHA256 digests \(lines 1 and 2\)/);
    expect(err.exitCode).toBe(2);
  });

  it.each([
    ['not a checksum line', 'hello world', /line 1 is not a checksum line/],
    ['a digest of the wrong length', `${A.slice(0, 40)}  x`, /not an MD5 \(32 hex\) or SHA-256 \(64 hex\) digest/],
    ['non-hex digest', `${'g'.repeat(64)}  x`, /line 1 is not a checksum line/],
    ['an absolute name', `${A}  /etc/passwd`, /refusing absolute path/],
    ['a name with ..', `${A}  ../secret`, /refusing path with "\.\."/],
    ['a nested name with ..', `${A}  a/../../b`, /refusing path with "\.\."/],
    ['a BSD line whose algorithm disagrees with the length', `MD5 (x) = ${A}`, /a MD5 line carries a 64-digit digest/],
    ['a binary file', `${A}  x\n\0\0\0`, /binary file/],
    ['no checksum lines at all', '# nothing\n\n', /contains no checksum lines/],
  ])('refuses %s with exit 2', (_what, text, pattern) => {
    const err = parseError(text);
    expect(err.exitCode).toBe(2);
    expect(err.oneLine()).toMatch(pattern);
    expect(err.oneLine().startsWith('SUMS: ')).toBe(true);
  });

  it('round-trips through formatManifest', () => {
    const parsed = parseManifest(`${A}  config.json\n${M} *tokenizer.model\n`, 'm');
    expect(formatManifest(parsed.entries)).toBe(`${A}  config.json\n${M}  tokenizer.model\n`);
    expect(parseManifest(formatManifest(parsed.entries), 'again').entries.map((e) => e.digest)).toEqual([A, M]);
  });

  it('never crashes on arbitrary text: it parses or throws InputError (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        try {
          const m = parseManifest(text, 'fuzz');
          for (const e of m.entries) {
            expect(e.digest).toMatch(/^([0-9a-f]{32}|[0-9a-f]{64})$/);
            expect('name' in checkManifestName(e.name)).toBe(true);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(InputError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('parses what it formats, for any safe names and digests (property)', () => {
    const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
    const name = fc
      .string({ unit: fc.constantFrom(...'abcxyz019_-. /'), minLength: 1, maxLength: 30 })
      .filter((s) => s.trim() === s && !s.startsWith('/') && !s.startsWith('./') && !s.split('/').includes('..') && !s.startsWith('#'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ name, digest: fc.oneof(hex(32), hex(64)) }), { minLength: 1, maxLength: 20, selector: (r) => r.name }), (rows) => {
        const entries = rows.map((r) => ({ ...r, algorithm: r.digest.length === 32 ? ('md5' as const) : ('sha256' as const), source: '' }));
        const back = parseManifest(formatManifest(entries), 'p').entries;
        expect(back.map((e) => [e.name, e.digest])).toEqual(rows.map((r) => [r.name, r.digest]));
      }),
    );
  });
});

describe('manifest names', () => {
  it.each(['..\\x', 'a\\..\\..\\b', 'C:\\Windows\\x', '\\\\server\\share'])('refuses Windows-style escape %s', (name) => {
    expect('refused' in checkManifestName(name)).toBe(true);
  });
  it.each(['config.json', 'sub/dir/file.bin', 'a..b', '..hidden'])('accepts %s', (name) => {
    expect(checkManifestName(name)).toEqual({ name });
  });
});

describe('names as coreutils writes them', () => {
  const D = 'a'.repeat(64);
  it('keeps trailing spaces: the name runs to the end of the line', () => {
    expect(parseManifest(`${D}  name \n`, 'm').entries[0]!.name).toBe('name ');
  });
  it('reads escaped lines: backslash, newline and carriage return (coreutils 9.2+)', () => {
    expect(parseManifest(`\\${D}  a\\\\b\\nc\\rd\n`, 'm').entries[0]!.name).toBe('a\\b\nc\rd');
  });
  it('reads escaped --tag lines', () => {
    expect(parseManifest(`\\SHA256 (x\\ny) = ${D}\n`, 'm').entries[0]).toMatchObject({ name: 'x\ny', algorithm: 'sha256' });
  });
  it('prints such names escaped, so they read back the same', () => {
    const entries = [{ name: 'a\\b\nc\rd', algorithm: 'sha256' as const, digest: D, source: '' }];
    const text = formatManifest(entries);
    expect(text.startsWith('\\')).toBe(true);
    expect(parseManifest(text, 'm').entries[0]!.name).toBe(entries[0]!.name);
  });
});

