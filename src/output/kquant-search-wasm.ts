/**
 * The searches of Q4_K and Q6_K (ggml's make_qkx2_quants and make_qx_quants) as hand-assembled
 * WebAssembly SIMD: the part of a K-quant that costs. In JavaScript, with a Math.fround after every
 * operation, they took 300 ns a value for Q4_K, a Q4_K_M GGUF 37 times a plain decode.
 *
 * The C code sums each sub-block's 32 (Q4_K) or 16 (Q6_K) values in index order, and the order of a
 * float sum decides its bits. So the values are not split across lanes: each lane carries a
 * different sub-block through the same sequence of float32 operations (no fused multiply-add),
 * which gives every lane the reference's bits. The block is transposed for that, value i of
 * sub-blocks 4g..4g+3 side by side.
 *
 * Branches become masks: a lane that does not take a candidate keeps its old values. The levels are
 * not kept through the search: the chosen ones are remade at the end from the candidate's inverse
 * scale and min, which is the same float arithmetic that made them.
 */
import { oneFunctionModule } from '../codec/wasm-binary.js';
import { bin, f32, f32Load, f32Store, f32x4, get, i32, i32Store8, load, Locals, OP, pick, set, simd, store, tee, V } from '../codec/wasm-ops.js';

/**
 * Scratch at the start of the kernel's memory: the transposed block; Q4_K's weights and a candidate's
 * levels, or Q6_K's x² and x³ (its weights and weights times values, the same for every candidate).
 */
const T = 0;
const WT = 1024;
const LAUX = 2048;
/** Values a search carries from candidate to candidate (keptValues). */
const KEEP = 3072;
/** Where the caller puts the blocks. */
export const KQUANT_INPUT = 4096;
/** The search's result of one block: its sub-blocks' scales (and Q4_K's mins) as float32, then the 256 levels. */
export const RESULT_BYTES = 64 + 256;
export const LEVELS_AT = 64;

/** 1.5 * 2^23: nearest_int's float add. */
export const MAGIC = 12582912;
const RDELTA = Math.fround(0.1);

const addr0 = i32(0);
const vload = (offset: number) => [...addr0, ...load(offset)];

interface Consts {
  lo: number;
  hi: number;
}

function consts(locals: Locals, lo: number, hi: number): { c: Consts; code: number[] } {
  const c = { lo: locals.v128(), hi: locals.v128() };
  return { c, code: [...f32x4(lo), ...set(c.lo), ...f32x4(hi), ...set(c.hi)] };
}

/**
 * clamp(nearest_int(x), lo, hi) of the lanes on the stack, as floats. ggml rounds half to even by
 * adding 1.5 * 2^23 and reading the bits; while |x| < 2^22 that is f32x4.nearest, one instruction
 * (the add and its undoing were two). Here x is a value scaled into about -nmax..nmax
 * (kquant-finish-wasm.ts, whose scales come from coded bytes, reads the bits as C does). pmin and
 * pmax are one instruction each (min and max, with their NaN rules, were five) and are C's MIN and
 * MAX for any lane that is not a NaN.
 */
const level = (c: Consts) => [...simd(V.f32x4Nearest), ...get(c.hi), ...simd(V.f32x4Pmin), ...get(c.lo), ...simd(V.f32x4Pmax)];

/**
 * Values a search's candidates read once or twice each but carry from candidate to candidate (the
 * best so far, the fixed sums), kept in memory from KEEP, `groups` lanes of four a name, rather than
 * in locals. As locals, TurboFan kept them live across the passes and moved them to and from the
 * stack between the loops: Q4_K spent a fifth of its time in about 200 such moves a candidate.
 */
function keptValues<N extends string>(names: readonly N[], groups: number) {
  const at = (name: N, g: number) => KEEP + 16 * (groups * names.indexOf(name) + g);
  return {
    kept: (name: N, g: number) => vload(at(name, g)),
    keep: (name: N, g: number, value: number[]) => [...addr0, ...value, ...store(at(name, g))],
  };
}

/** The loop over blocks: `body` for each, then `next`, and the input and output pointers moved on by the given sizes. */
export function overBlocks(body: number[], inBytes: number, outBytes: number, next: number[] = []): number[] {
  return [
    OP.block, OP.noResult, OP.loop, OP.noResult, ...get(1), OP.i32Eqz, OP.brIf, 1,
    ...body, ...next,
    ...get(0), ...i32(inBytes), OP.i32Add, ...set(0), ...get(2), ...i32(outBytes), OP.i32Add, ...set(2),
    ...get(1), ...i32(1), OP.i32Sub, ...set(1), OP.br, 0, OP.end, OP.end,
  ];
}

/** The block's 256 values from the input, value i of sub-block j (of `n` values) to T + 4 * (i * subBlocks + j). */
function transpose(n: number): number[] {
  const subBlocks = 256 / n;
  const code: number[] = [];
  for (let j = 0; j < subBlocks; j++) {
    for (let i = 0; i < n; i++) code.push(...addr0, ...get(0), ...f32Load(4 * (n * j + i)), ...f32Store(T + 4 * (i * subBlocks + j)));
  }
  return code;
}

/** A loop running `body` for i = 0..n-1, local `p` = stride * i (the body's addresses are from it). */
function counted(p: number, n: number, stride: number, body: number[]): number[] {
  return [...i32(0), ...set(p), OP.loop, OP.noResult, ...body, ...get(p), ...i32(stride), OP.i32Add, ...tee(p), ...i32(n * stride), OP.i32LtU, OP.brIf, 0, OP.end];
}

/**
 * Code for each value i < n of each group g, a group at a time (interleaving the groups held more
 * registers than x86 has, and was slower), and code once for each group.
 */
function overGroups<S>(groups: S[], n: number) {
  return {
    each(f: (i: number, g: number) => number[]): number[] {
      const code: number[] = [];
      for (let g = 0; g < groups.length; g++) for (let i = 0; i < n; i++) code.push(...f(i, g));
      return code;
    },
    perGroup: (f: (s: S, g: number) => number[]): number[] => groups.flatMap((s, g) => f(s, g)),
  };
}

/** The levels of one group, lanes to bytes: value i of sub-block j at dst + LEVELS_AT + n * j + i. */
function storeLevels(levels: number, mask: number, n: number, g: number, i: number): number[] {
  const code = [...get(levels), ...simd(V.i32x4TruncSatF32x4S), ...get(mask), ...simd(V.andNot), ...set(levels)];
  for (let k = 0; k < 4; k++) code.push(...get(2), ...get(levels), ...simd(V.i32x4Extract, k), ...i32Store8(LEVELS_AT + n * (4 * g + k) + i));
  return code;
}

/**
 *   (func (export "q4k") (param $src i32) (param $blocks i32) (param $dst i32))
 * For each block of 256 float32 values at $src: the scale and -min that make_qkx2_quants(32, 15, x,
 * weights av_x + |x|, rmin -1, rdelta 0.1, nstep 20) gives each sub-block, as float32 at $dst and
 * $dst + 32, and its levels as bytes from $dst + 64.
 */
export function q4kSearchBytes(): Uint8Array {
  const loc = new Locals(3);
  const { c, code: setup } = consts(loc, 0, 15);
  const IS = loc.i32();
  const P = loc.i32();
  const NUM = loc.v128();
  const group = () => ({
    min: loc.v128(), max: loc.v128(), sumW: loc.v128(), sumX: loc.v128(), isc: loc.v128(), scale: loc.v128(),
    best: loc.v128(), bIsc: loc.v128(), bMin: loc.v128(), flat: loc.v128(), l: loc.v128(), wl: loc.v128(),
    sumL: loc.v128(), sumL2: loc.v128(), sumXL: loc.v128(), cur: loc.v128(), d: loc.v128(), ts: loc.v128(),
    tm: loc.v128(), acc: loc.v128(), diff: loc.v128(), x: loc.v128(),
  });
  const gs = [group(), group()];
  const x = (i: number, g: number) => vload(T + 32 * i + 16 * g);
  const w = (i: number, g: number) => vload(WT + 32 * i + 16 * g);
  const { each, perGroup } = overGroups(gs, 32);
  /** The level of value i at inverse scale `isc` and min `min`. */
  const lev = (i: number, g: number, isc: number, min: number) => [...x(i, g), ...get(min), ...simd(V.f32x4Sub), ...get(isc), ...simd(V.f32x4Mul), ...level(c)];
  const KEPT = ['max', 'sumW', 'sumX', 'scale', 'best', 'bIsc', 'bMin', 'flat', 'd'] as const;
  const { kept, keep } = keptValues(KEPT, gs.length);

  const body: number[] = [...transpose(32)];
  // Weights: av_x = sqrt(Σx² / 32), w = av_x + |x|.
  body.push(...perGroup((s) => [...f32x4(0), ...set(s.sumX)]));
  body.push(...each((i, g) => [...get(gs[g]!.sumX), ...bin(x(i, g), x(i, g), V.f32x4Mul), ...simd(V.f32x4Add), ...set(gs[g]!.sumX)]));
  body.push(...perGroup((s) => [...get(s.sumX), ...f32x4(32), ...simd(V.f32x4Div), ...simd(V.f32x4Sqrt), ...set(s.sumW)]));
  body.push(...each((i, g) => [...addr0, ...get(gs[g]!.sumW), ...x(i, g), ...simd(V.f32x4Abs), ...simd(V.f32x4Add), ...store(WT + 32 * i + 16 * g)]));
  // min, max (the first value, then `v < min`, `v > max`: pmin, pmax), Σw and Σw·x in index order.
  body.push(...perGroup((s, g) => [...x(0, g), ...tee(s.min), ...set(s.max), ...w(0, g), ...set(s.sumW), ...bin(w(0, g), x(0, g), V.f32x4Mul), ...set(s.sumX)]));
  body.push(...each((i, g) => {
    if (i === 0) return [];
    const s = gs[g]!;
    return [
      ...get(s.min), ...x(i, g), ...simd(V.f32x4Pmin), ...set(s.min), ...get(s.max), ...x(i, g), ...simd(V.f32x4Pmax), ...set(s.max),
      ...get(s.sumW), ...w(i, g), ...simd(V.f32x4Add), ...set(s.sumW),
      ...get(s.sumX), ...bin(w(i, g), x(i, g), V.f32x4Mul), ...simd(V.f32x4Add), ...set(s.sumX),
    ];
  }));
  body.push(...perGroup((s) => [
    ...get(s.min), ...get(c.lo), ...simd(V.f32x4Pmin), ...set(s.min),
    ...bin(get(s.max), get(s.min), V.f32x4Eq), ...set(s.flat),
    ...f32x4(15), ...bin(get(s.max), get(s.min), V.f32x4Sub), ...simd(V.f32x4Div), ...tee(s.isc), ...tee(s.bIsc),
    ...f32x4(1), ...get(s.isc), ...simd(V.f32x4Div), ...set(s.scale),
    ...get(s.min), ...set(s.bMin), ...f32x4(0), ...set(s.best),
  ]));
  body.push(...each((i, g) => {
    const s = gs[g]!;
    return [
      ...get(s.scale), ...lev(i, g, s.isc, s.min), ...simd(V.f32x4Mul), ...get(s.min), ...simd(V.f32x4Add), ...x(i, g), ...simd(V.f32x4Sub), ...tee(s.diff),
      ...get(s.diff), ...simd(V.f32x4Mul), ...w(i, g), ...simd(V.f32x4Mul), ...get(s.best), ...simd(V.f32x4Add), ...set(s.best),
    ];
  }));

  // The candidates is = 0..20: iscale = (rmin + rdelta·is + nmax) / (max - min), min the best so far.
  const step: number[] = [];
  step.push(...f32(RDELTA), ...get(IS), OP.f32FromI32, OP.f32Mul, ...f32(-1), OP.f32Add, ...f32(15), OP.f32Add, ...simd(V.f32x4Splat), ...set(NUM));
  step.push(...perGroup((s, g) => [
    ...get(NUM), ...bin(kept('max', g), get(s.min), V.f32x4Sub), ...simd(V.f32x4Div), ...set(s.isc),
    ...f32x4(0), ...tee(s.sumL), ...tee(s.sumL2), ...set(s.sumXL),
  ]));
  // The two passes over the values are loops, not unrolled: unrolled, TurboFan scheduled every
  // level before the sums that use them, and a third of the instructions moved values to and from
  // the stack. Each runs both groups in one loop, their chains of sums side by side (a loop per
  // group in the first pass took 17.9 ns a value, against 17.2).
  const at = (g: number, area: number) => [...get(P), ...load(area + 16 * g)];
  step.push(...counted(P, 32, 32, perGroup((s, g) => [
    ...get(P), ...at(g, T), ...tee(s.x), ...get(s.min), ...simd(V.f32x4Sub), ...get(s.isc), ...simd(V.f32x4Mul), ...level(c), ...tee(s.l), ...store(LAUX + 16 * g),
    ...at(g, WT), ...get(s.l), ...simd(V.f32x4Mul), ...tee(s.wl), ...get(s.sumL), ...simd(V.f32x4Add), ...set(s.sumL),
    ...get(s.sumL2), ...bin(get(s.wl), get(s.l), V.f32x4Mul), ...simd(V.f32x4Add), ...set(s.sumL2),
    ...get(s.sumXL), ...bin(get(s.wl), get(s.x), V.f32x4Mul), ...simd(V.f32x4Add), ...set(s.sumXL),
  ])));
  step.push(...perGroup((s, g) => [
    ...bin(kept('sumW', g), get(s.sumL2), V.f32x4Mul), ...bin(get(s.sumL), get(s.sumL), V.f32x4Mul), ...simd(V.f32x4Sub), ...set(s.d),
    ...bin(kept('sumW', g), get(s.sumXL), V.f32x4Mul), ...bin(kept('sumX', g), get(s.sumL), V.f32x4Mul), ...simd(V.f32x4Sub), ...get(s.d), ...simd(V.f32x4Div), ...set(s.ts),
    ...bin(get(s.sumL2), kept('sumX', g), V.f32x4Mul), ...bin(get(s.sumL), get(s.sumXL), V.f32x4Mul), ...simd(V.f32x4Sub), ...get(s.d), ...simd(V.f32x4Div), ...set(s.tm),
    // this_min > 0: min 0, scale Σw·l·x / Σw·l².
    ...bin(get(s.tm), get(c.lo), V.f32x4Gt), ...set(s.acc),
    ...pick(s.acc, bin(get(s.sumXL), get(s.sumL2), V.f32x4Div), get(s.ts)), ...set(s.ts),
    ...pick(s.acc, get(c.lo), get(s.tm)), ...set(s.tm),
    // D > 0, for the choice after the error pass.
    ...keep('d', g, bin(get(s.d), get(c.lo), V.f32x4Gt)),
    ...f32x4(0), ...set(s.cur),
  ]));
  step.push(...counted(P, 32, 32, perGroup((s, g) => [
    ...get(s.ts), ...at(g, LAUX), ...simd(V.f32x4Mul), ...get(s.tm), ...simd(V.f32x4Add), ...at(g, T), ...simd(V.f32x4Sub), ...tee(s.diff),
    ...get(s.diff), ...simd(V.f32x4Mul), ...at(g, WT), ...simd(V.f32x4Mul), ...get(s.cur), ...simd(V.f32x4Add), ...set(s.cur),
  ])));
  step.push(...perGroup((s, g) => [
    ...kept('d', g), ...bin(get(s.cur), kept('best', g), V.f32x4Lt), ...simd(V.and), ...set(s.acc),
    ...keep('best', g, pick(s.acc, get(s.cur), kept('best', g))),
    ...keep('scale', g, pick(s.acc, get(s.ts), kept('scale', g))),
    ...keep('bIsc', g, pick(s.acc, get(s.isc), kept('bIsc', g))),
    ...keep('bMin', g, pick(s.acc, get(s.min), kept('bMin', g))),
    ...pick(s.acc, get(s.tm), get(s.min)), ...set(s.min),
  ]));
  // Into memory for the candidates (D's sign is written by each), and back for the result.
  body.push(...perGroup((s, g) => KEPT.filter((name) => name !== 'd').flatMap((name) => keep(name, g, get(s[name])))));
  body.push(...i32(0), ...set(IS), OP.block, OP.noResult, OP.loop, OP.noResult, ...get(IS), ...i32(20), OP.i32LeS, OP.i32Eqz, OP.brIf, 1);
  body.push(...step, ...get(IS), ...i32(1), OP.i32Add, ...set(IS), OP.br, 0, OP.end, OP.end);
  body.push(...perGroup((s, g) => (['scale', 'bIsc', 'bMin', 'flat'] as const).flatMap((name) => [...kept(name, g), ...set(s[name])])));

  // The result: scale and -min (a flat sub-block: scale 0, levels 0), and the chosen levels remade.
  body.push(...perGroup((s, g) => [
    ...get(2), ...bin(get(s.scale), get(s.flat), V.andNot), ...store(16 * g),
    ...get(2), ...get(s.min), ...simd(V.f32x4Neg), ...store(32 + 16 * g),
  ]));
  body.push(...each((i, g) => [...lev(i, g, gs[g]!.bIsc, gs[g]!.bMin), ...set(gs[g]!.l), ...storeLevels(gs[g]!.l, gs[g]!.flat, 32, g, i)]));
  return oneFunctionModule('q4k', [0x00, 0x01], loc.types, [...setup, ...overBlocks(body, 1024, RESULT_BYTES), OP.end]);
}

/**
 *   (func (export "q6k") (param $src i32) (param $blocks i32) (param $dst i32))
 * For each block of 256 float32 values at $src: the scale that make_qx_quants(16, 32, x, rmse_type 1)
 * gives each of its 16 sub-blocks, as float32 at $dst, and their levels + 32 as bytes from $dst + 64.
 */
export function q6kSearchBytes(): Uint8Array {
  const loc = new Locals(3);
  const { c, code: setup } = consts(loc, -32, 31);
  const IS = loc.i32();
  const P = loc.i32();
  const NUM = loc.v128();
  const EPS = loc.v128();
  const group = () => ({
    amax: loc.v128(), max: loc.v128(), ax: loc.v128(), gt: loc.v128(), tiny: loc.v128(), isc: loc.v128(), bIsc: loc.v128(),
    scale: loc.v128(), best: loc.v128(), slx: loc.v128(), sl2: loc.v128(), l: loc.v128(), w: loc.v128(), ns: loc.v128(), acc: loc.v128(),
  });
  const gs = [group(), group(), group(), group()];
  const x = (i: number, g: number) => vload(T + 64 * i + 16 * g);
  const { each, perGroup } = overGroups(gs, 16);
  const lev = (i: number, g: number, isc: number) => [...get(isc), ...x(i, g), ...simd(V.f32x4Mul), ...level(c)];
  const at = (g: number, area: number) => [...get(P), ...load(area + 16 * g)];
  /** Σ w·x·l and Σ w·l² at group g's s.isc, one value a turn of a loop (as Q4_K's passes are: see there). */
  const sumsOf = (s: (typeof gs)[number], g: number) => [
    ...get(s.isc), ...at(g, T), ...simd(V.f32x4Mul), ...level(c), ...set(s.l),
    ...get(s.slx), ...at(g, LAUX), ...get(s.l), ...simd(V.f32x4Mul), ...simd(V.f32x4Add), ...set(s.slx),
    ...get(s.sl2), ...at(g, WT), ...get(s.l), ...simd(V.f32x4Mul), ...get(s.l), ...simd(V.f32x4Mul), ...simd(V.f32x4Add), ...set(s.sl2),
  ];
  // Two groups a loop: four chains of sums side by side. All four groups held more values than
  // x86 has registers for (7.6 ns a value with two, 8.0 with one, 9.4 with four).
  const sums: number[] = [...perGroup((s) => [...f32x4(0), ...tee(s.slx), ...set(s.sl2)])];
  for (const g of [0, 2]) sums.push(...counted(P, 16, 64, [...sumsOf(gs[g]!, g), ...sumsOf(gs[g + 1]!, g + 1)]));

  const body: number[] = [...transpose(16)];
  // w = x² and w·x, the same for every candidate, made once.
  body.push(...each((i, g) => [
    ...addr0, ...bin(x(i, g), x(i, g), V.f32x4Mul), ...tee(gs[g]!.w), ...store(WT + 64 * i + 16 * g),
    ...addr0, ...bin(get(gs[g]!.w), x(i, g), V.f32x4Mul), ...store(LAUX + 64 * i + 16 * g),
  ]));
  // The value of largest magnitude, the first of them (`|x| > amax`).
  body.push(...perGroup((s) => [...f32x4(0), ...tee(s.amax), ...set(s.max)]));
  body.push(...each((i, g) => {
    const s = gs[g]!;
    return [
      ...x(i, g), ...simd(V.f32x4Abs), ...tee(s.ax), ...get(s.amax), ...simd(V.f32x4Gt), ...set(s.gt),
      ...pick(s.gt, get(s.ax), get(s.amax)), ...set(s.amax), ...pick(s.gt, x(i, g), get(s.max)), ...set(s.max),
    ];
  }));
  body.push(...perGroup((s) => [
    ...bin(get(s.amax), get(EPS), V.f32x4Lt), ...set(s.tiny),
    ...f32x4(-32), ...get(s.max), ...simd(V.f32x4Div), ...tee(s.isc), ...set(s.bIsc),
  ]));
  body.push(...sums);
  body.push(...perGroup((s) => [
    ...bin(get(s.sl2), f32x4(0), V.f32x4Ne), ...set(s.acc),
    ...pick(s.acc, bin(get(s.slx), get(s.sl2), V.f32x4Div), f32x4(0)), ...tee(s.scale),
    ...get(s.slx), ...simd(V.f32x4Mul), ...set(s.best),
  ]));

  // The candidates is = -9..9 but 0: iscale = -(nmax + rdelta·is) / max.
  const step: number[] = [];
  step.push(OP.block, OP.noResult, ...get(IS), OP.i32Eqz, OP.brIf, 0);
  step.push(...f32(RDELTA), ...get(IS), OP.f32FromI32, OP.f32Mul, ...f32(32), OP.f32Add, OP.f32Neg, ...simd(V.f32x4Splat), ...set(NUM));
  step.push(...perGroup((s) => [...get(NUM), ...get(s.max), ...simd(V.f32x4Div), ...set(s.isc)]));
  step.push(...sums);
  step.push(...perGroup((s) => [
    ...bin(get(s.sl2), f32x4(0), V.f32x4Gt), ...bin(get(s.slx), get(s.slx), V.f32x4Mul), ...bin(get(s.best), get(s.sl2), V.f32x4Mul), ...simd(V.f32x4Gt),
    ...simd(V.and), ...set(s.acc),
    ...bin(get(s.slx), get(s.sl2), V.f32x4Div), ...set(s.ns),
    ...pick(s.acc, get(s.ns), get(s.scale)), ...set(s.scale),
    ...pick(s.acc, bin(get(s.ns), get(s.slx), V.f32x4Mul), get(s.best)), ...set(s.best),
    ...pick(s.acc, get(s.isc), get(s.bIsc)), ...set(s.bIsc),
  ]));
  step.push(OP.end);
  body.push(...i32(-9), ...set(IS), OP.block, OP.noResult, OP.loop, OP.noResult, ...get(IS), ...i32(9), OP.i32LeS, OP.i32Eqz, OP.brIf, 1);
  body.push(...step, ...get(IS), ...i32(1), OP.i32Add, ...set(IS), OP.br, 0, OP.end, OP.end);

  body.push(...perGroup((s, g) => [...get(2), ...bin(get(s.scale), get(s.tiny), V.andNot), ...store(16 * g)]));
  body.push(...each((i, g) => {
    const s = gs[g]!;
    return [...lev(i, g, s.bIsc), ...f32x4(32), ...simd(V.f32x4Add), ...set(s.l), ...storeLevels(s.l, s.tiny, 16, g, i)];
  }));
  const init = [...setup, ...f32x4(1e-15), ...set(EPS)];
  return oneFunctionModule('q6k', [0x00, 0x01], loc.types, [...init, ...overBlocks(body, 1024, RESULT_BYTES), OP.end]);
}

