/**
 * decode --gguf from hf:// (issue 21, item 3): a shard received corrupt is fetched again and goes into
 * the GGUF once, whole. Regression: the second attempt placed the shard's tensors a second time, and
 * the header refused the doubled names (internal error, exit 70).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { finalNames, ROOT, runCli, writeRelease } from '../support/helpers.js';
import { folderFiles, standInEnv, useHubStandIn } from '../hub/stand-in.js';

const standIn = useHubStandIn();
const FIXTURES = join(ROOT, 'fixtures', 'gguf');
const SHARD = 'pytorch_model-00001-of-00002.bin';
const JUDGE = join(ROOT, '.judge', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');

/** Each tensor's name, type, shape and bytes, as llama.cpp's GGUF reader finds them (node-llama-cpp). */
async function tensorsOf(path: string): Promise<Map<string, string>> {
  const nlc = await import(pathToFileURL(JUDGE).href);
  const info = await nlc.readGgufFileInfo(path, { readTensorInfo: true });
  const bytes = await readFile(path);
  const sorted = [...info.fullTensorInfo].sort((a, b) => Number(a.fileOffset) - Number(b.fileOffset));
  const start = (t: { fileOffset: number | bigint }) => Number(t.fileOffset);
  return new Map(
    sorted.map((t, i) => [`${t.name} ${t.ggmlType} ${t.dimensions.join('x')}`, bytes.subarray(start(t), i + 1 < sorted.length ? start(sorted[i + 1]) : bytes.length).toString('base64')]),
  );
}

it('a shard received corrupt is fetched again and written into the GGUF once', async () => {
  const names = await readdir(join(FIXTURES, 'bfloat16'));
  const files = await Promise.all(
    names.map(async (name) => ({ name, fine: await readFile(join(FIXTURES, 'bfloat16', name)), base: await readFile(join(FIXTURES, 'float16', name)), plain: name.endsWith('.json') })),
  );
  const r = await writeRelease(join(standIn.work, 'release'), files);
  standIn.hub.repos.set('Org/tiny-xor', { commit: 'a1'.repeat(20), files: await folderFiles(r.xorDir, 'xor_encoded_files') });
  standIn.hub.fault(`xor_encoded_files/${SHARD}`, 'pass', 'corrupt');
  const out = join(standIn.work, 'out');
  const run = await runCli(['decode', out, 'hf://Org/tiny-xor/xor_encoded_files', r.baseDir, '--manifest', r.manifest, '--gguf', '--json'], { env: standInEnv(standIn.hub, standIn.work) });
  expect(run.code, run.stderr).toBe(0);
  expect(run.stderr).toMatch(/pytorch_model-00001-of-00002\.bin: the bytes received do not match the SHA-256 the Hub lists; fetching it again/);
  const doc = JSON.parse(run.stdout);
  expect(doc.gguf).toMatchObject({ type: 'BF16', tensors: 21, written: true, verified: true });
  expect(await finalNames(out)).toContain('out-BF16.gguf');

  // The same GGUF as from a release read from disk, which nothing corrupted.
  const local = join(standIn.work, 'local');
  const plain = await runCli(['decode', local, r.xorDir, r.baseDir, '--manifest', r.manifest, '--gguf']);
  expect(plain.code, plain.stderr).toBe(0);
  const received = await tensorsOf(join(out, 'out-BF16.gguf'));
  expect(received.size).toBe(21);
  expect(received).toEqual(await tensorsOf(join(local, 'local-BF16.gguf')));
}, 60_000);
