/** End to end: encode for publishers, decoded back by metharme-xor and by the reference decoder. */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpointBytes, flipByte, HAS_NUMPY, REFERENCE_CODEC, removeDir, runCli, runCommand, seededBytes, sha256, tempDir } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});


/** A fine-tuned folder and its base: files longer, shorter and equal to their base, JSON, and a JSON with no base. */
async function models() {
  const fine = join(work, 'fine');
  const base = join(work, 'base');
  await mkdir(fine);
  await mkdir(base);
  const files: Record<string, { fine: Buffer; base?: Buffer }> = {
    'pytorch_model-00001-of-00002.bin': { fine: checkpointBytes(9_000_001, 1), base: checkpointBytes(9_000_001, 2) },
    'pytorch_model-00002-of-00002.bin': { fine: checkpointBytes(5_000_003, 3), base: checkpointBytes(3_000_000, 4) },
    'tokenizer.model': { fine: seededBytes(4_000, 5), base: seededBytes(70_000, 6) },
    'config.json': { fine: Buffer.from('{"use_cache": true}\n'), base: Buffer.from('{"use_cache": false}\n') },
    'added_tokens.json': { fine: Buffer.from('{"<|user|>": 32001}\n') },
  };
  for (const [name, f] of Object.entries(files)) {
    await writeFile(join(fine, name), f.fine);
    if (f.base) await writeFile(join(base, name), f.base);
  }
  return { fine, base, files };
}

async function expectSameFiles(dir: string, files: Record<string, { fine: Buffer }>) {
  for (const [name, f] of Object.entries(files)) {
    expect(sha256(await readFile(join(dir, name))), name).toBe(sha256(f.fine));
  }
}

describe('encode', () => {
  it.each([[[]], [['--compress']]])('round-trips through metharme-xor decode %j, verified by the SHA256SUMS it writes', async (flags) => {
    const { fine, base, files } = await models();
    const xor = join(work, 'xor_encoded_files');
    const e = await runCli(['encode', xor, fine, base, ...flags, '--json']);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    const report = JSON.parse(e.stdout);
    const actions = Object.fromEntries(report.files.map((f: { name: string; action: string }) => [f.name, f.action]));
    const xorAction = flags.length ? 'xor-gzip' : 'xor';
    expect(actions).toEqual({
      'pytorch_model-00001-of-00002.bin': xorAction,
      'pytorch_model-00002-of-00002.bin': xorAction,
      'tokenizer.model': xorAction,
      'config.json': 'copy',
      'added_tokens.json': 'copy',
    });
    // JSON ships plain, byte for byte.
    expect(await readFile(join(xor, 'config.json'))).toEqual(files['config.json']!.fine);
    // SHA256SUMS lists the fine-tuned files; SHA256SUMS.base the base files used.
    const sums = await readFile(join(xor, 'SHA256SUMS'), 'utf8');
    for (const [name, f] of Object.entries(files)) expect(sums).toContain(`${sha256(f.fine)}  ${name}\n`);
    const baseSums = await readFile(join(xor, 'SHA256SUMS.base'), 'utf8');
    expect(baseSums).toContain(`${sha256(files['tokenizer.model']!.base!)}  tokenizer.model\n`);
    expect(baseSums).not.toContain('added_tokens.json');
    // SHA256SUMS.xor lists the payload files as written (gzip included), for diagnosing a bad download.
    const payloadSums = await readFile(join(xor, 'SHA256SUMS.xor'), 'utf8');
    for (const name of Object.keys(files)) expect(payloadSums).toContain(`${sha256(await readFile(join(xor, name)))}  ${name}\n`);
    // Decode picks up the shipped SHA256SUMS on its own and verifies every file.
    const out = join(work, 'decoded');
    const d = await runCli(['decode', out, xor, base, '--json']);
    expect(d.code).toBe(0);
    const doc = JSON.parse(d.stdout);
    expect(doc.verifiedAgainst).toMatchObject({ how: 'xor-folder' });
    expect(doc.totals).toMatchObject({ files: 5, verified: 5 });
    await expectSameFiles(out, files);
    expect((await readdir(out)).filter((n) => !n.startsWith('.')).sort()).toEqual(Object.keys(files).sort());
  });

  it('a damaged payload of an encoded release is named as such from the SHA256SUMS.xor it wrote', async () => {
    const { fine, base } = await models();
    const xor = join(work, 'xor');
    await runCli(['encode', xor, fine, base]);
    await flipByte(join(xor, 'tokenizer.model'), 10);
    const r = await runCli(['decode', join(work, 'out'), xor, base, '--json']);
    expect(r.code).toBe(1);
    const f = JSON.parse(r.stdout).files.find((x: { name: string }) => x.name === 'tokenizer.model');
    expect(f.cause).toBe('xor-file');
    expect(r.stderr).toMatch(/does not match the SHA-256 published in .*SHA256SUMS\.xor/);
  });

  it('the base folder passes "verify" against the SHA256SUMS.base it wrote', async () => {
    const { fine, base } = await models();
    const xor = join(work, 'xor');
    await runCli(['encode', xor, fine, base]);
    const r = await runCli(['verify', base, '--manifest', join(xor, 'SHA256SUMS.base')]);
    expect(r.code).toBe(0);
  });

  it.skipIf(!HAS_NUMPY).each([[[]], [['--compress']]])('with --xor-json, the reference decoder restores every file (%j)', async (flags) => {
    const { fine, base, files } = await models();
    // The reference decoder has no notion of a file without base: leave that one out here.
    await runCommand('rm', [join(fine, 'added_tokens.json')]);
    delete (files as Record<string, unknown>)['added_tokens.json'];
    const xor = join(work, 'xor');
    expect((await runCli(['encode', xor, fine, base, '--xor-json', ...flags])).code).toBe(0);
    // The reference processes every entry: give it only the payloads, as a release would ship them.
    const payloads = join(work, 'payloads');
    await mkdir(payloads);
    for (const name of Object.keys(files)) await writeFile(join(payloads, name), await readFile(join(xor, name)));
    const out = join(work, 'ref-out');
    const ref = await runCommand('python3', [REFERENCE_CODEC, out, payloads, base, '--decode', ...flags]);
    expect(ref.stdout).not.toMatch(/Exception/);
    await expectSameFiles(out, files);
  });

  it('refuses a non-JSON file with no base counterpart (exit 2)', async () => {
    const { fine, base } = await models();
    await writeFile(join(fine, 'extra.bin'), checkpointBytes(300, 7));
    const r = await runCli(['encode', join(work, 'x'), fine, base]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/extra\.bin: has no base counterpart in .*; only JSON files may ship without a base file/);
  });

  it('refuses a release whose names differ only in case (one file on macOS and Windows, and decode refuses it): exit 2, nothing written', async () => {
    const { fine, base } = await models();
    await writeFile(join(fine, 'Config.json'), '{"other": true}\n');
    const r = await runCli(['encode', join(work, 'x'), fine, base]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/fine\/(config|Config)\.json: would be written as (config|Config)\.json, which is also the name of .*differs from it only in case or Unicode normalisation.*; keep one of them in the fine-tuned folder\n$/);
    expect(await readdir(join(work, 'x')).catch(() => [])).toEqual([]);
  });
});
