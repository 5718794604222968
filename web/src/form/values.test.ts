import { describe, expect, it } from "vitest";
import type { Component } from "@coform/sdk";
import type { TypeInfo } from "../schema";
import { bound, chosen, domId, formatBytes, headingLevel, labelOf, options, prop, rule, text } from "./values";

const textarea: TypeInfo = {
  type: "textarea",
  label: "Long text",
  description: "",
  group: "input",
  input: true,
  container: false,
  properties: [{ name: "rows", label: "Rows", group: "layout", kind: "integer", required: false, default: 3, limits: {} }],
  validation: [
    { name: "required", label: "Required", group: "validation", kind: "boolean", required: false, default: false, limits: {} },
  ],
};

function comp(fields: Partial<Component>): Component {
  return {
    id: "c1",
    type: "textarea",
    label: "",
    parent: null,
    index: "a0",
    properties: {},
    position: {},
    validation: {},
    styling: {},
    ...fields,
  };
}

describe("prop and rule", () => {
  it("fall back to the catalog's defaults", () => {
    expect(prop(comp({}), textarea, "rows")).toBe(3);
    expect(prop(comp({ properties: { rows: 8 } }), textarea, "rows")).toBe(8);
    expect(rule(comp({}), textarea, "required")).toBe(false);
    expect(rule(comp({ validation: { required: true } }), textarea, "required")).toBe(true);
  });

  it("work without a catalog", () => {
    expect(prop(comp({}), undefined, "rows")).toBeUndefined();
  });
});

describe("lenient readers", () => {
  it("read only visible strings", () => {
    expect(text("x")).toBe("x");
    expect(text("  ")).toBeUndefined();
    expect(text(3)).toBeUndefined();
  });

  it("write numbers and dates as attribute values", () => {
    expect(bound(0)).toBe("0");
    expect(bound(2.5)).toBe("2.5");
    expect(bound(Number.NaN)).toBeUndefined();
    expect(bound("2024-01-31")).toBe("2024-01-31");
    expect(bound(null)).toBeUndefined();
  });

  it("skip options of the wrong shape and show the value when there is no label", () => {
    expect(options([{ value: "a", label: "A" }, { value: "b" }, { label: "no value" }, "c", null, { value: "d", label: " " }])).toEqual([
      { value: "a", label: "A" },
      { value: "b", label: "b" },
      { value: "d", label: "d" },
    ]);
    expect(options("nope")).toEqual([]);
  });

  it("read a default as the set of chosen values", () => {
    expect([...chosen("a")]).toEqual(["a"]);
    expect([...chosen(["a", 2, "b"])]).toEqual(["a", "b"]);
    expect(chosen(true).size).toBe(0);
  });

  it("clamp heading levels", () => {
    expect(headingLevel(undefined)).toBe(2);
    expect(headingLevel(0)).toBe(1);
    expect(headingLevel(9)).toBe(6);
    expect(headingLevel("3")).toBe(2);
  });
});

describe("labelOf", () => {
  it("uses the label, else the type's name, else the type", () => {
    expect(labelOf(comp({ label: "Bio" }), textarea)).toBe("Bio");
    expect(labelOf(comp({ label: " " }), textarea)).toBe("Long text");
    expect(labelOf(comp({ type: "gadget" }), undefined)).toBe("gadget");
  });
});

describe("formatBytes", () => {
  it("writes sizes for people", () => {
    expect(formatBytes(1)).toBe("1 byte");
    expect(formatBytes(512)).toBe("512 bytes");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(2 * 1024 * 1024)).toBe("2 MB");
    expect(formatBytes(250 * 1024 * 1024)).toBe("250 MB");
  });
});

describe("domId", () => {
  it("keeps two renderings apart and never holds whitespace", () => {
    expect(domId("canvas", "c1")).toBe("canvas-c1");
    expect(domId("preview", "c1", "help")).toBe("preview-c1-help");
    expect(domId("p", "a b\tc")).toBe("p-a_b_c");
  });
});
