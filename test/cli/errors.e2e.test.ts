/** End to end: every error exit code of the real CLI, its one-line message, and what it leaves on disk. */
import { EXIT_CODE_MEANINGS } from '../../src/errors.js';
import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, finalNames, removeDir, runCli, runCommand, SAMPLE_BASE, SAMPLE_SUMS, SAMPLE_XOR, seededBytes, tempDir, withTmpfs, writeRelease } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});


/** An error is one line on stderr, starting with the program name, with no stack trace. */
function expectOneLineError(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split('\n').filter((l) => l.startsWith('metharme-xor: error:'));
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}


describe('exit 2: usage and input errors', () => {
  it.each([
    [['decode'], /missing required argument 'output-dir'/],
    [['decode', 'a', 'b'], /missing required argument 'base-dir'/],
    [['decode', 'a', 'b', 'c', '--bogus'], /unknown option '--bogus'/],
    [['decode', 'a', 'b', 'c', '--jobs', '0'], /--jobs.*whole number from 1 to 64/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('bad arguments %j', async (args, pattern) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a missing XOR folder names the folder', async () => {
    const r = await runCli(['decode', join(work, 'o'), join(work, 'nope'), SAMPLE_BASE]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /nope: XOR folder cannot read \(ENOENT\); the folder does not exist; check the path; the order is: decode <output-dir> <xor-dir> <base-dir>$/);
  });

  it('a base path that is a file is refused', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_SUMS]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /SHA256SUMS: base folder is not a folder/);
  });

  it('an unknown model lists the known ones', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--model', 'metharme-99b']);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /unknown model "metharme-99b"; did you mean "metharme-13b"\? known: metharme-13b, metharme-7b, pygmalion-13b, pygmalion-7b, oasst-sft-6-llama-30b, or their Hugging Face repository ids/);
  });

  it('a base conversion is not a release to decode', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--model', 'llama-13b-hf']);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /"llama-13b-hf" is a base conversion/);
  });

  it('an unparsable manifest names the file and line', async () => {
    const bad = join(work, 'SUMS');
    await writeFile(bad, 'this is not a manifest\n');
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', bad]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /SUMS: line 1 is not a checksum line/);
    expect(await finalNames(join(work, 'o'))).toEqual([]);
  });

  it('a huge "manifest" (a shard passed by mistake) is refused without reading it', async () => {
    const huge = join(work, 'shard.bin');
    await writeFile(huge, seededBytes(5 * 1024 * 1024, 1));
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', huge]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /shard\.bin: is 5242880 bytes, too large for a checksum list/);
  });

  it('--model and --manifest together are refused', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--model', 'metharme-7b', '--manifest', SAMPLE_SUMS]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /cannot be used together/);
  });

  it.each([
    ['equal to the XOR folder', (x: string) => x],
    ['inside the XOR folder', (x: string) => join(x, 'out')],
    ['equal to the base folder', (_x: string, b: string) => b],
    ['inside the base folder', (_x: string, b: string) => join(b, 'sub', 'out')],
  ])('an output folder %s is refused and nothing is written', async (_what, pick) => {
    const xor = join(work, 'xor');
    const base = join(work, 'base');
    await cp(SAMPLE_XOR, xor, { recursive: true });
    await cp(SAMPLE_BASE, base, { recursive: true });
    const before = [(await readdir(xor)).sort(), (await readdir(base)).sort()];
    const r = await runCli(['decode', pick(xor, base), xor, base, '--manifest', SAMPLE_SUMS]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /output folder is (the same as|inside) the (XOR|base) folder/);
    expect([(await readdir(xor)).sort(), (await readdir(base)).sort()]).toEqual(before);
  });

  it('an XOR payload without a base counterpart that is not plain JSON is refused before decoding', async () => {
    const xor = join(work, 'xor');
    await cp(SAMPLE_XOR, xor, { recursive: true });
    await writeFile(join(xor, 'pytorch_model-00003-of-00003.bin'), seededBytes(1000, 1));
    const r = await runCli(['decode', join(work, 'o'), xor, SAMPLE_BASE, '--manifest', SAMPLE_SUMS]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /pytorch_model-00003-of-00003\.bin: has no base counterpart .* and is not a plain JSON file; check that <base-dir>/);
    expect(await finalNames(join(work, 'o'))).toEqual([]);
  });

  it('a broken symlink in the XOR folder (an interrupted download) is an input error naming it', async () => {
    const xor = join(work, 'xor');
    await cp(SAMPLE_XOR, xor, { recursive: true });
    await symlink(join(work, 'blobs', 'gone'), join(xor, 'pytorch_model-00002-of-00002.bin.tmp'));
    const r = await runCli(['decode', join(work, 'o'), xor, SAMPLE_BASE]);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, /pytorch_model-00002-of-00002\.bin\.tmp: XOR file is a broken symbolic link; the file it points to is missing \(an interrupted download\?\); download it again/);
    expect(await finalNames(join(work, 'o'))).toEqual([]);
  });

  it('--json still prints a JSON document for an error', async () => {
    const r = await runCli(['decode', join(work, 'o'), join(work, 'nope'), SAMPLE_BASE, '--json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ exitCode: 2, error: { file: expect.stringContaining('nope') } });
  });

  it('--debug adds the stack trace of the cause', async () => {
    const r = await runCli(['decode', join(work, 'o'), join(work, 'nope'), SAMPLE_BASE, '--debug']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe('exit 3: I/O failure while writing', () => {
  it('a file-size limit (EFBIG) stops the run, names the file, and leaves no partial file', async () => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, [
      { name: 'small.json', fine: Buffer.from('{"a":1}'), base: Buffer.from('{"a":2}') },
      { name: 'big.dat', fine: seededBytes(3_000_000, 1), base: seededBytes(3_000_000, 2) },
    ]);
    // ulimit -f counts 1024-byte blocks here: 1 MB max file size, so big.dat cannot be written.
    const r = await runCommand('bash', ['-c', `ulimit -f 1000; exec "${process.execPath}" "${BIN}" decode "${outDir}" "${xorDir}" "${baseDir}" --manifest "${manifest}"`]);
    expect(r.code).toBe(3);
    expectOneLineError(r.stderr, /big\.dat: writing failed \(EFBIG\); the file is larger than this process may write/);
    expect(await finalNames(outDir)).toEqual(['small.json']);
    expect(await readdir(join(outDir, '.metharme-xor', 'partial')).catch(() => [])).toEqual([]);
  });

  it('a full disk (ENOSPC on a small tmpfs) exits 3 with the file named', async (ctx) => {
    const mnt = join(work, 'mnt');
    await withTmpfs(ctx, mnt, 'size=1m', async () => {
      const root = join(work, 'rel');
      const { baseDir, xorDir, manifest } = await writeRelease(root, [
        { name: 'big.dat', fine: seededBytes(3_000_000, 1), base: seededBytes(3_000_000, 2) },
      ]);
      // Past the preflight, as when something else fills the disk during the run.
      const r = await runCli(['decode', join(mnt, 'out'), xorDir, baseDir, '--manifest', manifest, '--no-space-check']);
      expect(r.code).toBe(3);
      expectOneLineError(r.stderr, /big\.dat: writing failed \(ENOSPC\): 3\.0 MB were still to write, [\d.]+ (B|kB|MB) free now; the output file system is full/);
      expect(await finalNames(join(mnt, 'out'))).toEqual([]);
    });
  });
});

describe('exit 130 / 143: interrupted', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} mid-file stops promptly, exits ${code}, and leaves no partial file under a final name`, async () => {
      const root = join(work, 'rel');
      const size = 1_500_000_000;
      const xorDir = join(root, 'xor');
      const baseDir = join(root, 'base');
      await mkdir(xorDir, { recursive: true });
      await mkdir(baseDir, { recursive: true });
      // Sparse files: large enough to be mid-file when the signal lands, free to create.
      await writeFile(join(xorDir, 'w.dat'), '');
      await writeFile(join(baseDir, 'w.dat'), '');
      await runCommand('truncate', ['-s', String(size), join(xorDir, 'w.dat'), join(baseDir, 'w.dat')]);
      const sums = join(root, 'SUMS');
      await writeFile(sums, `${'0'.repeat(64)}  w.dat\n`);
      const out = join(root, 'out');
      const child = spawn(process.execPath, [BIN, 'decode', out, xorDir, baseDir, '--manifest', sums], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
      // Wait until the temporary file has data: the decode is under way.
      const partial = join(out, '.metharme-xor', 'partial', 'w.dat');
      for (let i = 0; i < 400; i++) {
        const s = await stat(partial).catch(() => undefined);
        if (s && s.size > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const sentAt = Date.now();
      child.kill(signal);
      const exitCode = await exited;
      expect(exitCode).toBe(code);
      expect(Date.now() - sentAt).toBeLessThan(5000);
      expectOneLineError(stderr, new RegExp(`interrupted by ${signal}; no partial file was left under a final name`));
      expect(await finalNames(out)).toEqual([]);
    });
  }
});

describe('help and version', () => {
  it('--help lists the commands and the exit codes, and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['decode', 'verify', 'check-base', 'encode', 'models', 'manifest']) expect(r.stdout).toContain(cmd);
    expect(r.stdout).toMatch(/Exit codes:[\s\S]*130/);
  });

  it.each(['decode', 'verify', 'check-base', 'encode', 'models', 'manifest'])('%s --help works and exits 0', async (cmd) => {
    const r = await runCli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Usage: metharme-xor ${cmd}`));
  });

  it('--help and docs/usage.md print the one exit-code table, row for row', async () => {
    const r = await runCli(['--help']);
    const helpRows = [...r.stdout.matchAll(/^ {2}(\d+) +(.+)$/gm)].map((m) => [Number(m[1]), m[2]!.trim()]);
    // The table lives with the other reference tables, in docs/usage.md.
    const readme = await readFile(new URL('../../docs/usage.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('### Exit codes'), readme.indexOf('### What decode does'));
    const readmeRows = [...table.matchAll(/^\| (\d+) \| (.+) \|$/gm)].map((m) => [Number(m[1]), m[2]!.trim()]);
    expect(helpRows.map((row) => row[0])).toEqual([0, 1, 2, 3, 70, 74, 129, 130, 141, 143]);
    expect(readmeRows).toEqual(helpRows);
    expect(helpRows).toEqual(EXIT_CODE_MEANINGS.map((e) => [e.code, e.meaning]));
  });

  it('decode --help gives the model-card argument order and the exit codes', async () => {
    const r = await runCli(['decode', '--help']);
    expect(r.stdout).toMatch(/decode \[options\] <output-dir> <xor-dir> <base-dir>/);
    expect(r.stdout).toMatch(/Exit codes:/);
  });

  it.each(['decode', 'verify', 'check-base', 'encode', 'models', 'manifest'])('%s --version prints the version too', async (cmd) => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    const r = await runCli([cmd, '--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});
