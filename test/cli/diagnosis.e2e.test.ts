/**
 * End to end on real torch.save checkpoints (fixtures/torch, made by fixtures/make-checkpoints.py):
 * the digest decides a file's fate, a cause is named only from evidence, a bad base stops the run,
 * and layout mistakes are caught before decoding.
 */
import { cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  fileSha256,
  finalNames,
  flipByte,
  jsonDoc,
  referenceXor,
  removeDir,
  runCli,
  runCommand,
  sha256,
  SHARD1,
  SHARD2,
  tempDir,
  TORCH,
  TORCH_BASE,
  TORCH_FINE,
  TORCH_SUMS,
  TORCH_XOR,
  type DecodeDoc,
} from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

/** A copy of the release's XOR folder, with chosen evidence files placed in it. */
async function xorCopy(evidence: ('base' | 'xor')[] = []): Promise<string> {
  const dir = join(work, 'xor_encoded_files');
  await cp(TORCH_XOR, dir, { recursive: true });
  if (evidence.includes('base')) await cp(join(TORCH, 'SHA256SUMS.base'), join(dir, 'SHA256SUMS.base'));
  if (evidence.includes('xor')) await cp(join(TORCH, 'SHA256SUMS.xor'), join(dir, 'SHA256SUMS.xor'));
  return dir;
}

async function baseCopy(from = TORCH_BASE): Promise<string> {
  const dir = join(work, 'base');
  await cp(from, dir, { recursive: true });
  return dir;
}

function decodeJson(out: string, xor: string, base: string, ...extra: string[]) {
  return runCli(['decode', out, xor, base, '--manifest', TORCH_SUMS, '--json', ...extra]);
}

const file = (doc: DecodeDoc, name: string) => doc.files.find((f) => f.name === name)!;

describe('the right base', () => {
  it('decodes every file byte-exactly to the fine-tune and exits 0', async () => {
    const out = join(work, 'out');
    const r = await runCli(['decode', out, TORCH_XOR, TORCH_BASE, '--manifest', TORCH_SUMS]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const names = await readdir(TORCH_FINE);
    expect(await finalNames(out)).toEqual(names.sort());
    for (const n of names) expect(await fileSha256(join(out, n))).toBe(await fileSha256(join(TORCH_FINE, n)));
  });

  it('a base in the legacy format cannot be told by structure (the decoded bytes start with its pickle magic): only a digest catches it', async () => {
    const r = await runCli(['decode', join(work, 'out'), TORCH_XOR, join(TORCH, 'llama-base-legacy'), '--no-verify']);
    expect(r.stderr).not.toMatch(/does not start like a PyTorch checkpoint/);
  });

  it('a legitimately longer payload (a resized vocabulary) verifies, and no size difference is mentioned', async () => {
    const out = join(work, 'out');
    const r = await runCli(['decode', out, join(TORCH, 'xor-vocab'), TORCH_BASE, '--manifest', join(TORCH, 'SHA256SUMS.vocab')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(await fileSha256(join(out, SHARD1))).toBe(await fileSha256(join(TORCH, 'finetune-vocab', SHARD1)));
  });
});

describe('a wrong base: the digest decides, the base digests name the cause, the run stops', () => {
  it.each([
    ['q/k weights permuted (another transformers version, same sizes)', 'llama-base-qk'],
    ['another sharding', 'llama-base-resharded'],
    ['the legacy torch.save format', 'llama-base-legacy'],
  ])('%s: cause base, printed at once, later files not started (exit 1)', async (_what, variant) => {
    const xor = await xorCopy(['base']);
    const out = join(work, 'out');
    const r = await decodeJson(out, xor, join(TORCH, variant));
    expect(r.code).toBe(1);
    const doc = jsonDoc(r.stdout);
    const failed = doc.files.filter((f) => f.status === 'mismatch');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.cause).toBe('base');
    expect(failed[0]!.diagnosis.map((d) => d.code)).toContain('base-not-published');
    expect(failed[0]!.diagnosis.at(-1)!.message).toMatch(/^cause: base\. Base file .* is not the one the release was made against/);
    expect(doc.files.filter((f) => f.status === 'not-started').length).toBeGreaterThan(0);
    expect(doc.totals.notStarted).toBeGreaterThan(0);
    // No built-in conversion is named for a custom manifest.
    expect(r.stderr).not.toMatch(/llama-13b-hf|llama-7b-hf|transformers version/);
    expect(r.stderr).toMatch(/cause: base/);
    expect(r.stderr).toMatch(/not started, as a file failed for a reason that would repeat/);
    expect(await finalNames(out)).not.toContain(failed[0]!.name);
  });

  it('--keep-going decodes every file anyway', async () => {
    const xor = await xorCopy(['base']);
    const r = await decodeJson(join(work, 'out'), xor, join(TORCH, 'llama-base-qk'), '--keep-going');
    expect(r.code).toBe(1);
    const doc = jsonDoc(r.stdout);
    expect(doc.files.filter((f) => f.status === 'not-started')).toEqual([]);
    expect(doc.files.filter((f) => f.status === 'mismatch').map((f) => f.name).sort()).toEqual([SHARD1, SHARD2]);
  });

  it('without any evidence the cause is unknown, and the message says which evidence would decide it', async () => {
    const r = await decodeJson(join(work, 'out'), TORCH_XOR, join(TORCH, 'llama-base-qk'));
    expect(r.code).toBe(1);
    const failed = jsonDoc(r.stdout).files.find((f) => f.status === 'mismatch')!;
    expect(failed.cause).toBe('unknown');
    expect(r.stderr).toMatch(/cause: unknown\. No evidence tells whether the base file or the XOR file is at fault; to decide it, pass --base-manifest/);
    expect(r.stderr).toMatch(/--xor-manifest/);
  });

  it('a truncated base is named an incomplete download, from its zip archive missing its end', async () => {
    const base = await baseCopy();
    const bytes = await readFile(join(base, SHARD1));
    await writeFile(join(base, SHARD1), bytes.subarray(0, 6000));
    const r = await decodeJson(join(work, 'out'), TORCH_XOR, base);
    expect(r.code).toBe(1);
    const f = file(jsonDoc(r.stdout), SHARD1);
    expect(f.cause).toBe('base');
    expect(r.stderr).toMatch(/is a zip archive without its end record: it was cut short, an incomplete download or copy/);
    expect(r.stderr).toMatch(new RegExp(`base file .*${SHARD1} is 6000 bytes, the XOR file ${bytes.length > 0 ? '\\d+' : ''} bytes`));
  });
});

describe('line endings rewritten by git', () => {
  it('CRLF in a plain-JSON payload: proven by undoing it, cause xor-file', async () => {
    const xor = await xorCopy();
    await writeFile(join(xor, 'config.json'), (await readFile(join(xor, 'config.json'), 'utf8')).replace(/\n/g, '\r\n'));
    const r = await decodeJson(join(work, 'out'), xor, TORCH_BASE);
    expect(r.code).toBe(1);
    const f = file(jsonDoc(r.stdout), 'config.json');
    expect(f.cause).toBe('xor-file');
    expect(r.stderr).toMatch(/with LF line endings the XOR file .*config\.json gives the published digest: git rewrote its line endings/);
    expect(r.stderr).not.toMatch(/base folder is the exact conversion|convert LLaMA/);
  });

  it('CRLF in the base of an XORed JSON file: proven, cause base, and the fix is a clean checkout', async () => {
    // A release that XORs its JSON files too (encode --xor-json, the early Pygmalion layout).
    const xor = await xorCopy();
    const base = await baseCopy();
    const fine = await readFile(join(TORCH_FINE, 'config.json'));
    await writeFile(join(xor, 'config.json'), referenceXor(fine, await readFile(join(base, 'config.json'))));
    await writeFile(join(base, 'config.json'), (await readFile(join(base, 'config.json'), 'utf8')).replace(/\n/g, '\r\n'));
    const r = await decodeJson(join(work, 'out'), xor, base, '--keep-going');
    expect(r.code).toBe(1);
    const f = file(jsonDoc(r.stdout), 'config.json');
    expect(f.cause).toBe('base');
    expect(r.stderr).toMatch(/with LF line endings the base file .*config\.json gives the published digest/);
    expect(r.stderr).toMatch(/core\.autocrlf=false/);
    expect(r.stderr).not.toMatch(/convert LLaMA/);
  });
});

describe('a damaged XOR file', () => {
  async function damaged(evidence: ('base' | 'xor')[]) {
    const xor = await xorCopy(evidence);
    await flipByte(join(xor, SHARD2), 4000);
    return xor;
  }

  it('with the base digests: the base matches, so the XOR file is at fault; the run goes on', async () => {
    const out = join(work, 'out');
    const r = await decodeJson(out, await damaged(['base']), TORCH_BASE);
    expect(r.code).toBe(1);
    const doc = jsonDoc(r.stdout);
    expect(file(doc, SHARD2).cause).toBe('xor-file');
    expect(file(doc, SHARD1).status).toBe('verified');
    expect(r.stderr).toMatch(/cause: xor-file\. The XOR file .* is not the published one; download it again/);
    expect(r.stderr).not.toMatch(/llama-13b-hf|transformers/);
  });

  it('with the XOR files\' digests (SHA256SUMS.xor): proven corrupt', async () => {
    const r = await decodeJson(join(work, 'out'), await damaged(['xor']), TORCH_BASE);
    const f = file(jsonDoc(r.stdout), SHARD2);
    expect(f.cause).toBe('xor-file');
    expect(f.diagnosis.map((d) => d.code)).toContain('xor-file-corrupt');
  });

  it('with --xor-manifest given on the command line', async () => {
    const r = await decodeJson(join(work, 'out'), await damaged([]), TORCH_BASE, '--xor-manifest', join(TORCH, 'SHA256SUMS.xor'));
    expect(file(jsonDoc(r.stdout), SHARD2).cause).toBe('xor-file');
  });

  it('without evidence: unknown, never "convert LLaMA again"', async () => {
    const r = await decodeJson(join(work, 'out'), await damaged([]), TORCH_BASE);
    expect(file(jsonDoc(r.stdout), SHARD2).cause).toBe('unknown');
    expect(r.stderr).not.toMatch(/convert LLaMA|transformers version/);
  });

  it('in the Hugging Face cache layout: the blob name is the published SHA-256', async () => {
    const repo = join(work, 'hub', 'models--Org--tiny-xor');
    const commit = 'a'.repeat(40);
    const snapshot = join(repo, 'snapshots', commit, 'xor_encoded_files');
    await mkdir(join(repo, 'blobs'), { recursive: true });
    await mkdir(snapshot, { recursive: true });
    await mkdir(join(repo, 'refs'));
    await writeFile(join(repo, 'refs', 'main'), commit);
    for (const name of await readdir(TORCH_XOR)) {
      const bytes = await readFile(join(TORCH_XOR, name));
      const blob = sha256(bytes);
      await writeFile(join(repo, 'blobs', blob), bytes);
      await symlink(`../../../blobs/${blob}`, join(snapshot, name));
    }
    await flipByte(join(snapshot, SHARD2), 4000);
    const r = await decodeJson(join(work, 'out'), snapshot, TORCH_BASE);
    expect(r.code).toBe(1);
    const f = file(jsonDoc(r.stdout), SHARD2);
    expect(f.cause).toBe('xor-file');
    expect(r.stderr).toMatch(/does not match the SHA-256 published in the Hugging Face cache/);
  });

  async function lfsClone(): Promise<{ repo: string; xor: string }> {
    const repo = join(work, 'tiny-xor');
    const xor = join(repo, 'xor_encoded_files');
    await mkdir(xor, { recursive: true });
    const names = await readdir(TORCH_XOR);
    for (const name of names) {
      const bytes = await readFile(join(TORCH_XOR, name));
      await writeFile(join(xor, name), `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(bytes)}\nsize ${bytes.length}\n`);
    }
    const git = (...args: string[]) => runCommand('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
    expect((await git('init', '-q')).code).toBe(0);
    await git('add', '.');
    expect((await git('commit', '-qm', 'pointers')).code).toBe(0);
    // What git-lfs's smudge filter leaves in the working tree: the data.
    for (const name of names) await cp(join(TORCH_XOR, name), join(xor, name));
    return { repo, xor };
  }

  it('in a git-lfs clone, a payload shorter than its pointer says is named an incomplete download', async () => {
    const { xor } = await lfsClone();
    const bytes = await readFile(join(xor, SHARD2));
    await writeFile(join(xor, SHARD2), bytes.subarray(0, 5000));
    const r = await decodeJson(join(work, 'out'), xor, TORCH_BASE);
    expect(r.code).toBe(1);
    expect(file(jsonDoc(r.stdout), SHARD2).cause).toBe('xor-file');
    expect(r.stderr).toMatch(new RegExp(`XOR file .*${SHARD2} is 5000 bytes; the git-lfs pointer in .* gives ${bytes.length} bytes, shorter than the published size: an incomplete download\\?`));
  });

  it('in a git-lfs clone: the pointer the repository stores gives the SHA-256 (no git-lfs needed)', async () => {
    const { repo, xor } = await lfsClone();
    await flipByte(join(xor, SHARD2), 4000);
    const r = await decodeJson(join(work, 'out'), xor, TORCH_BASE);
    expect(r.code).toBe(1);
    expect(file(jsonDoc(r.stdout), SHARD2).cause).toBe('xor-file');
    expect(r.stderr).toMatch(new RegExp(`does not match the SHA-256 published in the git-lfs pointer in ${repo}`));
  });
});

describe('the manifest at fault', () => {
  it('XOR file and base both proven intact: cause manifest', async () => {
    const xor = await xorCopy(['base', 'xor']);
    const sums = join(work, 'SUMS');
    await writeFile(sums, (await readFile(TORCH_SUMS, 'utf8')).replace(/^[0-9a-f]{64}(?=  pytorch_model-00002)/m, 'f'.repeat(64)));
    const r = await runCli(['decode', join(work, 'out'), xor, TORCH_BASE, '--manifest', sums, '--json']);
    expect(r.code).toBe(1);
    expect(file(jsonDoc(r.stdout), SHARD2).cause).toBe('manifest');
    expect(r.stderr).toMatch(/cause: manifest\. .*the published digest for pytorch_model-00002-of-00003\.bin is wrong or for another revision/);
  });
});

describe('structure checks never overrule a digest', () => {
  it('a .bin that is not a checkpoint but matches its digest is verified (exit 0)', async () => {
    const root = join(work, 'r');
    await mkdir(join(root, 'xor'), { recursive: true });
    await mkdir(join(root, 'base'));
    const base = await readFile(join(TORCH_BASE, SHARD1));
    const fine = Buffer.alloc(base.length, 7); // not a zip, not a pickle
    await writeFile(join(root, 'base', SHARD1), base);
    await writeFile(join(root, 'xor', SHARD1), referenceXor(fine, base));
    await writeFile(join(root, 'SUMS'), `${sha256(fine)}  ${SHARD1}\n`);
    const r = await runCli(['decode', join(root, 'out'), join(root, 'xor'), join(root, 'base'), '--manifest', join(root, 'SUMS')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^verified +pytorch_model-00001-of-00003\.bin/m);
  });

  it('with no digest known, decoded bytes that lack the base\'s checkpoint structure are refused (invalid, exit 1)', async () => {
    const xor = await xorCopy();
    await flipByte(join(xor, SHARD1), 0, 0x40);
    const r = await runCli(['decode', join(work, 'out'), xor, TORCH_BASE, '--json']);
    expect(r.code).toBe(1);
    const doc = jsonDoc(r.stdout);
    const invalid = doc.files.filter((f) => f.status === 'invalid');
    expect(invalid.map((f) => f.name)).toEqual([SHARD1]);
    expect(invalid[0]!.cause).toBe('unknown');
    expect(invalid[0]!.diagnosis[0]!.message).toMatch(/does not start like a PyTorch checkpoint .*though its base file does/);
    expect(await finalNames(join(work, 'out'))).not.toContain(invalid[0]!.name);
  });

  it('with --no-verify nothing is refused: the file is kept, with a warning', async () => {
    const xor = await xorCopy();
    await flipByte(join(xor, SHARD1), 0, 0x40);
    const out = join(work, 'out');
    const r = await runCli(['decode', out, xor, TORCH_BASE, '--no-verify']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: pytorch_model-00001-of-00003\.bin: the decoded file does not start like a PyTorch checkpoint .*--no-verify/);
    expect(await finalNames(out)).toContain(SHARD1);
  });
});

describe('base checks for any release', () => {
  it('decode --check-base with a custom manifest uses SHA256SUMS.base and passes the right base (exit 0)', async () => {
    const xor = await xorCopy(['base']);
    const r = await decodeJson(join(work, 'out'), xor, TORCH_BASE, '--check-base');
    expect(r.code).toBe(0);
    const doc = jsonDoc(r.stdout);
    expect(file(doc, SHARD1).baseCheck).toMatchObject({ status: 'published' });
  });

  it('decode --check-base without base digests reports unknown, never a failure', async () => {
    const r = await decodeJson(join(work, 'out'), TORCH_XOR, TORCH_BASE, '--check-base');
    expect(r.code).toBe(0);
    expect(jsonDoc(r.stdout).files.filter((f) => f.baseCheck).every((f) => f.baseCheck!.status === 'unknown')).toBe(true);
  });

  it('check-base --manifest tells the right base (exit 0) from a q/k-permuted one (exit 1)', async () => {
    const sums = join(TORCH, 'SHA256SUMS.base');
    const right = await runCli(['check-base', TORCH_BASE, '--manifest', sums]);
    expect(right.code).toBe(0);
    const wrong = await runCli(['check-base', join(TORCH, 'llama-base-qk'), '--manifest', sums, '--json']);
    expect(wrong.code).toBe(1);
    const doc = JSON.parse(wrong.stdout) as { files: { name: string; status: string }[] };
    expect(doc.files.filter((f) => f.status === 'mismatch').map((f) => f.name).sort()).toEqual([SHARD1, SHARD2]);
    expect(wrong.stderr).toMatch(/is not the base file .*SHA256SUMS\.base lists/);
  });
});

describe('layout mistakes, caught before decoding (exit 2)', () => {
  it('XOR and base folders swapped', async () => {
    const out = join(work, 'out');
    const r = await runCli(['decode', out, TORCH_BASE, TORCH_XOR, '--manifest', TORCH_SUMS]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the XOR and base folders look swapped: the XOR files start like PyTorch checkpoints and the base files do not; pass the release's XOR folder second/);
    expect(await finalNames(out)).toEqual([]);
  });

  it('a repository root given as the XOR folder names its xor_encoded_files/', async () => {
    const repo = join(work, 'tiny-release');
    await mkdir(repo);
    await cp(TORCH_XOR, join(repo, 'xor_encoded_files'), { recursive: true });
    await writeFile(join(repo, 'README.md'), '# model card\n');
    const r = await runCli(['decode', join(work, 'out'), repo, TORCH_BASE]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${repo}: looks like the repository root, not the folder of XOR files; pass ${repo}/xor_encoded_files as <xor-dir>`));
  });

  it('a Hugging Face cache model root is resolved through refs/main to its snapshot', async () => {
    const repo = join(work, 'hub', 'models--Org--tiny');
    const commit = 'b'.repeat(40);
    await mkdir(join(repo, 'snapshots'), { recursive: true });
    await cp(TORCH_XOR, join(repo, 'snapshots', commit), { recursive: true });
    await mkdir(join(repo, 'refs'));
    await writeFile(join(repo, 'refs', 'main'), `${commit}\n`);
    const r = await runCli(['decode', join(work, 'out'), repo, TORCH_BASE, '--manifest', TORCH_SUMS]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/is a Hugging Face cache model folder; using its snapshot for refs\/main/);
  });

  it('a cache model root whose refs/main names no snapshot: exit 2 naming a snapshot to use', async () => {
    const repo = join(work, 'hub', 'models--Org--tiny');
    await mkdir(join(repo, 'snapshots', 'c'.repeat(40)), { recursive: true });
    const r = await runCli(['decode', join(work, 'out'), repo, TORCH_BASE]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refs\/main names no snapshot; pass a snapshot as the XOR folder, e\.g\. .*snapshots\/c{40}/);
  });
});

