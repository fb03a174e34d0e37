import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'metharme-xor.js');
export const SAMPLE = join(ROOT, 'fixtures', 'sample');
export const SAMPLE_XOR = join(SAMPLE, 'xor_encoded_files');
export const SAMPLE_BASE = join(SAMPLE, 'llama-base');
export const SAMPLE_SUMS = join(SAMPLE, 'SHA256SUMS');
/**
 * Proxy variables blanked: a machine's own proxy (CI behind one, say) must not stand between the
 * tests and their servers on 127.0.0.1. Tests of proxies set their own.
 */
export const NO_PROXY_ENV = { HTTP_PROXY: '', HTTPS_PROXY: '', http_proxy: '', https_proxy: '', NO_PROXY: '', no_proxy: '' };
/** A self-signed certificate for localhost and 127.0.0.1, and its key (fixtures/tls/make.sh). */
export const TEST_TLS = join(ROOT, 'fixtures', 'tls');
/** The model of the reference decoder (python3 + numpy). */
export const REFERENCE_CODEC = join(ROOT, 'test', 'support', 'reference_codec.py');

function python3Runs(code: string): boolean {
  try {
    execFileSync('python3', ['-c', code], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
export const HAS_PYTHON = python3Runs('pass');
export const HAS_NUMPY = python3Runs('import numpy');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a user would: a child process, no TTY, CI unset unless given. */
export function runCli(args: string[], options: SpawnOptions & { input?: string } = {}): Promise<RunResult> {
  return runCommand(process.execPath, [BIN, ...args], options);
}

/** `input`: written to the child's standard input (else it gets none). */
export function runCommand(cmd: string, args: string[], options: SpawnOptions & { input?: string } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const { input, ...spawnOptions } = options;
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...spawnOptions });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}

export async function tempDir(prefix = 'mxor-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

/** The format's semantics, written as plainly as possible to test the fast code against. */
export function referenceXor(payload: Uint8Array, base: Uint8Array): Buffer {
  const out = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i]! ^ (i < base.length ? base[i]! : 0);
  return out;
}

/** Deterministic pseudo-random bytes (fast for large sizes): a seeded xorshift over 32-bit words. */
export function seededBytes(length: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, length);
}

export { randomBytes };

/**
 * A stored zip shaped like a torch checkpoint, `size` bytes in all: `c/data.pkl` (an empty dict)
 * first, then one storage entry of pseudo-random "weights", the central directory and its end
 * record. The pickle check finds it safe, as it would a real checkpoint.
 */
export function checkpointBytes(size: number, seed: number): Buffer {
  const pkl = Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]);
  const entries: { name: string; data: Buffer }[] = [{ name: 'c/data.pkl', data: pkl }, { name: 'c/data/0', data: Buffer.alloc(0) }];
  const overhead = entries.reduce((n, e) => n + 30 + 46 + 2 * e.name.length, 0) + pkl.length + 22;
  if (size < overhead) throw new Error(`checkpointBytes needs at least ${overhead} bytes`);
  entries[1]!.data = seededBytes(size - overhead, seed);
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'latin1');
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt32LE(e.data.length, 18);
    h.writeUInt32LE(e.data.length, 22);
    h.writeUInt16LE(name.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt32LE(e.data.length, 20);
    c.writeUInt32LE(e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(at, 42);
    local.push(h, name, e.data);
    central.push(c, name);
    at += 30 + name.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(at, 16);
  return Buffer.concat([...local, cd, end]);
}

export interface ReleaseFile {
  name: string;
  fine: Buffer;
  /** Absent: no base counterpart. */
  base?: Buffer;
  /** Ship the payload as the fine-tuned file itself (plain JSON) rather than XORed. */
  plain?: boolean;
}

/** Writes base/, xor/ and a SHA256SUMS manifest of the fine-tuned files into `root`. */
export async function writeRelease(root: string, files: ReleaseFile[]) {
  const baseDir = join(root, 'base');
  const xorDir = join(root, 'xor');
  await mkdir(baseDir, { recursive: true });
  await mkdir(xorDir, { recursive: true });
  const lines: string[] = [];
  for (const f of files) {
    if (f.base) await writeFile(join(baseDir, f.name), f.base);
    const payload = f.plain || !f.base ? f.fine : referenceXor(f.fine, f.base);
    await writeFile(join(xorDir, f.name), payload);
    lines.push(`${sha256(f.fine)}  ${f.name}`);
  }
  const manifest = join(root, 'SHA256SUMS');
  await writeFile(manifest, `${lines.join('\n')}\n`);
  return { baseDir, xorDir, manifest, outDir: join(root, 'out') };
}

export async function fileSha256(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** Files under final names in `dir` (hidden state folder excluded); [] if the folder does not exist. */
export async function finalNames(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

/**
 * Runs `fn` with a tmpfs of `size` mounted at `mountPoint` (extra options such as "ro" allowed), and
 * skips the test where mounting is not possible (not root, no mount namespace).
 */
export async function withTmpfs(
  ctx: { skip: () => void },
  mountPoint: string,
  options: string,
  fn: () => Promise<void>,
): Promise<void> {
  await mkdir(mountPoint, { recursive: true });
  const mounted = await runCommand('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mountPoint]).catch(() => undefined);
  if (!mounted || mounted.code !== 0) ctx.skip();
  try {
    await fn();
  } finally {
    await runCommand('umount', [mountPoint]);
  }
}

/** Real torch.save checkpoints and XOR releases of them (fixtures/make-checkpoints.py). */
export const TORCH = join(ROOT, 'fixtures', 'torch');
export const TORCH_XOR = join(TORCH, 'xor_encoded_files');
export const TORCH_BASE = join(TORCH, 'llama-base');
export const TORCH_FINE = join(TORCH, 'finetune');
export const TORCH_SUMS = join(TORCH, 'SHA256SUMS');
export const SHARD1 = 'pytorch_model-00001-of-00003.bin';
export const SHARD2 = 'pytorch_model-00002-of-00003.bin';

/** Damages one byte of a file in place, as a bad download or disk would. */
export async function flipByte(path: string, offset: number, mask = 0x01): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset] ^= mask;
  await writeFile(path, bytes);
}

/** The one JSON document a --json run prints. */
export function jsonDoc<T = DecodeDoc>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

export interface DecodeDoc {
  exitCode: number;
  files: {
    name: string;
    status: string;
    cause: string | null;
    diagnosis: { code: string; message: string }[];
    baseCheck: { status: string } | null;
  }[];
  totals: Record<string, number>;
  warnings: string[];
  error?: { message: string; file: string; hint: string; exitCode: number };
}

/** Every byte of a source, read `piece` bytes at a time; the source is closed. */
export async function readWhole(source: { read(buf: Buffer, want: number): Promise<number>; close(): Promise<void> }, piece: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for (;;) {
      const buf = Buffer.alloc(piece);
      const n = await source.read(buf, piece);
      parts.push(buf.subarray(0, n));
      if (n < piece) break;
    }
  } finally {
    await source.close();
  }
  return Buffer.concat(parts);
}
