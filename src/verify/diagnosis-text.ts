/**
 * Every sentence a diagnosis says, in one place: each names the file and states a fact, a piece of
 * evidence, or the cause with its fix. Deciding which applies is diagnose.ts's job; wording is this
 * module's. A sentence claims a cause only where evidence proved it.
 */
import type { FilePlan } from '../plan/plan.js';
import type { Cause, Diagnosis, Integrity } from '../types.js';
import type { SanityProblem } from '../release/file-structure.js';

export function lfsPointer(path: string, hint: string): Diagnosis {
  return { code: 'lfs-pointer', message: `${path} is a git-lfs pointer file, not the data: ${hint}` };
}

export function structureFact(name: string, problem: SanityProblem): Diagnosis {
  return { code: problem.code, message: `the decoded ${name} ${problem.message}, though its base file does` };
}

export function unverifiedStructure(name: string, problem: SanityProblem): string {
  return `${name}: the decoded file ${problem.message}, though its base file does; it was kept because --no-verify was given, but it is most likely wrong`;
}

export function sizesDiffer(basePath: string, baseSize: number, payloadSize: number): Diagnosis {
  return { code: 'size-differs', message: `base file ${basePath} is ${baseSize} bytes, the XOR file ${payloadSize} bytes` };
}

export function truncatedBase(basePath: string): Diagnosis {
  return {
    code: 'base-truncated',
    message: `base file ${basePath} is a zip archive without its end record: it was cut short, an incomplete download or copy`,
  };
}

export function payloadSizeDiffers(path: string, size: number, published: number, source: string): Diagnosis {
  const shorter = size < published ? ', shorter than the published size: an incomplete download?' : '';
  return { code: 'size-differs', message: `XOR file ${path} is ${size} bytes; ${source} gives ${published} bytes${shorter}` };
}

export function crlfFact(path: string): Diagnosis {
  return { code: 'crlf', message: `${path} has CRLF line endings` };
}

export function crlfProven(path: string, cause: 'base' | 'xor-file'): Diagnosis {
  const which = cause === 'base' ? 'base file' : 'XOR file';
  return {
    code: 'crlf',
    message: `with LF line endings the ${which} ${path} gives the published digest: git rewrote its line endings (Windows core.autocrlf); check it out again with "git -c core.autocrlf=false clone ..." or run "git config --global core.autocrlf false" and re-checkout`,
  };
}

export function payloadEvidence(path: string, integrity: Integrity, source: string): Diagnosis {
  return integrity === 'intact'
    ? { code: 'xor-file-intact', message: `XOR file ${path} matches the SHA-256 published in ${source}` }
    : { code: 'xor-file-corrupt', message: `XOR file ${path} does not match the SHA-256 published in ${source}` };
}

export function baseNotChecked(basePath: string): Diagnosis {
  return {
    code: 'base-not-checked',
    message: `base file ${basePath} was not hashed, as another base file already proved not to be the published one; check the whole folder with "metharme-xor check-base"`,
  };
}

/** A base on the Hub is judged by the SHA-256 its listing gives; without one it would have to be fetched again whole. */
export function baseNotCheckedOnHub(basePath: string, label: string): Diagnosis {
  return {
    code: 'base-not-checked',
    message: `base file ${basePath} was not checked: the Hub's listing gives no SHA-256 to compare with ${label}, and it was not fetched again whole to be hashed`,
  };
}

export function baseReceivedCorrupt(basePath: string): Diagnosis {
  return { code: 'base-received-corrupt', message: `base file ${basePath}: the bytes received twice did not match the SHA-256 in the Hub's listing` };
}

export function baseIsPublished(basePath: string, label: string): Diagnosis {
  return { code: 'base-is-published', message: `base file ${basePath} matches ${label}` };
}

export function baseNotPublished(basePath: string, label: string): Diagnosis {
  return { code: 'base-not-published', message: `base file ${basePath} does not match ${label}` };
}

/** rebuild-base: a rebuilt file is not the published conversion's. */
export function rebuiltNotPublished(shown: string, label: string, meta: boolean): Diagnosis {
  const why = meta
    ? "the folder is not the LLaMA size that conversion was made from, or a file of it is damaged (Meta's checklist.chk names the file)"
    : 'the conversion in the folder is not of the LLaMA that conversion was made from (another fine-tune, a bf16 round trip, or damaged)';
  return { code: 'base-not-published', message: `${shown} does not match ${label}: ${why}` };
}

const EVIDENCE_HINT =
  'pass --base-manifest <file> (digests of the base files) or --xor-manifest <file> (digests of the XOR files), or decode from a Hugging Face cache or a git-lfs clone, which record the XOR files\' digests';

/** The line that names the cause, with the fix that matches it. */
export function causeAndFix(
  file: FilePlan,
  cause: Cause,
  base: { label: string; recipe?: string | undefined } | undefined,
  baseTruncated = false,
): Diagnosis {
  let message: string;
  switch (cause) {
    case 'base':
      if (baseTruncated) {
        message = `cause: base. Base file ${file.basePath} is incomplete; download or copy it again`;
        break;
      }
      message = `cause: base. Base file ${file.basePath} is not the one the release was made against${
        base?.recipe ? ` (${base.recipe})` : ''
      }; get the right base file${base ? ` (check it with "metharme-xor check-base --manifest" or against ${base.label})` : ''}`;
      break;
    case 'xor-file':
      message = `cause: xor-file. The XOR file ${file.payloadPath} is not the published one; download it again`;
      break;
    case 'manifest':
      message = `cause: manifest. The XOR file and the base file are both the published ones, so the published digest for ${file.name} is wrong or for another revision of the release; check which revision you downloaded`;
      break;
    default:
      message = `cause: unknown. No evidence tells whether the base file or the XOR file is at fault; to decide it, ${EVIDENCE_HINT}`;
  }
  return { code: 'cause', message };
}

/** check-base's wording: the file is judged as part of a base folder, not as one decode's input. */
export function folderFileNotPublished(name: string, label: string, recipe: string | undefined): Diagnosis {
  return {
    code: 'base-not-published',
    message: `${name} is not the base file ${label} lists; the release was made against another conversion${recipe ? ` (${recipe})` : ''}`,
  };
}

export function unsafePickle(name: string, globals: readonly string[], kept: boolean): Diagnosis {
  return {
    code: 'unsafe-pickle',
    message: `${name}: its pickle references ${globals.join(', ')}, outside torch's weights-only allowlist: loading it with torch.load could run code; ${
      kept ? 'KEPT because --allow-unsafe-pickle was given' : 'it was not kept (--allow-unsafe-pickle keeps it)'
    }`,
  };
}

export function invalidPickle(name: string, reason: string): Diagnosis {
  return { code: 'invalid-pickle', message: `${name}: its pickle cannot be read (${reason}), so it cannot be proven harmless; it was not kept` };
}
