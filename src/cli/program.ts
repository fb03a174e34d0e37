/**
 * The commands and their options, wired to the library and the printers. No output format and no
 * exit-code decision lives here: printers print, main.ts decides how the process ends.
 */
import { createRequire } from 'node:module';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EXIT_CODE_MEANINGS } from '../errors.js';
import { defaultJobs } from '../jobs/options.js';
import { GGUF_TYPES, type GgufTypeName } from '../output/gguf-types.js';
import { GgufPrinter } from './gguf-printer.js';
import { requireModel } from '../release/expectations.js';
import { DecodePrinter } from './decode-printer.js';
import { EncodePrinter } from './encode-printer.js';
import { printManifest, printModels } from './release-printers.js';
import { chooseMode, errorLine, PROGRAM, type Streams } from './reporter.js';
import { VerifyPrinter } from './verify-printer.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

/** The exit-code table, printed once, under the top-level help. */
export function exitCodesHelp(): string {
  const lines = EXIT_CODE_MEANINGS.map(({ code, meaning }) => `  ${String(code).padEnd(4)} ${meaning}`);
  return `\nExit codes:\n${lines.join('\n')}\n`;
}

/** What one CLI invocation has learned so far: how it ends, and how errors are shown. */
export interface CliRun {
  code: number;
  debug: boolean;
  signal: AbortSignal;
  json: boolean;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return n;
}

/** Runs a job whose progress a printer shows: the report sets the exit code; errors stop the bars first. */
async function reported<R extends { exitCode: number }>(
  run: CliRun,
  printer: { finish(report: R): void; abort(): void },
  job: () => Promise<R>,
): Promise<void> {
  try {
    const report = await job();
    printer.finish(report);
    run.code = report.exitCode;
  } catch (err) {
    printer.abort();
    throw err;
  }
}

/** --json and --quiet, which every command that reports files has. */
function withReportOptions(command: Command): Command {
  return command.option('--json', 'print one JSON report on stdout').option('-q, --quiet', 'print errors only');
}

/** `reportsFiles`: the command reports on files, so it has --json and --quiet. */
function addCommand(program: Command, name: string, summary: string, codes: string, reportsFiles = true): Command {
  const command = program
    .command(name)
    .description(summary)
    .showHelpAfterError(`(run "${PROGRAM} ${name} --help" for usage)`)
    .addHelpText('after', `\nExit codes: ${codes}; the full table is in "${PROGRAM} --help".\n`);
  return reportsFiles ? withReportOptions(command) : command;
}

export function buildProgram(run: CliRun, streams: Streams): Command {
  const program = new Command(PROGRAM);
  program
    .description('Decode XOR-released LLaMA fine-tunes (Metharme, Pygmalion, OpenAssistant) and verify every file.')
    .version(VERSION, '-V, --version')
    .option('--debug', 'show stack traces for errors')
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (s) => streams.out.write(s),
      writeErr: (s) => streams.err.write(s),
      // Commander puts its suggestion on a second line: one line here, as every error is.
      outputError: (s, write) => write(errorLine(s.replace(/^error: /, '').trimEnd().replace(/\s*\n\s*/g, ' '))),
    })
    .showHelpAfterError(`(run "${PROGRAM} --help" for usage)`)
    .addHelpText('after', exitCodesHelp())
    .hook('preAction', (_cmd, action) => {
      run.debug = Boolean(action.optsWithGlobals().debug);
    });

  addCommand(
    program,
    'decode',
    'Decode every file of <xor-dir> against <base-dir> into <output-dir>, verifying each against the published checksums. Same argument order as the model cards\' "python3 xor_codec.py <output> <xor-dir> <base-dir> --decode".',
    '0 all verified, 1 a file failed or is missing, 2 input error, 3 write error, 130/143 interrupted',
  )
    .argument('<output-dir>', 'where the decoded files go (created if missing)')
    .argument('<xor-dir>', "the release's XOR files: a folder, e.g. metharme-13b/xor_encoded_files, or hf://PygmalionAI/metharme-13b/xor_encoded_files on the Hub")
    .argument('<base-dir>', 'LLaMA converted to the Hugging Face format: a folder, or hf://<owner>/<name>[@<rev>][/<path>] on the Hub')
    .option('--model <name>', 'verify against a built-in release manifest (see "models")')
    .option('--manifest <file>', 'verify against a checksum list (sha256sum, md5sum, rhash or BSD format); - reads it from standard input')
    .option('--no-verify', 'do not hash the outputs (nothing is checked)')
    .option('--strict', 'fail (exit 1) when any file could not be verified (no digest known, not in the manifest, --no-verify)')
    .option('--force', 'overwrite existing outputs instead of checking them')
    .option('--jobs <n>', `files decoded at once (default ${defaultJobs()} here)`, positiveInt)
    .option(
      '--check-base',
      'also hash every base file while decoding and compare it with the published conversion (a second hash pass: about half the speed on two cores)',
    )
    .option('--no-space-check', 'do not refuse to start when the output file system reports too little free space')
    .option('--safetensors', 'write checkpoint shards as model-*.safetensors (and model.safetensors.index.json) in the same pass, instead of .bin')
    .option('--chat-template', 'also write the Metharme prompt format as chat_template.jinja, which transformers reads')
    .option('--gguf [type]', `write the checkpoint shards as one GGUF for llama.cpp, KoboldCpp and Ollama in the same pass, instead of .bin (${GGUF_TYPES.join(', ')}; auto keeps the weights' own dtype)`)
    .option('--allow-unsafe-pickle', 'keep a file whose pickle references globals outside torch\'s weights-only allowlist (loading it could run code)')
    .option('--keep-going', 'decode every file even after one failed because of its base (by default the run stops starting files)')
    .option('--xor-manifest <file>', 'published digests of the XOR files, to tell a damaged XOR file from a wrong base (default: SHA256SUMS.xor in <xor-dir>)')
    .option('--base-manifest <file>', 'digests of the base files the release was made against (default: SHA256SUMS.base in <xor-dir>, or the known release\'s base)')
    .addOption(new Option('--decode', 'accepted and ignored, for copy-paste from model cards').hideHelp())
    .addOption(new Option('--compress', 'accepted and ignored: gzip payloads are recognised by their content').hideHelp())
    .action(async (outputDir: string, xorDir: string, baseDir: string, opts) => {
      run.json = Boolean(opts.json);
      const { decode } = await import('../jobs/decode.js');
      const printer = new DecodePrinter(chooseMode(opts, streams.err), streams);
      await reported(run, printer, () =>
        decode({
          outputDir,
          xorDir,
          baseDir,
          model: opts.model,
          manifest: opts.manifest,
          verify: opts.verify,
          force: opts.force,
          jobs: opts.jobs,
          checkBase: opts.checkBase,
          spaceCheck: opts.spaceCheck,
          keepGoing: opts.keepGoing,
          strict: opts.strict,
          allowUnsafePickle: opts.allowUnsafePickle,
          safetensors: opts.safetensors,
          chatTemplate: opts.chatTemplate,
          gguf: opts.gguf === undefined ? undefined : opts.gguf === true ? 'auto' : (opts.gguf as GgufTypeName),
          xorManifest: opts.xorManifest,
          baseManifest: opts.baseManifest,
          signal: run.signal,
          onEvent: printer.handle,
        }),
      );
    });

  addCommand(
    program,
    'rebuild-base',
    "Write the exact 2023 LLaMA conversion the releases were XORed against into <output-dir>, rebuilt from <llama-dir> (Meta's original release or any lossless conversion), every file judged by the published base digests.",
    '0 all verified, 1 a file failed, 2 input error, 3 write error, 130/143 interrupted',
  )
    .argument('<output-dir>', 'where the base files go (created if missing)')
    .argument('<llama-dir>', "LLaMA of one size: Meta's folder (params.json, consolidated.NN.pth) or a Hugging Face conversion (*.safetensors or pytorch_model*.bin, with config.json)")
    .option('--as <name>', 'the base conversion to rebuild (llama-7b-hf, llama-13b-hf, llama-30b-hf) or a release whose base it is (default: the one of the folder\'s size)')
    .option('--manifest <file>', 'judge the files by this checksum list instead of the built-in base digests')
    .option('--strict', 'fail (exit 1) when any file could not be verified')
    .option('--force', 'overwrite existing outputs instead of checking them')
    .option('--jobs <n>', `files written at once (default ${defaultJobs()} here)`, positiveInt)
    .option('--no-space-check', 'do not refuse to start when the output file system reports too little free space')
    .action(async (outputDir: string, source: string, opts) => {
      run.json = Boolean(opts.json);
      const { rebuildBase } = await import('../jobs/rebuild-base.js');
      const printer = new DecodePrinter(chooseMode(opts, streams.err), streams);
      await reported(run, printer, () =>
        rebuildBase({
          outputDir,
          source,
          as: opts.as,
          manifest: opts.manifest,
          strict: opts.strict,
          force: opts.force,
          jobs: opts.jobs,
          spaceCheck: opts.spaceCheck,
          signal: run.signal,
          onEvent: printer.handle,
        }),
      );
    });

  addCommand(
    program,
    'gguf',
    'Write a decoded LLaMA folder (.bin or safetensors shards, config.json, tokenizer.model) as one GGUF for llama.cpp, KoboldCpp and Ollama, with the Metharme chat template.',
    '0 written, 2 input error, 3 write error, 130/143 interrupted',
  )
    .argument('<model-dir>', 'a decoded model folder, e.g. the output folder of decode')
    .addOption(new Option('--type <type>', 'auto keeps the weights\' own dtype (BF16 or F16), losslessly').choices(GGUF_TYPES).default('auto'))
    .option('--out <file>', 'the GGUF to write (default: <folder name>-<TYPE>.gguf here)')
    .option('--force', 'replace the file if it exists')
    .action(async (modelDir: string, opts) => {
      run.json = Boolean(opts.json);
      const { convertToGguf } = await import('../jobs/gguf.js');
      const printer = new GgufPrinter(chooseMode(opts, streams.err), streams);
      await reported(run, printer, () =>
        convertToGguf({ modelDir, type: opts.type as GgufTypeName, out: opts.out, force: opts.force, signal: run.signal, onEvent: printer.handle }),
      );
    });

  addCommand(program, 'verify', 'Hash the files a manifest names in <dir> and report verified / mismatch / missing.', '0 all verified, 1 a file mismatched or is missing, 2 input error')
    .argument('<dir>', 'folder of decoded (or base) files')
    .option('--model <name>', 'a built-in manifest (see "models"); recognised from the path if omitted')
    .option('--manifest <file>', 'a checksum list (sha256sum, md5sum, rhash or BSD format); - reads it from standard input')
    .option('--ignore-missing', 'leave out files the manifest lists that are absent (as sha256sum -c --ignore-missing)')
    .option('--strict', 'fail (exit 1) when the folder holds files the manifest does not list')
    .action(async (dir: string, opts) => {
      run.json = Boolean(opts.json);
      const { verify } = await import('../jobs/verify.js');
      const printer = new VerifyPrinter(chooseMode(opts, streams.err), streams, 'decode it again');
      await reported(run, printer, () =>
        verify({
          dir,
          model: opts.model,
          manifest: opts.manifest,
          ignoreMissing: opts.ignoreMissing,
          strict: opts.strict,
          signal: run.signal,
          onEvent: printer.handle,
        }),
      );
    });

  addCommand(
    program,
    'check-base',
    'Check that <base-dir> is the LLaMA conversion a release was made against, before spending time on a decode.',
    '0 the published conversion, 1 a file differs or is missing, 2 input error',
  )
    .argument('<base-dir>', 'LLaMA converted to the Hugging Face format: a folder, or hf://<owner>/<name>[@<rev>][/<path>] (judged by the Hub\'s listing, nothing downloaded)')
    .option('--model <name>', 'a base conversion (llama-13b-hf) or a release (metharme-13b); recognised from the path if omitted')
    .option('--manifest <file>', 'digests of the base files, for any release (e.g. its SHA256SUMS.base)')
    .action(async (dir: string, opts) => {
      run.json = Boolean(opts.json);
      const { checkBase } = await import('../jobs/check-base.js');
      const printer = new VerifyPrinter(
        chooseMode(opts, streams.err),
        streams,
        'see below',
        'copy it from the conversion, or give decode the LLaMA you have: the base files it lacks are rebuilt (see "Bring any LLaMA")',
      );
      await reported(run, printer, () => checkBase({ dir, model: opts.model, manifest: opts.manifest, signal: run.signal, onEvent: printer.handle }));
    });

  addCommand(
    program,
    'encode',
    'For publishers: write XOR payloads of <finetuned-dir> against <base-dir> into <output-dir>, with SHA256SUMS of the fine-tuned files and SHA256SUMS.base of the base files used. JSON files ship plain unless --xor-json.',
    '0 written, 2 input error, 3 write error',
  )
    .argument('<output-dir>', 'where the payloads go (the folder you publish, e.g. xor_encoded_files)')
    .argument('<finetuned-dir>', 'the fine-tuned model in Hugging Face format')
    .argument('<base-dir>', 'the LLaMA conversion it was fine-tuned from')
    .option('--compress', "write gzip payloads (as the reference encoder's --compress)")
    .option('--xor-json', 'XOR JSON files too, so the reference decoder restores every file (git may then corrupt them on Windows)')
    .action(async (outputDir: string, fineDir: string, baseDir: string, opts) => {
      run.json = Boolean(opts.json);
      const { encode } = await import('../jobs/encode.js');
      const printer = new EncodePrinter(chooseMode(opts, streams.err), streams);
      await reported(run, { finish: (r) => printer.finish(r), abort: () => printer.abort() }, async () => ({
        ...(await encode({
          outputDir,
          fineDir,
          baseDir,
          compress: opts.compress,
          xorJson: opts.xorJson,
          signal: run.signal,
          onEvent: printer.handle,
        })),
        exitCode: 0,
      }));
    });

  addCommand(program, 'models', 'List the built-in releases and base conversions, and where their digests were published.', '0', false)
    .option('--json', 'print JSON')
    .action((opts) => printModels(streams, Boolean(opts.json)));

  addCommand(program, 'manifest', 'Print a built-in manifest in coreutils format (usable with sha256sum -c / md5sum -c).', '0, 2 unknown name', false)
    .argument('<name>', 'a name from "models"')
    .option('--all', 'also print the digests published elsewhere, as comments')
    .action((name: string, opts) => printManifest(streams, requireModel(name), Boolean(opts.all)));

  // --help and --version everywhere, as users type them after whatever command they were running.
  for (const command of program.commands) command.version(VERSION, '-V, --version');
  return program;
}
