/**
 * End to end (issue 19, items 7-9): a hostile Hub listing or a tampered cache never makes the tool
 * read or write outside where it should. The Hub is a stand-in on 127.0.0.1.
 */
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { fileSha256, finalNames, runCli, sha256, SHARD1, TORCH_BASE, TORCH_FINE, TORCH_SUMS, TORCH_XOR } from '../support/helpers.js';
import { folderFiles, standInEnv, useHubStandIn } from '../hub/stand-in.js';

const COMMIT = 'c3'.repeat(20);
const SOURCE = 'hf://Org/tiny-xor/xor_encoded_files';

const standIn = useHubStandIn();
beforeEach(async () => {
  standIn.hub.repos.set('Org/tiny-xor', { commit: COMMIT, files: await folderFiles(TORCH_XOR, 'xor_encoded_files') });
});

const env = () => standInEnv(standIn.hub, standIn.work);
const out = () => join(standIn.work, 'out');
const decodeHub = (...extra: string[]) => runCli(['decode', out(), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS, ...extra], { env: env() });
const cacheRepo = () => join(standIn.work, 'hf-home', 'hub', 'models--Org--tiny-xor');

/** Rewrites the listing entry of `name` (a hostile Hub). */
function rewrite(name: string, change: (e: Record<string, unknown>) => Record<string, unknown>) {
  standIn.hub.repos.get('Org/tiny-xor')!.listing = (entries) => entries.map((e) => (e.path === `xor_encoded_files/${name}` ? change(e) : e));
}

describe('a hostile listing', () => {
  it.each([[[]], [['--no-verify']]])('an LFS object id that is a path never reads a local file into the output (%j): exit 2, nothing written', async (extra) => {
    const secret = Buffer.from('{"token": "hf_secret"}\n');
    await mkdir(join(standIn.work, 'hf-home', 'private'), { recursive: true });
    await writeFile(join(standIn.work, 'hf-home', 'private', 'creds.json'), secret);
    await mkdir(join(cacheRepo(), 'blobs'), { recursive: true });
    rewrite('config.json', (e) => ({ ...e, size: secret.length, lfs: { oid: '../../../private/creds.json', size: secret.length, pointerSize: 134 } }));
    const r = await decodeHub(...extra);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the Hub's listing of .* gives "xor_encoded_files\/config\.json" the LFS object id "\.\.\/\.\.\/\.\.\/private\/creds\.json", which is not a SHA-256/);
    expect(await finalNames(out()).catch(() => [])).toEqual([]);
  });

  it.each([
    ['a backslash path', 'xor_encoded_files/a\\..\\..\\b.json', /which is not one plain file name \(it holds a path separator\)/],
    ['a path outside the folder', 'elsewhere/config.json', /has "elsewhere\/config\.json", outside the folder asked for/],
    ['a ".." segment', 'xor_encoded_files/../config.json', /with an empty, "\." or "\.\." segment/],
    ['a colon', 'xor_encoded_files/config.json:stream', /it holds ":"/],
  ])('%s is refused before any file request (exit 2)', async (_what, path, message) => {
    rewrite('config.json', (e) => ({ ...e, path }));
    const r = await decodeHub();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(standIn.hub.requests.filter((q) => q.url.includes('/resolve/') || q.url.startsWith('/cdn/'))).toEqual([]);
  });

  it('a path listed twice is refused before any file request (exit 2)', async () => {
    // Beside the entry, on the page that holds it (the listing comes in pages).
    standIn.hub.repos.get('Org/tiny-xor')!.listing = (entries) => entries.flatMap((e) => (e.path === 'xor_encoded_files/config.json' ? [e, { ...e, size: 5 }] : [e]));
    const r = await decodeHub();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the Hub's listing of .* has "xor_encoded_files\/config\.json" twice; the listing is not what the Hub sends/);
    expect(standIn.hub.requests.filter((q) => q.url.includes('/resolve/') || q.url.startsWith('/cdn/'))).toEqual([]);
  });

  it('two names equal but for case (one file on macOS and Windows) are refused before any file request (exit 2)', async () => {
    standIn.hub.repos.get('Org/tiny-xor')!.listing = (entries) => entries.flatMap((e) => (e.path === 'xor_encoded_files/config.json' ? [e, { ...e, path: 'xor_encoded_files/Config.json' }] : [e]));
    const r = await decodeHub();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/hf:\/\/.*Config\.json: would be written as Config\.json, which is also the name of hf:\/\/.*config\.json \("config\.json" differs from it only in case or Unicode normalisation/);
    expect(standIn.hub.requests.filter((q) => q.url.includes('/resolve/') || q.url.startsWith('/cdn/'))).toEqual([]);
    expect(await finalNames(out()).catch(() => [])).toEqual([]);
  });

  it('a negative or fractional size is bad input (exit 2), not a crash', async () => {
    for (const size of [-5, 1.5]) {
      rewrite('config.json', (e) => ({ ...e, size }));
      const r = await decodeHub();
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`gives "xor_encoded_files/config\\.json" the size ${size}`));
    }
  });
});

describe('a Hub that fails', () => {
  it('5xx without Retry-After: each retry waits longer than the one before (0.5 s, 1 s, ...), then the file decodes, verified (exit 0)', async () => {
    standIn.hub.fault(`xor_encoded_files/${SHARD1}`, 'pass', '500', '500');
    const r = await decodeHub();
    expect(r.code, r.stderr).toBe(0);
    const tries = standIn.hub.requests.filter((q) => decodeURIComponent(q.url).includes(SHARD1)).map((q) => q.at);
    // Planning's look at the head, then the decode: 500, 500, then the answer.
    expect(tries.length).toBeGreaterThanOrEqual(4);
    const gaps = tries.slice(-3).map((t, i, a) => (i === 0 ? 0 : t - a[i - 1]!)).slice(1);
    // Lower bounds only: a loaded machine waits longer, never shorter.
    expect(gaps[0]).toBeGreaterThanOrEqual(450);
    expect(gaps[1]).toBeGreaterThanOrEqual(950);
    for (const name of await readdir(TORCH_FINE)) expect(await fileSha256(join(out(), name)), name).toBe(await fileSha256(join(TORCH_FINE, name)));
  });
});

describe('a tampered cache', () => {
  it('a cached blob whose bytes do not match its name is ignored and the file downloaded, verified (exit 0)', async () => {
    const blobs = join(cacheRepo(), 'blobs');
    await mkdir(blobs, { recursive: true });
    const bytes = await readFile(join(TORCH_XOR, SHARD1));
    const corrupt = Buffer.from(bytes);
    corrupt[corrupt.length >> 1]! ^= 0xff;
    await writeFile(join(blobs, sha256(bytes)), corrupt);
    const r = await decodeHub();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/this cached blob does not match the SHA-256 it is named by; ignoring it and downloading pytorch_model-00001-of-00003\.bin/);
    for (const name of await readdir(TORCH_FINE)) expect(await fileSha256(join(out(), name)), name).toBe(await fileSha256(join(TORCH_FINE, name)));
    expect(standIn.hub.requests.some((q) => q.url.startsWith('/cdn/') && decodeURIComponent(q.url).includes(SHARD1))).toBe(true);
  });

  it('offline, a ref that holds a path instead of a commit is not followed (exit 2)', async () => {
    const elsewhere = join(standIn.work, 'elsewhere');
    await cp(TORCH_XOR, join(elsewhere, 'xor_encoded_files'), { recursive: true });
    await mkdir(join(cacheRepo(), 'refs'), { recursive: true });
    await mkdir(join(cacheRepo(), 'snapshots'), { recursive: true });
    await writeFile(join(cacheRepo(), 'refs', 'main'), '../../../../elsewhere');
    const r = await runCli(['decode', out(), SOURCE, TORCH_BASE, '--manifest', TORCH_SUMS], { env: { ...env(), HF_HUB_OFFLINE: '1' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/HF_HUB_OFFLINE is set and the cache has no snapshot of hf:\/\/Org\/tiny-xor\/xor_encoded_files/);
    expect(await finalNames(out()).catch(() => [])).toEqual([]);
  });
});
