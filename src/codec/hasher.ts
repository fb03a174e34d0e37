/**
 * Hashing on a worker thread. SHA-256 is the one real cost of a verified decode (~1.6 GB/s with the
 * CPU's SHA extensions), so it runs beside the reads, XOR and writes instead of after them. The
 * worker reads the pipeline's shared memory directly: no chunk is copied to be hashed. Several
 * independent streams can be hashed at once (the output, and the base for --check-base).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Algorithm, Digests } from '../types.js';

/**
 * MD5 comes from hash-wasm where node:crypto has none (OpenSSL in FIPS mode refuses MD5, and the
 * Pygmalion-7B and OpenAssistant-30B digests are MD5). METHARME_XOR_MD5=wasm forces that path, so it
 * can be tested (and compared) on any machine.
 */
const HASH_WASM = createRequire(import.meta.url).resolve('hash-wasm');
const FORCE_WASM_MD5 = process.env.METHARME_XOR_MD5 === 'wasm';

// Inline (eval) so the same code runs from dist/ and from the TypeScript sources under the tests.
// Messages are handled strictly in order (one promise chain), so replies match requests.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const memory = workerData.buffer;
const streams = new Map();
let wasm;
async function hasher(algorithm) {
  try {
    if (algorithm === 'md5' && workerData.forceWasmMd5) throw new Error('forced');
    const h = createHash(algorithm);
    return { update: (v) => h.update(v), digest: () => h.digest('hex') };
  } catch (err) {
    if (algorithm !== 'md5') throw err;
    wasm = wasm || require(workerData.hashWasm);
    const h = await wasm.createMD5();
    h.init();
    return { update: (v) => h.update(v), digest: () => h.digest('hex') };
  }
}
let queue = Promise.resolve();
parentPort.on('message', (m) => {
  queue = queue.then(async () => {
    if (m.op === 'begin') {
      streams.set(m.stream, await Promise.all(m.algorithms.map(hasher)));
    } else if (m.op === 'update') {
      const view = Buffer.from(memory, m.offset, m.length);
      for (const h of streams.get(m.stream)) h.update(view);
      parentPort.postMessage(null);
    } else if (m.op === 'digest') {
      const hashes = streams.get(m.stream) || [];
      streams.delete(m.stream);
      parentPort.postMessage(hashes.map((h) => h.digest()));
    }
  }).catch((err) => setImmediate(() => { throw err; }));
});
`;

type Reply = { resolve: (value: unknown) => void; reject: (err: Error) => void };

export class HashWorker {
  private readonly worker: Worker;
  private readonly waiting: Reply[] = [];
  private readonly algorithms = new Map<number, Algorithm[]>();
  /** Digests of streams hashed whole on this thread (whole()), until digest() takes them. */
  private readonly here = new Map<number, Digests>();
  private failure: Error | undefined;
  private readonly forceWasmMd5: boolean;

  /** `md5`: where MD5 comes from (tests force hash-wasm, and may point it at another module). */
  constructor(buffer: SharedArrayBuffer, md5: { wasm?: boolean; module?: string } = {}) {
    this.forceWasmMd5 = md5.wasm ?? FORCE_WASM_MD5;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { buffer, hashWasm: md5.module ?? HASH_WASM, forceWasmMd5: this.forceWasmMd5 },
    });
    this.worker.unref();
    this.worker.on('message', (value: unknown) => {
      const reply = this.waiting.shift();
      if (this.waiting.length === 0) this.worker.unref();
      reply?.resolve(value);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`hash worker exited (${code})`)));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const reply of this.waiting.splice(0)) reply.reject(err);
  }

  private request(message: unknown): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    // Only keep the process alive while an answer is owed, so an idle worker never blocks exit.
    if (this.waiting.length === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(message);
    });
  }

  /** Starts stream `stream` (replacing any unfinished one); no algorithms means updates are free. */
  begin(stream: number, algorithms: readonly Algorithm[]): void {
    this.here.delete(stream);
    this.algorithms.set(stream, [...algorithms]);
    if (algorithms.length > 0) this.worker.postMessage({ op: 'begin', stream, algorithms });
  }

  hashing(stream: number): boolean {
    return (this.algorithms.get(stream)?.length ?? 0) > 0;
  }

  /** Resolves once memory[offset, offset + length) has been hashed and may be overwritten. */
  async update(stream: number, offset: number, length: number): Promise<void> {
    if (!this.hashing(stream)) return;
    await this.request({ op: 'update', stream, offset, length });
  }

  /**
   * All of stream `stream` at once, hashed on this thread: a file of one chunk (the small files a
   * decode starts with) does not wait for the worker to start, about 70 ms here, and the files after
   * it start reading sooner. As with update, the bytes stay as they are until it resolves.
   */
  async whole(stream: number, bytes: Uint8Array): Promise<void> {
    const algorithms = this.algorithms.get(stream) ?? [];
    this.algorithms.delete(stream);
    const hex = algorithms.map((a) => digestBytes(a, bytes, this.forceWasmMd5));
    const out: Digests = {};
    for (const [i, a] of algorithms.entries()) out[a] = await hex[i]!;
    this.here.set(stream, out);
  }

  async digest(stream: number): Promise<Digests> {
    const here = this.here.get(stream);
    if (here) {
      this.here.delete(stream);
      return here;
    }
    const algorithms = this.algorithms.get(stream) ?? [];
    this.algorithms.delete(stream);
    if (algorithms.length === 0) return {};
    const hex = (await this.request({ op: 'digest', stream })) as string[];
    const out: Digests = {};
    algorithms.forEach((a, i) => (out[a] = hex[i]));
    return out;
  }

  async close(): Promise<void> {
    this.failure ??= new Error('hash worker closed');
    await this.worker.terminate();
  }
}

/** One digest of bytes in memory, on this thread: node:crypto, or hash-wasm for MD5 where node:crypto has none. */
export async function digestBytes(algorithm: Algorithm, bytes: Uint8Array, forceWasmMd5 = FORCE_WASM_MD5): Promise<string> {
  if (algorithm === 'md5' && forceWasmMd5) return (await import('hash-wasm')).md5(bytes);
  try {
    return createHash(algorithm).update(bytes).digest('hex');
  } catch (err) {
    if (algorithm !== 'md5') throw err;
    return (await import('hash-wasm')).md5(bytes);
  }
}
