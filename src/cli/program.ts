/**
 * The command line: argument parsing, signals, and turning results and typed errors into exit codes.
 * Everything else lives in the library; this file only wires it to a terminal.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { decode, defaultJobs } from '../jobs/decode.js';
import { ExitCode, MetharmeXorError } from '../errors.js';
import { formatManifest } from '../release/manifest.js';
import { listModels, modelAlgorithms, modelEntries, modelFileCount, primaryEntries } from '../release/models.js';
import { requireModel } from '../release/expectations.js';
import { chooseMode, DecodeReporter, errorLine, PROGRAM, VerifyReporter, type Streams } from './report.js';
import { checkBase } from '../jobs/check-base.js';
import { encode } from '../jobs/encode.js';
import { formatBytes, formatSeconds } from '../format.js';
import { verify } from '../jobs/verify.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

export const EXIT_CODES_HELP = `
Exit codes:
  0    every file done and verified (or verification skipped on request)
  1    a file failed verification, was stopped because its decoded bytes cannot be right,
       or is listed in the manifest but missing; with --check-base, a base file that is not
       the published conversion; verify/check-base: a mismatched or missing file
  2    usage or input error: bad arguments, missing or unreadable input, unknown model,
       unparsable manifest, output folder equal to or inside an input folder, an existing
       output that does not match (use --force), a git-lfs pointer instead of data, an input
       that changed while being read, another run holding the output folder's lock
  3    I/O failure while writing: not enough free space, disk full, file too large,
       permission denied, read-only file system
  70   internal error (a bug: please report it with the --debug output)
  130  interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM)
`;

const INTERNAL_ERROR = 70;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return n;
}

export interface RunState {
  code: number;
  debug: boolean;
  signal: AbortSignal;
  json: boolean;
}

export function reportError(err: unknown, state: RunState, streams: Streams): number {
  if (err instanceof MetharmeXorError) {
    streams.err.write(errorLine(err.oneLine()));
    if (state.debug) {
      streams.err.write(`${err.stack}\n`);
      if (err.cause instanceof Error) streams.err.write(`caused by: ${err.cause.stack ?? String(err.cause)}\n`);
    }
    if (state.json) {
      streams.out.write(
        `${JSON.stringify({ error: { message: err.message, file: err.file ?? null, hint: err.hint ?? null, exitCode: err.exitCode }, exitCode: err.exitCode }, null, 2)}\n`,
      );
    }
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  streams.err.write(errorLine(`internal error: ${message}; run with --debug and report it`));
  if (state.debug && err instanceof Error) streams.err.write(`${err.stack}\n`);
  return INTERNAL_ERROR;
}

/** Runs a job whose progress a reporter shows: the report sets the exit code; errors stop the bars first. */
async function reported<R extends { exitCode: number }>(
  state: RunState,
  reporter: { finish(report: R): void; abort(): void },
  run: () => Promise<R>,
): Promise<void> {
  try {
    const report = await run();
    reporter.finish(report);
    state.code = report.exitCode;
  } catch (err) {
    reporter.abort();
    throw err;
  }
}

export function buildProgram(state: RunState, streams: Streams): Command {
  const program = new Command(PROGRAM);
  program
    .description('Decode XOR-released LLaMA fine-tunes (Metharme, Pygmalion, OpenAssistant) and verify every file.')
    .version(VERSION, '-V, --version')
    .option('--debug', 'show stack traces for errors')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => streams.out.write(s),
      writeErr: (s) => streams.err.write(s),
      outputError: (s, write) => write(errorLine(s.replace(/^error: /, '').trimEnd())),
    })
    .showHelpAfterError(`(run "${PROGRAM} --help" for usage)`)
    .addHelpText('after', EXIT_CODES_HELP)
    .hook('preAction', (_cmd, action) => {
      state.debug = Boolean(action.optsWithGlobals().debug);
    });

  program
    .command('decode')
    .description(
      'Decode every file of <xor-dir> against <base-dir> into <output-dir>, verifying each against the published checksums.\n' +
        'Same argument order as the model cards\' "python3 xor_codec.py <output> <xor-dir> <base-dir> --decode".',
    )
    .argument('<output-dir>', 'where the decoded files go (created if missing)')
    .argument('<xor-dir>', 'the release\'s XOR files, e.g. metharme-13b/xor_encoded_files')
    .argument('<base-dir>', 'LLaMA converted to the Hugging Face format')
    .option('--model <name>', 'verify against a built-in release manifest (see "models")')
    .option('--manifest <file>', 'verify against a checksum list (sha256sum, md5sum, rhash or BSD format)')
    .option('--no-verify', 'do not hash the outputs (nothing is checked)')
    .option('--force', 'overwrite existing outputs instead of checking them')
    .option('--jobs <n>', `files decoded at once (default ${defaultJobs()} here)`, positiveInt)
    .option('--check-base', 'also hash every base file while decoding and compare it with the published conversion (costs a second hash pass: about half the speed on two cores)')
    .option('--no-space-check', 'do not refuse to start when the output file system reports too little free space')
    .option('--json', 'print one JSON report on stdout')
    .option('-q, --quiet', 'print errors only')
    .addOption(new Option('--decode', 'accepted and ignored, for copy-paste from model cards').hideHelp())
    .addOption(new Option('--compress', 'accepted and ignored: gzip payloads are recognised by their content').hideHelp())
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (outputDir: string, xorDir: string, baseDir: string, opts) => {
      state.json = Boolean(opts.json);
      const reporter = new DecodeReporter(chooseMode(opts, streams.err), streams);
      await reported(state, reporter, () =>
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
          signal: state.signal,
          onEvent: reporter.handle,
        }),
      );
    });

  program
    .command('verify')
    .description('Hash the files a manifest names in <dir> and report ok / mismatch / missing.')
    .argument('<dir>', 'folder of decoded (or base) files')
    .option('--model <name>', 'a built-in manifest (see "models"); recognised from the path if omitted')
    .option('--manifest <file>', 'a checksum list (sha256sum, md5sum, rhash or BSD format)')
    .option('--json', 'print one JSON report on stdout')
    .option('-q, --quiet', 'print errors only')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (dir: string, opts) => {
      state.json = Boolean(opts.json);
      const reporter = new VerifyReporter(chooseMode(opts, streams.err), streams, 'decode it again');
      await reported(state, reporter, () =>
        verify({ dir, model: opts.model, manifest: opts.manifest, signal: state.signal, onEvent: reporter.handle }),
      );
    });

  program
    .command('check-base')
    .description('Check that <base-dir> is the LLaMA conversion a release was made against, before spending time on a decode.')
    .argument('<base-dir>', 'LLaMA converted to the Hugging Face format')
    .option('--model <name>', 'a base conversion (llama-13b-hf) or a release (metharme-13b); recognised from the path if omitted')
    .option('--json', 'print one JSON report on stdout')
    .option('-q, --quiet', 'print errors only')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (dir: string, opts) => {
      state.json = Boolean(opts.json);
      const reporter = new VerifyReporter(chooseMode(opts, streams.err), streams, 'see below');
      await reported(state, reporter, () => checkBase({ dir, model: opts.model, signal: state.signal, onEvent: reporter.handle }));
    });

  program
    .command('encode')
    .description(
      'For publishers: write XOR payloads of <finetuned-dir> against <base-dir> into <output-dir>, with SHA256SUMS of the\n' +
        'fine-tuned files and SHA256SUMS.base of the base files used. JSON files ship plain unless --xor-json.',
    )
    .argument('<output-dir>', 'where the payloads go (the folder you publish, e.g. xor_encoded_files)')
    .argument('<finetuned-dir>', 'the fine-tuned model in Hugging Face format')
    .argument('<base-dir>', 'the LLaMA conversion it was fine-tuned from')
    .option('--compress', 'write gzip payloads (as the reference encoder\'s --compress)')
    .option('--xor-json', 'XOR JSON files too, so the reference decoder restores every file (git may then corrupt them on Windows)')
    .option('--json', 'print one JSON report on stdout')
    .option('-q, --quiet', 'print errors only')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (outputDir: string, fineDir: string, baseDir: string, opts) => {
      state.json = Boolean(opts.json);
      const mode = chooseMode(opts, streams.err);
      const say = (line: string) => {
        if (mode === 'plain' || mode === 'tty') streams.out.write(`${line}\n`);
      };
      const report = await encode({
        outputDir,
        fineDir,
        baseDir,
        compress: opts.compress,
        xorJson: opts.xorJson,
        signal: state.signal,
        onEvent: (e) => {
          if (e.type === 'file-done') {
            const f = e.file;
            say(`${f.action.padEnd(8)} ${f.name}  ${formatBytes(f.bytes)} -> ${formatBytes(f.payloadBytes)}  sha256 ${f.sha256.slice(0, 12)}…`);
          }
        },
      });
      if (mode === 'json') streams.out.write(`${JSON.stringify(report, null, 2)}\n`);
      say(`done: ${report.files.length} files in ${formatSeconds(report.seconds)}; checksums in ${report.manifests.fineTuned} and ${report.manifests.base}`);
    });

  program
    .command('models')
    .description('List the built-in releases and base conversions, and where their digests were published.')
    .option('--json', 'print JSON')
    .action((opts) => {
      const rows = listModels().map((m) => ({
        name: m.name,
        kind: m.kind,
        base: m.base ?? null,
        algorithms: modelAlgorithms(m),
        files: modelFileCount(m),
        description: m.description,
        sources: m.sources.map((s) => s.label),
      }));
      if (opts.json) {
        streams.out.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      for (const r of rows) {
        streams.out.write(
          `${r.name.padEnd(22)} ${r.kind.padEnd(8)} ${r.algorithms.join('+').padEnd(11)} ${String(r.files).padStart(2)} files` +
            `${r.base ? `  base: ${r.base}` : ''}\n`,
        );
        for (const s of r.sources) streams.out.write(`${''.padEnd(23)}digests: ${s}\n`);
      }
    });

  program
    .command('manifest')
    .description('Print a built-in manifest in coreutils format (usable with sha256sum -c / md5sum -c).')
    .argument('<name>', 'a name from "models"')
    .option('--all', 'also print the digests published elsewhere, as comments')
    .action((name: string, opts) => {
      const model = requireModel(name);
      const primary = primaryEntries(model);
      streams.out.write(`# ${model.name}: ${model.sources[0]!.label}\n`);
      streams.out.write(formatManifest(primary));
      if (opts.all) {
        for (const source of model.sources.slice(1)) {
          streams.out.write(`# also published (${source.label}):\n`);
          for (const e of modelEntries(model).filter((x) => x.source === source.label)) {
            streams.out.write(`# ${formatManifest([e])}`);
          }
        }
      }
    });

  // --help and --version everywhere, as users type them after whatever command they were running.
  for (const command of program.commands) command.version(VERSION, '-V, --version');
  return program;
}

