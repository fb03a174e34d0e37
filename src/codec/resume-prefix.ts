/**
 * Resuming inside a file: the part an interrupted run already wrote is read back, hashed and
 * inspected as if decoded, and turned back into payload bytes for the source's digests, so that a
 * resumed file is proven exactly as one decoded in one go.
 */
import { interruptedBy } from '../errors.js';
import type { HashWorker } from './hasher.js';
import { HASH_STREAMS, type StreamJob } from './stream-job.js';
import type { XorMemory } from './xor.js';

const { output: OUTPUT_STREAM, base: BASE_STREAM, source: SOURCE_STREAM } = HASH_STREAMS;

/** The pipeline's pieces the kept prefix goes through: one slot, one base buffer, its hasher. */
export interface KeptPrefixCodec {
  memory: XorMemory;
  slot: { offset: number; data: Buffer };
  base: { offset: number; data: Buffer };
  hasher: HashWorker;
  chunkBytes: number;
}

/**
 * The kept prefix of a resumed file, chunk by chunk and in order: read back from disk with the base
 * beside it, hashed and inspected as if decoded, and XORed the other way (base buffer ^= output) to
 * give back the payload bytes. Reading the base here also leaves it at the resume offset.
 */
export async function rehashKept(
  codec: KeptPrefixCodec,
  job: StreamJob,
  resume: NonNullable<StreamJob['resume']>,
  /** This run's hasher of the source's digests, when there are any: the kept part's payload goes to it. */
  sourceHasher: HashWorker | undefined,
  baseEnded: () => boolean,
  setBaseEnded: (ended: boolean) => void,
): Promise<{ bytes: number; baseBytes: number }> {
  const slot = codec.slot;
  const baseBuffer = codec.base;
  const hashBase = codec.hasher.hashing(BASE_STREAM);
  let position = 0;
  let baseBytes = 0;
  while (position < resume.bytes) {
    if (job.signal?.aborted) throw interruptedBy(job.signal);
    const want = Math.min(codec.chunkBytes, resume.bytes - position);
    const [n, nb] = await Promise.all([resume.written.read(slot.data, want), baseEnded() ? 0 : job.base!.read(baseBuffer.data, want)]);
    if (n < want) throw new Error(`the kept part of ${resume.written.path} ended at byte ${position + n}, before ${resume.bytes}`);
    if (nb < want) setBaseEnded(true);
    // The base's own digest needs its bytes before they are turned into payload bytes.
    if (hashBase && nb > 0) await codec.hasher.update(BASE_STREAM, baseBuffer.offset, nb);
    if (nb > 0) codec.memory.xor(baseBuffer.offset, slot.offset, nb);
    // Past the base's end the payload is the output itself.
    if (nb < n) slot.data.copy(baseBuffer.data, nb, nb, n);
    await sourceHasher?.update(SOURCE_STREAM, baseBuffer.offset, n);
    if (position === 0 && job.inspectHead) job.inspectHead(slot.data.subarray(0, n));
    job.onChunk?.(slot.data.subarray(0, n), position);
    await codec.hasher.update(OUTPUT_STREAM, slot.offset, n);
    position += n;
    baseBytes += Math.min(n, nb);
    job.onBytes?.(n);
  }
  return { bytes: position, baseBytes };
}
