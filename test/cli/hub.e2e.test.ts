/**
 * End to end: decode straight from a Hub stand-in (a real HTTP server on 127.0.0.1 speaking the Hub's
 * contract), the XOR files never stored, on the real-checkpoint release, with faults injected.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN, fileSha256, finalNames, removeDir, runCli, sha256, SHARD1, SHARD2, TEST_TLS, TORCH_BASE, TORCH_FINE, TORCH_SUMS, TORCH_XOR } from '../support/helpers.js';
import { ProxyStandIn } from '../hub/proxy-stand-in.js';
import { folderFiles, HubStandIn, standInEnv, useHubStandIn } from '../hub/stand-in.js';

const COMMIT = 'a1'.repeat(20);
const SOURCE = 'hf://Org/tiny-xor/xor_encoded_files';
const BASE_COMMIT = 'b0'.repeat(20);
const BASE_SOURCE = 'hf://Org/llama-base/hf-format';

const standIn = useHubStandIn();
beforeEach(async () => {
  standIn.hub.repos.set('Org/tiny-xor', { commit: COMMIT, files: await folderFiles(TORCH_XOR, 'xor_encoded_files') });
  standIn.hub.repos.set('Org/llama-base', { commit: BASE_COMMIT, files: await folderFiles(TORCH_BASE, 'hf-format'), gated: true, token: 'hf_base' });
});

const env = () => standInEnv(standIn.hub, standIn.work);

function decodeHub(...extra: string[]) {
  return runCli(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS, ...extra], { env: env() });
}

async function expectFineTune(out: string) {
  for (const name of await readdir(TORCH_FINE)) expect(await fileSha256(join(out, name)), name).toBe(await fileSha256(join(TORCH_FINE, name)));
}

/**
 * Runs `args` (a decode into work/out) with the transfer of SHARD1 stalled half-way, and Ctrl-C once
 * the state shows the shard started: the run must end as interrupted (130).
 */
async function interruptInShard1(args: string[]) {
  // Planning reads the first bytes; the decode's own request is the one that stalls.
  standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'stall');
  const child = spawn(process.execPath, [BIN, ...args, '--jobs', '1'], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const state = join(standIn.work, 'out', '.metharme-xor', 'state.json');
  const deadline = Date.now() + 20_000;
  while (!(await readFile(state, 'utf8').catch(() => '')).includes(`"${SHARD1}"`)) {
    if (Date.now() > deadline) throw new Error(`${SHARD1} was never started; stderr: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGINT');
  expect(await closed, stderr).toBe(130);
}

describe('decode from hf://', () => {
  it('decodes and verifies every file byte-exactly, at one commit, storing no XOR file', async () => {
    const r = await decodeHub('--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.source).toEqual({ repo: 'Org/tiny-xor', revision: 'main', commit: COMMIT });
    expect(doc.totals.verified).toBe(10);
    await expectFineTune(join(standIn.work, 'out'));
    // Every file request named the commit the revision resolved to.
    expect(standIn.hub.requests.filter((q) => q.url.includes('/resolve/')).every((q) => q.url.includes(`/resolve/${COMMIT}/`))).toBe(true);
    expect((await finalNames(join(standIn.work, 'out'))).sort()).toEqual((await readdir(TORCH_FINE)).sort());
    const text = await decodeHub();
    expect(text.stdout).toMatch(new RegExp(`^reading ${SOURCE} at commit ${COMMIT}$`, 'm'));
  });

  it('asks lean (issue 22, item 3): each side file fetched once, every probe bounded, every shard body fetched once to be decoded', async () => {
    const r = await decodeHub();
    expect(r.code, r.stderr).toBe(0);
    const fileRequests = (name: string) => standIn.hub.requests.filter((q) => q.method === 'GET' && (q.url.endsWith(`/${name}`) || q.url.includes(`path=${encodeURIComponent(`xor_encoded_files/${name}`)}`) || q.url.includes(`xor_encoded_files/${name}`)));
    for (const name of ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer_config.json', 'added_tokens.json', 'pytorch_model.bin.index.json', 'tokenizer.model']) {
      expect(fileRequests(name).length, name).toBe(1);
    }
    // A shard's body: one look while planning (these shards are smaller than the 64 KiB a look reads;
    // a larger file's look is bounded, see hub-resume) and one read to decode; the redirect is reused.
    for (const shard of [SHARD1, SHARD2]) expect(fileRequests(shard).filter((q) => q.url.startsWith('/cdn/')), shard).toHaveLength(2);
  });

  it('cut connections, an ignored Range, an expired CDN URL and a 429 all end verified', async () => {
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'cut', 'ignore-range');
    standIn.hub.fault(`xor_encoded_files/${SHARD2}`, 'cut', 'cdn-403', '429');
    const r = await decodeHub();
    expect(r.code, r.stderr).toBe(0);
    await expectFineTune(join(standIn.work, 'out'));
  });

  it('bytes corrupted once are caught by the listing\'s SHA-256 and fetched again; twice, the file fails with cause xor-file', async () => {
    // The first request is planning's look at the first bytes; the fault hits the decode's.
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'corrupt');
    const once = await decodeHub();
    expect(once.code, once.stderr).toBe(0);
    expect(once.stderr).toMatch(/the bytes received do not match the SHA-256 the Hub lists; fetching it again/);
    await removeDir(join(standIn.work, 'out'));
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'corrupt', 'corrupt');
    const twice = await decodeHub('--json');
    expect(twice.code).toBe(1);
    const f = JSON.parse(twice.stdout).files.find((x: { name: string }) => x.name === SHARD1);
    expect(f).toMatchObject({ status: 'mismatch', cause: 'xor-file' });
    expect(twice.stderr).toMatch(/does not match the SHA-256 published in the Hub's listing/);
    expect(await finalNames(join(standIn.work, 'out'))).not.toContain(SHARD1);
  });

  it('--safetensors from the Hub: a shard received corrupt, whose stream may not even parse, is fetched again and written', async () => {
    // Regression: the conversion's refusal of the corrupt stream ended the run (exit 3) before its
    // digest could send the shard to be fetched again.
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'corrupt');
    const r = await decodeHub('--safetensors', '--jobs', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/pytorch_model-00001-of-00003\.bin: the bytes received do not match the SHA-256 the Hub lists; fetching it again/);
    const names = await finalNames(join(standIn.work, 'out'));
    expect(names).toContain('model-00001-of-00003.safetensors');
    expect(names).not.toContain(SHARD1);
  });

  it('--safetensors from the Hub checks the records as they arrive: a failed shard names its tensors without a third download', async () => {
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'corrupt', 'corrupt');
    const r = await decodeHub('--json', '--keep-going', '--safetensors');
    expect(r.code, r.stderr).toBe(1);
    const f = JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === SHARD1);
    expect(f.status).toBe('mismatch');
    expect(f.diagnosis.some((d: { code: string }) => d.code === 'tensors-differ')).toBe(true);
    // Planning's look, then the two attempts: the diagnosis read nothing more from the Hub.
    const bodies = standIn.hub.requests.filter((q) => q.method === 'GET' && q.url.startsWith('/cdn/') && q.url.includes(SHARD1));
    expect(bodies).toHaveLength(3);
  });

  it('a listing whose SHA-256 is wrong never rejects a file that matches its published digest; without a published digest it decides', async () => {
    standIn.hub.repos.get('Org/tiny-xor')!.wrongOid = new Set([`xor_encoded_files/${SHARD1}`]);
    const r = await decodeHub('--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === SHARD1)).toMatchObject({ status: 'verified' });
    expect(r.stderr).toMatch(new RegExp(`${SHARD1}: the bytes received do not match the SHA-256 the Hub lists, yet ${SHARD1} matches its published digest, so it is kept`));
    expect(r.stderr).not.toMatch(/fetching it again/);
    await expectFineTune(join(standIn.work, 'out'));
    // No manifest: the listing's digest is the only one, so it decides (after one more fetch).
    const alone = await runCli(['decode', join(standIn.work, 'out2'), SOURCE, TORCH_BASE, '--json'], { env: env() });
    expect(alone.code).toBe(1);
    expect(JSON.parse(alone.stdout).files.find((x: { name: string }) => x.name === SHARD1)).toMatchObject({ status: 'mismatch', cause: 'xor-file' });
    expect(await finalNames(join(standIn.work, 'out2'))).not.toContain(SHARD1);
  });

  it('a repository that does not exist, and a gated one without a token: exit 2 with the fix', async () => {
    const missing = await runCli(['decode', join(standIn.work, 'out'), 'hf://Org/nothing/x', TORCH_BASE], { env: env() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/the repository does not exist on the Hub: Org\/nothing@main/);
    Object.assign(standIn.hub.repos.get('Org/tiny-xor')!, { gated: true, token: 'hf_ok' });
    const gated = await decodeHub();
    expect(gated.code).toBe(2);
    expect(gated.stderr).toMatch(/the Hub refused access .*set HF_TOKEN/);
    const withToken = await runCli(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS], { env: { ...env(), HF_TOKEN: 'hf_ok' } });
    expect(withToken.code, withToken.stderr).toBe(0);
  });

  it('a rerun at the same commit finds everything done from the state; after kill -9 the same command finishes', async () => {
    const args = [BIN, 'decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS, '--jobs', '1'];
    const child = spawn(process.execPath, args, { env: env(), stdio: 'ignore' });
    const closed = new Promise((r) => child.on('close', r));
    await new Promise((r) => setTimeout(r, 350));
    child.kill('SIGKILL');
    await closed;
    const rerun = await decodeHub();
    expect(rerun.code, rerun.stderr).toBe(0);
    await expectFineTune(join(standIn.work, 'out'));
    standIn.hub.requests.length = 0;
    const again = await decodeHub();
    expect(again.stdout).toMatch(/10 already present/);
    // Nothing was downloaded whole again: only planning's look at each file's first bytes.
    expect(standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/')).every((q) => q.range === 'bytes=0-')).toBe(true);
  });

  it('a payload whose blob is in the local Hugging Face cache is read from there, not downloaded', async () => {
    const blobs = join(standIn.work, 'hf-home', 'hub', 'models--Org--tiny-xor', 'blobs');
    await mkdir(blobs, { recursive: true });
    for (const shard of [SHARD1, SHARD2]) {
      const bytes = await readFile(join(TORCH_XOR, shard));
      await writeFile(join(blobs, sha256(bytes)), bytes);
    }
    const r = await decodeHub();
    expect(r.code, r.stderr).toBe(0);
    await expectFineTune(join(standIn.work, 'out'));
    const fetched = standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/')).map((q) => decodeURIComponent(q.url));
    expect(fetched.some((u) => u.includes(SHARD1) || u.includes(SHARD2))).toBe(false);
    expect(fetched.some((u) => u.includes('pytorch_model-00003-of-00003.bin'))).toBe(true);
  });

  it('HF_HUB_OFFLINE=1 decodes the snapshot in the local cache without a request; without one, exit 2 naming it', async () => {
    const repoDir = join(standIn.work, 'hf-home', 'hub', 'models--Org--tiny-xor');
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', 'main'), COMMIT);
    const offlineEnv = { ...env(), HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' };
    const none = await runCli(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE], { env: offlineEnv });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/HF_HUB_OFFLINE is set and the cache has no snapshot of hf:\/\/Org\/tiny-xor\/xor_encoded_files/);
    expect(none.stderr).toContain(`snapshots/${COMMIT}/xor_encoded_files: HF_HUB_OFFLINE is set`);
    // No commit known: the ref is named, never a "snapshots/xor_encoded_files" that is no snapshot (issue 22, item 1).
    const noRef = await runCli(['decode', join(standIn.work, 'out'), SOURCE.replace('tiny-xor', 'other-xor'), TORCH_BASE], { env: offlineEnv });
    expect(noRef.code).toBe(2);
    expect(noRef.stderr).not.toMatch(/snapshots\/xor_encoded_files/);
    expect(noRef.stderr).toMatch(/models--Org--other-xor\/refs\/main: HF_HUB_OFFLINE is set and the cache has no snapshot/);
    await cp(TORCH_XOR, join(repoDir, 'snapshots', COMMIT, 'xor_encoded_files'), { recursive: true });
    const r = await runCli(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS], { env: offlineEnv });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/HF_HUB_OFFLINE is set: reading hf:\/\/Org\/tiny-xor\/xor_encoded_files from the local cache/);
    expect(standIn.hub.requests).toEqual([]);
    await expectFineTune(join(standIn.work, 'out'));
  });
});

describe('a base folder on the Hub (hf:// as <base-dir>)', () => {
  const baseEnv = () => ({ ...env(), HF_TOKEN: 'hf_base' });
  const shardPath = `hf-format/${SHARD1}`;

  it('local XOR files with an hf:// base decode and verify byte-exactly; the base commit is printed and in --json', async () => {
    const r = await runCli(['decode', join(standIn.work, 'out'), TORCH_XOR, BASE_SOURCE, '--manifest', TORCH_SUMS, '--json'], { env: baseEnv() });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.baseSource).toEqual({ repo: 'Org/llama-base', revision: 'main', commit: BASE_COMMIT });
    expect(doc.source).toBeNull();
    expect(doc.totals.verified).toBe(10);
    await expectFineTune(join(standIn.work, 'out'));
    expect(standIn.hub.requests.filter((q) => q.url.includes('/resolve/')).every((q) => q.url.includes(`/resolve/${BASE_COMMIT}/`))).toBe(true);
    await removeDir(join(standIn.work, 'out'));
    const text = await runCli(['decode', join(standIn.work, 'out'), TORCH_XOR, BASE_SOURCE, '--manifest', TORCH_SUMS], { env: baseEnv() });
    expect(text.stdout).toMatch(new RegExp(`^reading the base ${BASE_SOURCE} at commit ${BASE_COMMIT}$`, 'm'));
  });

  it('both on the Hub: nothing but the outputs is stored, and a gated base without its token exits 2 naming HF_TOKEN', async () => {
    const r = await runCli(['decode', join(standIn.work, 'out'), SOURCE, BASE_SOURCE, '--manifest', TORCH_SUMS], { env: baseEnv() });
    expect(r.code, r.stderr).toBe(0);
    await expectFineTune(join(standIn.work, 'out'));
    expect((await finalNames(join(standIn.work, 'out'))).sort()).toEqual((await readdir(TORCH_FINE)).sort());
    const gated = await runCli(['decode', join(standIn.work, 'out2'), SOURCE, BASE_SOURCE], { env: env() });
    expect(gated.code).toBe(2);
    expect(gated.stderr).toMatch(/the Hub refused access to Org\/llama-base@main .*set HF_TOKEN/);
  });

  it('HF_HUB_OFFLINE=1 reads an hf:// base from its snapshot in the local cache, with no request', async () => {
    const repoDir = join(standIn.work, 'hf-home', 'hub', 'models--Org--llama-base');
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', 'main'), BASE_COMMIT);
    await cp(TORCH_BASE, join(repoDir, 'snapshots', BASE_COMMIT, 'hf-format'), { recursive: true });
    const r = await runCli(['decode', join(standIn.work, 'out'), TORCH_XOR, BASE_SOURCE, '--manifest', TORCH_SUMS], {
      env: { ...env(), HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/HF_HUB_OFFLINE is set: reading hf:\/\/Org\/llama-base\/hf-format from the local cache/);
    expect(standIn.hub.requests).toEqual([]);
    await expectFineTune(join(standIn.work, 'out'));
  });

  it('base bytes corrupted once in transit are fetched again; every time, the file fails with cause base, and says why', async () => {
    standIn.hub.fault(shardPath, 'corrupt');
    const once = await runCli(['decode', join(standIn.work, 'out'), TORCH_XOR, BASE_SOURCE, '--manifest', TORCH_SUMS], { env: baseEnv() });
    expect(once.code, once.stderr).toBe(0);
    expect(once.stderr).toMatch(new RegExp(`${BASE_SOURCE.replace('hf://Org/llama-base', `hf://Org/llama-base@${BASE_COMMIT}`)}/${SHARD1}: the bytes received do not match the SHA-256 the Hub lists; fetching it again`));
    await expectFineTune(join(standIn.work, 'out'));
    await removeDir(join(standIn.work, 'out'));
    standIn.hub.fault(shardPath, 'corrupt', 'corrupt');
    const twice = await runCli(['decode', join(standIn.work, 'out'), TORCH_XOR, BASE_SOURCE, '--manifest', TORCH_SUMS, '--json', '--keep-going'], { env: baseEnv() });
    expect(twice.code).toBe(1);
    const f = JSON.parse(twice.stdout).files.find((x: { name: string }) => x.name === SHARD1);
    expect(f).toMatchObject({ status: 'mismatch', cause: 'base' });
    expect(twice.stderr).toMatch(/the bytes received twice did not match the SHA-256 in the Hub's listing/);
  });

  it('a base on the Hub that is not the published conversion is judged by its listing, with no second download', async () => {
    const qk = new Map<string, Buffer>();
    for (const name of await readdir(join(TORCH_BASE, '..', 'llama-base-qk'))) qk.set(`hf-format/${name}`, await readFile(join(TORCH_BASE, '..', 'llama-base-qk', name)));
    standIn.hub.repos.set('Org/llama-base', { commit: BASE_COMMIT, files: qk });
    const r = await runCli(
      ['decode', join(standIn.work, 'out'), TORCH_XOR, BASE_SOURCE, '--manifest', TORCH_SUMS, '--base-manifest', join(TORCH_BASE, '..', 'SHA256SUMS.base'), '--json'],
      { env: env() },
    );
    expect(r.code).toBe(1);
    const failed = JSON.parse(r.stdout).files.filter((x: { status: string }) => x.status === 'mismatch');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0].cause).toBe('base');
    expect(r.stderr).toMatch(/base file hf:\/\/Org\/llama-base@(b0)+\/hf-format\/\S+ does not match .*SHA256SUMS\.base/);
    // Each base file was fetched for the decode only: the diagnosis used the listing's SHA-256.
    const shardGets = standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/') && q.url.includes(encodeURIComponent(failed[0].name)));
    expect(shardGets.length).toBeLessThanOrEqual(2);
  });
});

describe('gzip payloads on the Hub', () => {
  beforeEach(async () => {
    const files = new Map<string, Buffer>();
    for (const name of await readdir(TORCH_XOR)) {
      const bytes = await readFile(join(TORCH_XOR, name));
      files.set(`xor_encoded_files/${name}`, name.endsWith('.bin') ? gzipSync(bytes) : bytes);
    }
    standIn.hub.repos.set('Org/tiny-xor', { commit: COMMIT, files });
  });

  it('are inflated on the way and verified, a dropped connection picked up inside the compressed stream', async () => {
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'cut');
    const r = await decodeHub('--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.files.filter((f: { action: string }) => f.action === 'xor-gzip').length).toBe(3);
    await expectFineTune(join(standIn.work, 'out'));
  });

  it('corrupted compressed bytes are caught by the listing\'s SHA-256 of the gzip file and fetched again', async () => {
    standIn.hub.fault(`xor_encoded_files/${SHARD2}`, 'pass', 'corrupt');
    const r = await decodeHub();
    // Either the inflate fails on the damage or the digest catches it: never a wrong file kept.
    if (r.code === 0) {
      expect(r.stderr).toMatch(/the bytes received do not match the SHA-256 the Hub lists; fetching it again/);
      await expectFineTune(join(standIn.work, 'out'));
    } else {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${SHARD2}.*gzip payload is corrupt`));
      expect(await finalNames(join(standIn.work, 'out'))).not.toContain(SHARD2);
    }
  });

  it('an interrupted gzip file restarts from byte 0 on the next run, and says so', async () => {
    await interruptInShard1(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS]);
    const rerun = await decodeHub();
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(new RegExp(`${SHARD1}: an earlier run was interrupted in this file; restarting from byte 0 \\(a gzip payload cannot be resumed inside\\)`));
    await expectFineTune(join(standIn.work, 'out'));
  });
});

describe('converting from the Hub', () => {
  it('an interrupted --safetensors conversion restarts from byte 0 on the next run, says so, and converts', async () => {
    const args = ['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS, '--safetensors'];
    await interruptInShard1(args);
    const rerun = await runCli([...args, '--json'], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout).notes).toContain(`${SHARD1}: an earlier run was interrupted in this file; restarting from byte 0 (a conversion to safetensors cannot be resumed inside)`);
    expect(await finalNames(join(standIn.work, 'out'))).toContain('model-00001-of-00003.safetensors');
  });
});

describe('check-base on the Hub', () => {
  const BASE_SUMS = join(TORCH_BASE, '..', 'SHA256SUMS.base');
  const baseEnv = () => ({ ...env(), HF_TOKEN: 'hf_base' });

  it('judges LFS files by the listing\'s SHA-256 without downloading them, and fetches the small ones', async () => {
    const r = await runCli(['check-base', BASE_SOURCE, '--manifest', BASE_SUMS, '--json'], { env: baseEnv() });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.dir).toBe(BASE_SOURCE);
    expect(doc.totals.verified).toBe(doc.totals.files);
    expect(doc.totals.files).toBeGreaterThan(3);
    // No shard was downloaded: only the non-LFS files went through resolve, none to the CDN.
    expect(standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/'))).toEqual([]);
    expect(standIn.hub.requests.some((q) => q.url.includes('/resolve/') && q.url.endsWith('config.json'))).toBe(true);
  });

  it('a Hub base that is not the published conversion fails, file by file, with no download', async () => {
    const qk = new Map<string, Buffer>();
    for (const name of await readdir(join(TORCH_BASE, '..', 'llama-base-qk'))) qk.set(`hf-format/${name}`, await readFile(join(TORCH_BASE, '..', 'llama-base-qk', name)));
    standIn.hub.repos.set('Org/llama-base', { commit: BASE_COMMIT, files: qk });
    const r = await runCli(['check-base', BASE_SOURCE, '--manifest', BASE_SUMS, '--json'], { env: env() });
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.totals.mismatch).toBeGreaterThan(0);
    expect(doc.files.filter((f: { status: string }) => f.status === 'mismatch').every((f: { name: string }) => f.name.endsWith('.bin'))).toBe(true);
    expect(standIn.hub.requests.filter((q) => q.url.startsWith('/cdn/'))).toEqual([]);
  });

  it('verify does not take an hf:// folder: exit 2 saying what to do instead', async () => {
    const r = await runCli(['verify', SOURCE, '--manifest', TORCH_SUMS], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/verify checks a local folder; a folder on the Hub is decoded .*check-base/);
    expect(standIn.hub.requests).toEqual([]);
  });
});


describe('decode from an https Hub', () => {
  let secure: HubStandIn;
  const cert = join(TEST_TLS, 'cert.pem');
  beforeAll(async () => {
    secure = new HubStandIn();
    await secure.start({ tls: { key: await readFile(join(TEST_TLS, 'key.pem')), cert: await readFile(cert) } });
  });
  afterAll(() => secure.stop());
  beforeEach(() => {
    secure.reset();
    secure.repos.set('Org/tiny-xor', standIn.hub.repos.get('Org/tiny-xor')!);
  });
  const tlsEnv = (extra: Record<string, string> = {}) => ({ ...env(), HF_ENDPOINT: secure.endpoint, ...extra });

  it('decodes over TLS with a cut connection and an ignored Range, verified byte-exactly', async () => {
    secure.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'cut', 'ignore-range');
    const r = await runCli(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS], { env: tlsEnv({ NODE_EXTRA_CA_CERTS: cert }) });
    expect(r.code, r.stderr).toBe(0);
    await expectFineTune(join(standIn.work, 'out'));
    // Planning's look at the head, the decode's cut transfer, and its pick-up from the offset (answered from byte 0).
    const ranges = secure.requests.filter((q) => q.url.startsWith('/cdn/') && q.url.includes(encodeURIComponent(SHARD1))).map((q) => q.range);
    expect(ranges).toHaveLength(3);
    expect(ranges[2]).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('through HTTPS_PROXY (CONNECT tunnels) with a cut connection: verified byte-exactly; a proxy wanting credentials is exit 2 saying where they go', async () => {
    const proxy = new ProxyStandIn();
    await proxy.start();
    try {
      secure.fault(`xor_encoded_files/${SHARD1}`, 'pass', 'cut');
      const r = await runCli(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS], { env: tlsEnv({ NODE_EXTRA_CA_CERTS: cert, HTTPS_PROXY: proxy.url }) });
      expect(r.code, r.stderr).toBe(0);
      await expectFineTune(join(standIn.work, 'out'));
      // The proxy saw only tunnels to the Hub, one per request the Hub answered.
      expect(proxy.requests.length).toBe(secure.requests.length);
      expect(proxy.requests.every((q) => q.method === 'CONNECT' && q.target === new URL(secure.endpoint).host)).toBe(true);

      proxy.credentials = 'user:secret';
      const refused = await runCli(['decode', join(standIn.work, 'out2'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS], { env: tlsEnv({ NODE_EXTRA_CA_CERTS: cert, HTTPS_PROXY: proxy.url }) });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/the proxy in HTTPS_PROXY \(127\.0\.0\.1:\d+\) asks for credentials \(HTTP 407\); give them in the proxy's address: HTTPS_PROXY=http:\/\/user:password@127\.0\.0\.1:\d+/);
    } finally {
      await proxy.stop();
    }
  });

  it('a certificate nobody vouches for: exit 2 at once, naming NODE_EXTRA_CA_CERTS, nothing decoded', async () => {
    const t0 = Date.now();
    const r = await runCli(['decode', join(standIn.work, 'out'), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS], { env: tlsEnv() });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/certificate of 127\.0\.0\.1:\d+ \(or of its CDN\) was refused .*SELF_SIGNED.*NODE_EXTRA_CA_CERTS/);
    // Not retried: trying again cannot make a certificate trusted.
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await finalNames(join(standIn.work, 'out')).catch(() => [])).toEqual([]);
  });
});
