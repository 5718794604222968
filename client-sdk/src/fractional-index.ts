/**
 * Fractional indices: the display order of components.
 *
 * A key is a string over the 62 digits `0-9A-Z a-z` (in ASCII order) read
 * as a base-62 fraction `0.d1 d2 d3 …`. A key never ends with `0`, so two
 * different keys never denote the same number, and comparing keys as plain
 * strings (`<`, or byte by byte as the server does) is the same as
 * comparing the numbers. Between any two keys there is always another one.
 *
 * {@link keyBetween} picks a point between two neighbours with some random
 * jitter: two people inserting at the same place at the same moment get
 * different keys (and the server's tie-break by id covers the rest).
 *
 * @module
 */

/** The 62 digits, in ASCII (and so string-comparison) order. */
export const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const BASE = 62n
const KEY_RE = /^[0-9A-Za-z]*[1-9A-Za-z]$/

/** Is `key` a well-formed fractional index (non-empty, base 62, no trailing `0`)? */
export function isValidKey (key: unknown): key is string {
  return typeof key === 'string' && KEY_RE.test(key)
}

/** The fraction `key` as an integer of `len` base-62 digits (zero-padded on the right). */
function toInt (key: string, len: number): bigint {
  let n = 0n
  for (let i = 0; i < len; i++) {
    const d = i < key.length ? DIGITS.indexOf(key[i]!) : 0
    n = n * BASE + BigInt(d)
  }
  return n
}

/** `n` (less than 62^len) as a key of at most `len` digits, trailing zeros removed. */
function fromInt (n: bigint, len: number): string {
  const out: string[] = new Array(len)
  for (let i = len - 1; i >= 0; i--) {
    out[i] = DIGITS[Number(n % BASE)]!
    n /= BASE
  }
  return out.join('').replace(/0+$/, '')
}

/**
 * A short key whose value (as a `len`-digit integer) lies in `[a, b]`:
 * the fewest digits that have any value in the range, plus one digit so
 * that there are dozens of choices to jitter among.
 */
function shortestIn (a: bigint, b: bigint, len: number, random: Random): string {
  for (let p = 1; p <= len; p++) {
    const scale = BASE ** BigInt(len - p)
    if ((b / scale) * scale < a) continue // no p-digit value in [a, b]
    const q = Math.min(p + 1, len)
    const fine = BASE ** BigInt(len - q)
    const first = (a + fine - 1n) / fine
    const last = b / fine
    const choices = last - first + 1n
    const pick = first + BigInt(Math.floor(random() * Number(choices > 1000000n ? 1000000n : choices)))
    return fromInt(pick * fine, len)
  }
  throw new Error('fractional index bug: empty range')
}

/** A random number in [0, 1); `random` may be replaced for deterministic tests. */
export type Random = () => number

/**
 * A key strictly between `lo` and `hi`.
 *
 * @param lo the key before, or `null` for "the very start"
 * @param hi the key after, or `null` for "the very end"
 * @param random source of jitter (default `Math.random`)
 * @throws RangeError when a bound is not a valid key or `lo >= hi`
 */
export function keyBetween (lo: string | null, hi: string | null, random: Random = Math.random): string {
  if (lo !== null && !isValidKey(lo)) throw new RangeError(`not a fractional index: ${JSON.stringify(lo)}`)
  if (hi !== null && !isValidKey(hi)) throw new RangeError(`not a fractional index: ${JSON.stringify(hi)}`)
  if (lo !== null && hi !== null && lo >= hi) {
    throw new RangeError(`no key between ${JSON.stringify(lo)} and ${JSON.stringify(hi)}: bounds out of order`)
  }
  // Two extra digits of precision leave at least 62^2 integer steps
  // between the bounds, room enough for a jittered point.
  const len = Math.max(lo?.length ?? 0, hi?.length ?? 0) + 2
  const low = lo === null ? 0n : toInt(lo, len)
  const high = hi === null ? BASE ** BigInt(len) : toInt(hi, len)
  const span = high - low
  // Where in the gap to land, in thousandths. Appending at the end stays
  // close to the last key (keys grow slowly when forms grow at the end);
  // inserting at the start stays close to the first; otherwise around the
  // middle.
  let from: number, to: number
  if (hi === null && lo !== null) [from, to] = [20, 80]
  else if (lo === null && hi !== null) [from, to] = [920, 980]
  else [from, to] = [350, 650]
  const a = low + (span * BigInt(from)) / 1000n
  const b = low + (span * BigInt(to)) / 1000n
  const key = shortestIn(a, b, len, random)
  // Cannot fail by construction; kept as a guard against future edits.
  if ((lo !== null && key <= lo) || (hi !== null && key >= hi) || !isValidKey(key)) {
    throw new Error(`fractional index bug: ${key} not between ${lo} and ${hi}`)
  }
  return key
}

/**
 * `count` keys in increasing order between `lo` and `hi` (for inserting
 * several items at one place).
 */
export function keysBetween (lo: string | null, hi: string | null, count: number, random: Random = Math.random): string[] {
  const keys: string[] = []
  let prev = lo
  for (let i = 0; i < count; i++) {
    prev = keyBetween(prev, hi, random)
    keys.push(prev)
  }
  return keys
}
