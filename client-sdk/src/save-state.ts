/**
 * Saved-state bookkeeping, driven by the server's durable acknowledgements.
 *
 * With `?acks=1` the server counts the *update messages* a connection sends
 * — frames starting `[0, 1]` (sync step 2) or `[0, 2]` (update), empty ones
 * included, in order — and sends `[100, n]` once the first `n` of them are
 * durably stored, or `[101, n]` when message `n` was refused (read-only
 * connection). A new connection starts counting at 0 on both sides.
 *
 * The tracker turns that into "how many of my changes are not known to be
 * stored yet":
 *
 * - each update message sent carries one local change;
 * - local changes made while no socket could send them are `unsent`;
 * - a connection that closes before its messages were acknowledged leaves
 *   them `carried`: maybe stored, maybe not;
 * - the sync step 2 a client sends when it (re)connects holds everything
 *   the server lacks, so it carries all `unsent` and `carried` changes —
 *   once it is acknowledged they are all stored.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'

/** What a sent frame is, for counting. */
export type FrameKind = 'step2' | 'update' | 'other'

/** Classifies an outgoing y-websocket frame by its first two varuints. */
export function frameKind (data: unknown): FrameKind {
  let bytes: Uint8Array
  if (data instanceof Uint8Array) bytes = data
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data)
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  else return 'other'
  if (bytes.length < 2) return 'other'
  try {
    const d = decoding.createDecoder(bytes)
    if (decoding.readVarUint(d) !== 0) return 'other'
    const sub = decoding.readVarUint(d)
    return sub === 1 ? 'step2' : sub === 2 ? 'update' : 'other'
  } catch {
    return 'other'
  }
}

interface Sent {
  /** 1-based number of the update message on its connection. */
  seq: number
  /** Local changes it carries. */
  changes: number
}

/** Counts of one session's unsaved work. Pure bookkeeping: no I/O. */
export class SaveTracker {
  /** Changes from closed connections that were never acknowledged. */
  carried = 0
  /** Local changes made while no connection could send them. */
  unsent = 0
  /** Changes whose update message the server refused (read-only). */
  rejected = 0
  /** Update messages sent on the current connection and not yet acknowledged. */
  #inflight: Sent[] = []
  /** Update messages sent on the current connection. */
  #seq = 0

  /** A new connection: counting starts again at 0. */
  connectionOpened (): void {
    this.connectionClosed()
  }

  /** The connection is gone: what it did not acknowledge is carried over. */
  connectionClosed (): void {
    for (const s of this.#inflight) this.carried += s.changes
    this.#inflight = []
    this.#seq = 0
  }

  /** An update message was sent on the current connection. */
  sent (kind: 'step2' | 'update'): void {
    this.#seq += 1
    let changes = 1
    if (kind === 'step2') {
      changes = this.carried + this.unsent
      this.carried = 0
      this.unsent = 0
    }
    this.#inflight.push({ seq: this.#seq, changes })
  }

  /** A local change could not be sent now (it will go in the next sync step 2). */
  notSent (): void {
    this.unsent += 1
  }

  /** `[100, n]`: the first `n` update messages of this connection are stored. */
  saved (n: number): void {
    while (this.#inflight.length > 0 && this.#inflight[0]!.seq <= n) this.#inflight.shift()
  }

  /** `[101, n]`: update message `n` was refused. Returns how many changes it carried. */
  refused (n: number): number {
    const s = this.#inflight.find((x) => x.seq === n)
    if (s === undefined) return 0
    const lost = s.changes
    this.rejected += lost
    s.changes = 0
    return lost
  }

  /** Local changes not known to be stored. */
  get unsavedChanges (): number {
    let n = this.carried + this.unsent
    for (const s of this.#inflight) n += s.changes
    return n
  }

  /** Every sent update message acknowledged and nothing waiting to be sent. */
  get allSaved (): boolean {
    return this.#inflight.length === 0 && this.carried === 0 && this.unsent === 0
  }
}
