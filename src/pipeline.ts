/**
 * The streaming codec: payload XOR base -> output file and digest, chunk by chunk, in flat memory.
 *
 * A fixed ring of slots is allocated once. For each chunk the payload and base are read in parallel
 * into a slot, XORed in place, then written and hashed (on the worker) in parallel while the next
 * slot is being read. A slot is reused only when its write and its hash are both done, so memory
 * stays at slots x chunk size whatever the file size.
 */
import type { FileHandle } from 'node:fs/promises';
import { asWriteError, InterruptedError } from './errors.js';
import { HashWorker, type Digests } from './hasher.js';
import type { Algorithm } from './manifest.js';
import type { ByteSource } from './sources.js';
import { bindXor } from './xor.js';

export const DEFAULT_CHUNK_BYTES = 4 << 20;
export const DEFAULT_SLOTS = 4;
/**
 * Start writing dirty pages to disk every this many bytes, in the background. The final flush
 * before the rename (what makes a final name safe across a power loss) then has little left to do,
 * instead of stalling for the whole file at the end.
 */
export const BACKGROUND_FLUSH_BYTES = 128 << 20;

interface Slot {
  index: number;
  /** Payload bytes, XORed in place into output bytes; shared with the hash worker. */
  data: Buffer;
  base: Buffer;
  xor: (length: number) => void;
  busy: Promise<void>;
}

export interface StreamJob {
  /** The bytes to transform: a raw or gzip payload, or an existing file to hash. */
  source: ByteSource;
  /** XOR operand; bytes past its end count as zero. Absent: the source is copied unchanged. */
  base?: ByteSource | undefined;
  /** Output file and its name for error messages. Absent: nothing is written (hash only). */
  output?: { handle: FileHandle; path: string } | undefined;
  algorithms: readonly Algorithm[];
  signal?: AbortSignal | undefined;
  /** Called with the output's first chunk before it is written; throwing stops the file at once. */
  inspectHead?: ((head: Buffer) => void) | undefined;
  onBytes?: ((bytes: number) => void) | undefined;
}

export interface StreamResult {
  bytes: number;
  /** Bytes of the base that were used (less than `bytes` when the base is shorter). */
  baseBytes: number;
  digests: Digests;
}

export class Pipeline {
  private readonly slots: Slot[];
  private readonly hasher: HashWorker;

  constructor(
    readonly chunkBytes = DEFAULT_CHUNK_BYTES,
    slotCount = DEFAULT_SLOTS,
  ) {
    const shared = Array.from({ length: slotCount }, () => new SharedArrayBuffer(chunkBytes));
    this.slots = shared.map((sab, index) => {
      const data = Buffer.from(sab);
      const base = Buffer.alloc(chunkBytes);
      return { index, data, base, xor: bindXor(data, base), busy: Promise.resolve() };
    });
    this.hasher = new HashWorker(shared);
  }

  async run(job: StreamJob): Promise<StreamResult> {
    const { source, base, output, signal } = job;
    this.hasher.begin(job.algorithms);
    let position = 0;
    let baseBytes = 0;
    let baseEnded = !base;
    let next = 0;
    let failure: unknown;
    let flushing: Promise<void> | undefined;
    let flushedAt = 0;
    try {
      for (;;) {
        if (signal?.aborted) throw new InterruptedError(signalName(signal));
        const slot = this.slots[next]!;
        next = (next + 1) % this.slots.length;
        await slot.busy;
        const [n, nb] = await Promise.all([
          source.read(slot.data, this.chunkBytes),
          baseEnded ? 0 : base!.read(slot.base, this.chunkBytes),
        ]);
        if (n === 0) break;
        const used = Math.min(n, nb);
        if (used > 0) slot.xor(used);
        if (nb < this.chunkBytes) baseEnded = true;
        baseBytes += used;
        if (position === 0 && job.inspectHead) job.inspectHead(slot.data.subarray(0, n));
        slot.busy = this.emit(slot, n, position, output);
        position += n;
        if (output && !flushing && position - flushedAt >= BACKGROUND_FLUSH_BYTES) {
          flushedAt = position;
          // Errors surface again at the final flush; here they must not become unhandled rejections.
          flushing = output.handle.datasync().then(
            () => (flushing = undefined),
            () => (flushing = undefined),
          );
        }
        job.onBytes?.(n);
        if (n < this.chunkBytes) break;
      }
    } catch (err) {
      failure = err;
    }
    // Always drain in-flight writes and hashes before returning: the caller closes the output next.
    const settled = await Promise.allSettled([...this.slots.map((s) => s.busy), flushing]);
    for (const s of this.slots) s.busy = Promise.resolve();
    const drainError = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure === undefined && drainError) failure = drainError.reason;
    if (failure !== undefined) {
      // Reset the worker's state for the next file; its digest of a failed file is meaningless.
      await this.hasher.digest().catch(() => undefined);
      throw failure;
    }
    return { bytes: position, baseBytes, digests: await this.hasher.digest() };
  }

  private async emit(slot: Slot, length: number, position: number, output: StreamJob['output']): Promise<void> {
    const hashed = this.hasher.update(slot.index, length);
    if (output) {
      try {
        let written = 0;
        while (written < length) {
          const { bytesWritten } = await output.handle.write(slot.data, written, length - written, position + written);
          written += bytesWritten;
        }
      } catch (err) {
        await hashed.catch(() => undefined);
        throw asWriteError(err, output.path, 'writing');
      }
    }
    await hashed;
  }

  async close(): Promise<void> {
    await this.hasher.close();
  }
}

function signalName(signal: AbortSignal): NodeJS.Signals {
  const reason: unknown = signal.reason;
  return reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
}
