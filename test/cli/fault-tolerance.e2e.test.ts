/**
 * End to end: interruptions, crashes, concurrent runs and changing inputs lose nothing. After any
 * of them, every file under a final name is complete and correct, and the same command finishes
 * the job.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decode, type DecodeEvent } from '../../src/index.js';
import { BIN, finalNames, removeDir, runCli, runCommand, seededBytes, sha256, tempDir, withTmpfs, writeRelease, type ReleaseFile } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});

const BIG = 'zeros.dat';

/** Small files with digests, and one large sparse file of zeros (XOR of zeros), so runs can be caught mid-file. */
async function releaseWithBigFile(bigBytes: number) {
  const small: ReleaseFile[] = [
    { name: 'config.json', fine: Buffer.from('{"a": 1}\n'), base: Buffer.from('{"a": 2}\n') },
    { name: 'tokenizer.model', fine: seededBytes(50_000, 1), base: seededBytes(50_000, 2) },
    { name: 'extra.dat', fine: seededBytes(300_000, 3), base: seededBytes(300_000, 4) },
  ];
  const root = join(work, 'rel');
  const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, small);
  await writeFile(join(xorDir, BIG), '');
  await writeFile(join(baseDir, BIG), '');
  await truncate(join(xorDir, BIG), bigBytes);
  await truncate(join(baseDir, BIG), bigBytes);
  const zeros = Buffer.alloc(1 << 24);
  const h = createHash('sha256');
  for (let done = 0; done < bigBytes; done += zeros.length) h.update(zeros.subarray(0, Math.min(zeros.length, bigBytes - done)));
  await writeFile(manifest, `${await readFile(manifest, 'utf8')}${h.digest('hex')}  ${BIG}\n`);
  return { baseDir, xorDir, manifest, outDir, small };
}

function start(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return { child, done };
}

/** Resolves once the temporary file of `name` has data: the run is mid-file. */
async function midFile(outDir: string, name: string): Promise<void> {
  const partial = join(outDir, '.metharme-xor', 'partial', name);
  for (let i = 0; i < 1000; i++) {
    const s = await stat(partial).catch(() => undefined);
    if (s && s.size > 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${name} never started`);
}


describe('crash and resume', () => {
  it('after kill -9 mid-file, the same command finishes the job without redoing verified files', async () => {
    const { baseDir, xorDir, manifest, outDir, small } = await releaseWithBigFile(2_000_000_000);
    const args = ['decode', outDir, xorDir, baseDir, '--manifest', manifest];
    const first = start(args);
    await midFile(outDir, BIG);
    first.child.kill('SIGKILL');
    await first.done;
    // Only complete, verified files carry final names after the crash.
    expect(await finalNames(outDir)).toEqual(small.map((f) => f.name).sort());
    for (const f of small) expect(sha256(await readFile(join(outDir, f.name)))).toBe(sha256(f.fine));

    const second = await runCli([...args, '--json']);
    expect(second.code).toBe(0);
    // The dead run's lock is detected and taken over.
    expect(second.stderr).toMatch(/took over the lock left by process \d+/);
    const doc = JSON.parse(second.stdout);
    expect(doc.warnings).toEqual([expect.stringMatching(/^took over the lock left by process \d+/)]);
    const status = Object.fromEntries(doc.files.map((f: { name: string; status: string; note: string }) => [f.name, `${f.status}: ${f.note}`]));
    for (const f of small) expect(status[f.name]).toMatch(/^skipped: verified by an earlier run, unchanged since/);
    expect(status[BIG]).toMatch(/^verified/);
    expect(await finalNames(outDir)).toEqual([...small.map((f) => f.name), BIG].sort());
    expect((await readdir(join(outDir, '.metharme-xor'))).filter((n) => n !== 'state.json')).toEqual([]);
  });

  it('a rerun after success reads nothing and still reports every file as verified', async () => {
    const root = join(work, 'rel');
    const files: ReleaseFile[] = [1, 2, 3, 4].map((i) => ({ name: `f${i}.dat`, fine: seededBytes(2_000_000 * i, i), base: seededBytes(2_000_000 * i, i + 10) }));
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, files);
    const options = { outputDir: outDir, xorDir, baseDir, manifest };
    expect((await decode(options)).totals.verified).toBe(4);
    const read: number[] = [];
    const again = await decode({ ...options, onEvent: (e: DecodeEvent) => e.type === 'progress' && read.push(e.bytes) });
    expect(again.exitCode).toBe(0);
    expect(again.files.map((f) => [f.status, f.actual])).toEqual(files.map((f) => ['skipped', sha256(f.fine)]));
    expect(read).toEqual([]);
    // The CLI says the same.
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^done: 4 files, 0 B .*0 verified, 4 already present/m);
  });

  it('forgets a file whose output changed: a touched file is hashed again, an edited one is refused', async () => {
    const root = join(work, 'rel');
    const files: ReleaseFile[] = [
      { name: 'a.dat', fine: seededBytes(1_000_000, 1), base: seededBytes(1_000_000, 2) },
      { name: 'b.dat', fine: seededBytes(1_000_000, 3), base: seededBytes(1_000_000, 4) },
    ];
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, files);
    const options = { outputDir: outDir, xorDir, baseDir, manifest };
    await decode(options);
    const later = new Date(Date.now() + 60_000);
    await utimes(join(outDir, 'a.dat'), later, later);
    const read = new Map<string, number>();
    const again = await decode({ ...options, onEvent: (e: DecodeEvent) => e.type === 'progress' && read.set(e.name, (read.get(e.name) ?? 0) + e.bytes) });
    expect(again.files.map((f) => f.status)).toEqual(['skipped', 'skipped']);
    expect(read.get('a.dat')).toBe(1_000_000);
    expect(read.get('b.dat')).toBeUndefined();
    // Edited (another size): not trusted, and not silently overwritten.
    await writeFile(join(outDir, 'b.dat'), 'edited');
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/b\.dat: already exists and does not match .*; use --force to replace it/);
  });

  it('a changed input invalidates the record: the output is checked against the manifest again', async () => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, [{ name: 'a.dat', fine: seededBytes(100_000, 1), base: seededBytes(100_000, 2) }]);
    await decode({ outputDir: outDir, xorDir, baseDir, manifest });
    const later = new Date(Date.now() + 60_000);
    await utimes(join(baseDir, 'a.dat'), later, later);
    const read: number[] = [];
    const again = await decode({ outputDir: outDir, xorDir, baseDir, manifest, onEvent: (e: DecodeEvent) => e.type === 'progress' && read.push(e.bytes) });
    expect(again.files[0]!.status).toBe('skipped');
    expect(read.reduce((a, b) => a + b, 0)).toBe(100_000);
  });
});

describe('concurrent runs', () => {
  it('a second run on the same output folder refuses with exit 2, naming the lock; the first finishes', async () => {
    const { baseDir, xorDir, manifest, outDir } = await releaseWithBigFile(1_500_000_000);
    const args = ['decode', outDir, xorDir, baseDir, '--manifest', manifest];
    const first = start(args);
    await midFile(outDir, BIG);
    const second = await runCli(args);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/error: .*\.metharme-xor\/lock: another metharme-xor run is writing to this folder \(process \d+ on .*\); wait for it to finish or stop it/);
    const firstResult = await first.done;
    expect(firstResult.code).toBe(0);
    expect(await finalNames(outDir)).toContain(BIG);
  });

  it('a stale lock from a dead process is taken over', async () => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, [{ name: 'a.dat', fine: seededBytes(1000, 1), base: seededBytes(1000, 2) }]);
    const dead = await runCommand(process.execPath, ['-e', 'console.log(process.pid)']);
    const pid = Number(dead.stdout.trim());
    await mkdir(join(outDir, '.metharme-xor'), { recursive: true });
    const { hostname } = await import('node:os');
    await writeFile(join(outDir, '.metharme-xor', 'lock'), JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00Z' }));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`took over the lock left by process ${pid} \\(started 2026-01-01T00:00:00Z\\)`));
    await expect(stat(join(outDir, '.metharme-xor', 'lock'))).rejects.toThrow();
  });
});

describe('inputs that change while being read', () => {
  for (const which of ['payload', 'base'] as const) {
    it(`a ${which} that shrinks mid-file is an input error (exit 2) and nothing wrong gets a final name`, async () => {
      const { baseDir, xorDir, manifest, outDir } = await releaseWithBigFile(1_500_000_000);
      const run = start(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
      await midFile(outDir, BIG);
      await truncate(join(which === 'payload' ? xorDir : baseDir, BIG), 100_000_000);
      const r = await run.done;
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`error: .*${which === 'payload' ? 'xor' : 'base'}/zeros\\.dat: changed size while being read`));
      expect(await finalNames(outDir)).not.toContain(BIG);
    });
  }
});

describe('where outputs may go', () => {
  it('creates missing parent folders of the output', async () => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest } = await writeRelease(root, [{ name: 'a.dat', fine: seededBytes(1000, 1), base: seededBytes(1000, 2) }]);
    const out = join(work, 'x', 'y', 'z');
    const r = await runCli(['decode', out, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(await finalNames(out)).toEqual(['a.dat']);
  });

  it('a read-only output file system is an I/O error (exit 3) that says so', async (ctx) => {
    const mnt = join(work, 'ro');
    await withTmpfs(ctx, mnt, 'size=1m,ro', async () => {
      const root = join(work, 'rel');
      const { baseDir, xorDir, manifest } = await writeRelease(root, [{ name: 'a.dat', fine: seededBytes(1000, 1), base: seededBytes(1000, 2) }]);
      const r = await runCli(['decode', join(mnt, 'out'), xorDir, baseDir, '--manifest', manifest]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/out: creating the output folder failed \(EROFS\); the output file system is read-only/);
    });
  });

  it('refuses a state folder that is a symlink, so temporary files never land elsewhere', async () => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, [{ name: 'a.dat', fine: seededBytes(1000, 1), base: seededBytes(1000, 2) }]);
    const elsewhere = join(work, 'elsewhere');
    await mkdir(elsewhere);
    await mkdir(outDir);
    await symlink(elsewhere, join(outDir, '.metharme-xor'));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\.metharme-xor: is not a folder \(a symlink or a file\); remove it/);
    expect(await readdir(elsewhere)).toEqual([]);
  });
});

describe('hostile manifests, end to end', () => {
  it.each([
    ['binary', Buffer.from([0x00, 0x01, 0x02, 0xff]), /is a binary file, not a checksum list/],
    ['duplicate names with different digests', Buffer.from(`${'a'.repeat(64)}  x\n${'b'.repeat(64)}  x\n`), /"x" has two different SHA256 digests \(lines 1 and 2\)/],
    ['non-hex digest', Buffer.from(`${'z'.repeat(64)}  x\n`), /line 1 is not a checksum line/],
  ])('%s: refused with exit 2 and a clear message', async (_what, content, pattern) => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, outDir } = await writeRelease(root, [{ name: 'a.dat', fine: seededBytes(1000, 1), base: seededBytes(1000, 2) }]);
    const sums = join(work, 'SUMS');
    await writeFile(sums, content);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', sums]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('CRLF line endings and a BOM are fine', async () => {
    const root = join(work, 'rel');
    const fine = seededBytes(1000, 1);
    const { baseDir, xorDir, outDir } = await writeRelease(root, [{ name: 'a.dat', fine, base: seededBytes(1000, 2) }]);
    const sums = join(work, 'SUMS');
    await writeFile(sums, `\ufeff# windows\r\n${sha256(fine)} *a.dat\r\n`);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', sums]);
    expect(r.code).toBe(0);
  });
});
