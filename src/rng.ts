/**
 * tilevec's one seeded generator (xoshiro128**), for sampling, classifiers, splits and statistics alike. Its whole
 * state is four uint32 words, so training can checkpoint it as JSON and resume the exact sequence. The sequence
 * depends only on the seed and, after `setState`, the state.
 */
export interface RngState {
  algorithm: 'xoshiro128**';
  words: [number, number, number, number];
}

/** SplitMix32 expands one seed into well-mixed words: xoshiro must not start from all zeros or from similar seeds. */
function splitMix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** 32-bit FNV-1a of `text` (char codes), from `basis` (FNV's offset basis unless another is given). */
export function fnv1a32(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Folds a seed of any integer size (or a string) into 32 bits, so 2^32 + 1 and 1 are different seeds. */
function seedWord(seed: number | string): number {
  return fnv1a32(String(seed));
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number | string) {
    const next = splitMix32(seedWord(seed));
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    rng.setState(state);
    return rng;
  }

  getState(): RngState {
    return { algorithm: 'xoshiro128**', words: [this.s0, this.s1, this.s2, this.s3] };
  }

  setState(state: RngState): void {
    const w = state?.words;
    if (state?.algorithm !== 'xoshiro128**' || !Array.isArray(w) || w.length !== 4 || !w.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
      throw new TypeError('not an xoshiro128** RNG state: expected {algorithm: "xoshiro128**", words: [4 uint32]}');
    }
    if (w.every((v) => v === 0)) throw new TypeError('an all-zero xoshiro128** state never changes; it cannot come from this generator');
    [this.s0, this.s1, this.s2, this.s3] = w;
  }

  /** The next uint32. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias (rejection on the top partial range). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new RangeError(`int(n) needs an integer 1..2^32, got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    let v: number;
    do v = this.nextUint32();
    while (v >= limit);
    return v % n;
  }

  /** Uniform integer in [lo, hi], both ends included. */
  intBetween(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  bool(): boolean {
    return (this.nextUint32() & 1) === 1;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Uniform floats in [0, 1) from a generator seeded with `seed`, as a plain function. */
export function uniform(seed: number | string): () => number {
  const rng = new Rng(seed);
  return () => rng.float();
}

/** Fisher-Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
