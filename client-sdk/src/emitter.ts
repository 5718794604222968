/**
 * A minimal typed event emitter that works the same in browsers and Node.
 * A listener that throws does not stop the others; the error is reported
 * with `console.error`.
 */
export class Emitter<Events extends { [K in keyof Events]: (...args: any[]) => void }> {
  #listeners = new Map<keyof Events, Set<(...args: any[]) => void>>()

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events> (event: K, listener: Events[K]): () => void {
    let set = this.#listeners.get(event)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(event, set)
    }
    set.add(listener)
    return () => this.off(event, listener)
  }

  /** Adds a listener that runs at most once. */
  once<K extends keyof Events> (event: K, listener: Events[K]): () => void {
    const wrapped = ((...args: any[]) => {
      off()
      listener(...args)
    }) as Events[K]
    const off = this.on(event, wrapped)
    return off
  }

  off<K extends keyof Events> (event: K, listener: Events[K]): void {
    this.#listeners.get(event)?.delete(listener)
  }

  protected emit<K extends keyof Events> (event: K, ...args: Parameters<Events[K]>): void {
    const set = this.#listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set]) {
      try {
        listener(...args)
      } catch (err) {
        console.error(`@coform/sdk: a '${String(event)}' listener threw`, err)
      }
    }
  }

  protected removeAllListeners (): void {
    this.#listeners.clear()
  }
}
