/**
 * End to end: the conventions npm, CI and Windows users expect (issue 11), on the real CLI.
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import {
  BIN,
  finalNames,
  removeDir,
  ROOT,
  runCli,
  runCommand,
  SAMPLE_BASE,
  SAMPLE_SUMS,
  SAMPLE_XOR,
  seededBytes,
  sha256,
  tempDir,
  writeRelease,
} from '../support/helpers.js';

let work: string;
beforeEach(async () => {
  work = await tempDir();
});
afterEach(() => removeDir(work));

const hasScript = async () => (await runCommand('script', ['--version'])).code === 0;

describe('licence and package fields', () => {
  it('ships an MIT LICENSE matching package.json, an author, and runs the tests before publishing', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.license).toBe('MIT');
    expect(await readFile(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(pkg.author).toEqual(expect.any(String));
    expect(pkg.scripts.prepublishOnly).toBe('npm test');
    expect(pkg.exports['.'].require.default).toBe('./cjs/index.cjs');
  });
});

describe('a Windows clone (core.autocrlf=true)', () => {
  it('keeps the fixtures byte-exact, so the README\'s first command still verifies every file', async (ctx) => {
    if ((await runCommand('git', ['-C', ROOT, 'rev-parse', 'HEAD'])).code !== 0) ctx.skip();
    const clone = join(work, 'clone');
    const r = await runCommand('git', ['-c', 'core.autocrlf=true', 'clone', '-q', '-c', 'core.autocrlf=true', ROOT, clone]);
    expect(r.code, r.stderr).toBe(0);
    // The clone really converts text: a tracked text file got CRLF.
    expect(await readFile(join(clone, 'README.md'), 'utf8')).toMatch(/\r\n/);
    const sample = join(clone, 'fixtures', 'sample');
    const d = await runCli(['decode', join(work, 'out'), join(sample, 'xor_encoded_files'), join(sample, 'llama-base'), '--manifest', join(sample, 'SHA256SUMS')]);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/^done: 9 files, .*9 verified/m);
  });
});

describe('--strict', () => {
  it('decode: a file with no published digest fails the run (exit 1); without --strict it is a loud success', async () => {
    const files = [
      { name: 'a.dat', fine: seededBytes(1000, 1), base: seededBytes(1000, 2) },
      { name: 'b.dat', fine: seededBytes(1000, 3), base: seededBytes(1000, 4) },
    ];
    const { baseDir, xorDir, outDir } = await writeRelease(join(work, 'r'), files);
    const sums = join(work, 'SUMS');
    await writeFile(sums, `${sha256(files[0]!.fine)}  a.dat\n`);
    const loose = await runCli(['decode', outDir, xorDir, baseDir, '--manifest', sums]);
    expect(loose.code).toBe(0);
    const strict = await runCli(['decode', join(work, 'o2'), xorDir, baseDir, '--manifest', sums, '--strict', '--json']);
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.stdout)).toMatchObject({ strict: true, exitCode: 1, totals: { notVerified: 1 } });
    expect(strict.stderr).toMatch(/--strict: 1 of 2 files could not be verified/);
    // The verified file is still written; --strict changes the verdict, not the work.
    expect(await finalNames(join(work, 'o2'))).toEqual(['a.dat', 'b.dat']);
  });

  it('decode --no-verify --strict fails: nothing was verified', async () => {
    const r = await runCli(['decode', join(work, 'out'), SAMPLE_XOR, SAMPLE_BASE, '--no-verify', '--strict']);
    expect(r.code).toBe(1);
  });

  it('verify: files the manifest does not list are reported unverified and fail the run', async () => {
    const dir = join(work, 'd');
    await cp(SAMPLE_BASE, dir, { recursive: true });
    await writeFile(join(dir, 'extra.bin'), 'x');
    const sums = join(ROOT, 'fixtures', 'sample', 'llama-base.SHA256SUMS');
    expect((await runCli(['verify', dir, '--manifest', sums])).code).toBe(0);
    const r = await runCli(['verify', dir, '--manifest', sums, '--strict', '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.files.find((f: { name: string }) => f.name === 'extra.bin')).toMatchObject({ status: 'unverified' });
    expect(r.stderr).toMatch(/extra\.bin: not listed in .*, so it cannot be verified \(--strict\)/);
  });
});

describe('--manifest - (standard input)', () => {
  it('decode reads the checksum list from stdin', async () => {
    const r = await runCli(['decode', join(work, 'out'), SAMPLE_XOR, SAMPLE_BASE, '--manifest', '-'], { input: await readFile(SAMPLE_SUMS, 'utf8') });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^done: 9 files, .*9 verified against standard input/m);
  });

  it('verify reads it too, and an empty stdin is a clear input error', async () => {
    const sums = await readFile(join(ROOT, 'fixtures', 'sample', 'llama-base.SHA256SUMS'), 'utf8');
    expect((await runCli(['verify', SAMPLE_BASE, '--manifest', '-'], { input: sums })).code).toBe(0);
    const empty = await runCli(['verify', SAMPLE_BASE, '--manifest', '-'], { input: '' });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/standard input: contains no checksum lines/);
  });
});

describe('verify --ignore-missing', () => {
  it('leaves out absent files, as sha256sum -c --ignore-missing; none verified is still a failure', async () => {
    const dir = join(work, 'd');
    await cp(SAMPLE_BASE, dir, { recursive: true });
    await runCommand('rm', [join(dir, 'tokenizer.model')]);
    const sums = join(ROOT, 'fixtures', 'sample', 'llama-base.SHA256SUMS');
    expect((await runCli(['verify', dir, '--manifest', sums])).code).toBe(1);
    const r = await runCli(['verify', dir, '--manifest', sums, '--ignore-missing', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).files.map((f: { name: string }) => f.name)).not.toContain('tokenizer.model');
    const empty = join(work, 'empty');
    await mkdir(empty);
    const none = await runCli(['verify', empty, '--manifest', sums, '--ignore-missing']);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/\(no file was verified\)/);
  });
});

describe('model names', () => {
  it.each(['PygmalionAI/metharme-13b', 'pygmalionai/METHARME-13B', 'OpenAssistant/oasst-sft-6-llama-30b-xor'])('accepts the Hub repository id %s', async (id) => {
    const r = await runCli(['manifest', id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# (metharme-13b|oasst-sft-6-llama-30b): /);
  });

  it('an unknown name suggests the closest one (exit 2)', async () => {
    const r = await runCli(['decode', join(work, 'o'), SAMPLE_XOR, SAMPLE_BASE, '--model', 'metharme-31b']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown model "metharme-31b"; did you mean "metharme-13b"\? known: /);
  });
});

describe('the model card\'s own command line', () => {
  it('"metharme-xor <output> <xor-dir> <base-dir> --decode" runs as decode, with a one-line note', async () => {
    const out = join(work, 'out');
    const r = await runCommand(process.execPath, [BIN, out, SAMPLE_XOR, SAMPLE_BASE, '--decode', '--manifest', SAMPLE_SUMS]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('metharme-xor: note: running as "metharme-xor decode ..."; "decode" is the documented form\n');
    expect(await finalNames(out)).toHaveLength(9);
  });

  it('an unknown word that is not three paths is still an unknown command (exit 2)', async () => {
    const r = await runCli(['decod']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'decod'/);
  });
});

describe('where output goes', () => {
  async function underTerminal(command: string, env: NodeJS.ProcessEnv) {
    // script(1) gives the CLI a pseudo-terminal on stdin, stdout and stderr; `command` may redirect some.
    return runCommand('script', ['-qec', command, '/dev/null'], { env });
  }
  const decodeCmd = (out: string) => [process.execPath, BIN, 'decode', out, SAMPLE_XOR, SAMPLE_BASE, '--manifest', SAMPLE_SUMS].map((a) => `'${a}'`).join(' ');

  it('stdout redirected, stderr on a terminal: every result line is on stdout, the bars on stderr', async (ctx) => {
    if (!(await hasScript())) ctx.skip();
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
    delete env.CI;
    const file = join(work, 'stdout.txt');
    const r = await underTerminal(`${decodeCmd(join(work, 'out'))} > '${file}'`, env);
    expect(r.code).toBe(0);
    const stdout = await readFile(file, 'utf8');
    expect(stdout.split('\n').filter((l) => /^verified +\S/.test(l))).toHaveLength(9);
    expect(stdout).toMatch(/^done: 9 files/m);
    expect(stdout).not.toMatch(/\u001b\[/);
  });

  it.for([
    ['TERM=dumb', { TERM: 'dumb' } as Record<string, string>],
    ['CI=true', { TERM: 'xterm', CI: 'true' } as Record<string, string>],
  ] as const)('%s on a terminal: plain lines, no cursor codes', async ([, vars], ctx) => {
    if (!(await hasScript())) ctx.skip();
    const env: NodeJS.ProcessEnv = { ...process.env, ...vars };
    if (!('CI' in vars)) delete env.CI;
    const r = await underTerminal(decodeCmd(join(work, 'out')), env);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/\u001b\[/);
    expect(r.stdout).toMatch(/verified +config\.json/);
  });

  it.each(['false', '0'])('CI=%s does not count as CI: a terminal gets the bars', async (ci) => {
    const { chooseMode } = await import('../../src/cli/reporter.js');
    expect(chooseMode({}, { isTTY: true } as never, { CI: ci, TERM: 'xterm' })).toBe('tty');
    expect(chooseMode({}, { isTTY: true } as never, { CI: 'true', TERM: 'xterm' })).toBe('plain');
  });
});

describe('help', () => {
  it('no description holds a newline that would break the command columns', () => {
    const program = buildProgram({ code: 0, debug: false, json: false, signal: new AbortController().signal }, { out: process.stdout, err: process.stderr });
    for (const c of [program, ...program.commands]) expect(c.description()).not.toMatch(/\n/);
  });

  it('the exit-code table is printed once, at the top level; each command has a short note', async () => {
    const top = await runCli(['--help']);
    expect(top.stdout.match(/^ {2}130 /gm)).toHaveLength(1);
    const decodeHelp = await runCli(['decode', '--help']);
    expect(decodeHelp.stdout).not.toMatch(/^ {2}130 /m);
    expect(decodeHelp.stdout).toMatch(/Exit codes: 0 all verified, 1 a file failed or is missing, .*; the full table is in "metharme-xor --help"/);
  });

  it('decode --help lists --debug', async () => {
    expect((await runCli(['decode', '--help'])).stdout).toMatch(/--debug +show stack traces/);
  });

  it('a usage error points to the command\'s own --help', async () => {
    const r = await runCli(['verify']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\(run "metharme-xor verify --help" for usage\)/);
  });
});

describe('the README', () => {
  it('has a "Using it in CI" section whose step uses real flags; docs/usage.md has the conventions table', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const ci = readme.slice(readme.indexOf('## Using it in CI'), readme.indexOf('\n## ', readme.indexOf('## Using it in CI') + 5));
    expect(ci).toMatch(/--json --strict/);
    const help = (await runCli(['decode', '--help'])).stdout;
    for (const flag of ci.match(/--[a-z-]+/g) ?? []) expect(help + (await runCli(['verify', '--help'])).stdout).toContain(flag);
    const usage = await readFile(join(ROOT, 'docs', 'usage.md'), 'utf8');
    for (const v of ['HF_HOME', 'HF_ENDPOINT', 'HF_TOKEN', 'CI', 'NO_COLOR', 'TERM']) expect(usage).toMatch(new RegExp(`\\| \`${v}\` \\|`));
  });
});
