/**
 * The streaming codec: payload XOR base -> output file and digest, chunk by chunk, in flat memory.
 *
 * All buffers are allocated once, in one shared memory: a ring of output slots and two base
 * buffers. For each chunk the payload and base are read in parallel into a slot and a base buffer,
 * the next chunk's reads start at once, the slot is XORed in place, then written and hashed (on the
 * worker) in parallel. A slot is reused only when its write and its hash are both done, so memory
 * stays at (slots + 2) x chunk size whatever the file size.
 */
import { DIRECT_ALIGN, findDirectOffset } from './direct-io.js';
import { asWriteError, interruptedBy } from '../errors.js';
import { HashWorker } from './hasher.js';
import type { ByteSource } from './sources.js';
import { rehashKept } from './resume-prefix.js';
import { BACKGROUND_FLUSH_BYTES, DEFAULT_CHUNK_BYTES, DEFAULT_SLOTS, HASH_STREAMS, type OutputSink, type PipelineOptions, type StreamJob, type StreamResult } from './stream-job.js';
import { createXorMemory, type XorMemory } from './xor.js';

interface Slot {
  index: number;
  offset: number;
  /** Payload bytes, XORed in place into output bytes; shared with the hash worker. */
  data: Buffer;
  busy: Promise<void>;
}

interface BaseBuffer {
  offset: number;
  data: Buffer;
  /** Pending hash of this buffer's bytes (--check-base); it is refilled only after. */
  busy: Promise<void>;
}

const { output: OUTPUT_STREAM, base: BASE_STREAM, source: SOURCE_STREAM } = HASH_STREAMS;

interface Pending {
  slot: Slot;
  base: BaseBuffer;
  read: Promise<[number, number]>;
}

export class Pipeline {
  readonly chunkBytes: number;
  /** Whether slot buffers are aligned for direct writes to the output file system. */
  readonly directAligned: boolean;
  private readonly memory: XorMemory;
  private readonly slots: Slot[];
  private readonly bases: BaseBuffer[];
  private readonly hasher: HashWorker;
  /**
   * The source's digests (sourceAlgorithms) have a worker of their own, started when first needed,
   * unless they share the output's (sharedSourceHasher).
   */
  private sourceHasher: HashWorker | undefined;
  private readonly sharedSourceHasher: boolean;

  constructor(options: PipelineOptions = {}) {
    // Whole blocks per chunk, so every chunk but a file's last starts at an aligned file offset.
    const chunk = Math.max(DIRECT_ALIGN, Math.ceil((options.chunkBytes ?? DEFAULT_CHUNK_BYTES) / DIRECT_ALIGN) * DIRECT_ALIGN);
    // Read-ahead fills the next slot while the current one is written: fewer than two would overlap.
    const slotCount = Math.max(2, options.slots ?? DEFAULT_SLOTS);
    this.chunkBytes = chunk;
    // Slots then two base buffers, with room to start them at an aligned address.
    this.memory = createXorMemory((slotCount + 2) * chunk + DIRECT_ALIGN, { simd: options.simd ?? true });
    const whole = Buffer.from(this.memory.buffer);
    const start = options.outputDir ? findDirectOffset(whole, options.outputDir) : undefined;
    this.directAligned = start !== undefined;
    const at = (i: number) => (start ?? 0) + i * chunk;
    this.slots = Array.from({ length: slotCount }, (_, index) => ({
      index,
      offset: at(index),
      data: Buffer.from(this.memory.buffer, at(index), chunk),
      busy: Promise.resolve(),
    }));
    this.bases = [0, 1].map((i) => ({
      offset: at(slotCount + i),
      data: Buffer.from(this.memory.buffer, at(slotCount + i), chunk),
      busy: Promise.resolve(),
    }));
    this.hasher = new HashWorker(this.memory.buffer);
    this.sharedSourceHasher = options.sharedSourceHasher === true;
  }

  async run(job: StreamJob): Promise<StreamResult> {
    const { source, base, output, signal } = job;
    const chunk = this.chunkBytes;
    this.hasher.begin(OUTPUT_STREAM, job.algorithms);
    this.hasher.begin(BASE_STREAM, base ? (job.baseAlgorithms ?? []) : []);
    const hashBase = this.hasher.hashing(BASE_STREAM);
    const sourceHasher = !job.sourceAlgorithms?.length ? undefined : this.sharedSourceHasher ? this.hasher : (this.sourceHasher ??= new HashWorker(this.memory.buffer));
    sourceHasher?.begin(SOURCE_STREAM, job.sourceAlgorithms ?? []);
    let position = 0;
    let baseBytes = 0;
    let baseEnded = !base;
    let failure: unknown;
    let flushing: Promise<unknown> | undefined;
    let flushedAt = 0;

    const startRead = (index: number): Pending => {
      const slot = this.slots[index % this.slots.length]!;
      const baseBuffer = this.bases[index % 2]!;
      const read = (async (): Promise<[number, number]> => {
        await Promise.all([slot.busy, baseBuffer.busy]);
        const result = await Promise.all([source.read(slot.data, chunk), baseEnded ? 0 : base!.read(baseBuffer.data, chunk)]);
        if (hashBase && result[1] > 0) baseBuffer.busy = this.hasher.update(BASE_STREAM, baseBuffer.offset, result[1]);
        return result;
      })();
      return { slot, base: baseBuffer, read };
    };

    const completed = new Map<number, number>();
    let contiguous = 0;
    const written = (start: number, end: number) => {
      completed.set(start, end);
      for (let next = completed.get(contiguous); next !== undefined; next = completed.get(contiguous)) {
        completed.delete(contiguous);
        contiguous = next;
      }
      job.onWritten?.(contiguous);
    };

    let chunkIndex = 0;
    let pending: Pending | undefined;
    try {
      if (job.resume) {
        const kept = await rehashKept(
          { memory: this.memory, slot: this.slots[0]!, base: this.bases[0]!, hasher: this.hasher, chunkBytes: chunk },
          job,
          job.resume,
          sourceHasher,
          () => baseEnded,
          (ended) => (baseEnded = ended),
        );
        position = kept.bytes;
        baseBytes = kept.baseBytes;
        contiguous = position;
      }
      pending = startRead(chunkIndex);
      while (pending) {
        const current: Pending = pending;
        pending = undefined;
        const [n, nb] = await current.read;
        if (nb < chunk) baseEnded = true;
        if (n === 0) break;
        if (signal?.aborted) throw interruptedBy(signal);
        // Read ahead: the next chunk's reads run while this one is XORed, written and hashed.
        if (n === chunk) pending = startRead(++chunkIndex);
        const used = Math.min(n, nb);
        // The slot is free again once its payload is hashed (and, when the output is made in it, written).
        const sourceHashed = sourceHasher?.update(SOURCE_STREAM, current.slot.offset, n);
        if (sourceHashed) current.slot.busy = sourceHashed;
        // Where the output is made: in the slot, or in the base buffer while the slot's payload is hashed.
        let out: Slot | BaseBuffer = current.slot;
        if (sourceHashed && base) {
          out = current.base;
          // The base's own digest (--check-base) reads it before it turns into output.
          await out.busy;
          if (used > 0) this.memory.xor(out.offset, current.slot.offset, used);
          // Past the base's end the output is the payload itself.
          if (used < n) current.slot.data.copy(out.data, used, used, n);
        } else if (used > 0) {
          this.memory.xor(current.slot.offset, current.base.offset, used);
        }
        baseBytes += used;
        if (position === 0 && job.inspectHead) job.inspectHead(out.data.subarray(0, n));
        job.onChunk?.(out.data.subarray(0, n), position);
        const at = position;
        // A file of one chunk is hashed here, without waiting for the worker (HashWorker.whole).
        const whole = position === 0 && n < chunk && !job.resume && !hashBase && !sourceHashed;
        const done = this.writeAndHash(out, n, position, output, whole).then(() => written(at, at + n));
        out.busy = sourceHashed && out === current.slot ? Promise.all([done, sourceHashed]).then(() => undefined) : done;
        position += n;
        job.onBytes?.(n);
        if (output?.flush && !flushing && position - flushedAt >= BACKGROUND_FLUSH_BYTES) {
          flushedAt = position;
          // Errors surface again at the final flush; here they must not become unhandled rejections.
          flushing = output.flush().then(
            () => (flushing = undefined),
            () => (flushing = undefined),
          );
        }
      }
      // The base's digest covers the whole file, also the part beyond the payload's end.
      if (hashBase && failure === undefined) await this.hashRestOfBase(base!, () => baseEnded, signal);
    } catch (err) {
      failure = err;
    }
    // Drain everything in flight before returning: the caller closes the files and reuses the buffers.
    const inFlight = [pending?.read, ...this.slots.map((s) => s.busy), ...this.bases.map((b) => b.busy), flushing];
    const settled = await Promise.allSettled(inFlight);
    for (const s of this.slots) s.busy = Promise.resolve();
    for (const b of this.bases) b.busy = Promise.resolve();
    const drainError = settled.slice(1).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure === undefined && drainError) failure = drainError.reason;
    if (failure !== undefined) {
      // Reset the worker's state for the next file; its digests of a failed file are meaningless.
      await this.hasher.digest(OUTPUT_STREAM).catch(() => undefined);
      await this.hasher.digest(BASE_STREAM).catch(() => undefined);
      await sourceHasher?.digest(SOURCE_STREAM).catch(() => undefined);
      throw failure;
    }
    const digests = await this.hasher.digest(OUTPUT_STREAM);
    const baseDigests = await this.hasher.digest(BASE_STREAM);
    const sourceDigests = (await sourceHasher?.digest(SOURCE_STREAM)) ?? {};
    return { bytes: position, baseBytes, digests, baseDigests, sourceDigests };
  }

  private async hashRestOfBase(base: ByteSource, ended: () => boolean, signal: AbortSignal | undefined): Promise<void> {
    let i = 0;
    while (!ended()) {
      if (signal?.aborted) throw interruptedBy(signal);
      const buffer = this.bases[i++ % 2]!;
      await buffer.busy;
      const n = await base.read(buffer.data, this.chunkBytes);
      if (n > 0) buffer.busy = this.hasher.update(BASE_STREAM, buffer.offset, n);
      if (n < this.chunkBytes) return;
    }
  }

  private async writeAndHash(slot: Slot | BaseBuffer, length: number, position: number, output: OutputSink | undefined, whole: boolean): Promise<void> {
    const hashed = whole ? this.hasher.whole(OUTPUT_STREAM, slot.data.subarray(0, length)) : this.hasher.update(OUTPUT_STREAM, slot.offset, length);
    if (output) {
      try {
        await output.write(slot.data, length, position);
      } catch (err) {
        await hashed.catch(() => undefined);
        throw asWriteError(err, output.path, 'writing');
      }
    }
    await hashed;
  }

  async close(): Promise<void> {
    await this.hasher.close();
    await this.sourceHasher?.close();
  }
}
