/**
 * Fail-fast checks on the first decoded bytes. A base converted with another transformers version
 * yields output of the right size and wrong content; these checks catch that in the first chunk of
 * a file, seconds into the run, instead of after a 10 GB shard has been hashed.
 */

export interface SanityProblem {
  code: 'not-a-checkpoint' | 'invalid-safetensors' | 'invalid-json';
  message: string;
}

const ZIP_LOCAL_HEADER = [0x50, 0x4b, 0x03, 0x04];
/** safetensors headers are JSON of a few kB to a few MB; anything past this is not a header length. */
const MAX_SAFETENSORS_HEADER = 100_000_000;

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return bytes.every((b, i) => head[i] === b);
}

/**
 * `head` is the decoded file's first chunk; `totalBytes` its full size when known (not for gzip).
 * Returns what is wrong, or undefined when the bytes are plausible (or there is nothing to check).
 */
export function checkDecodedHead(name: string, head: Buffer, totalBytes: number | undefined): SanityProblem | undefined {
  const lower = name.toLowerCase();
  if (head.length === 0) return undefined;
  if (lower.endsWith('.bin')) {
    // PyTorch checkpoints are zip archives since torch 1.6; older ones are a pickle (protocol 2+).
    const zip = startsWith(head, ZIP_LOCAL_HEADER);
    const legacyPickle = head[0] === 0x80 && head[1] !== undefined && head[1] >= 2 && head[1] <= 5;
    if (!zip && !legacyPickle) {
      return { code: 'not-a-checkpoint', message: 'the decoded bytes do not start like a PyTorch checkpoint (a zip archive)' };
    }
    return undefined;
  }
  if (lower.endsWith('.safetensors')) {
    if (head.length < 8) return { code: 'invalid-safetensors', message: 'the decoded file is too short for a safetensors header' };
    const headerBytes = Number(head.readBigUInt64LE(0));
    const fits = totalBytes === undefined || 8 + headerBytes <= totalBytes;
    if (headerBytes < 2 || headerBytes > MAX_SAFETENSORS_HEADER || !fits || head[8] !== 0x7b) {
      return { code: 'invalid-safetensors', message: `the decoded safetensors header is not sane (length ${headerBytes})` };
    }
    if (head.length >= 8 + headerBytes) {
      try {
        JSON.parse(head.subarray(8, 8 + headerBytes).toString('utf8'));
      } catch {
        return { code: 'invalid-safetensors', message: 'the decoded safetensors header is not JSON' };
      }
    }
    return undefined;
  }
  if (lower.endsWith('.json') && totalBytes !== undefined && head.length === totalBytes) {
    try {
      JSON.parse(head.toString('utf8'));
    } catch {
      return { code: 'invalid-json', message: 'the decoded JSON does not parse' };
    }
  }
  return undefined;
}
