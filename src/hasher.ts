/**
 * Hashing on a worker thread. SHA-256 is the one real cost of a verified decode (~1.6 GB/s with the
 * CPU's SHA extensions), so it runs beside the reads, XOR and writes instead of after them. The
 * worker reads the pipeline's SharedArrayBuffer slots directly: no chunk is copied to be hashed.
 */
import { Worker } from 'node:worker_threads';
import type { Algorithm } from './manifest.js';

// Inline (eval) so the same code runs from dist/ and from the TypeScript sources under the tests.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const views = workerData.offsets.map((o) => Buffer.from(workerData.buffer, o, workerData.slotBytes));
let hashes = [];
parentPort.on('message', (m) => {
  if (m.op === 'begin') {
    hashes = m.algorithms.map((a) => createHash(a));
  } else if (m.op === 'update') {
    const view = views[m.slot].subarray(0, m.length);
    for (const h of hashes) h.update(view);
    parentPort.postMessage(null);
  } else if (m.op === 'digest') {
    parentPort.postMessage(hashes.map((h) => h.digest('hex')));
    hashes = [];
  }
});
`;

type Reply = { resolve: (value: unknown) => void; reject: (err: Error) => void };

export type Digests = Partial<Record<Algorithm, string>>;

export class HashWorker {
  private readonly worker: Worker;
  private readonly waiting: Reply[] = [];
  private algorithms: Algorithm[] = [];
  private failure: Error | undefined;

  /** `buffer` holds the pipeline's slots: slot i is `slotBytes` bytes at `offsets[i]`. */
  constructor(buffer: SharedArrayBuffer, offsets: readonly number[], slotBytes: number) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { buffer, offsets, slotBytes } });
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

  begin(algorithms: readonly Algorithm[]): void {
    this.algorithms = [...algorithms];
    if (this.algorithms.length > 0) this.worker.postMessage({ op: 'begin', algorithms: this.algorithms });
  }

  /** Resolves once slot `slot` has been hashed and may be reused. */
  async update(slot: number, length: number): Promise<void> {
    if (this.algorithms.length === 0) return;
    await this.request({ op: 'update', slot, length });
  }

  async digest(): Promise<Digests> {
    if (this.algorithms.length === 0) return {};
    const hex = (await this.request({ op: 'digest' })) as string[];
    const out: Digests = {};
    this.algorithms.forEach((a, i) => (out[a] = hex[i]));
    this.algorithms = [];
    return out;
  }

  async close(): Promise<void> {
    this.failure ??= new Error('hash worker closed');
    await this.worker.terminate();
  }
}
