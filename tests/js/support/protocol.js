// The y-websocket protocol at the byte level: message encoders and a
// decoder, and a raw WebSocket client that records what it receives.

import { once } from 'node:events'

import WebSocket from 'ws'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

import { DEFAULT_TIMEOUT_MS, TimeoutError, waitUntil } from './wait.js'

export const MESSAGE_SYNC = 0
export const MESSAGE_AWARENESS = 1
export const MESSAGE_AUTH = 2
export const MESSAGE_QUERY_AWARENESS = 3
export const SYNC_STEP1 = syncProtocol.messageYjsSyncStep1
export const SYNC_STEP2 = syncProtocol.messageYjsSyncStep2
export const SYNC_UPDATE = syncProtocol.messageYjsUpdate

/** Whether a decoded message is a sync step 2 (the answer to a step 1). */
export const isSyncStep2 = (m) => m.type === MESSAGE_SYNC && m.syncType === SYNC_STEP2
/** Whether a decoded message is a sync update (an edit relayed by the server). */
export const isSyncUpdate = (m) => m.type === MESSAGE_SYNC && m.syncType === SYNC_UPDATE

/** One message: its type, then whatever `writeBody(encoder)` writes. */
function encodeMessage (type, writeBody) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, type)
  writeBody(encoder)
  return encoding.toUint8Array(encoder)
}

/** [0, 0, stateVector] for a doc (empty doc => asks for everything). */
export function encodeSyncStep1 (doc = new Y.Doc()) {
  return encodeMessage(MESSAGE_SYNC, (e) => syncProtocol.writeSyncStep1(e, doc))
}

/** [0, 1, update] */
export function encodeSyncStep2 (update) {
  return encodeMessage(MESSAGE_SYNC, (e) => {
    encoding.writeVarUint(e, SYNC_STEP2)
    encoding.writeVarUint8Array(e, update)
  })
}

/** [0, 2, update] */
export function encodeUpdateMessage (update) {
  return encodeMessage(MESSAGE_SYNC, (e) => syncProtocol.writeUpdate(e, update))
}

/** [1, awarenessUpdate] for the given clients of an Awareness. */
export function encodeAwarenessMessage (awareness, clients = [awareness.clientID], states) {
  return encodeMessage(MESSAGE_AWARENESS, (e) =>
    encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, clients, states)))
}

/**
 * Hand-built awareness message from `[clientID, clock, stateText]` entries.
 * The state text is sent as it is, so it need not be JSON.
 */
export function encodeAwarenessEntries (entries) {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, entries.length)
  for (const [clientID, clock, stateText] of entries) {
    encoding.writeVarUint(inner, clientID)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, stateText)
  }
  return encodeMessage(MESSAGE_AWARENESS, (e) => encoding.writeVarUint8Array(e, encoding.toUint8Array(inner)))
}

/** Hand-built awareness message: one client, explicit clock and JSON state (null = removed). */
export function encodeRawAwarenessMessage (clientID, clock, state) {
  return encodeAwarenessEntries([[clientID, clock, JSON.stringify(state)]])
}

/**
 * Decodes one y-websocket message.
 * @returns {{ type: number, syncType?: number, payload?: Uint8Array, awareness?: Array<{clientID:number, clock:number, state:any}>, raw: Uint8Array }}
 */
export function decodeMessage (buf) {
  const raw = buf instanceof Uint8Array ? buf : new Uint8Array(buf)
  const decoder = decoding.createDecoder(raw)
  const type = decoding.readVarUint(decoder)
  if (type === MESSAGE_SYNC) {
    const syncType = decoding.readVarUint(decoder)
    const payload = decoding.readVarUint8Array(decoder)
    return { type, syncType, payload, raw }
  }
  if (type === MESSAGE_AWARENESS) {
    const payload = decoding.readVarUint8Array(decoder)
    const d = decoding.createDecoder(payload)
    const n = decoding.readVarUint(d)
    const entries = []
    for (let i = 0; i < n; i++) {
      const clientID = decoding.readVarUint(d)
      const clock = decoding.readVarUint(d)
      const state = JSON.parse(decoding.readVarString(d))
      entries.push({ clientID, clock, state })
    }
    return { type, payload, awareness: entries, raw }
  }
  return { type, raw }
}

/**
 * A raw `ws` client that records every message and how it was closed.
 */
export class RawSocket {
  constructor (ws, url) {
    this.ws = ws
    this.url = url
    /** @type {Array<{ data: Uint8Array, isBinary: boolean, at: number }>} */
    this.messages = []
    this.closeInfo = null
    this.errors = []
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: Date.now() }
        resolve(this.closeInfo)
      })
    })
    ws.on('message', (data, isBinary) => {
      const bytes = data instanceof Buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data)
      this.messages.push({ data: Uint8Array.from(bytes), isBinary, at: Date.now() })
    })
    // A server-side close can surface as an error (e.g. ECONNRESET); keep it for reports.
    ws.on('error', (err) => this.errors.push(err))
  }

  send (data, opts = {}) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, { binary: true, ...opts }, (err) => err ? reject(err) : resolve())
    })
  }

  /** Decoded binary messages received so far (undecodable ones are reported as such). */
  decoded () {
    return this.messages.filter((m) => m.isBinary).map((m) => {
      try { return decodeMessage(m.data) } catch (err) { return { type: -1, error: err.message, raw: m.data } }
    })
  }

  /** Waits until a received message satisfies `predicate(decoded, index)`; returns it. */
  async waitForMessage (predicate, { timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a matching message' } = {}) {
    return waitUntil(() => this.decoded().find((m, i) => predicate(m, i)), {
      timeoutMs,
      what,
      detail: () => this.decoded().map((m) => ({ type: m.type, syncType: m.syncType, len: m.raw.length }))
    })
  }

  /**
   * Sends a frame the server is expected to refuse and waits for it to close
   * the socket; returns { code, reason }. Only the close counts: the send
   * itself may fail when the server is already closing.
   */
  async sendAndAwaitClose (data, { binary = true, timeoutMs, what } = {}) {
    await this.send(data, { binary }).catch(() => {})
    return this.waitForClose({ timeoutMs, what })
  }

  /** Waits for the socket to close and returns { code, reason }. */
  async waitForClose ({ timeoutMs = DEFAULT_TIMEOUT_MS, what = 'the server to close the socket' } = {}) {
    let timer
    try {
      return await Promise.race([
        this.closed,
        new Promise((resolve, reject) => {
          timer = setTimeout(() => reject(new TimeoutError(`Timed out after ${timeoutMs} ms waiting for ${what} (socket readyState=${this.ws.readyState})`)), timeoutMs)
        })
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  terminate () {
    try { this.ws.terminate() } catch {}
  }
}

/** Opens a raw WebSocket and waits for it to be open. */
export async function openRawSocket (url, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const ws = new WebSocket(url)
  const raw = new RawSocket(ws, url)
  let timer
  try {
    await Promise.race([
      once(ws, 'open'),
      raw.closed.then((info) => { throw new Error(`socket to ${url} closed before opening (code ${info.code})`) }),
      new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`Timed out after ${timeoutMs} ms opening ${url}`)), timeoutMs)
      })
    ])
  } catch (err) {
    raw.terminate()
    throw err
  } finally {
    clearTimeout(timer)
  }
  return raw
}

/** Applies every sync payload (step 2 / update) a raw socket received to a fresh doc. */
export function docFromMessages (messages) {
  const doc = new Y.Doc()
  for (const m of messages) {
    if (isSyncStep2(m) || isSyncUpdate(m)) {
      Y.applyUpdate(doc, m.payload)
    }
  }
  return doc
}
