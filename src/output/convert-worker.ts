/**
 * The thread side of convert-pool.ts: converts rows held in shared memory into shared memory, one
 * job at a time, and says which job is done, with the CRC-32 of what it made (or why it failed).
 */
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import type { ConvertJob } from './convert-pool.js';
import type { GgmlType } from './gguf-format.js';
import { convertRows, warmKernels } from './gguf-tensors.js';

parentPort!.on('message', (job: ConvertJob | { warm: GgmlType }) => {
  if ('warm' in job) {
    warmKernels(job.warm);
    return;
  }
  try {
    const src = Buffer.from(job.src, job.srcOffset, job.srcLength);
    const into = Buffer.from(job.dst, job.dstOffset, job.dstLength);
    convertRows(src, job.dtype, job.type, job.cols, into);
    // Checksummed here, beside the conversion, rather than on the thread that writes it (resuming a GGUF).
    parentPort!.postMessage({ id: job.id, crc: crc32(into) });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
