/** The published package: contents of the tarball, and a real install that runs the CLI. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, ROOT, runCommand, SAMPLE, tempDir } from './support/helpers.js';

let work: string;
let tarball: string;
let files: string[];

beforeAll(async () => {
  work = await tempDir();
  // Without its scripts: `prepare` would build dist/ again while the other test files' processes load
  // it, and tsc rewrites its files in place (a clean-clone CI run saw "plan.js does not provide an
  // export named ..." in a bench test). npm test built it before any test ran.
  const packed = await runCommand('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT });
  expect(packed.code, packed.stderr).toBe(0);
  const info = JSON.parse(packed.stdout)[0] as { filename: string; files: { path: string }[] };
  tarball = join(work, info.filename);
  files = info.files.map((f) => f.path);
}, 120_000);
afterAll(async () => {
  await removeDir(work);
});

describe('npm pack', () => {
  it('ships the CLI, the compiled library and its types, and no tests, fixtures or sources', () => {
    expect(files).toContain('bin/metharme-xor.js');
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('README.md');
    expect(files).toContain('LICENSE');
    expect(files).toContain('cjs/index.cjs');
    expect(files).toContain('cjs/index.d.cts');
    expect(files).toContain('package.json');
    expect(files.filter((f) => /^(test|fixtures|src|scripts)\//.test(f) || f.endsWith('.map'))).toEqual([]);
  });

  it('installs from the tarball and decodes the sample with the installed bin', async () => {
    const prefix = join(work, 'app');
    const install = await runCommand('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', tarball]);
    expect(install.code, install.stderr).toBe(0);
    const bin = join(prefix, 'node_modules', '.bin', 'metharme-xor');
    const out = join(work, 'decoded');
    const r = await runCommand(bin, [
      'decode',
      out,
      join(SAMPLE, 'xor_encoded_files'),
      join(SAMPLE, 'llama-base'),
      '--manifest',
      join(SAMPLE, 'SHA256SUMS'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^done: 9 files, .*9 verified/m);
    // The library entry, with its types, from the installed package.
    const lib = await runCommand(process.execPath, [
      '--input-type=module',
      '-e',
      "const m = await import('metharme-xor'); console.log(typeof m.decode, typeof m.verify, typeof m.checkBase, typeof m.encode)",
    ], { cwd: prefix });
    expect(lib.stdout.trim()).toBe('function function function function');
    // CommonJS users: require() works (Node >= 20.19 requires the ES module build itself).
    const cjs = await runCommand(process.execPath, ['-e', "const m = require('metharme-xor'); console.log(typeof m.decode, typeof m.InputError)"], { cwd: prefix });
    expect(cjs.stderr).toBe('');
    expect(cjs.stdout.trim()).toBe('function function');
    // Where require() of an ES module is impossible, the error says what to do instead.
    const old = await runCommand(process.execPath, ['--no-experimental-require-module', '-e', "require('metharme-xor')"], { cwd: prefix });
    if (old.code !== 0) expect(old.stderr).toMatch(/metharme-xor is an ES module, and this Node\.js .* cannot require\(\) one: use "const \{ decode \} = await import\('metharme-xor'\)"/);
    const { access } = await import('node:fs/promises');
    await access(join(prefix, 'node_modules', 'metharme-xor', 'dist', 'index.d.ts'));
  }, 120_000);
});
