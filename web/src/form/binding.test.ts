import { describe, expect, it } from "vitest";
import {
  at,
  callKey,
  mapDefault,
  mapOptions,
  MAX_BOUND_OPTIONS,
  placeholderNames,
  readDefaultBinding,
  readOptionsBinding,
} from "./binding";

const countries = [
  { code: "fr", name: "France", region: { name: "Europe" } },
  { code: "de", name: "Germany", region: { name: "Europe" } },
  { code: "jp", name: "Japan", region: { name: "Asia" } },
];

describe("mapOptions", () => {
  it("maps the items of the answer with the value and label keys", () => {
    expect(mapOptions(countries, { valueKey: "code", labelKey: "name" })).toEqual({
      ok: true,
      skipped: 0,
      options: [
        { value: "fr", label: "France" },
        { value: "de", label: "Germany" },
        { value: "jp", label: "Japan" },
      ],
    });
  });

  it("finds the list at a dot path, and keys may be dot paths", () => {
    const answer = { data: { items: countries } };
    const m = mapOptions(answer, { path: "data.items", valueKey: "code", labelKey: "region.name" });
    expect(m.ok && m.options.map((o) => o.label)).toEqual(["Europe", "Europe", "Asia"]);
    // A number steps into an array.
    expect(at({ rows: [{ a: 1 }, { a: 2 }] }, "rows.1.a")).toEqual({ found: true, value: 2 });
  });

  it("uses scalar items themselves without a value key", () => {
    expect(mapOptions(["red", 2, true], {})).toEqual({
      ok: true,
      skipped: 0,
      options: [
        { value: "red", label: "red" },
        { value: "2", label: "2" },
        { value: "true", label: "true" },
      ],
    });
  });

  it("labels an item by its value when the label key is missing", () => {
    const m = mapOptions([{ code: "fr" }, { code: "de", name: "" }], { valueKey: "code", labelKey: "name" });
    expect(m).toEqual({
      ok: true,
      skipped: 0,
      options: [
        { value: "fr", label: "fr" },
        { value: "de", label: "de" },
      ],
    });
  });

  it("skips and counts items without a value and repeated values", () => {
    const m = mapOptions([{ code: "fr" }, { name: "No code" }, { code: { x: 1 } }, { code: "fr" }, null], {
      valueKey: "code",
    });
    expect(m).toEqual({ ok: true, skipped: 4, options: [{ value: "fr", label: "fr" }] });
  });

  it("says so when no item has the value key", () => {
    const m = mapOptions(countries, { valueKey: "iso" });
    expect(m.ok).toBe(false);
    expect(!m.ok && m.problem.code).toBe("no_values");
    expect(!m.ok && m.problem.message).toContain("“iso”");
    // Objects without a value key cannot be options either.
    expect(!mapOptions(countries, {}).ok).toBe(true);
  });

  it("refuses an answer that is no list, naming what it is", () => {
    const obj = mapOptions({ data: { items: { fr: "France" } } }, { path: "data.items" });
    expect(obj).toEqual({
      ok: false,
      problem: { code: "not_a_list", message: "At “data.items” the answer has an object, not a list." },
    });
    const str = mapOptions("France", {});
    expect(!str.ok && str.problem).toEqual({ code: "not_a_list", message: "The answer is a string, not a list." });
    expect(!mapOptions(null, {}).ok).toBe(true);
  });

  it("refuses a path that leads nowhere", () => {
    const m = mapOptions({ data: [] }, { path: "data.items" });
    expect(!m.ok && m.problem.code).toBe("not_found");
    expect(!mapOptions([1], { path: "5" }).ok).toBe(true);
    // An inherited property is not part of the answer.
    expect(at({}, "constructor").found).toBe(false);
  });

  it("an empty list is no options and no problem", () => {
    expect(mapOptions([], {})).toEqual({ ok: true, options: [], skipped: 0 });
  });

  it("takes at most as many options as a component may hold", () => {
    const many = Array.from({ length: MAX_BOUND_OPTIONS + 3 }, (_, i) => i);
    const m = mapOptions(many, {});
    expect(m.ok && m.options.length).toBe(MAX_BOUND_OPTIONS);
    expect(m.ok && m.skipped).toBe(3);
  });
});

describe("mapDefault", () => {
  it("takes scalars and lists of scalars at the path", () => {
    expect(mapDefault({ user: { email: "a@b.c" } }, "user.email")).toEqual({ found: true, value: "a@b.c" });
    expect(mapDefault({ n: 3 }, "n")).toEqual({ found: true, value: 3 });
    expect(mapDefault({ ok: false }, "ok")).toEqual({ found: true, value: false });
    expect(mapDefault({ picked: ["fr", 2] }, "picked")).toEqual({ found: true, value: ["fr", "2"] });
    expect(mapDefault("plain", undefined)).toEqual({ found: true, value: "plain" });
  });

  it("finds nothing in objects, nulls and missing paths", () => {
    expect(mapDefault({ user: {} }, "user").found).toBe(false);
    expect(mapDefault({ user: null }, "user").found).toBe(false);
    expect(mapDefault({}, "user.email").found).toBe(false);
  });
});

describe("reading bindings", () => {
  it("reads a binding leniently", () => {
    expect(
      readOptionsBinding({ dataSourceId: "ds1", params: { q: "x", n: 5 }, path: "", labelKey: "name", extra: 1 }),
    ).toEqual({ dataSourceId: "ds1", params: { q: "x" }, path: undefined, labelKey: "name", valueKey: undefined });
    expect(readOptionsBinding({ dataSourceId: "" })).toBeUndefined();
    expect(readOptionsBinding("ds1")).toBeUndefined();
    expect(readDefaultBinding({ dataSourceId: "ds1", path: "a", labelKey: "x" })).toEqual({
      dataSourceId: "ds1",
      params: {},
      path: "a",
    });
  });

  it("keys a call by source and parameters, whatever their order", () => {
    expect(callKey("a", { x: "1", y: "2" })).toBe(callKey("a", { y: "2", x: "1" }));
    expect(callKey("a", { x: "1" })).not.toBe(callKey("b", { x: "1" }));
    expect(callKey("a", { x: "1" })).not.toBe(callKey("a", { x: "2" }));
  });

  it("finds a source's placeholders once each, wherever they are", () => {
    const config = {
      url: "https://api.test/{{ region }}/countries?q={{q}}",
      headers: { "X-Lang": "{{lang}}" },
      body: { filter: { q: "{{q}}" }, bad: "{{not valid}}" },
      query: "select * from t where a = {{a.b}}",
    };
    expect(placeholderNames(config)).toEqual(["region", "q", "lang", "a.b"]);
    expect(placeholderNames(null)).toEqual([]);
  });
});
