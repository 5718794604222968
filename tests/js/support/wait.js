// Waiting: every helper waits for an event or polls a condition until a
// bounded deadline; a missed deadline fails with a message that says what
// was awaited.

import { setTimeout as delay } from 'node:timers/promises'

/** Default deadline for "this should happen soon" waits. */
export const DEFAULT_TIMEOUT_MS = 5000

export class TimeoutError extends Error {
  constructor (message) {
    super(message)
    this.name = 'TimeoutError'
  }
}

const describeDetail = (detail) => {
  if (detail === undefined) return ''
  try {
    const value = typeof detail === 'function' ? detail() : detail
    let text = typeof value === 'string' ? value : JSON.stringify(value)
    if (text.length > 2000) text = `${text.slice(0, 2000)}... (${text.length} chars)`
    return `\n  last observed: ${text}`
  } catch (err) {
    return `\n  (could not describe state: ${err.message})`
  }
}

/**
 * Polls `condition` until it returns a truthy value (which is returned) or the
 * deadline passes.
 *
 * @template T
 * @param {() => T | Promise<T>} condition
 * @param {{ timeoutMs?: number, intervalMs?: number, what?: string, detail?: any }} [opts]
 * @returns {Promise<T>}
 */
export async function waitUntil (condition, { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = 10, what = 'condition', detail } = {}) {
  const deadline = Date.now() + timeoutMs
  let lastError
  for (;;) {
    try {
      const value = await condition()
      if (value) return value
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const cause = lastError ? `\n  last error: ${lastError.message}` : ''
      throw new TimeoutError(`Timed out after ${timeoutMs} ms waiting for ${what}${describeDetail(detail)}${cause}`)
    }
    await delay(intervalMs)
  }
}

/**
 * Waits for `event` on anything with on/off (lib0 observables, Y.Doc,
 * Awareness, WebsocketProvider) or on/off|removeListener (Node emitters),
 * optionally until `predicate(...args)` holds. Resolves with the event args.
 *
 * @param {any} emitter
 * @param {string} event
 * @param {{ predicate?: (...args: any[]) => boolean, timeoutMs?: number, what?: string, detail?: any }} [opts]
 * @returns {Promise<any[]>}
 */
export function waitForEvent (emitter, event, { predicate = () => true, timeoutMs = DEFAULT_TIMEOUT_MS, what, detail } = {}) {
  return new Promise((resolve, reject) => {
    const handler = (...args) => {
      let ok
      try {
        ok = predicate(...args)
      } catch (err) {
        cleanup()
        reject(err)
        return
      }
      if (ok) {
        cleanup()
        resolve(args)
      }
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new TimeoutError(`Timed out after ${timeoutMs} ms waiting for ${what ?? `'${event}' event`}${describeDetail(detail)}`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      if (typeof emitter.off === 'function') emitter.off(event, handler)
      else emitter.removeListener(event, handler)
    }
    emitter.on(event, handler)
  })
}

/**
 * Resolves once the provider has received the server's sync step 2.
 * @param {WebsocketProvider} provider
 */
export async function waitForSynced (provider, { timeoutMs = DEFAULT_TIMEOUT_MS, what } = {}) {
  if (provider.synced) return
  await waitForEvent(provider, 'synced', {
    predicate: (state) => state === true,
    timeoutMs,
    what: what ?? `provider for '${provider.roomname}' to be synced`,
    detail: () => ({ wsconnected: provider.wsconnected, wsconnecting: provider.wsconnecting, url: provider.url })
  })
}

/**
 * Awaits an awareness `change` event whose changes satisfy `predicate`.
 * @param {awarenessProtocol.Awareness} awareness
 */
export function waitForAwarenessChange (awareness, predicate = () => true, { timeoutMs = DEFAULT_TIMEOUT_MS, what } = {}) {
  return waitForEvent(awareness, 'change', {
    predicate: (changes, origin) => predicate(changes, origin),
    timeoutMs,
    what: what ?? 'awareness change',
    detail: () => Object.fromEntries(awareness.getStates())
  })
}

/**
 * Awaits a Y.Doc `update` event, optionally filtered by predicate(update, origin).
 * @param {Y.Doc} doc
 */
export function waitForDocUpdate (doc, predicate = () => true, { timeoutMs = DEFAULT_TIMEOUT_MS, what } = {}) {
  return waitForEvent(doc, 'update', {
    predicate: (update, origin) => predicate(update, origin),
    timeoutMs,
    what: what ?? 'document update'
  })
}
