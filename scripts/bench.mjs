#!/usr/bin/env node
/**
 * npm run bench [-- --size 1G --runs 3 --json --keep --no-reference --cdn sendfile|node --rebuild-only]
 *
 * Measures, interleaved and repeated on page-cached inputs of the same size:
 *   (a) openssl dgst -sha256 of the payload        the hashing floor
 *   (b) cp of the payload                          the copy floor (same page-cache writes as a decode)
 *   (w) dd of the payload, direct and fdatasync'd   the durable-write floor (the writes a decode makes, unhashed)
 *   (c) metharme-xor decode with verification      this tool
 *   (c0) the same decode of a 4 KiB release        its fixed cost (node, modules, worker, lock, fsyncs)
 *   (d) a model of the reference decoder (numpy, 4096-byte blocks) + sha256sum, where numpy exists
 *   (e) metharme-xor decode --safetensors: the same decode, writing safetensors in the same pass
 *   (f) metharme-xor decode from hf://, served by a loopback stand-in of the Hub (XOR file not stored);
 *       its bytes come from scripts/bench-cdn.py (sendfile, where python3 is) or, with --cdn node or
 *       without python3, from this process
 *   (g) (f) with --safetensors: timed too, but there for its peak RSS (the most memory a decode takes)
 *   (h) metharme-xor decode against a base rebuilt on the fly from safetensors, and (i) from Meta's
 *       layout, (j) decode --gguf (lossless), (k) --gguf q8_0 and (l) q4_k_m, each against (c') the same decode
 *       against the exact base on disk, on a made-up LLaMA (scripts/bench-llama.mjs; --rebuild-only
 *       runs just these)
 * and prints medians, the ratios (c)/(a), ((c)-(c0))/(a) (the streaming alone), (c)/max((a),(w)), (c)/(b), (d)/(c), (e)/(c), (f)/(c), each decode's peak RSS,
 * and an in-memory comparison of node:crypto and hash-wasm SHA-256. On Linux it also prints the CPU
 * seconds of (c), (e) and (f) (and of the Hub stand-in: this process and the CDN's), and the least
 * time (f) can take with all of that CPU spread over the machine's cores. Absolute times on shared
 * machines mean little; the ratios are measured in the same run, so they do.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { llamaBench } from './bench-llama.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'metharme-xor.js');
const REFERENCE = join(ROOT, 'test', 'support', 'reference_codec.py');
const { xorInto } = await import(join(ROOT, 'dist', 'index.js'));

/** zlib.crc32 where Node has it (>= 20.15); the descriptors' CRCs are not read by the decoder. */
const crc = (data, value = 0) => (typeof crc32 === 'function' ? crc32(data, value) : 0);

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)(i?B)?$/i.exec(String(text).trim());
  if (!m) throw new Error(`--size: cannot read "${text}" (examples: 1G, 512M, 10G)`);
  const mult = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2].toUpperCase()];
  return Math.round(Number(m[1]) * mult);
}

function parseArgs(argv) {
  const opts = { size: 2 ** 30, runs: 3, json: false, keep: false, reference: true, dir: undefined, cdn: undefined, rebuildOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size') opts.size = parseSize(argv[++i]);
    else if (a === '--runs') opts.runs = Math.max(3, Number(argv[++i]));
    else if (a === '--json') opts.json = true;
    else if (a === '--keep') opts.keep = true;
    else if (a === '--no-reference') opts.reference = false;
    else if (a === '--rebuild-only') opts.rebuildOnly = true;
    else if (a === '--dir') opts.dir = argv[++i];
    else if (a === '--cdn') {
      opts.cdn = argv[++i];
      if (opts.cdn !== 'sendfile' && opts.cdn !== 'node') throw new Error(`--cdn: sendfile or node, not "${opts.cdn}"`);
    }
    else if (a === '--help' || a === '-h') {
      console.log('usage: npm run bench -- [--size 1G] [--runs 3] [--json] [--keep] [--no-reference] [--dir <folder>] [--cdn sendfile|node] [--rebuild-only]');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = opts.json ? () => {} : (...a) => console.error(...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gb = (bytes, s) => (bytes / s / 1e9).toFixed(2);

function have(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

const STORAGE_BYTES = 64 << 20;

/** A protocol-2 pickle of a state dict of fp16 tensors, as torch.save writes it (names, storages, layout). */
function statePickle(tensors) {
  const parts = [Buffer.from([0x80, 0x02, 0x7d, 0x28])];
  const str = (s) => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return Buffer.concat([Buffer.from([0x58]), len, b]);
  };
  const int = (n) => {
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return b;
  };
  for (const t of tensors) {
    parts.push(str(t.name), Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n(('), str('storage'), Buffer.from('ctorch\nHalfStorage\n'), str(t.key), str('cpu'), int(t.numel));
    parts.push(Buffer.from('tQK\x00', 'latin1'), int(t.numel), Buffer.from([0x85, 0x4b, 0x01, 0x85, 0x89]), Buffer.from('ccollections\nOrderedDict\n)RtR'));
  }
  parts.push(Buffer.from('u.'));
  return Buffer.concat(parts);
}

function localHeader(name) {
  const n = Buffer.from(name);
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(0x08, 6); // sizes in the data descriptor, as torch writes them
  h.writeUInt16LE(n.length, 26);
  return Buffer.concat([h, n]);
}

function descriptor(crc, size) {
  const d = Buffer.alloc(16);
  d.writeUInt32LE(0x08074b50, 0);
  d.writeUInt32LE(crc >>> 0, 4);
  d.writeUInt32LE(size, 8);
  d.writeUInt32LE(size, 12);
  return d;
}

/**
 * The central directory and end records, as torch writes them: a record per entry (a zip64 extra
 * field for offsets at or past 4 GiB), then the zip64 end record and locator, then the end record.
 */
function centralDirectory(records, start) {
  const parts = [];
  for (const r of records) {
    const n = Buffer.from(r.name);
    const big = r.offset >= 0xffffffff;
    const extra = big ? Buffer.alloc(12) : Buffer.alloc(0);
    if (big) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(8, 2);
      extra.writeBigUInt64LE(BigInt(r.offset), 4);
    }
    const h = Buffer.alloc(46);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE(45, 4);
    h.writeUInt16LE(45, 6);
    h.writeUInt16LE(0x08, 8);
    h.writeUInt32LE(r.crc >>> 0, 16);
    h.writeUInt32LE(r.size, 20);
    h.writeUInt32LE(r.size, 24);
    h.writeUInt16LE(n.length, 28);
    h.writeUInt16LE(extra.length, 30);
    h.writeUInt32LE(big ? 0xffffffff : r.offset, 42);
    parts.push(h, n, extra);
  }
  const cd = Buffer.concat(parts);
  const end64 = Buffer.alloc(56);
  end64.writeUInt32LE(0x06064b50, 0);
  end64.writeBigUInt64LE(44n, 4);
  end64.writeUInt16LE(45, 12);
  end64.writeUInt16LE(45, 14);
  end64.writeBigUInt64LE(BigInt(records.length), 24);
  end64.writeBigUInt64LE(BigInt(records.length), 32);
  end64.writeBigUInt64LE(BigInt(cd.length), 40);
  end64.writeBigUInt64LE(BigInt(start), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(start + cd.length), 8);
  locator.writeUInt32LE(1, 16);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(records.length, 0xffff), 8);
  end.writeUInt16LE(Math.min(records.length, 0xffff), 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(Math.min(start, 0xffffffff), 16);
  return Buffer.concat([cd, end64, locator, end]);
}

/**
 * The fine-tuned file is a torch-format zip of about opts.size bytes (data.pkl, then 64 MiB fp16
 * storages of random values), so a plain decode and a --safetensors decode run on the same input.
 * Returns the payload (fine XOR base) and base, and the SHA-256 of the fine-tuned file.
 */
/**
 * A one-file release of 4 KiB: its decode is the tool's fixed cost (node, the modules, the hash
 * worker, the lock, the fsyncs), which a 1 GiB run pays once and a 13B release once per 26 GB.
 */
function generateTiny(dir) {
  const xorDir = join(dir, 'tiny-xor');
  const baseDir = join(dir, 'tiny-base');
  mkdirSync(xorDir, { recursive: true });
  mkdirSync(baseDir, { recursive: true });
  const base = randomFillSync(Buffer.alloc(4096));
  const fine = randomFillSync(Buffer.alloc(4096));
  const payload = Buffer.from(fine);
  xorInto(payload, base, payload.length);
  writeFileSync(join(xorDir, 'payload.dat'), payload);
  writeFileSync(join(baseDir, 'payload.dat'), base);
  const sums = join(dir, 'tiny.SHA256SUMS');
  writeFileSync(sums, `${createHash('sha256').update(fine).digest('hex')}  payload.dat\n`);
  return { xorDir, baseDir, sums };
}

function generate(dir) {
  const xorDir = join(dir, 'xor');
  const baseDir = join(dir, 'base');
  mkdirSync(xorDir, { recursive: true });
  mkdirSync(baseDir, { recursive: true });
  const payloadPath = join(xorDir, 'pytorch_model-00001-of-00001.bin');
  const basePath = join(baseDir, 'pytorch_model-00001-of-00001.bin');
  const fine = createHash('sha256');
  // The safetensors data section is the storages in the order they come (one tensor each).
  const tensorBytes = createHash('sha256');
  const fa = openSync(payloadPath, 'w');
  const fb = openSync(basePath, 'w');
  const count = Math.max(1, Math.round(opts.size / STORAGE_BYTES));
  const each = Math.floor(opts.size / count / 2) * 2;
  const tensors = Array.from({ length: count }, (_, i) => ({ name: `model.layers.${i}.weight`, key: String(i), numel: each / 2 }));
  const archive = 'pytorch_model-00001-of-00001';
  // Fine-tuned bytes go through here in order: base bytes beside them, payload = fine XOR base.
  let written = 0;
  const records = [];
  const emit = (fineBytes) => {
    written += fineBytes.length;
    const base = randomFillSync(Buffer.alloc(fineBytes.length));
    writeSync(fb, base);
    fine.update(fineBytes);
    const payload = Buffer.from(fineBytes);
    xorInto(payload, base, payload.length);
    writeSync(fa, payload);
  };
  const pickle = statePickle(tensors);
  records.push({ name: `${archive}/data.pkl`, offset: 0, crc: crc(pickle), size: pickle.length });
  emit(Buffer.concat([localHeader(`${archive}/data.pkl`), pickle, descriptor(crc(pickle), pickle.length)]));
  // Storage entries in sorted() order of their keys, as torch writes them.
  for (const t of [...tensors].sort((x, y) => (x.key < y.key ? -1 : 1))) {
    const offset = written;
    emit(localHeader(`${archive}/data/${t.key}`));
    let crcValue = 0;
    for (let done = 0; done < each; done += 16 << 20) {
      const part = randomFillSync(Buffer.alloc(Math.min(16 << 20, each - done)));
      crcValue = crc(part, crcValue);
      tensorBytes.update(part);
      emit(part);
    }
    emit(descriptor(crcValue, each));
    records.push({ name: `${archive}/data/${t.key}`, offset, crc: crcValue, size: each });
  }
  emit(centralDirectory(records, written));
  closeSync(fa);
  closeSync(fb);
  const sums = join(dir, 'SHA256SUMS');
  const digest = fine.digest('hex');
  writeFileSync(sums, `${digest}  pytorch_model-00001-of-00001.bin\n`);
  return { xorDir, baseDir, payloadPath, sums, digest, tensorDigest: tensorBytes.digest('hex') };
}

/**
 * A loopback stand-in of the Hub serving the generated payload (revision, tree listing with the LFS
 * SHA-256, resolve -> 302 -> ranged reads from disk), so case (f) measures decoding from hf:// with
 * the network stack in the loop and the XOR file never stored. As on the real Hub, resolve sends the
 * client to another server for the bytes: scripts/bench-cdn.py, which sends them with sendfile, or
 * (`cdn` 'node') a file stream piped from this process.
 */
async function startHub(data, cdn) {
  const payloadSha = createHash('sha256');
  for await (const chunk of createReadStream(data.payloadPath, { highWaterMark: 16 << 20 })) payloadSha.update(chunk);
  const sha = payloadSha.digest('hex');
  const size = statSync(data.payloadPath).size;
  const commit = 'b'.repeat(40);
  const cdnProcess = cdn === 'sendfile' ? await startCdn(data.payloadPath) : undefined;
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/api/models/bench/release/revision/main') return res.end(JSON.stringify({ sha: commit }));
    if (url.pathname === `/api/models/bench/release/tree/${commit}/xor`) {
      return res.end(JSON.stringify([{ type: 'file', path: 'xor/pytorch_model-00001-of-00001.bin', size, lfs: { oid: sha, size, pointerSize: 134 } }]));
    }
    if (url.pathname === `/bench/release/resolve/${commit}/xor/pytorch_model-00001-of-00001.bin`) {
      res.writeHead(302, { Location: cdnProcess ? `http://127.0.0.1:${cdnProcess.port}/payload` : '/cdn/payload' });
      return res.end();
    }
    if (url.pathname === '/cdn/payload') {
      // "bytes=N-" or "bytes=N-M", as a CDN serves them.
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = Number(m?.[1] ?? 0);
      const last = m?.[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      res.writeHead(m ? 206 : 200, { 'Content-Length': String(last + 1 - start), ...(m ? { 'Content-Range': `bytes ${start}-${last}/${size}` } : {}) });
      if (last + 1 - start === 0) return res.end();
      return createReadStream(data.payloadPath, { start, end: last, highWaterMark: 1 << 20 }).pipe(res);
    }
    res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' });
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    /** CPU seconds the stand-in has used so far: this process's, and the CDN's. */
    cpuSeconds: () => {
      const own = process.cpuUsage();
      return (own.user + own.system) / 1e6 + (cdnProcess ? processCpuSeconds(cdnProcess.child.pid) : 0);
    },
    close: () => {
      server.close();
      cdnProcess?.child.kill();
    },
  };
}

/** Starts scripts/bench-cdn.py on the payload; resolves with the port it listens on. */
function startCdn(payloadPath) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('python3', [join(ROOT, 'scripts', 'bench-cdn.py'), payloadPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`bench-cdn.py exited (${code}) before listening`)));
    child.stdout.on('data', (d) => {
      out += d;
      const port = Number(out.split('\n')[0]);
      if (out.includes('\n') && port > 0) resolvePromise({ child, port });
    });
  });
}

async function checkSafetensorsOutput(data) {
  const out = join(dirname(data.xorDir), 'out-check');
  rmSync(out, { recursive: true, force: true });
  timed(process.execPath, [BIN, 'decode', out, data.xorDir, data.baseDir, '--manifest', data.sums, '--safetensors', '-q']);
  const path = join(out, 'model-00001-of-00001.safetensors');
  const head = Buffer.alloc(8);
  const fd = openSync(path, 'r');
  readSync(fd, head, 0, 8, 0);
  closeSync(fd);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { start: 8 + Number(head.readBigUInt64LE(0)), highWaterMark: 16 << 20 })) hash.update(chunk);
  rmSync(out, { recursive: true, force: true });
  if (hash.digest('hex') !== data.tensorDigest) throw new Error('decode --safetensors wrote other tensor bytes');
}

async function warm(path) {
  for await (const _ of createReadStream(path, { highWaterMark: 16 << 20 }));
}

/**
 * CPU seconds (user + sys) used so far by this process's finished children: cutime + cstime of
 * /proc/self/stat (Linux). Read around a case, it gives that case's CPU, which noise on a shared
 * machine moves far less than its wall time. null where there is no /proc.
 */
const CLOCK_TICKS = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout) > 0 ? Number(r.stdout) : 100;
})();
/** Fields after "pid (comm) " of /proc/<pid>/stat, or null where there is no /proc. */
function procStat(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  } catch {
    return null;
  }
}
function childCpuSeconds() {
  const fields = procStat('self');
  // After "pid (comm) ", cutime and cstime are the 14th and 15th fields.
  return fields ? (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS : null;
}
/** CPU seconds (utime + stime) a running process has used so far; 0 where there is no /proc. */
function processCpuSeconds(pid) {
  const fields = procStat(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS : 0;
}

/** Runs `fn` and adds its children's CPU seconds to what it returns. */
async function withCpu(fn) {
  const before = childCpuSeconds();
  const r = await fn();
  const after = childCpuSeconds();
  return r && before !== null && after !== null ? { ...r, cpu: after - before } : r;
}

/** As timed(), but without blocking this process: the Hub stand-in it serves from runs here. */
function timedAsync(cmd, args, env) {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr}`));
      else resolvePromise({ seconds, stdout });
    });
  });
}

function timed(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

async function hasherComparison() {
  const size = 256 << 20;
  const data = randomFillSync(Buffer.alloc(size));
  const result = {};
  const measure = (fn) => {
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      fn();
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return size / median(times) / 1e9;
  };
  result.nodeCryptoSha256GBps = measure(() => createHash('sha256').update(data).digest('hex'));
  try {
    const { createSHA256 } = await import('hash-wasm');
    const h = await createSHA256();
    result.hashWasmSha256GBps = measure(() => {
      h.init();
      h.update(data);
      h.digest('hex');
    });
  } catch {
    result.hashWasmSha256GBps = null;
  }
  return result;
}

const dir = opts.dir ? resolve(opts.dir) : mkdtempSync(join(tmpdir(), 'metharme-xor-bench-'));
mkdirSync(dir, { recursive: true });
/** (h) and (i): decode against a rebuilt base over decode against the exact one. */
async function rebuildPart(print = true) {
  const rebuild = await llamaBench({ root: ROOT, dist: join(ROOT, 'dist'), dir, size: opts.size, runs: opts.runs, timed, warm, median, log });
  if (opts.json) {
    if (print) console.log(JSON.stringify({ rebuild }, null, 2));
    return rebuild;
  }
  const m = rebuild.medianSeconds;
  const mb = (b) => `${(b / 1e6).toFixed(0)} MB`;
  console.log(`\n${rebuild.model}: one ${(rebuild.bytes / 2 ** 30).toFixed(2)} GiB 2023 shard, median of ${opts.runs} interleaved runs`);
  const range = (name) => rebuild.rangeSeconds[name].map((t) => t.toFixed(2)).join('-');
  const line = (label, name) => console.log(`  ${label.padEnd(46)} ${m[name].toFixed(3)} s  (runs ${range(name)} s)  peak RSS ${mb(rebuild.peakRssBytes[name])}`);
  line("(c') decode against the exact base", 'exact');
  line('(h) against it rebuilt from safetensors', 'safetensors');
  line("(i) against it rebuilt from Meta's layout", 'meta');
  line('(j) decode --gguf (lossless F16)', 'gguf');
  line('(k) decode --gguf q8_0', 'ggufQ8');
  line('(l) decode --gguf q4_k_m', 'ggufQ4');
  for (const [label, key] of [['(h)', 'safetensorsOverExact'], ['(i)', 'metaOverExact'], ['(j)', 'ggufOverExact'], ['(k)', 'ggufQ8OverExact'], ['(l)', 'ggufQ4OverExact']]) {
    const r = rebuild.ratios[key];
    console.log(`  ${label}/(c') = ${r.toFixed(2)}  aim <= ${rebuild.aims[key]}  ${r <= rebuild.aims[key] ? 'ok' : 'MISSED'}`);
  }
  for (const [name, b] of Object.entries(rebuild.peakRssBytes)) console.log(`  peak RSS of ${name} = ${mb(b)}  target <= 150 MB  ${b <= 150e6 ? 'ok' : 'MISSED'}`);
  return rebuild;
}
if (opts.rebuildOnly) {
  try {
    await rebuildPart();
  } finally {
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
try {
  const withOpenssl = have('openssl', ['version']);
  const withReference = opts.reference && have('python3', ['-c', 'import numpy']) && have('sha256sum');
  log(`generating ${(opts.size / 2 ** 30).toFixed(2)} GiB payload and base in ${dir} ...`);
  const data = generate(dir);
  const tiny = generateTiny(dir);
  log('warming the page cache ...');
  await warm(data.payloadPath);
  await warm(join(data.baseDir, 'pytorch_model-00001-of-00001.bin'));

  const cdn = opts.cdn ?? (have('python3') ? 'sendfile' : 'node');
  const hub = await startHub(data, cdn);
  /** A decode of the local files; `extra` options, e.g. --safetensors. */
  const localDecode = (name, extra) => {
    const out = join(dir, name);
    rmSync(out, { recursive: true, force: true });
    const r = timed(process.execPath, [BIN, 'decode', out, data.xorDir, data.baseDir, '--manifest', data.sums, '--json', ...extra]);
    const report = JSON.parse(r.stdout);
    if (report.exitCode !== 0 || report.files[0].status !== 'verified') throw new Error(`decode ${extra.join(' ')} did not verify`);
    rmSync(out, { recursive: true, force: true });
    return { ...r, peakRss: report.totals.peakRssBytes };
  };
  /** The same decode from hf://, with the stand-in's CPU during the run. */
  const hubDecode = async (name, extra) => {
    const out = join(dir, name);
    rmSync(out, { recursive: true, force: true });
    // The stand-in runs in this process and the CDN's: their CPU during the run is the server's (this script idles meanwhile).
    const server = hub.cpuSeconds();
    const r = await timedAsync(process.execPath, [BIN, 'decode', out, 'hf://bench/release/xor', data.baseDir, '--manifest', data.sums, '--json', ...extra], {
      ...process.env,
      // The stand-in is on 127.0.0.1: no proxy of the machine's in between.
      HTTP_PROXY: '',
      http_proxy: '',
      HF_ENDPOINT: hub.endpoint,
      HF_HOME: join(dir, 'hf-home'),
      HF_TOKEN: '',
    });
    const report = JSON.parse(r.stdout);
    if (report.exitCode !== 0 || report.files[0].status !== 'verified') throw new Error(`decode from hf:// ${extra.join(' ')} did not verify`);
    const serverCpu = hub.cpuSeconds() - server;
    rmSync(out, { recursive: true, force: true });
    return { ...r, peakRss: report.totals.peakRssBytes, serverCpu };
  };
  const cases = {
    hash: () => (withOpenssl ? timed('openssl', ['dgst', '-sha256', data.payloadPath]) : null),
    copy: () => {
      const target = join(dir, 'copy.bin');
      const r = timed('cp', [data.payloadPath, target]);
      rmSync(target, { force: true });
      return r;
    },
    durable: () => {
      // The payload written as a decode writes it (direct, then flushed to the device) with no hashing:
      // on machines whose storage flush is slow, this and not (a) is the floor.
      if (!have('dd')) return null;
      const target = join(dir, 'durable.bin');
      const args = (direct) => [`if=${data.payloadPath}`, `of=${target}`, 'bs=4M', ...(direct ? ['oflag=direct'] : []), 'conv=fdatasync', 'status=none'];
      try {
        return timed('dd', args(true));
      } catch {
        // A file system without direct writes (tmpfs) or a dd without oflag: through the page cache.
        return timed('dd', args(false));
      } finally {
        rmSync(target, { force: true });
      }
    },
    decode: () => localDecode('out', []),
    startup: () => {
      const out = join(dir, 'out-tiny');
      rmSync(out, { recursive: true, force: true });
      const r = timed(process.execPath, [BIN, 'decode', out, tiny.xorDir, tiny.baseDir, '--manifest', tiny.sums, '--json']);
      if (JSON.parse(r.stdout).exitCode !== 0) throw new Error('the 4 KiB decode did not verify');
      rmSync(out, { recursive: true, force: true });
      return r;
    },
    safetensors: () => localDecode('out-st', ['--safetensors']),
    hub: () => hubDecode('out-hub', []),
    hubSafetensors: () => hubDecode('out-hub-st', ['--safetensors']),
    reference: () => {
      if (!withReference) return null;
      const out = join(dir, 'ref');
      rmSync(out, { recursive: true, force: true });
      const dec = timed('python3', [REFERENCE, out, data.xorDir, data.baseDir, '--decode']);
      const sum = timed('sha256sum', [join(out, 'pytorch_model-00001-of-00001.bin')]);
      if (!sum.stdout.startsWith(data.digest)) throw new Error('reference model produced different bytes');
      rmSync(out, { recursive: true, force: true });
      return { seconds: dec.seconds + sum.seconds };
    },
  };
  const names = Object.keys(cases);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const cpuSamples = Object.fromEntries(names.map((n) => [n, []]));
  const serverCpu = [];
  const rss = Object.fromEntries(names.map((n) => [n, []]));
  for (let run = 0; run < opts.runs; run++) {
    // Rotate the order each round, so no case always runs right after the same neighbour.
    const order = names.map((_, i) => names[(i + run) % names.length]);
    for (const name of order) {
      const r = await withCpu(cases[name]);
      if (!r) continue;
      samples[name].push(r.seconds);
      if (r.cpu !== undefined) cpuSamples[name].push(r.cpu);
      if (name === 'hub' && r.serverCpu !== undefined) serverCpu.push(r.serverCpu);
      if (r.peakRss) rss[name].push(r.peakRss);
      log(`  run ${run + 1}/${opts.runs}  ${name.padEnd(9)} ${r.seconds.toFixed(3)} s`);
    }
  }
  // Once, after the timed runs (reading the output back would evict the inputs from the page cache
  // between runs): the converted tensor bytes must be the storages' bytes.
  await checkSafetensorsOutput(data);
  const med = Object.fromEntries(names.map((n) => [n, samples[n].length ? median(samples[n]) : null]));
  const hashers = await hasherComparison();
  const ratio = (x, y) => (x && y ? x / y : null);
  const peak = (values) => (values.length ? Math.max(...values) : null);
  const result = {
    bytes: opts.size,
    /** So that a reader can compare machines: SHA extensions, cores. */
    cpu: { model: cpus()[0]?.model ?? 'unknown', cores: availableParallelism() },
    runs: opts.runs,
    seconds: samples,
    medianSeconds: med,
    /** CPU seconds (user + sys) of each case's processes, medians; for (f) the stand-in's own CPU apart. */
    medianCpuSeconds: Object.fromEntries(names.map((n) => [n, cpuSamples[n].length ? median(cpuSamples[n]) : null])),
    medianServerCpuSeconds: serverCpu.length ? median(serverCpu) : null,
    /** What served (f)'s bytes: scripts/bench-cdn.py with sendfile, or a file stream in this process. */
    cdn,
    ratios: {
      decodeOverHash: ratio(med.decode, med.hash),
      /** Against the larger of the two floors a decode cannot beat: hashing the payload, or writing it durably. */
      decodeOverFloor: med.hash !== null && med.durable !== null ? ratio(med.decode, Math.max(med.hash, med.durable)) : null,
      /** The decode without its fixed cost (c0), against the hashing floor: the streaming itself. */
      streamingOverHash: med.decode !== null && med.startup !== null ? ratio(med.decode - med.startup, med.hash) : null,
      decodeOverCopy: ratio(med.decode, med.copy),
      referenceOverDecode: ratio(med.reference, med.decode),
      safetensorsOverDecode: ratio(med.safetensors, med.decode),
      hubOverDecode: ratio(med.hub, med.decode),
    },
    peakRssBytes: peak(rss.decode),
    safetensorsPeakRssBytes: peak(rss.safetensors),
    hubPeakRssBytes: peak(rss.hub),
    hubSafetensorsPeakRssBytes: peak(rss.hubSafetensors),
    hashers,
    targets: {
      decodeOverHashMax: 1.2,
      referenceOverDecodeMin: 5,
      peakRssMaxBytes: 150e6,
      safetensorsOverDecodeMax: 1.15,
      hubOverDecodeMax: 1.5,
    },
  };
  if (opts.json) {
    result.rebuild = await rebuildPart(false);
    console.log(JSON.stringify(result, null, 2));
  } else {
    const row = (label, s, note = '') =>
      console.log(`  ${label.padEnd(36)} ${s === null ? '   (skipped)' : `${s.toFixed(3).padStart(7)} s  ${gb(opts.size, s).padStart(5)} GB/s`}  ${note}`);
    const fmt = (x) => (x === null ? 'n/a' : x.toFixed(2));
    const ok = (cond) => (cond === null ? '' : cond ? 'ok' : 'MISSED');
    console.log(`\nmetharme-xor bench: ${(opts.size / 2 ** 30).toFixed(2)} GiB payload + base, page cache warmed first, median of ${opts.runs} interleaved runs`);
    console.log(`  on ${result.cpu.model}, ${result.cpu.cores} cores`);
    row('(a) openssl dgst -sha256', med.hash, 'hashing floor');
    row('(b) cp payload', med.copy, 'copy floor');
    row('(w) dd oflag=direct conv=fdatasync', med.durable, 'durable-write floor: the payload written as a decode writes it, unhashed');
    row('(c) metharme-xor decode (verified)', med.decode, `peak RSS ${(result.peakRssBytes / 1e6).toFixed(0)} MB`);
    row('(c0) decode of a 4 KiB release', med.startup, 'fixed cost: node, modules, worker, lock, fsyncs');
    row('(d) reference model + sha256sum', med.reference, withReference ? '' : '(needs python3 with numpy)');
    row('(e) metharme-xor decode --safetensors', med.safetensors, `peak RSS ${(result.safetensorsPeakRssBytes / 1e6).toFixed(0)} MB`);
    row('(f) metharme-xor decode from hf:// (loopback)', med.hub, `peak RSS ${(result.hubPeakRssBytes / 1e6).toFixed(0)} MB`);
    row('(g) (f) with --safetensors', med.hubSafetensors, `peak RSS ${(result.hubSafetensorsPeakRssBytes / 1e6).toFixed(0)} MB`);
    const cpu = result.medianCpuSeconds;
    if (cpu.decode !== null && cpu.hub !== null) {
      console.log(
        `  CPU (user + sys): (c) ${cpu.decode.toFixed(2)} s, (e) ${cpu.safetensors?.toFixed(2) ?? 'n/a'} s, (f) ${cpu.hub.toFixed(2)} s + the stand-in server ${result.medianServerCpuSeconds.toFixed(2)} s (${
          cdn === 'sendfile' ? 'bytes sent by scripts/bench-cdn.py with sendfile' : 'bytes sent by a file stream in the bench, --cdn node'
        })`,
      );
      // What no scheduling can beat: all of (f)'s CPU spread evenly over every core.
      const floor = (cpu.hub + result.medianServerCpuSeconds) / availableParallelism();
      console.log(`  (f) on ${availableParallelism()} cores takes at least ${floor.toFixed(2)} s: ${(floor / med.decode).toFixed(2)}x the local decode's time`);
    }
    const r = result.ratios;
    console.log(`  (c)/(a) = ${fmt(r.decodeOverHash)}  aim <= 1.2  ${ok(r.decodeOverHash === null ? null : r.decodeOverHash <= 1.2)}`);
    console.log(`  ((c)-(c0))/(a) = ${fmt(r.streamingOverHash)}  the streaming alone against the hashing floor`);
    console.log(`  (c)/max((a),(w)) = ${fmt(r.decodeOverFloor)}  against the larger floor: where (w) > (a), the storage's flush, not the tool, sets the pace`);
    console.log(`  (c)/(b) = ${fmt(r.decodeOverCopy)}`);
    console.log(`  (d)/(c) = ${fmt(r.referenceOverDecode)}  target >= 5  ${ok(r.referenceOverDecode === null ? null : r.referenceOverDecode >= 5)}`);
    console.log(`  peak RSS of (c) = ${(result.peakRssBytes / 1e6).toFixed(0)} MB  target <= 150 MB  ${ok(result.peakRssBytes <= 150e6)}`);
    console.log(`  (e)/(c) = ${fmt(r.safetensorsOverDecode)}  aim <= 1.15  ${ok(r.safetensorsOverDecode === null ? null : r.safetensorsOverDecode <= 1.15)}`);
    console.log(`  peak RSS of (e) = ${(result.safetensorsPeakRssBytes / 1e6).toFixed(0)} MB  target <= 150 MB  ${ok(result.safetensorsPeakRssBytes <= 150e6)}`);
    console.log(`  (f)/(c) = ${fmt(r.hubOverDecode)}  aim <= 1.5  ${ok(r.hubOverDecode === null ? null : r.hubOverDecode <= 1.5)}`);
    console.log(`  peak RSS of (f) = ${(result.hubPeakRssBytes / 1e6).toFixed(0)} MB  target <= 150 MB  ${ok(result.hubPeakRssBytes <= 150e6)}`);
    console.log(`  peak RSS of (g) = ${(result.hubSafetensorsPeakRssBytes / 1e6).toFixed(0)} MB  target <= 150 MB  ${ok(result.hubSafetensorsPeakRssBytes <= 150e6)}`);
    console.log(
      `  SHA-256 in memory (256 MiB): node:crypto ${hashers.nodeCryptoSha256GBps.toFixed(2)} GB/s, hash-wasm ${
        hashers.hashWasmSha256GBps === null ? 'n/a' : `${hashers.hashWasmSha256GBps.toFixed(2)} GB/s`
      }  -> node:crypto is the hasher`,
    );
  }
  hub.close();
  if (!opts.json) await rebuildPart();
} finally {
  if (!opts.keep) rmSync(dir, { recursive: true, force: true });
}
