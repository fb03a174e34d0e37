/** Library entry: the same decode and verify the CLI runs, with typed results and progress events. */
export { decode, defaultJobs } from './decode.js';
export type { BaseCheck, DecodeEvent, DecodeOptions, DecodeReport, FilePhase, FileResult, FileStatus } from './decode.js';
export { verify } from './verify.js';
export type { VerifyEvent, VerifyFileResult, VerifyOptions, VerifyReport, VerifyStatus } from './verify.js';
export { parseManifest, formatManifest, algorithmForDigest } from './manifest.js';
export type { Algorithm, Manifest, ManifestEntry } from './manifest.js';
export { listModels, findModel, modelEntries, detectModelFromPaths } from './models.js';
export type { BuiltinModel, DigestSource } from './models.js';
export { planDecode } from './plan.js';
export type { DecodePlan, FilePlan, FileAction } from './plan.js';
export { xorInto } from './xor.js';
export { ExitCode, MetharmeXorError, InputError, WriteError, InterruptedError } from './errors.js';
export { checkBase } from './check-base.js';
export type { CheckBaseOptions } from './check-base.js';
export type { Diagnosis, DiagnosisCode } from './diagnose.js';
export { encode } from './encode.js';
export type { EncodeOptions, EncodeReport, EncodedFile, EncodeEvent } from './encode.js';
