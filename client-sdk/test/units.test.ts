// Unit tests of the pure parts: fractional indices, frame classification
// and the saved-state bookkeeping.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

import { PACKAGE_ROOT, assertBinary } from './harness.js'
import { SaveTracker, frameKind, isValidKey, keyBetween, keysBetween } from '../src/index.js'

/** A seeded generator, so failures can be replayed. */
function lcg (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

describe('fractional indices', () => {
  test('a key between two keys sorts between them, as strings and as bytes', () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100000)
    const random = lcg(seed)
    const keys: string[] = []
    for (let i = 0; i < 3000; i++) {
      const sorted = [...keys].sort()
      const at = Math.floor(random() * (sorted.length + 1))
      const lo = sorted[at - 1] ?? null
      const hi = sorted[at] ?? null
      if (lo !== null && hi !== null && lo === hi) continue
      const k = keyBetween(lo, hi, random)
      assert.ok(isValidKey(k), `seed ${seed}: ${k} is not a valid key`)
      if (lo !== null) assert.ok(lo < k && Buffer.compare(Buffer.from(lo), Buffer.from(k)) < 0, `seed ${seed}: ${lo} < ${k}`)
      if (hi !== null) assert.ok(k < hi, `seed ${seed}: ${k} < ${hi}`)
      keys.push(k)
    }
  })

  test('keys stay short when a form grows at the end or at the start', () => {
    let last: string | null = null
    for (let i = 0; i < 1000; i++) last = keyBetween(last, null)
    assert.ok(last!.length <= 16, `after 1000 appends: ${last!.length} chars`)
    let first: string | null = null
    for (let i = 0; i < 1000; i++) first = keyBetween(null, first)
    assert.ok(first!.length <= 16, `after 1000 prepends: ${first!.length} chars`)
    // Repeated insertion at one spot grows ~1 char per few inserts; the server allows 100.
    let hi = 'V'
    for (let i = 0; i < 100; i++) hi = keyBetween('U', hi)
    assert.ok(hi.length <= 100, `after 100 squeezes: ${hi.length}`)
  })

  test('two people inserting at the same spot get different keys', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 200; i++) seen.add(keyBetween('a', 'b'))
    assert.ok(seen.size > 150, `${seen.size} distinct keys of 200`)
  })

  test('bad bounds are refused', () => {
    assert.throws(() => keyBetween('b', 'a'), RangeError)
    assert.throws(() => keyBetween('a', 'a'), RangeError)
    assert.throws(() => keyBetween('a0', null), RangeError)
    assert.throws(() => keyBetween('a-b', null), RangeError)
    const ks = keysBetween('A', 'B', 5)
    assert.deepEqual(ks, [...ks].sort())
    assert.ok(ks.every((k) => k > 'A' && k < 'B'))
  })
})

describe('saved-state bookkeeping', () => {
  test('frames are classified by their first two varuints', () => {
    assert.equal(frameKind(new Uint8Array([0, 1, 2, 0, 0])), 'step2')
    assert.equal(frameKind(new Uint8Array([0, 2, 2, 0, 0]).buffer), 'update')
    assert.equal(frameKind(new Uint8Array([0, 0, 1, 0])), 'other')
    assert.equal(frameKind(new Uint8Array([1, 2, 3])), 'other')
    assert.equal(frameKind('text'), 'other')
  })

  test('unsaved changes follow sends, acknowledgements, reconnects and refusals', () => {
    const t = new SaveTracker()
    t.connectionOpened()
    t.sent('step2') // handshake, nothing pending
    assert.equal(t.allSaved, false)
    assert.equal(t.unsavedChanges, 0)
    t.saved(1)
    assert.equal(t.allSaved, true)
    t.sent('update')
    t.sent('update')
    assert.equal(t.unsavedChanges, 2)
    t.saved(2)
    assert.equal(t.unsavedChanges, 1)
    // The connection drops before the last acknowledgement; one more edit offline.
    t.connectionClosed()
    t.notSent()
    assert.equal(t.unsavedChanges, 2)
    t.connectionOpened()
    t.sent('step2') // carries both
    t.sent('update')
    assert.equal(t.unsavedChanges, 3)
    t.saved(1)
    assert.equal(t.unsavedChanges, 1)
    t.saved(2)
    assert.equal(t.allSaved, true)
    // A refused update (read-only) is counted as rejected.
    t.sent('update')
    assert.equal(t.refused(3), 1)
    t.saved(3)
    assert.equal(t.rejected, 1)
    assert.equal(t.allSaved, true)
  })
})

describe('test setup', () => {
  test('the coform server binary is built (cargo build -p coform, or COFORM_BIN)', () => {
    assertBinary()
  })
})

describe('package', () => {
  test('the built SDK imports only browser-safe packages (no Node built-ins)', () => {
    const allowed = /^(\.\/|yjs$|y-websocket$|y-protocols\/|lib0\/|y-indexeddb$)/
    const dist = path.join(PACKAGE_ROOT, 'dist')
    for (const file of fs.readdirSync(dist).filter((f) => f.endsWith('.js'))) {
      const code = fs.readFileSync(path.join(dist, file), 'utf8')
      const specifiers = [...code.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s+'([^']+)'|import\('([^']+)'\)/g)].map((m) => m[1] ?? m[2]!)
      for (const spec of specifiers) assert.match(spec, allowed, `${file} imports ${spec}`)
      assert.doesNotMatch(code, /(?<![#.\w])(process\.|Buffer\.|require\()/, `${file} uses a Node-only global`)
    }
  })
})
