/**
 * Rows converted to a GGUF type on worker threads: the quantizers are the cost of a quantized GGUF
 * (hundreds of nanoseconds a value for the K-quants, which get one thread per core; Q8_0 in
 * WebAssembly keeps up on one), and on this thread they would run beside the decode's own work.
 * Rows and results live in shared memory (the GGUF writers' buffer pool hands out such buffers), so
 * a job moves no bytes; rows in any other memory, small jobs, and a build without the worker's
 * compiled file are converted here instead, to the same bytes.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GGML_TYPE, type GgmlType } from './gguf-format.js';
import { q8Kernel } from './q8-simd.js';
import { sourceBytes } from './ggml-blocks.js';
import { convertRows } from './gguf-tensors.js';

/** One thread a core, up to a few: each costs about 9 MB of memory, and the writes must keep up. */
const MAX_THREADS = Math.max(1, Math.min(4, availableParallelism()));
/** Fewer values than this are converted on this thread: a hand-off costs more than they do. */
const MIN_WORKER_VALUES = 16 << 10;

export interface ConvertJob {
  id: number;
  src: SharedArrayBuffer;
  srcOffset: number;
  srcLength: number;
  dst: SharedArrayBuffer;
  dstOffset: number;
  dstLength: number;
  dtype: string;
  type: GgmlType;
  cols: number;
}

type Reply = { id: number; crc?: number; error?: string };

interface Thread {
  worker: Worker;
  busy: number;
}

/** The compiled worker beside this module; under the tests (TypeScript sources) the one in dist/. */
function workerFile(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? here.replace(/[\\/]src[\\/]output[\\/][^\\/]+$/, '/dist/output/convert-worker.js') : here.replace(/[^\\/]+$/, 'convert-worker.js');
  return existsSync(file) ? file : undefined;
}

const shared = (b: Buffer): SharedArrayBuffer | undefined => (b.buffer instanceof SharedArrayBuffer ? b.buffer : undefined);

export class ConvertPool {
  private readonly threads: Thread[] = [];
  private readonly waiting = new Map<number, { resolve: (crc: number | undefined) => void; reject: (err: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(private readonly file: string) {}

  /** Starts threads until there are `size`. */
  private grow(size: number): void {
    while (this.threads.length < size) {
      const thread: Thread = { worker: new Worker(this.file), busy: 0 };
      thread.worker.on('message', (reply: Reply) => this.answer(thread, reply));
      thread.worker.on('error', (err) => this.fail(err));
      thread.worker.on('exit', (code) => this.fail(new Error(`GGUF conversion worker exited (${code})`)));
      // After the listeners: adding a message listener refs the worker's port again.
      thread.worker.unref();
      this.threads.push(thread);
    }
  }

  private static instance: ConvertPool | null | undefined;

  /**
   * The process's pool, with at least `threads` threads (started on first use); none where the
   * worker cannot run (rows are then converted here).
   */
  static get(threads: number): ConvertPool | undefined {
    if (ConvertPool.instance === undefined) {
      const file = workerFile();
      ConvertPool.instance = file ? new ConvertPool(file) : null;
    }
    ConvertPool.instance?.grow(threads);
    return ConvertPool.instance ?? undefined;
  }

  private answer(thread: Thread, reply: Reply): void {
    thread.busy--;
    if (thread.busy === 0) thread.worker.unref();
    const job = this.waiting.get(reply.id);
    this.waiting.delete(reply.id);
    if (reply.error !== undefined) job?.reject(new Error(reply.error));
    else job?.resolve(reply.crc);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of this.waiting.values()) job.reject(err);
    this.waiting.clear();
    if (ConvertPool.instance === this) ConvertPool.instance = undefined;
  }

  /** Has every thread make its kernels for `type` now (not a job: nothing answers, nothing waits). */
  warm(type: GgmlType): void {
    for (const thread of this.threads) thread.worker.postMessage({ warm: type });
  }

  /** Whole rows of `src` (`dtype` values) converted into `into`; resolves, with their CRC-32, once `into` holds them. */
  run(src: Buffer, dtype: string, type: GgmlType, cols: number, into: Buffer): Promise<number | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    const thread = this.threads.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    const job: ConvertJob = { id, src: shared(src)!, srcOffset: src.byteOffset, srcLength: src.length, dst: shared(into)!, dstOffset: into.byteOffset, dstLength: into.length, dtype, type, cols };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (thread.busy++ === 0) thread.worker.ref();
      thread.worker.postMessage(job);
    });
  }
}

/**
 * `convertRows` into `into` (exactly the converted size), on a worker when the rows are many and
 * both buffers are shared memory; resolves to `into` once it holds them.
 */
export async function convertRowsAsync(src: Buffer, dtype: string, type: GgmlType, cols: number, into: Buffer): Promise<Buffer> {
  const values = src.length / (sourceBytes(dtype) ?? 1);
  const pool = values >= MIN_WORKER_VALUES && shared(src) && shared(into) ? ConvertPool.get(threadsFor(type)) : undefined;
  if (!pool) return convertRows(src, dtype, type, cols, into);
  const crc = await pool.run(src, dtype, type, cols, into);
  if (crc !== undefined) convertedCrcs.set(into, crc);
  return into;
}

/** The CRC-32 of each buffer a worker converted into, taken there (gguf-shard-sink.ts joins them). */
const convertedCrcs = new WeakMap<Buffer, number>();

/** The CRC-32 of `buf`, if a conversion worker made it and said. */
export function convertedCrc(buf: Buffer): number | undefined {
  return convertedCrcs.get(buf);
}

/** Q8_0 in WebAssembly keeps up with the decode on one thread; the others want every core. */
const threadsFor = (type: GgmlType): number => (type === GGML_TYPE.Q8_0 && q8Kernel() ? 1 : MAX_THREADS);

/**
 * Starts the threads a conversion to `type` will use, each making its kernels, while a run writes
 * its small files: the first block waited about 0.1 s for a thread to start and compile them.
 */
export function warmConversions(type: GgmlType): void {
  ConvertPool.get(threadsFor(type))?.warm(type);
}
