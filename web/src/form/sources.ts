// Executing the data sources a form binds, for the renderer. The page
// that draws a form (editor canvas, preview) provides a runner through
// `SourcesContext`; without one, bound components show their static
// options and defaults. Each (source, parameters) call is made once per
// page and its answer kept for the page's life, so twenty fields bound
// to one list cost one request; a failed call is forgotten, so the next
// rendering that needs it tries again.
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { callKey } from "./binding";

/** Calls a data source with literal parameters and gives its answer's data. */
export type Execute = (dataSourceId: string, params: Record<string, string>) => Promise<unknown>;

/** A page's way of calling data sources, with its cache. */
export interface SourceRunner {
  /** The answer, from the cache when this call was made before. */
  run(dataSourceId: string, params: Record<string, string>): Promise<unknown>;
  /** The answer of a call that has already succeeded, if any. */
  peek(dataSourceId: string, params: Record<string, string>): { data: unknown } | undefined;
}

/** A runner over `execute` that keeps each successful answer for its life. */
export function cachedRunner(execute: Execute): SourceRunner {
  const pending = new Map<string, Promise<unknown>>();
  const done = new Map<string, { data: unknown }>();
  return {
    run(id, params) {
      const key = callKey(id, params);
      const hit = done.get(key);
      if (hit) return Promise.resolve(hit.data);
      let p = pending.get(key);
      if (p === undefined) {
        p = execute(id, params).then(
          (data) => {
            done.set(key, { data });
            pending.delete(key);
            return data;
          },
          (e: unknown) => {
            pending.delete(key);
            throw e;
          },
        );
        pending.set(key, p);
      }
      return p;
    },
    peek(id, params) {
      return done.get(callKey(id, params));
    },
  };
}

export const SourcesContext = createContext<SourceRunner | null>(null);

/** Where a call stands. */
export type SourceState =
  | { state: "none" }
  | { state: "loading" }
  | { state: "ok"; data: unknown }
  | { state: "failed"; error: unknown };

/**
 * The answer of the bound source, called through the page's runner;
 * `none` without a binding or a runner.
 */
export function useSourceAnswer(binding: { dataSourceId: string; params: Record<string, string> } | undefined): SourceState {
  const runner = useContext(SourcesContext);
  const key = binding && runner ? callKey(binding.dataSourceId, binding.params) : "";
  const known = (): SourceState => {
    if (!binding || !runner) return { state: "none" };
    const hit = runner.peek(binding.dataSourceId, binding.params);
    return hit ? { state: "ok", data: hit.data } : { state: "loading" };
  };
  const [answer, setAnswer] = useState<{ key: string; s: SourceState }>(() => ({ key, s: known() }));
  useEffect(() => {
    if (!binding || !runner) return;
    let live = true;
    if (runner.peek(binding.dataSourceId, binding.params) === undefined) setAnswer({ key, s: { state: "loading" } });
    runner.run(binding.dataSourceId, binding.params).then(
      (data) => live && setAnswer({ key, s: { state: "ok", data } }),
      (error: unknown) => live && setAnswer({ key, s: { state: "failed", error } }),
    );
    return () => {
      live = false;
    };
  }, [key, runner]);
  // A binding changed since the last answer: that answer is not this one's.
  return answer.key === key ? answer.s : known();
}
