import { describe, expect, it } from "vitest";
import { cachedRunner } from "./sources";

describe("cachedRunner", () => {
  it("calls a source once per parameters and keeps the answer", async () => {
    const calls: string[] = [];
    const r = cachedRunner(async (id, params) => {
      calls.push(`${id}:${JSON.stringify(params)}`);
      return [id, params];
    });
    const [a, b] = await Promise.all([r.run("s", { q: "x" }), r.run("s", { q: "x" })]);
    expect(a).toEqual(b);
    expect(r.peek("s", { q: "x" })).toEqual({ data: ["s", { q: "x" }] });
    await r.run("s", { q: "x" });
    await r.run("s", { q: "y" });
    expect(calls).toEqual(['s:{"q":"x"}', 's:{"q":"y"}']);
    expect(r.peek("t", {})).toBeUndefined();
  });

  it("forgets a failed call, so the next one tries again", async () => {
    let n = 0;
    const r = cachedRunner(async () => {
      n++;
      if (n === 1) throw Object.assign(new Error("down"), { code: "upstream_timeout" });
      return "up";
    });
    await expect(r.run("s", {})).rejects.toThrow("down");
    expect(r.peek("s", {})).toBeUndefined();
    await expect(r.run("s", {})).resolves.toBe("up");
    expect(n).toBe(2);
  });
});
