/**
 * Regression tests for the hostile review (issue 10): no alias, name, link, special file, signal or
 * stale lock may lose data or make the tool lie. Each test fails without the fix it names.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decode, encode, InputError, InterruptedError, verify } from '../../src/index.js';
import {
  BIN,
  fileSha256,
  finalNames,
  removeDir,
  runCli,
  runCommand,
  seededBytes,
  sha256,
  tempDir,
  writeRelease,
  type ReleaseFile,
} from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await runCommand('umount', [join(work, 'alias')]).catch(() => undefined);
  await removeDir(work);
});

const small = (n: number): ReleaseFile[] =>
  Array.from({ length: n }, (_, i) => ({ name: `f${String(i).padStart(3, '0')}.dat`, fine: seededBytes(2000 + i, i + 1), base: seededBytes(2000 + i, i + 500) }));

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of await readdir(dir)) out[n] = await fileSha256(join(dir, n)).catch(() => 'folder');
  return out;
}

describe('aliases and names cannot reach inputs or our own files', () => {
  it('an output folder that is the XOR folder through a bind mount is refused, even with --force, and nothing is written (1)', async (ctx) => {
    const { baseDir, xorDir, manifest } = await writeRelease(join(work, 'r'), small(3));
    const alias = join(work, 'alias');
    await mkdir(alias);
    const mounted = await runCommand('mount', ['--bind', xorDir, alias]);
    if (mounted.code !== 0) ctx.skip();
    const before = await snapshot(xorDir);
    const r = await runCli(['decode', alias, xorDir, baseDir, '--manifest', manifest, '--force']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/output folder is the same as the XOR folder/);
    expect(await snapshot(xorDir)).toEqual(before);
  });

  it('a payload named state.json decodes to its own bytes, however the jobs interleave (2)', async () => {
    const files: ReleaseFile[] = [
      { name: 'state.json', fine: Buffer.from(seededBytes(300_000, 1)), base: seededBytes(300_000, 2) },
      { name: 'lock', fine: seededBytes(200_000, 3), base: seededBytes(200_000, 4) },
      { name: 'partial', fine: seededBytes(100_000, 5), base: seededBytes(100_000, 6) },
      ...small(4),
    ];
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), files);
    for (let run = 0; run < 3; run++) {
      const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--jobs', '2', '--force']);
      expect(r.code).toBe(0);
      expect(await fileSha256(join(outDir, 'state.json'))).toBe(sha256(files[0]!.fine));
    }
  });

  it('a symlink planted where a temporary file goes is never written through (3)', async () => {
    const files = small(2);
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), files);
    const victim = join(baseDir, files[0]!.name);
    const before = await fileSha256(victim);
    await mkdir(join(outDir, '.metharme-xor', 'partial'), { recursive: true });
    await symlink(victim, join(outDir, '.metharme-xor', 'partial', files[0]!.name));
    await symlink(victim, join(outDir, '.metharme-xor', 'state.json.partial'));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(await fileSha256(victim)).toBe(before);
  });

  it('a payload name of 250 characters decodes: temporary names are no longer than final ones (16)', async () => {
    const name = `${'n'.repeat(246)}.bin`;
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), [{ name, fine: seededBytes(5000, 1), base: seededBytes(5000, 2) }]);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(await finalNames(outDir)).toEqual([name]);
  });

  it('a payload whose name is not valid UTF-8 is refused naming the folder, never skipped silently (12)', async () => {
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), small(1));
    await writeFile(Buffer.concat([Buffer.from(`${xorDir}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]), 'x');
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/holds a file whose name is not valid UTF-8 .*; rename that file/);
  });

  it('control characters in a name are printed escaped, never sent to the terminal (21)', async () => {
    const name = 'evil\u001b[2Jname.dat';
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), [{ name, fine: seededBytes(100, 1), base: seededBytes(100, 2) }]);
    const r = await runCli(['decode', outDir, xorDir, baseDir]);
    expect(r.stdout).toContain('evil\\x1b[2Jname.dat');
    expect(r.stdout + r.stderr).not.toContain('\u001b');
  });
});

describe('special files are refused, reads are bounded (4, 5)', () => {
  it.each(['payload', 'base'])('a FIFO as a %s file is refused at once with exit 2', async (which) => {
    const files = small(2);
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), files);
    const path = join(which === 'payload' ? xorDir : baseDir, files[1]!.name);
    await runCommand('rm', [path]);
    expect((await runCommand('mkfifo', [path])).code).toBe(0);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a FIFO, not a regular file; only regular files are read/);
    expect(await finalNames(outDir)).toEqual([]);
  });

  it.each([
    ['a payload with a base', 'w.bin', true],
    ['a .json payload without a base', 'x.json', false],
  ])('%s linked to /dev/zero is refused as a device, before reading a byte', async (_what, name, withBase) => {
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), small(1));
    await symlink('/dev/zero', join(xorDir, name));
    if (withBase) await writeFile(join(baseDir, name), seededBytes(100, 1));
    const r = await runCli(['decode', outDir, xorDir, baseDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a device, not a regular file/);
  });

  it('a broken base symlink is named as such, not as "no base counterpart" (21)', async () => {
    const files = small(1);
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), files);
    await runCommand('rm', [join(baseDir, files[0]!.name)]);
    await symlink(join(work, 'gone'), join(baseDir, files[0]!.name));
    const r = await runCli(['decode', outDir, xorDir, baseDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/base file is a broken symbolic link/);
  });

  it('an output path that is a file is an input error (exit 2), not an internal error (11)', async () => {
    const { baseDir, xorDir } = await writeRelease(join(work, 'r'), small(1));
    const file = join(work, 'a-file');
    await writeFile(file, 'x');
    const r = await runCli(['decode', file, xorDir, baseDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a-file: is a file, not a folder/);
  });
});

describe('signals and interruptions end as interrupted, never as "done" (6)', () => {
  it('the library: an aborted signal rejects with InterruptedError (130), not a report with exit code 0', async () => {
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), small(2));
    const err = await decode({ outputDir: outDir, xorDir, baseDir, signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(130);
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)('%s between two of 300 files: exit %i, no "done", --json says so too', async (signal, code) => {
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), small(300));
    const child = spawn(process.execPath, [BIN, 'decode', outDir, xorDir, baseDir, '--manifest', manifest, '--jobs', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!sent && /^verified /m.test(stdout)) {
        sent = true;
        child.kill(signal);
      }
    });
    const exit = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(exit).toBe(code);
    expect(stdout).not.toMatch(/^done:/m);
    expect(await readdir(join(outDir, '.metharme-xor', 'partial')).catch(() => [])).toEqual([]);
  });
});

describe('an abort while re-checking existing outputs (6)', () => {
  it('rejects with InterruptedError instead of reporting the run done', async () => {
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), small(3));
    await decode({ outputDir: outDir, xorDir, baseDir, manifest });
    // Outputs touched since: each is hashed again ("check-existing") before being kept.
    for (const n of await finalNames(outDir)) await writeFile(join(outDir, n), await readFile(join(outDir, n)));
    const controller = new AbortController();
    const err = await decode({
      outputDir: outDir,
      xorDir,
      baseDir,
      manifest,
      jobs: 1,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'file-start' && e.phase === 'check-existing') controller.abort('SIGTERM');
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(143);
  });
});

describe('library options are checked (7, 21)', () => {
  it.each([
    ['jobs: NaN', { jobs: NaN }, /option "jobs" must be a whole number from 1 to 64, not NaN/],
    ['outputDir: 42', { outputDir: 42 }, /option "outputDir" must be a non-empty string, not number/],
    ['model: {}', { model: {} }, /option "model" must be a non-empty string, not object/],
    ['signal: {}', { signal: {} }, /option "signal" must be an AbortSignal/],
  ])('decode({%s}) rejects with InputError (exit 2)', async (_what, bad, message) => {
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), small(1));
    const err = await decode({ outputDir: outDir, xorDir, baseDir, ...(bad as object) } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(message);
  });

  it('verify({}) and encode({}) reject with InputError too', async () => {
    await expect(verify({} as never)).rejects.toThrow(/option "dir" must be a non-empty string, not undefined/);
    await expect(encode({} as never)).rejects.toBeInstanceOf(InputError);
  });
});

describe('resume after kill -9 at any instant (8)', () => {
  it('a --no-verify run killed at random moments is always finished by the same command (exit 0)', async () => {
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), small(40));
    const args = [BIN, 'decode', outDir, xorDir, baseDir, '--no-verify'];
    for (let i = 0; i < 8; i++) {
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      const closed = new Promise((r) => child.on('close', r));
      await new Promise((r) => setTimeout(r, 150 + i * 37));
      child.kill('SIGKILL');
      await closed;
      const rerun = await runCli(args.slice(1));
      expect(rerun.code, rerun.stderr).toBe(0);
      await runCommand('rm', ['-rf', outDir]);
    }
  });

  it('a killed --force run\'s temporary file is deleted by the next run (10)', async () => {
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), small(2));
    await mkdir(join(outDir, '.metharme-xor', 'partial'), { recursive: true });
    await writeFile(join(outDir, '.metharme-xor', 'partial', 'left-over.bin'), seededBytes(100_000, 1));
    await writeFile(join(outDir, '.metharme-xor', 'v1-layout.bin.partial'), seededBytes(100_000, 1));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--force']);
    expect(r.code).toBe(0);
    expect((await readdir(join(outDir, '.metharme-xor'))).sort()).toEqual(['state.json']);
  });
});

describe('manifests as coreutils writes them (13, 14, 15)', () => {
  it('a name with a trailing space, as sha256sum writes it, is found, not "missing"', async () => {
    const fine = seededBytes(1000, 1);
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), [{ name: 'w.dat ', fine, base: seededBytes(1000, 2) }]);
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${sha256(fine)}  w.dat \n`);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', sums, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).files[0]).toMatchObject({ name: 'w.dat ', status: 'verified' });
  });

  it('an NFC manifest against NFD file names verifies, with a note, instead of "missing" and "unverified"', async () => {
    const nfd = 'cafe\u0301.dat';
    const fine = seededBytes(1000, 1);
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), [{ name: nfd, fine, base: seededBytes(1000, 2) }]);
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${sha256(fine)}  ${nfd.normalize('NFC')}\n`);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', sums, '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.files.map((f: { status: string }) => f.status)).toEqual(['verified']);
    expect(doc.warnings.join('\n')).toMatch(/differs only in Unicode normalisation/);
  });

  it('a 4 MB manifest of 52,000 names with one present finishes, reporting the rest missing', { timeout: 30_000 }, async () => {
    const fine = seededBytes(1000, 1);
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), [{ name: 'w.dat', fine, base: seededBytes(1000, 2) }]);
    const lines = [`${sha256(fine)}  w.dat`];
    for (let i = 0; i < 52_000; i++) lines.push(`${createHash('sha256').update(String(i)).digest('hex')}  s${i}.bin`);
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${lines.join('\n')}\n`);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', sums, '--json', '-q']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.totals).toMatchObject({ verified: 1, missing: 52_000 });
    expect(r.stderr).toMatch(/and 51980 more names listed in .* are not in the XOR folder/);
  });
});

describe('gzip is decided by the bytes, not by four of them (17)', () => {
  it('a raw payload that starts with 1f 8b 08 00 decodes as raw XOR (exit 0)', async () => {
    const base = seededBytes(5000, 2);
    const payload = seededBytes(5000, 1);
    payload.set([0x1f, 0x8b, 0x08, 0x00], 0);
    const fine = Buffer.from(payload);
    for (let i = 0; i < fine.length; i++) fine[i] ^= base[i]!;
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), [{ name: 'w.dat', fine, base }]);
    expect((await readFile(join(xorDir, 'w.dat'))).subarray(0, 4)).toEqual(Buffer.from([0x1f, 0x8b, 0x08, 0x00]));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(await fileSha256(join(outDir, 'w.dat'))).toBe(sha256(fine));
  });

  it('encode warns when a raw payload it writes starts like gzip', async () => {
    const base = seededBytes(5000, 2);
    const fine = Buffer.from(base);
    fine.set([0x1f ^ base[0]!, 0x8b ^ base[1]!, 0x08 ^ base[2]!, 0x00 ^ base[3]!], 0);
    const fineDir = join(work, 'fine');
    const baseDir = join(work, 'base');
    await mkdir(fineDir);
    await mkdir(baseDir);
    await writeFile(join(fineDir, 'w.bin'), fine);
    await writeFile(join(baseDir, 'w.bin'), base);
    const r = await runCli(['encode', join(work, 'xor'), fineDir, baseDir]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: w\.bin: the raw payload happens to start with the gzip signature/);
  });
});

describe('output channels (18, 19, 20)', () => {
  it.each([
    ['an unknown option', ['decode', 'a', 'b', 'c', '--bogus', '--json']],
    ['a missing argument', ['decode', 'a', '--json']],
    ['--jobs 0', ['decode', 'a', 'b', 'c', '--jobs', '0', '--json']],
  ])('--json prints one JSON document for %s (exit 2)', async (_what, args) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ exitCode: 2, error: { message: expect.any(String) } });
  });

  it('--quiet still prints the safety warnings: nothing verified, files the manifest does not cover', async () => {
    const files = small(2);
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), files);
    const none = await runCli(['decode', outDir, xorDir, baseDir, '-q']);
    expect(none.code).toBe(0);
    expect(none.stderr).toMatch(/NOTHING WILL BE VERIFIED/);
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${sha256(files[0]!.fine)}  ${files[0]!.name}\n`);
    const partial = await runCli(['decode', join(work, 'o2'), xorDir, baseDir, '--manifest', sums, '-q']);
    expect(partial.stderr).toMatch(new RegExp(`${files[1]!.name}: not listed in .*SUMS; it will be decoded but NOT VERIFIED`));
    expect(partial.stdout).toBe('');
  });

  it.each(['models', 'manifest metharme-13b'])('"%s | head -1" exits 141 quietly, without a stack trace', async (cmd) => {
    const r = await runCommand('bash', ['-c', `"${process.execPath}" "${BIN}" ${cmd} | head -c 1 >/dev/null; echo "exit \${PIPESTATUS[0]}" >&2`]);
    expect(r.stderr).toMatch(/exit (141|0)$/m);
    expect(r.stderr).not.toMatch(/EPIPE|at .*\.js/);
  });

  it('decode | head -1 stops the run and exits 141, leaving no partial file under a final name', async () => {
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), small(300));
    const r = await runCommand('bash', ['-c', `"${process.execPath}" "${BIN}" decode "${outDir}" "${xorDir}" "${baseDir}" --manifest "${manifest}" --jobs 1 | head -n 1 >/dev/null; echo "exit \${PIPESTATUS[0]}" >&2`]);
    expect(r.stderr).toMatch(/exit 141$/m);
    expect(r.stderr).not.toMatch(/EPIPE|at .*\.js/);
  });

  it('stdout on a full device: a one-line error and exit 74', async () => {
    const r = await runCommand('bash', ['-c', `"${process.execPath}" "${BIN}" models >/dev/full`]);
    expect(r.code).toBe(74);
    expect(r.stderr).toMatch(/^metharme-xor: error: cannot write to standard output \(ENOSPC\)/m);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});


