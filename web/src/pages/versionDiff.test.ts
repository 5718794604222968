import { describe, expect, it } from "vitest";
import type { TemplateContent, VersionDiff } from "@coform/sdk";
import type { Catalog } from "../schema";
import { fieldLabel, isEmpty, showValue, summarize, valueAt } from "./versionDiff";

const catalog: Catalog = {
  common: [],
  types: [
    {
      type: "text",
      label: "Short text",
      description: "",
      group: "input",
      input: true,
      container: false,
      properties: [{ name: "placeholder", label: "Placeholder", group: "basic", kind: "text", required: false, limits: {} }],
      validation: [{ name: "required", label: "Required", group: "validation", kind: "boolean", required: false, limits: {} }],
    },
    {
      type: "section",
      label: "Section",
      description: "",
      group: "layout",
      input: false,
      container: true,
      properties: [],
      validation: [],
    },
  ],
};

const before: TemplateContent = {
  meta: { name: "Signup", tags: ["hr"] },
  components: {
    s1: { id: "s1", type: "section", label: "About you", index: "a0" },
    name: { id: "name", type: "text", label: "Name", index: "a0", parent: "s1", properties: { placeholder: "Ada" } },
    old: { id: "old", type: "text", label: "Fax", index: "a1" },
    pos: { id: "pos", type: "text", label: "", index: "a2", position: { x: 1, y: 2 } },
  },
};

const after: TemplateContent = {
  meta: { name: "Sign-up", tags: ["hr", "new"] },
  components: {
    s1: { id: "s1", type: "section", label: "About you", index: "a0" },
    name: {
      id: "name",
      type: "text",
      label: "Full name",
      index: "a1",
      parent: null,
      properties: { placeholder: "Ada" },
      validation: { required: true },
    },
    pos: { id: "pos", type: "text", label: "", index: "a2", position: { x: 5, y: 6 } },
    mail: { id: "mail", type: "email", label: "E-mail", index: "a3" },
  },
};

const diff: VersionDiff = {
  from: "1",
  to: "current",
  added: ["mail"],
  removed: ["old"],
  moved: [{ id: "name", from: { parent: "s1", index: "a0" }, to: { parent: null, index: "a1" } }],
  changed: [
    { id: "name", fields: ["label", "validation.required"] },
    { id: "pos", fields: ["position.x", "position.y"] },
  ],
  meta: ["name", "tags"],
};

describe("summarize", () => {
  const s = summarize(diff, before, after, catalog);

  it("names added and removed components by label and type", () => {
    expect(s.added).toEqual([{ id: "mail", name: "E-mail", kind: "email" }]);
    expect(s.removed).toEqual([{ id: "old", name: "Fax", kind: "Short text" }]);
  });

  it("says where a component moved", () => {
    expect(s.moved).toEqual([
      { id: "name", name: "Full name", kind: "Short text", where: "from section “About you” to the top level" },
    ]);
  });

  it("names changed fields as the properties panel does, with both values", () => {
    expect(s.changed[0].fields).toEqual([
      { label: "Label", before: "“Name”", after: "“Full name”" },
      { label: "Required", before: "none", after: "yes" },
    ]);
  });

  it("merges paths of one field and then shows no values", () => {
    expect(s.changed[1]).toEqual({ id: "pos", name: "Untitled", kind: "Short text", fields: [{ label: "Place on the canvas" }] });
  });

  it("describes meta changes", () => {
    expect(s.meta).toEqual([
      { label: "Name", before: "“Signup”", after: "“Sign-up”" },
      { label: "Tags", before: "hr", after: "hr, new" },
    ]);
    expect(isEmpty(s)).toBe(false);
  });

  it("says a reorder within one section is a new place there", () => {
    const d: VersionDiff = { ...diff, moved: [{ id: "name", from: { parent: null, index: "a0" }, to: { parent: null, index: "a9" } }] };
    expect(summarize(d, before, after, catalog).moved[0].where).toBe("new place within the top level");
  });

  it("is empty for an empty diff", () => {
    const empty: VersionDiff = { from: "1", to: "current", added: [], removed: [], moved: [], changed: [], meta: [] };
    expect(isEmpty(summarize(empty, before, after, null))).toBe(true);
  });
});

describe("helpers", () => {
  it("read dotted paths", () => {
    expect(valueAt({ a: { b: 1 } }, "a.b")).toBe(1);
    expect(valueAt({ a: [1] }, "a.0")).toBeUndefined();
    expect(valueAt(undefined, "a")).toBeUndefined();
  });

  it("show values briefly or not at all", () => {
    expect(showValue("")).toBe("empty");
    expect(showValue("x".repeat(100))).toHaveLength(62);
    expect(showValue(false)).toBe("no");
    expect(showValue([{ value: "a" }, { value: "b" }])).toBe("2 options");
    expect(showValue({ a: 1 })).toBeUndefined();
  });

  it("fall back to the path without a catalog", () => {
    expect(fieldLabel("properties.placeholder", "text", null)).toBe("placeholder");
    expect(fieldLabel("properties.placeholder", "text", catalog)).toBe("Placeholder");
    expect(fieldLabel("", "text", catalog)).toBe("Whole component");
  });
});
