/** End to end: the verify, models and manifest commands. */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { md5, removeDir, runCli, runCommand, SAMPLE, SAMPLE_BASE, seededBytes, tempDir } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});

const BASE_SUMS = join(SAMPLE, 'llama-base.SHA256SUMS');

describe('verify', () => {
  it('reports every file ok and exits 0', async () => {
    const r = await runCli(['verify', SAMPLE_BASE, '--manifest', BASE_SUMS]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter((l) => /^verified +\S/.test(l))).toHaveLength(8);
    expect(r.stdout).toMatch(/^ok: 8\/8 files match .*llama-base\.SHA256SUMS/m);
  });

  it('reports a mismatch and a missing file, and exits 1', async () => {
    const dir = join(work, 'd');
    await cp(SAMPLE_BASE, dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), '{"changed": true}\n');
    await runCommand('rm', [join(dir, 'tokenizer.model')]);
    const r = await runCli(['verify', dir, '--manifest', BASE_SUMS, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    const status = Object.fromEntries(doc.files.map((f: { name: string; status: string }) => [f.name, f.status]));
    expect(status).toMatchObject({ 'config.json': 'mismatch', 'tokenizer.model': 'missing', 'tokenizer_config.json': 'verified' });
    expect(doc.totals).toMatchObject({ files: 8, verified: 6, mismatch: 1, missing: 1 });
    expect(r.stderr).toMatch(/^metharme-xor: error: config\.json: sha256 [0-9a-f]{64} does not match/m);
    expect(r.stderr).toMatch(/^metharme-xor: error: tokenizer\.model: missing from /m);
  });

  it.each([
    ['an absolute name', '/etc/passwd', /refusing absolute path/],
    ['a name with ..', '../../etc/passwd', /refusing path with "\.\."/],
  ])('refuses a manifest with %s (exit 2)', async (_what, name, pattern) => {
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${'a'.repeat(64)}  ${name}\n`);
    const r = await runCli(['verify', SAMPLE_BASE, '--manifest', sums]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stdout).toBe('');
  });

  it('accepts MD5 manifests in BSD format', async () => {
    const names = ['config.json', 'tokenizer.model'];
    const lines = await Promise.all(names.map(async (n) => `MD5 (${n}) = ${md5(await readFile(join(SAMPLE_BASE, n)))}`));
    const sums = join(work, 'MD5SUMS');
    await writeFile(sums, `${lines.join('\r\n')}\r\n`);
    const r = await runCli(['verify', SAMPLE_BASE, '--manifest', sums]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^verified +config\.json .*md5 ok/m);
  });

  it('recognises the model from the folder name, and fails on files that are not the release', async () => {
    const dir = join(work, 'pygmalion-7b');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), '{}');
    const r = await runCli(['verify', dir, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.manifest).toMatchObject({ label: 'pygmalion-7b', how: 'detected' });
    expect(doc.totals).toMatchObject({ files: 9, missing: 8, mismatch: 1 });
  });

  it('without a manifest or a recognisable path, asks for one (exit 2)', async () => {
    const r = await runCli(['verify', SAMPLE_BASE]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no manifest given and no model recognised from the path; pass --model <name>/);
  });

  it('verifies a large file against a --model manifest it does not match', async () => {
    const dir = join(work, 'x');
    await mkdir(dir);
    await writeFile(join(dir, 'tokenizer.model'), seededBytes(30_000_000, 3));
    const r = await runCli(['verify', dir, '--model', 'llama-13b-hf', '--json']);
    expect(r.code).toBe(1);
    const f = JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === 'tokenizer.model');
    expect(f).toMatchObject({ status: 'mismatch', bytes: 30_000_000, algorithm: 'sha256' });
  });
});

describe('models', () => {
  it('lists every built-in release and base with algorithm, file count and sources', async () => {
    const r = await runCli(['models']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^metharme-13b +release +sha256 +9 files +base: llama-13b-hf$/m);
    expect(r.stdout).toMatch(/^pygmalion-7b +release +md5\+sha256 +9 files +base: llama-7b-hf$/m);
    expect(r.stdout).toMatch(/^oasst-sft-6-llama-30b +release +md5 +14 files +base: llama-30b-hf$/m);
    expect(r.stdout).toMatch(/^llama-30b-hf +base +md5 +14 files$/m);
    expect(r.stdout).toMatch(/digests: PygmalionAI docs, "Metharme 13B Merged Weights"/);
  });

  it('--json gives the same data as JSON', async () => {
    const r = await runCli(['models', '--json']);
    const rows = JSON.parse(r.stdout) as { name: string; files: number; sources: string[] }[];
    expect(rows.map((m) => m.name)).toContain('metharme-7b');
    expect(rows.find((m) => m.name === 'metharme-13b')!.sources).toHaveLength(3);
  });
});

describe('manifest', () => {
  it('prints a built-in manifest that sha256sum -c accepts', async () => {
    const r = await runCli(['manifest', 'metharme-13b']);
    expect(r.code).toBe(0);
    const card = await readFile(join(SAMPLE, '..', 'metharme-13b.model-card.sha256'), 'utf8');
    expect(r.stdout).toBe(`# metharme-13b: Hugging Face model card PygmalionAI/metharme-13b (rhash --sha256)\n${card}`);
  });

  it('--all adds the alternatives as comments, and the result still parses as a manifest', async () => {
    const r = await runCli(['manifest', 'metharme-13b', '--all']);
    expect(r.stdout).toMatch(/^# also published \(PygmalionAI docs/m);
    expect(r.stdout).toMatch(/^# 07727e130b7e4ec66162920b4e090554e6c58e87d25b433ab8123eb3a55fd5e7  pytorch_model-00001-of-00003\.bin$/m);
    const file = join(work, 'm');
    await writeFile(file, r.stdout);
    await mkdir(join(work, 'empty'));
    const v = await runCli(['verify', join(work, 'empty'), '--manifest', file, '--json']);
    expect(JSON.parse(v.stdout).totals).toMatchObject({ files: 9, missing: 9 });
  });

  it('an unknown name exits 2', async () => {
    const r = await runCli(['manifest', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^metharme-xor: error: unknown model "nope"; known: /m);
  });
});
