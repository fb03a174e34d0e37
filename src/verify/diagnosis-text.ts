/**
 * Every sentence a diagnosis says, in one place: each names the file, what the evidence shows and
 * what to do. Deciding which applies is diagnose.ts's job; wording is this module's.
 */
import type { Diagnosis } from '../types.js';

export function lfsPointer(path: string, hint: string): Diagnosis {
  return { code: 'lfs-pointer', message: `${path} is a git-lfs pointer file, not the data: ${hint}` };
}

export function stoppedAtHead(name: string, code: Diagnosis['code'], problem: string): Diagnosis {
  return {
    code,
    message: `${name}: ${problem}, so the base does not match the one the XOR files were made against; the file was stopped at its first chunk`,
  };
}

export function sizeDiffers(basePath: string | undefined, baseSize: number, payloadSize: number): Diagnosis {
  return {
    code: 'size-differs',
    message: `base file ${basePath} is ${baseSize} bytes but the XOR file is ${payloadSize} bytes: the base is most likely not the conversion the XOR files were made against`,
  };
}

export function crlf(path: string | undefined): Diagnosis {
  return {
    code: 'crlf',
    message: `${path} has CRLF line endings: git probably rewrote them (Windows core.autocrlf); clone again with "git -c core.autocrlf=false clone ..." or run "git config --global core.autocrlf false" and re-checkout`,
  };
}

export function baseNotChecked(basePath: string | undefined): Diagnosis {
  return {
    code: 'base-not-checked',
    message: `base file ${basePath} was not hashed, as another base file already proved not to be the published conversion; check the whole folder with "metharme-xor check-base"`,
  };
}

export function baseIsPublished(basePath: string | undefined, conversion: string): Diagnosis {
  return {
    code: 'base-is-published',
    message: `base file ${basePath} matches the published ${conversion} conversion, so the XOR file or the manifest is at fault: download the XOR file again`,
  };
}

/** `recipe`: how the releases' base was made, when the one candidate conversion says. */
export function baseNotPublished(basePath: string | undefined, conversions: string, recipe: string | undefined): Diagnosis {
  const how = recipe ? ` (the releases were made against ${recipe})` : '';
  return {
    code: 'base-not-published',
    message: `base file ${basePath} is not the published ${conversions} conversion; it was probably converted with another transformers version${how}: convert LLaMA again with that version, or use a base that passes "metharme-xor check-base"`,
  };
}

/** check-base's wording: the file is judged as part of a base folder, not as one decode's input. */
export function folderFileNotPublished(name: string, conversion: string, recipe: string | undefined): Diagnosis {
  return {
    code: 'base-not-published',
    message: `${name} is not the published ${conversion} conversion; it was probably converted with another transformers version${
      recipe ? ` (the releases were made against ${recipe})` : ''
    }`,
  };
}
