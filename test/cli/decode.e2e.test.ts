/**
 * End to end: the real CLI (bin/metharme-xor.js) in a child process, checked by exit code, stdout,
 * stderr and the files it leaves on disk.
 */
import { cp, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, fileSha256, finalNames, referenceXor, removeDir, runCli, runCommand, SAMPLE_BASE, SAMPLE_SUMS, SAMPLE_XOR, seededBytes, sha256, tempDir, writeRelease, type ReleaseFile } from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(async () => {
  await removeDir(work);
});


async function sampleNames(): Promise<string[]> {
  return (await readdir(SAMPLE_XOR)).sort();
}

async function expectMatchesManifest(dir: string, manifest: string) {
  const lines = (await readFile(manifest, 'utf8')).trim().split('\n');
  for (const line of lines) {
    const [digest, name] = line.split('  ');
    expect(await fileSha256(join(dir, name!)), name).toBe(digest);
  }
}


function json(stdout: string) {
  return JSON.parse(stdout) as {
    exitCode: number;
    files: { name: string; status: string; algorithm: string; actual: string; expected: { digest: string }[]; bytes: number; action: string; seconds: number }[];
    totals: Record<string, number>;
    verifiedAgainst: { label: string; how: string } | null;
  };
}

describe('decode: the bundled sample', () => {
  it('decodes every file byte-exactly, verifies it, and exits 0 (the README command)', async () => {
    const out = join(work, 'sample-output');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await finalNames(out)).toEqual(await sampleNames());
    await expectMatchesManifest(out, SAMPLE_SUMS);
    // Not a TTY: one plain line per file, no escape codes.
    expect(r.stdout).not.toMatch(/\u001b\[/);
    const fileLines = r.stdout.split('\n').filter((l) => /^verified +\S/.test(l));
    expect(fileLines).toHaveLength(9);
    expect(r.stdout).toMatch(/^done: 9 files, .*9 verified against .*SHA256SUMS$/m);
    // The plain JSON payloads are copied, and say so.
    expect(r.stdout).toMatch(/verified +generation_config\.json .*plain JSON payload, copied/);
    expect(r.stdout).toMatch(/verified +added_tokens\.json .*no base counterpart/);
    // Nothing else is left: the hidden folder holds only the resume state, no temporary files.
    expect(await readdir(out)).toEqual(['.metharme-xor', ...(await sampleNames())].sort());
    expect(await readdir(join(out, '.metharme-xor'))).toEqual(['state.json']);
  });

  it('processes small files first, so a bad setup shows up in seconds', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--json']);
    const sizes = json(r.stdout).files.map((f) => f.bytes);
    expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
    expect(json(r.stdout).files.at(-1)!.name).toBe('pytorch_model-00001-of-00002.bin');
  });

  it('accepts the model card command line with a trailing --decode', async () => {
    const out = join(work, 'o');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--decode', '--manifest', SAMPLE_SUMS]);
    expect(r.code).toBe(0);
    await expectMatchesManifest(out, SAMPLE_SUMS);
  });

  it('--json prints one JSON document with a result per file and totals', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const doc = json(r.stdout);
    expect(doc.exitCode).toBe(0);
    expect(doc.totals).toMatchObject({ files: 9, verified: 9, mismatch: 0, unverified: 0 });
    const sums = Object.fromEntries(
      (await readFile(SAMPLE_SUMS, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => l.split('  ').reverse()),
    );
    for (const f of doc.files) {
      expect(f).toMatchObject({ status: 'verified', algorithm: 'sha256', actual: sums[f.name] });
      expect(f.expected.map((e) => e.digest)).toEqual([sums[f.name]]);
      expect(typeof f.seconds).toBe('number');
    }
    expect(doc.files.find((f) => f.name === 'config.json')!.action).toBe('xor');
    expect(doc.files.find((f) => f.name === 'generation_config.json')!.action).toBe('copy');
  });

  it('--quiet prints nothing on success', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
  });

  it('says loudly that nothing was verified when no manifest is known', async () => {
    const out = join(work, 'o');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/NOTHING WILL BE VERIFIED/);
    expect(r.stderr).toMatch(/nothing was verified/);
    expect(r.stdout).toMatch(/unverified +config\.json .*NOT VERIFIED/);
    await expectMatchesManifest(out, SAMPLE_SUMS);
  });

  it('--no-verify skips hashing and says so per file', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--no-verify', '--json']);
    expect(r.code).toBe(0);
    const doc = json(r.stdout);
    expect(doc.files.every((f) => f.status === 'unverified' && f.actual === null)).toBe(true);
    expect(doc.verifiedAgainst).toBeNull();
  });

  it('--jobs decodes several files at once with the same result', async () => {
    const out = join(work, 'o');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--jobs', '3']);
    expect(r.code).toBe(0);
    await expectMatchesManifest(out, SAMPLE_SUMS);
  });
});

describe('decode: existing outputs', () => {
  it('skips outputs that already match and reports them', async () => {
    const out = join(work, 'o');
    await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS]);
    const before = await stat(join(out, 'tokenizer.model'));
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--json']);
    expect(r.code).toBe(0);
    const doc = json(r.stdout);
    expect(doc.files.map((f) => f.status)).toEqual(Array(9).fill('skipped'));
    expect((await stat(join(out, 'tokenizer.model'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('refuses a file it did not write where an output goes (exit 2), with the argument order and no --force hint, and leaves it untouched', async () => {
    const out = join(work, 'o');
    await mkdir(out);
    await writeFile(join(out, 'config.json'), 'my own edits\n');
    for (const extra of [[], ['--force'], ['--force', '--no-verify']]) {
      const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, ...extra]);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^metharme-xor: error: .*\/o: holds a file that metharme-xor did not write \(config\.json\), which this decode would replace; the output folder must be new, empty, or one an earlier decode wrote; if it is the XOR or base folder, the order is: decode <output-dir> <xor-dir> <base-dir>$/m);
      expect(r.stderr).not.toMatch(/--force/);
      expect(await readFile(join(out, 'config.json'), 'utf8')).toBe('my own edits\n');
      expect(await readdir(out)).toEqual(['config.json']);
    }
  });

  it('an output it wrote and that was changed since is refused without --force (exit 2), and --force replaces it with the verified file', async () => {
    const out = join(work, 'o');
    expect((await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS])).code).toBe(0);
    await writeFile(join(out, 'config.json'), 'my own edits\n');
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^metharme-xor: error: .*config\.json: already exists and does not match .*; use --force to replace it$/m);
    expect(await readFile(join(out, 'config.json'), 'utf8')).toBe('my own edits\n');
    const forced = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS, '--force']);
    expect(forced.code).toBe(0);
    await expectMatchesManifest(out, SAMPLE_SUMS);
  });

  it('replaces a symlink at an output path and never writes through it', async () => {
    const out = join(work, 'o');
    await mkdir(out);
    const victim = join(work, 'victim.txt');
    await writeFile(victim, 'keep me');
    await symlink(victim, join(out, 'tokenizer.model'));
    const r = await runCli(['decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS]);
    expect(r.code).toBe(0);
    expect(await readFile(victim, 'utf8')).toBe('keep me');
    expect((await stat(join(out, 'tokenizer.model'))).isFile()).toBe(true);
    await expectMatchesManifest(out, SAMPLE_SUMS);
  });
});

describe('decode: verification failures (exit 1)', () => {
  it('a wrong base gives exit 1, the error names the file, and no wrong file is left under a final name', async () => {
    const base = join(work, 'base');
    await cp(SAMPLE_BASE, base, { recursive: true });
    const shard = join(base, 'tokenizer.model');
    const bytes = await readFile(shard);
    bytes[1234] ^= 0x40;
    await writeFile(shard, bytes);
    const out = join(work, 'o');
    const r = await runCli(['decode', out, SAMPLE_XOR, base, '--manifest', SAMPLE_SUMS, '--keep-going']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^metharme-xor: error: tokenizer\.model: sha256 [0-9a-f]{64} does not match .*SHA256SUMS.*the output was not kept/m);
    expect(r.stdout).toMatch(/^mismatch +tokenizer\.model/m);
    expect(r.stdout).toMatch(/^FAILED: 9 files/m);
    const names = await finalNames(out);
    expect(names).not.toContain('tokenizer.model');
    expect(names).toHaveLength(8);
    expect(await readdir(join(out, '.metharme-xor'))).toEqual(['state.json']);
  });

  it('a manifest file the XOR folder lacks is reported missing with exit 1', async () => {
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${await readFile(SAMPLE_SUMS, 'utf8')}${'0'.repeat(64)}  pytorch_model-00003-of-00003.bin\n`);
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', sums]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/warning: pytorch_model-00003-of-00003\.bin: listed in .* but not in the XOR folder/);
    expect(r.stderr).toMatch(/error: pytorch_model-00003-of-00003\.bin: listed in .* missing from the XOR folder/);
  });

  it('the strongest algorithm listed decides: a matching MD5 cannot outvote a mismatching SHA-256', async () => {
    const root = join(work, 'rel');
    const fine = seededBytes(300_000, 1);
    const { baseDir, xorDir } = await writeRelease(root, [{ name: 'w.dat', fine, base: seededBytes(300_000, 2) }]);
    const sums = join(work, 'mixed');
    const { createHash } = await import('node:crypto');
    await writeFile(sums, `${'ab'.repeat(32)}  w.dat\n${createHash('md5').update(fine).digest('hex')}  w.dat\n`);
    const r = await runCli(['decode', join(root, 'out'), xorDir, baseDir, '--manifest', sums, '--json']);
    expect(r.code).toBe(1);
    expect(json(r.stdout).files[0]!).toMatchObject({ status: 'mismatch', algorithm: 'sha256' });
    expect(r.stdout).not.toMatch(/md5 ok/);
  });

  it('MD5 decides where no SHA-256 is listed', async () => {
    const root = join(work, 'rel');
    const fine = seededBytes(300_000, 1);
    const { baseDir, xorDir } = await writeRelease(root, [{ name: 'w.dat', fine, base: seededBytes(300_000, 2) }]);
    const { createHash } = await import('node:crypto');
    const md5 = join(work, 'md5');
    await writeFile(md5, `${createHash('md5').update(fine).digest('hex')}  w.dat\n`);
    const r = await runCli(['decode', join(root, 'out'), xorDir, baseDir, '--manifest', md5, '--json']);
    expect(r.code).toBe(0);
    expect(json(r.stdout).files[0]!).toMatchObject({ status: 'verified', algorithm: 'md5' });
  });
});

describe('decode: bytes, on generated data', () => {
  it('is byte-identical to the format on awkward sizes, shorter and longer bases, gzip and plain payloads', async () => {
    const files: ReleaseFile[] = [
      { name: 'empty.dat', fine: Buffer.alloc(0), base: seededBytes(10, 1) },
      { name: 'one.dat', fine: seededBytes(1, 2), base: seededBytes(1, 3) },
      { name: 'b4095.dat', fine: seededBytes(4095, 4), base: seededBytes(4095, 5) },
      { name: 'b4096.dat', fine: seededBytes(4096, 6), base: seededBytes(4096, 7) },
      { name: 'b4097.dat', fine: seededBytes(4097, 8), base: seededBytes(4097, 9) },
      { name: 'shortbase.dat', fine: seededBytes(9_000_003, 10), base: seededBytes(4_194_309, 11) },
      { name: 'longbase.dat', fine: seededBytes(5_000_001, 12), base: seededBytes(9_000_000, 13) },
      { name: 'big.dat', fine: seededBytes(40 * 1024 * 1024 + 13, 14), base: seededBytes(40 * 1024 * 1024 + 13, 15) },
      { name: 'plain.json', fine: Buffer.from('{"a": 1}\n'), base: Buffer.from('{"a": 2}\n'), plain: true },
      { name: 'extra.json', fine: Buffer.from('{"added": true}\n') },
    ];
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, files);
    // One payload gzip-compressed, as the reference encoder's --compress writes it.
    const gz = files.find((f) => f.name === 'b4097.dat')!;
    await writeFile(join(xorDir, 'b4097.dat'), gzipSync(referenceXor(gz.fine, gz.base!)));
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const f of files) {
      const out = await readFile(join(outDir, f.name));
      expect(out.length, f.name).toBe(f.fine.length);
      expect(sha256(out), f.name).toBe(sha256(f.fine));
    }
    const doc = json(r.stdout);
    expect(doc.files.find((f) => f.name === 'b4097.dat')!.action).toBe('xor-gzip');
    expect(doc.files.find((f) => f.name === 'plain.json')!.action).toBe('copy');
  });

  it('reads inputs through symlinks, as in a Hugging Face cache', async () => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest } = await writeRelease(root, [
      { name: 'a.dat', fine: seededBytes(10_000, 1), base: seededBytes(10_000, 2) },
      { name: 'b.dat', fine: seededBytes(7_000, 3), base: seededBytes(7_000, 4) },
    ]);
    const snapshot = join(work, 'hub', 'snapshots', 'abc');
    await mkdir(snapshot, { recursive: true });
    for (const n of ['a.dat', 'b.dat']) await symlink(join(xorDir, n), join(snapshot, n));
    const baseLink = join(work, 'base-link');
    await symlink(baseDir, baseLink);
    const out = join(work, 'out');
    const r = await runCli(['decode', out, snapshot, baseLink, '--manifest', manifest]);
    expect(r.code).toBe(0);
    await expectMatchesManifest(out, manifest);
    expect((await stat(join(out, 'a.dat'))).isFile()).toBe(true);
  });

  it('keeps memory flat: peak RSS for a 200 MB file is within 40 MB of that for a 4 MB file', async () => {
    const peaks: number[] = [];
    for (const size of [4_000_000, 200_000_000]) {
      const root = join(work, `rss${size}`);
      const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, [
        { name: 'w.dat', fine: seededBytes(size, 1), base: seededBytes(size, 2) },
      ]);
      const r = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', manifest, '--json']);
      expect(r.code).toBe(0);
      peaks.push(json(r.stdout).totals.peakRssBytes!);
      await removeDir(root);
    }
    expect(peaks[0]).toBeGreaterThan(0);
    expect(peaks[1]! - peaks[0]!).toBeLessThan(40_000_000);
  });
});

describe('decode: recognising the release from the paths', () => {
  it('verifies against the built-in manifest named by the folder, and says so', async () => {
    const root = join(work, 'metharme-13b');
    const xorDir = join(root, 'xor_encoded_files');
    await mkdir(xorDir, { recursive: true });
    const baseDir = join(work, 'llama-13b');
    await mkdir(baseDir);
    // Not the real config: recognition must work, and the published digest must then reject it.
    await writeFile(join(xorDir, 'config.json'), '{"not": "the real one"}');
    const r = await runCli(['decode', join(work, 'out'), xorDir, baseDir]);
    expect(r.stdout).toMatch(/verifying against metharme-13b \(built-in manifest, recognised from .*metharme-13b/);
    expect(r.stderr).toMatch(/config\.json: sha256 [0-9a-f]{64} does not match metharme-13b/);
    expect(r.stderr).toMatch(/pytorch_model-00001-of-00003\.bin: listed in metharme-13b/);
    expect(r.code).toBe(1);
  });
});

describe('decode: on a terminal', () => {
  it('draws progress bars on stderr: overall and current file, with bytes, %, throughput and ETA', async (ctx) => {
    if ((await runCommand('script', ['--version'])).code !== 0) ctx.skip();
    const root = join(work, 'rel');
    const { baseDir, xorDir, manifest, outDir } = await writeRelease(root, [
      { name: 'weights.dat', fine: seededBytes(300_000_000, 1), base: seededBytes(300_000_000, 2) },
    ]);
    const command = [process.execPath, BIN, 'decode', outDir, xorDir, baseDir, '--manifest', manifest].map((a) => `'${a}'`).join(' ');
    // script(1) gives the CLI a pseudo-terminal; CI is unset because bars are off under CI.
    const env = { ...process.env };
    delete env.CI;
    const r = await runCommand('script', ['-qec', command, '/dev/null'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\u001b\[/);
    expect(r.stdout).toMatch(/\d+% total +[\d.]+ [kMG]?B\/300 MB [\d.]+ [kMG]?B\/s ETA /);
    expect(r.stdout).toMatch(/\d+% weights\.dat +[\d.]+ [kMG]?B\/300 MB /);
    expect(r.stdout).toMatch(/verified +weights\.dat/);
  });
});

describe('decode --model', () => {
  it('verifies against the named built-in release and says so', async () => {
    const root = join(work, 'rel');
    const { baseDir, xorDir, outDir } = await writeRelease(root, [{ name: 'config.json', fine: Buffer.from('{"x": 1}\n'), base: Buffer.from('{"x": 2}\n') }]);
    const r = await runCli(['decode', outDir, xorDir, baseDir, '--model', 'pygmalion-7b', '--json']);
    const doc = json(r.stdout);
    expect(doc.verifiedAgainst).toMatchObject({ label: 'pygmalion-7b', how: 'model' });
    const f = doc.files[0]!;
    // Published as MD5 (model card) and SHA-256 (docs): SHA-256 first, MD5 computed after it missed.
    expect(f.status).toBe('mismatch');
    expect(f.expected.map((e) => e.digest)).toEqual(['4608facb4910118f8dfa80f090cbc4dc', 'e6e95f80203ae4d3925d420e9eeb31fc11fa4d9a49b40d8c6499838365e3f5a8']);
    expect(r.code).toBe(1);
  });
});
