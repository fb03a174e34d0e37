/**
 * Resuming decode --gguf (issue 21, item 3): a run cut off after a shard went into the GGUF, even by
 * kill -9, goes on from there: the shard is neither fetched nor decoded again, and the GGUF is the
 * one an uninterrupted run writes, byte for byte. A kept part changed since, or a run that would lay
 * the GGUF out otherwise, starts again, as does a kept file that is a copy; a run without --gguf removes
 * what was kept.
 */
import { spawn } from 'node:child_process';
import { copyFile, open, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { BIN, fileSha256, ROOT, runCli, writeRelease } from '../support/helpers.js';
import { folderFiles, standInEnv, useHubStandIn } from '../hub/stand-in.js';

const standIn = useHubStandIn();
const FIXTURES = join(ROOT, 'fixtures', 'gguf');
const FIRST = 'pytorch_model-00001-of-00002.bin';
const SECOND = 'pytorch_model-00002-of-00002.bin';
const SOURCE = 'hf://Org/tiny-xor/xor_encoded_files';
const env = () => standInEnv(standIn.hub, standIn.work);
let release: Awaited<ReturnType<typeof writeRelease>>;
let repoFiles: Map<string, Buffer>;

beforeEach(async () => {
  const names = await readdir(join(FIXTURES, 'bfloat16'));
  const files = await Promise.all(
    names.map(async (name) => ({ name, fine: await readFile(join(FIXTURES, 'bfloat16', name)), base: await readFile(join(FIXTURES, 'float16', name)), plain: name.endsWith('.json') })),
  );
  release = await writeRelease(join(standIn.work, 'release'), files);
  repoFiles = await folderFiles(release.xorDir, 'xor_encoded_files');
  standIn.hub.repos.set('Org/tiny-xor', { commit: 'a1'.repeat(20), files: repoFiles });
});

/** The Hub as at the start, with no fault left over (a stall the cut-off run did not reach) and no requests recorded. */
function freshHub(): void {
  standIn.hub.reset();
  standIn.hub.repos.set('Org/tiny-xor', { commit: 'a1'.repeat(20), files: repoFiles });
}

const out = () => join(standIn.work, 'out');
const stateFile = () => join(out(), '.metharme-xor', 'state.json');
const args = (type: string) => ['decode', out(), SOURCE, release.baseDir, '--manifest', release.manifest, '--gguf', type];

/** Decodes into a GGUF until the first shard is recorded in it, the second stalled on the network, then kills the run with `signal`. */
async function cutAfterFirstShard(type: string, signal: NodeJS.Signals): Promise<{ placed: [string, number, number][] }> {
  // The probe of the second shard passes; the decode's request for it stalls.
  standIn.hub.fault(`xor_encoded_files/${SECOND}`, 'pass', 'stall');
  const child = spawn(process.execPath, [BIN, ...args(type), '--jobs', '1'], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((r) => child.on('close', (code, sig) => r(code ?? (sig === 'SIGKILL' ? 137 : null))));
  const deadline = Date.now() + 20_000;
  let entry: { shards: Record<string, { placed: [string, number, number][] }> } | undefined;
  while (!entry?.shards[FIRST]) {
    if (Date.now() > deadline) throw new Error(`${FIRST} was never recorded in the GGUF; stderr: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
    entry = JSON.parse((await readFile(stateFile(), 'utf8').catch(() => '{}')) || '{}').gguf;
  }
  child.kill(signal);
  expect(await closed, stderr).toBe(signal === 'SIGKILL' ? 137 : 130);
  return entry.shards[FIRST]!;
}

/** The GGUF an uninterrupted run writes from the same release on disk, into a folder of the same name. */
async function reference(type: string, label: string): Promise<string> {
  const dir = join(standIn.work, 'reference', 'out');
  const r = await runCli(['decode', dir, release.xorDir, release.baseDir, '--manifest', release.manifest, '--gguf', type]);
  expect(r.code, r.stderr).toBe(0);
  return fileSha256(join(dir, `out-${label}.gguf`));
}

const shardGets = (name: string) => standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/') && q.url.includes(encodeURIComponent(name)));

describe('decode --gguf cut off after a shard', () => {
  // Q8_0's tensors are checksummed as they are written; a lossless GGUF's (BF16 here) take the zip's
  // CRC-32 of their storages, but for q and k, whose rows are reordered.
  for (const [type, label] of [['q8_0', 'Q8_0'], ['auto', 'BF16']] as const) {
    it(`${label}: after kill -9, the next run takes the shard from the kept GGUF, fetching and decoding only the rest: the same GGUF`, async () => {
      await cutAfterFirstShard(type, 'SIGKILL');
      freshHub();
      const rerun = await runCli([...args(type), '--json', '--strict'], { env: env() });
      expect(rerun.code, rerun.stderr).toBe(0);
      const doc = JSON.parse(rerun.stdout);
      expect(doc.notes).toContain(`out-${label}.gguf: resuming the GGUF an earlier run kept; 1 of 2 shards are in it (each tensor's CRC-32 checked again)`);
      expect(doc.files.find((f: { name: string }) => f.name === FIRST)).toMatchObject({ status: 'skipped', note: 'in the GGUF from an earlier run, which verified it; its tensors checked again by CRC-32' });
      expect(doc.files.find((f: { name: string }) => f.name === SECOND)).toMatchObject({ status: 'verified' });
      // Taken from the kept GGUF, it still counts as verified: --strict passes.
      expect(doc.totals.notVerified).toBe(0);
      expect(doc.gguf).toMatchObject({ type: label, written: true, verified: true });
      // The first shard was not downloaded again: its one request is the bounded probe the plan makes
      // of every file. The second shard's decode fetched it after its probe.
      expect(shardGets(FIRST).map((q) => q.range)).toEqual([expect.stringMatching(/^bytes=0-\d+$/)]);
      expect(shardGets(SECOND).length).toBe(2);
      expect(await fileSha256(join(out(), `out-${label}.gguf`))).toBe(await reference(type, label));
      // Finished: nothing of the GGUF is left to resume.
      expect(JSON.parse(await readFile(stateFile(), 'utf8')).gguf).toBeUndefined();
      expect(await readdir(join(out(), '.metharme-xor', 'partial')).catch(() => [])).toEqual([]);
    }, 90_000);

    it(`${label}: a tensor of a kept part changed since is caught: that shard is fetched and decoded again, and the GGUF is right`, async () => {
      const { placed } = await cutAfterFirstShard(type, 'SIGINT');
      // A tensor whose rows are not reordered: for BF16, one checked by the zip's CRC-32.
      const [name, at] = placed.find(([n]) => !/\.(q|k)_proj\./.test(n))!;
      expect(name).toMatch(/weight$/);
      const kept = await open(join(out(), '.metharme-xor', 'partial', `out-${label}.gguf`), 'r+');
      const byte = Buffer.alloc(1);
      await kept.read(byte, 0, 1, at + 5);
      byte[0] ^= 0x40;
      await kept.write(byte, 0, 1, at + 5);
      await kept.close();
      freshHub();
      const rerun = await runCli(args(type), { env: env() });
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(rerun.stdout).toContain(`${FIRST}: its part of the GGUF kept by an earlier run cannot be used (changed since, or no longer vouched for); decoding it again`);
      expect(shardGets(FIRST).length).toBe(2);
      expect(await fileSha256(join(out(), `out-${label}.gguf`))).toBe(await reference(type, label));
    }, 90_000);
  }

  it('a kept GGUF that is a copy (a restored cache, a file put in its place) is not trusted: the GGUF starts again', async () => {
    // What vouches for a kept part is a CRC-32, which catches damage, not a file made to match it: only
    // the very file this run's predecessor wrote (its inode) is resumed. Same bytes, new inode here.
    await cutAfterFirstShard('q8_0', 'SIGINT');
    const kept = join(out(), '.metharme-xor', 'partial', 'out-Q8_0.gguf');
    await copyFile(kept, `${kept}.copy`);
    await rename(`${kept}.copy`, kept);
    freshHub();
    const rerun = await runCli([...args('q8_0'), '--json'], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout).notes).toContain('out-Q8_0.gguf: an earlier run kept this GGUF unfinished; starting it again (its file is gone or was replaced)');
    expect(shardGets(FIRST).length).toBe(2);
    expect(await fileSha256(join(out(), 'out-Q8_0.gguf'))).toBe(await reference('q8_0', 'Q8_0'));
  }, 90_000);

  it('another type starts the GGUF again, and a run without --gguf removes what was kept', async () => {
    await cutAfterFirstShard('q8_0', 'SIGINT');
    freshHub();
    const other = await runCli(args('auto'), { env: env() });
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toContain('out-Q8_0.gguf: an earlier run kept this GGUF unfinished; starting it again (it was laid out for another type, release or settings)');
    expect(shardGets(FIRST).length).toBe(2);
    expect(await fileSha256(join(out(), 'out-BF16.gguf'))).toBe(await reference('auto', 'BF16'));
    expect(await readdir(join(out(), '.metharme-xor', 'partial')).catch(() => [])).toEqual([]);

    await cutAfterFirstShard('q8_0', 'SIGINT');
    freshHub();
    const plain = await runCli(['decode', join(standIn.work, 'out'), SOURCE, release.baseDir, '--manifest', release.manifest, '--force'], { env: env() });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('out-Q8_0.gguf: an earlier --gguf run kept this GGUF unfinished; removed, as this run writes no GGUF');
    expect(await readdir(join(out(), '.metharme-xor', 'partial')).catch(() => [])).toEqual([]);
    expect(JSON.parse(await readFile(stateFile(), 'utf8')).gguf).toBeUndefined();
  }, 120_000);
});
