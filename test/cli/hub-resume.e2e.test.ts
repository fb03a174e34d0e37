/**
 * End to end: a file decoded from the Hub and cut off (Ctrl-C on a stalled connection, kill -9)
 * resumes inside the file on the next run: the kept prefix is re-hashed from disk, the payload's
 * SHA-256 prefix rebuilt from it, and only the rest fetched with a Range request. What cannot be
 * trusted (a changed base, a tampered prefix) restarts from byte 0 and ends verified anyway.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { BIN, checkpointBytes, fileSha256, finalNames, flipByte, jsonDoc, referenceXor, runCli, seededBytes, sha256 } from '../support/helpers.js';
import { standInEnv, useHubStandIn, type Fault } from '../hub/stand-in.js';

const COMMIT = 'b2'.repeat(20);
const SOURCE = 'hf://Org/big-xor/xor';
const NAME = 'pytorch_model.bin';
const SIZE = 24 << 20;
const fine = checkpointBytes(SIZE, 7);
const baseBytes = seededBytes(SIZE - 12345, 11);
const payload = referenceXor(fine, baseBytes);

const standIn = useHubStandIn();
let baseDir: string;
let manifest: string;
beforeEach(async () => {
  standIn.hub.repos.set('Org/big-xor', { commit: COMMIT, files: new Map([[`xor/${NAME}`, payload]]) });
  baseDir = join(standIn.work, 'base');
  await mkdir(baseDir);
  await writeFile(join(baseDir, NAME), baseBytes);
  manifest = join(standIn.work, 'SHA256SUMS');
  await writeFile(manifest, `${sha256(fine)}  ${NAME}\n`);
});

const out = () => join(standIn.work, 'out');
const env = () => standInEnv(standIn.hub, standIn.work);
const args = (...extra: string[]) => ['decode', out(), SOURCE, baseDir, '--manifest', manifest, ...extra];

/** The bytes the state says are kept for the file, once a checkpoint has recorded some. */
async function keptBytes(): Promise<number> {
  const text = await readFile(join(out(), '.metharme-xor', 'state.json'), 'utf8').catch(() => '{}');
  try {
    return (JSON.parse(text) as { partial?: Record<string, { bytes: number }> }).partial?.[NAME]?.bytes ?? 0;
  } catch {
    return 0;
  }
}

/** Starts a decode whose transfer stalls half-way, and waits until a checkpoint has recorded its prefix. */
async function startStalled(run = { args: args('--jobs', '1'), stalls: `xor/${NAME}`, faults: ['pass', 'stall'] as Fault[] }) {
  // By default planning reads the first bytes; the decode's own request is the one that stalls.
  standIn.hub.fault(run.stalls, ...run.faults);
  const child = spawn(process.execPath, [BIN, ...run.args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const deadline = Date.now() + 20_000;
  while ((await keptBytes()) === 0) {
    if (Date.now() > deadline) throw new Error(`no checkpoint was recorded; stderr: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, closed, stderr: () => stderr };
}

/** A stalled decode stopped with Ctrl-C once a checkpoint is recorded: it must end as interrupted (130). */
async function interruptStalled(run?: Parameters<typeof startStalled>[0]): Promise<string> {
  const stalled = await startStalled(run);
  stalled.child.kill('SIGINT');
  expect(await stalled.closed, stalled.stderr()).toBe(130);
  return stalled.stderr();
}

/** The XOR file local, its base on the Hub (Org/big-base): a decode's arguments for that. */
async function localXorWithHubBase(...options: string[]) {
  const xorDir = join(standIn.work, 'xor');
  await mkdir(xorDir);
  await writeFile(join(xorDir, NAME), payload);
  standIn.hub.repos.set('Org/big-base', { commit: COMMIT, files: new Map([[`base/${NAME}`, baseBytes]]) });
  return (...extra: string[]) => ['decode', out(), xorDir, 'hf://Org/big-base/base', '--manifest', manifest, ...options, ...extra];
}

/** Planning reads a file's first 64 KiB to tell what it is: a bounded range, never the whole file. */
const HEAD_PROBE = 'bytes=0-65535';

/** Ranges the decode asked the CDN for, in order (planning's first look is a bounded head, bytes=0-65535). */
const cdnRanges = () => standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/')).map((q) => q.range);

describe('resuming inside a file fetched from the Hub', () => {
  it('Ctrl-C on a stalled transfer exits 130 keeping the prefix; the rerun fetches only the rest and verifies', async () => {
    expect(await interruptStalled()).toMatch(/interrupted by SIGINT/);
    const kept = await keptBytes();
    // Half the file was sent: whole chunks of it were written and recorded, nothing beyond.
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(SIZE / 2);
    expect(kept % 4096).toBe(0);
    expect((await stat(join(out(), '.metharme-xor', 'partial', NAME))).size).toBeGreaterThanOrEqual(kept);
    expect(await finalNames(out())).toEqual([]);

    standIn.hub.requests.length = 0;
    const rerun = await runCli(args('--json'), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    const doc = jsonDoc(rerun.stdout);
    expect(doc.files[0]).toMatchObject({ name: NAME, status: 'verified', resumedAt: kept });
    expect(rerun.stderr + rerun.stdout).not.toMatch(/fetching it again/);
    expect(cdnRanges()).toEqual([HEAD_PROBE, `bytes=${kept}-`]);
    expect(await fileSha256(join(out(), NAME))).toBe(sha256(fine));
    expect(await keptBytes()).toBe(0);
    const text = await runCli(args('--force'), { env: env() });
    expect(text.code, text.stderr).toBe(0);
  });

  it('kill -9 mid-transfer: the next run resumes from the last checkpoint and verifies; the message says so', async () => {
    const run = await startStalled();
    const kept = await keptBytes();
    run.child.kill('SIGKILL');
    await run.closed;
    standIn.hub.requests.length = 0;
    const rerun = await runCli(args(), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(new RegExp(`${NAME}: resuming at byte ${kept} of ${SIZE}; the ${kept} bytes kept are hashed again from disk`));
    expect(cdnRanges()).toEqual([HEAD_PROBE, `bytes=${kept}-`]);
    expect(await fileSha256(join(out(), NAME))).toBe(sha256(fine));
    expect(await finalNames(out())).toEqual([NAME]);
  });

  it('a base changed since the interruption: restarts from byte 0, says why, and verifies', async () => {
    await interruptStalled();
    await utimes(join(baseDir, NAME), new Date(), new Date(Date.now() - 86_400_000));
    standIn.hub.requests.length = 0;
    const rerun = await runCli(args(), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/an earlier run was interrupted in this file; restarting from byte 0 \(the kept part no longer matches its inputs\)/);
    expect(cdnRanges()).toEqual([HEAD_PROBE, 'bytes=0-']);
    expect(await fileSha256(join(out(), NAME))).toBe(sha256(fine));
  });

  it('a file changed on the Hub since the interruption (a new commit, other bytes): restarts from byte 0 and says why', async () => {
    await interruptStalled();
    const fine2 = checkpointBytes(SIZE, 8);
    standIn.hub.repos.set('Org/big-xor', { commit: 'c3'.repeat(20), files: new Map([[`xor/${NAME}`, referenceXor(fine2, baseBytes)]]) });
    await writeFile(manifest, `${sha256(fine2)}  ${NAME}\n`);
    standIn.hub.requests.length = 0;
    const rerun = await runCli(args('--json'), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    const doc = jsonDoc(rerun.stdout);
    expect(doc.files[0]).toMatchObject({ status: 'verified', resumedAt: null });
    expect((doc as unknown as { notes: string[] }).notes).toContain(`${NAME}: an earlier run was interrupted in this file; restarting from byte 0 (the kept part no longer matches its inputs)`);
    expect(cdnRanges()).toEqual([HEAD_PROBE, 'bytes=0-']);
    expect(await fileSha256(join(out(), NAME))).toBe(sha256(fine2));
  });

  it('a kept prefix tampered with is caught by the rebuilt payload SHA-256, fetched again whole, and verified', async () => {
    await interruptStalled();
    await flipByte(join(out(), '.metharme-xor', 'partial', NAME), 100_000);
    standIn.hub.requests.length = 0;
    const rerun = await runCli(args('--json'), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/the bytes received do not match the SHA-256 the Hub lists; fetching it again/);
    expect(jsonDoc(rerun.stdout).files[0]).toMatchObject({ status: 'verified', resumedAt: null });
    expect(cdnRanges().at(-1)).toBe('bytes=0-');
    expect(await fileSha256(join(out(), NAME))).toBe(sha256(fine));
  });

  it('a local XOR file decoded against a base on the Hub resumes too, judged by the published digest', async () => {
    const local = await localXorWithHubBase();
    // The base's first request is the decode's (planning reads only the payload's head, locally).
    await interruptStalled({ args: local('--jobs', '1'), stalls: `base/${NAME}`, faults: ['stall'] });
    const kept = await keptBytes();
    const rerun = await runCli(local('--json'), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(jsonDoc(rerun.stdout).files[0]).toMatchObject({ status: 'verified', resumedAt: kept });
    expect(await fileSha256(join(out(), NAME))).toBe(sha256(fine));
  });

  it('with --no-verify nothing vouches for a kept part of a local XOR file: it is not kept, and the rerun starts over', async () => {
    const local = await localXorWithHubBase('--no-verify');
    // With nothing to verify against, the base's first bytes are read first (the structure check).
    standIn.hub.fault(`base/${NAME}`, 'pass', 'stall');
    const child = spawn(process.execPath, [BIN, ...local('--jobs', '1')], { env: env(), stdio: 'ignore' });
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const temp = join(out(), '.metharme-xor', 'partial', NAME);
    const deadline = Date.now() + 20_000;
    // The stall is reached once the base's CDN request is made; give the decode a moment past it.
    while (standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/')).length < 2) {
      if (Date.now() > deadline) throw new Error('the base was never requested');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    expect(await closed).toBe(130);
    expect(await stat(temp).catch(() => undefined)).toBeUndefined();
    expect(await keptBytes()).toBe(0);
    standIn.hub.requests.length = 0;
    const rerun = await runCli(local('--json'), { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(jsonDoc(rerun.stdout).files[0]).toMatchObject({ status: 'unverified', resumedAt: null });
    expect(await fileSha256(join(out(), NAME))).toBe(sha256(fine));
  });
});
