/**
 * End to end: each trap from the public threads is detected and explained (file, cause, fix), with
 * the right exit code, the diagnosis in --json, and no wrong file left under a final name.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpointBytes, finalNames, removeDir, runCli, seededBytes, tempDir, withTmpfs, writeRelease, type ReleaseFile } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});


const SHARD = 'pytorch_model-00001-of-00002.bin';

function release(extra: Partial<Record<string, Buffer>> = {}): ReleaseFile[] {
  const base = checkpointBytes(6_000_000, 1);
  const fine = Buffer.from(base);
  // The weights change; the zip structure at both ends stays.
  for (let i = 4096; i < fine.length - 4096; i += 7) fine[i] ^= 0x5a;
  return [
    { name: 'config.json', fine: Buffer.from('{"hidden_size": 5120, "use_cache": true}\n'), base: Buffer.from('{"hidden_size": 5120}\n') },
    { name: SHARD, fine, base },
    ...Object.entries(extra).map(([name, fine]) => ({ name, fine: fine!, base: seededBytes(fine!.length, 9) })),
  ];
}


function doc(stdout: string) {
  return JSON.parse(stdout) as {
    exitCode: number;
    files: { name: string; status: string; diagnosis: { code: string; message: string }[]; baseCheck: { status: string } | null }[];
    error?: { message: string; file: string; hint: string };
  };
}

const POINTER = 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 9976576152\n';

describe('git-lfs pointers', () => {
  it('a payload that is an LFS pointer is refused before decoding (exit 2) with the git-lfs fix for its repository', async () => {
    const root = join(work, 'metharme-repo');
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, release());
    await mkdir(join(root, '.git'));
    await writeFile(join(xorDir, SHARD), POINTER);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`error: .*${SHARD}: is a git-lfs pointer file, not the data; the repository was cloned without git-lfs; run "git lfs install && git lfs pull" in ${root}$`, 'm'),
    );
    expect(await finalNames(outDir)).toEqual([]);
  });

  it('pointers are named first even when the base folder is wrong too (issue 22, item 1): the git-lfs fix, not the base', async () => {
    const root = join(work, 'metharme-repo');
    const { xorDir, manifest, outDir } = await writeRelease(root, release());
    await mkdir(join(root, '.git'));
    await writeFile(join(xorDir, SHARD), POINTER);
    const wrongBase = join(work, 'not-llama');
    await mkdir(wrongBase);
    const r = await runCli(['decode', outDir, xorDir, wrongBase, '--manifest', manifest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a git-lfs pointer file, not the data; the repository was cloned without git-lfs; run "git lfs install && git lfs pull"/);
    expect(r.stderr).not.toMatch(/has no base counterpart/);
  });

  it('a base file that is an LFS pointer is refused too, counting the others', async () => {
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), release());
    await writeFile(join(baseDir, SHARD), POINTER);
    await writeFile(join(baseDir, 'config.json'), POINTER);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
    expect(r.code).toBe(2);
    const d = doc(r.stdout);
    expect(d.error!.message).toMatch(/is a git-lfs pointer file, not the data \(and 1 more such files\)/);
    expect(d.error!.hint).toMatch(/git lfs install && git lfs pull/);
    expect(await finalNames(outDir)).toEqual([]);
  });

  it('verify names a decoded file that is really an LFS pointer', async () => {
    const dir = join(work, 'out');
    await mkdir(dir);
    await writeFile(join(dir, 'w.bin'), POINTER);
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${'a'.repeat(64)}  w.bin\n`);
    const r = await runCli(['verify', dir, '--manifest', sums]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/w\.bin is a git-lfs pointer file, not the data: .*git lfs install && git lfs pull/);
  });
});

describe('decode --check-base', () => {
  it('is off by default', async () => {
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(join(work, 'r'), release());
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
    expect(r.code).toBe(0);
    expect(doc(r.stdout).files.every((f) => f.baseCheck === null)).toBe(true);
  });
});

describe('check-base', () => {
  async function baseFolder(name: string) {
    const dir = join(work, name);
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), '{"not": "published"}');
    await writeFile(join(dir, 'tokenizer.model'), seededBytes(1000, 1));
    return dir;
  }

  it('recognises the conversion from the folder name and names files that are not the published ones (exit 1)', async () => {
    const dir = await baseFolder('llama-13b');
    const r = await runCli(['check-base', dir, '--json']);
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.manifest.label).toBe('llama-13b-hf');
    const cfg = d.files.find((f: { name: string }) => f.name === 'config.json');
    expect(cfg.status).toBe('mismatch');
    expect(cfg.diagnosis[0].message).toMatch(/config\.json is not the base file llama-13b-hf lists; the release was made against another conversion/);
    expect(d.files.find((f: { name: string }) => f.name === 'pytorch_model-00001-of-00003.bin').status).toBe('missing');
  });

  it('takes a release name and checks its base', async () => {
    const dir = await baseFolder('some-base');
    const r = await runCli(['check-base', dir, '--model', 'oasst-sft-6-llama-30b', '--json']);
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.manifest.label).toBe('llama-30b-hf');
    expect(d.files.find((f: { name: string }) => f.name === 'config.json').diagnosis[0].message).toMatch(/d04ec99bec8a0b432fc03ed60cea9a1a20ebaf3c/);
  });

  it('asks for --model when the folder name says nothing (exit 2)', async () => {
    const dir = await baseFolder('models');
    const r = await runCli(['check-base', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot tell which LLaMA conversion this folder should be; pass --model with one of llama-7b-hf, llama-13b-hf, llama-30b-hf/);
  });
});

describe('disk space preflight', () => {
  it('refuses with exit 3 and the numbers when the output cannot fit, before writing anything', async (ctx) => {
    const mnt = join(work, 'mnt');
    await withTmpfs(ctx, mnt, 'size=1m', async () => {
      const { baseDir, xorDir, manifest } = await writeRelease(join(work, 'r'), release());
      const out = join(mnt, 'out');
      const r = await runCli(['decode', out, xorDir, baseDir, '--manifest', manifest]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/error: .*out: not enough free space: 6\.0 MB still to write, 1\.0 MB free .*; free some space or choose another output folder/);
      expect(await readdir(mnt)).toEqual([]);
    });
  });
});
