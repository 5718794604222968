import type { User } from './types.js'

/** What a signed-in client keeps between page loads. */
export interface StoredAuth {
  accessToken: string
  refreshToken: string
  /** When the access token expires (ms since the epoch, this machine's clock). */
  accessExpiresAt: number
  /** How long access tokens live (ms), to refresh in time. */
  accessLifetimeMs?: number
  user: User
}

/**
 * Where the client keeps its tokens. Methods may be synchronous or return
 * promises. The default keeps them in memory (gone on reload); use
 * {@link localStorageStorage} in a browser to stay signed in.
 *
 * Refresh tokens rotate on every use and a reused one ends the session, so
 * two clients must not share one storage unless they also share the
 * `CoformClient` (one client per page is the rule).
 */
export interface TokenStorage {
  load(): StoredAuth | null | Promise<StoredAuth | null>
  save(auth: StoredAuth): void | Promise<void>
  clear(): void | Promise<void>
}

/** Keeps tokens in memory only. */
export function memoryStorage (): TokenStorage {
  let value: StoredAuth | null = null
  return {
    load: () => value,
    save: (auth) => { value = auth },
    clear: () => { value = null }
  }
}

/** Minimal shape of `window.localStorage`. */
export interface KeyValueStore {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/**
 * Keeps tokens in `localStorage` (or any object with the same three
 * methods) under `key`.
 */
export function localStorageStorage (key = 'coform.auth', store?: KeyValueStore): TokenStorage {
  const target = (): KeyValueStore => {
    const s = store ?? (globalThis as { localStorage?: KeyValueStore }).localStorage
    if (s === undefined) throw new Error('localStorage is not available here; pass a store')
    return s
  }
  return {
    load: () => {
      const text = target().getItem(key)
      if (text === null) return null
      try {
        const v = JSON.parse(text) as StoredAuth
        return typeof v?.refreshToken === 'string' ? v : null
      } catch {
        return null
      }
    },
    save: (auth) => target().setItem(key, JSON.stringify(auth)),
    clear: () => target().removeItem(key)
  }
}
