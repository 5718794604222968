import { describe, expect, it } from "vitest";
import { SECRET_MASK, type DataSource } from "@coform/sdk";
import {
  changesFrom,
  configOf,
  draftOf,
  DraftError,
  emptyDraft,
  fieldLabel,
  paramsOf,
  placeholders,
  storedSecrets,
} from "./dataSourceDraft";

function source(over: Partial<DataSource>): DataSource {
  return {
    id: "s1",
    workspaceId: "w1",
    name: "CRM",
    type: "rest",
    config: {},
    credentialsSet: false,
    configVersion: 1,
    createdBy: "u1",
    createdAt: 0,
    updatedAt: 0,
    lastUsed: null,
    status: "untested",
    errorCount: 0,
    performance: { responseTime: 0, successRate: null },
    monitoring: { lastCheck: null, health: "unknown", alerts: [] },
    ...over,
  };
}

describe("configOf", () => {
  it("builds a REST configuration from the fields of its kind only", () => {
    const d = {
      ...emptyDraft("rest"),
      name: "CRM",
      url: " https://crm.example/api/{{id}} ",
      method: "POST" as const,
      headers: [
        { name: "Accept", value: "application/json", secret: false },
        { name: "X-Key", value: "k1", secret: true },
        { name: " ", value: "ignored", secret: false },
      ],
      queryParams: [{ name: "limit", value: "10", secret: false }],
      body: '{"a": [1, 2]}',
      host: "not sent for REST",
      authType: "bearer" as const,
      token: "t0k",
      timeoutMs: "5000",
      retries: "2",
    };
    expect(configOf(d)).toEqual({
      url: "https://crm.example/api/{{id}}",
      method: "POST",
      headers: { Accept: "application/json", "X-Key": "k1" },
      secretHeaders: ["X-Key"],
      queryParams: { limit: "10" },
      body: { a: [1, 2] },
      authentication: { type: "bearer", token: "t0k" },
      caching: { enabled: false, ttl: 300 },
      timeoutMs: 5000,
      retries: 2,
    });
  });

  it("builds GraphQL and PostgreSQL configurations", () => {
    const g = configOf({ ...emptyDraft("graphql"), url: "https://g.example/", query: "{ me { id } }", variables: '{"n": 1}' });
    expect(g).toEqual({
      url: "https://g.example/",
      query: "{ me { id } }",
      variables: { n: 1 },
      caching: { enabled: false, ttl: 300 },
    });
    expect("method" in g).toBe(false);
    const p = configOf({
      ...emptyDraft("database"),
      host: "127.0.0.1",
      port: "5433",
      database: "shop",
      user: "reader",
      dbPassword: "pw",
      sslMode: "disable",
      query: "select * from items where id = {{id}}",
      cachingEnabled: true,
      ttl: "60",
      url: "not sent for a database",
    });
    expect(p).toEqual({
      engine: "postgresql",
      host: "127.0.0.1",
      port: 5433,
      database: "shop",
      user: "reader",
      password: "pw",
      sslMode: "disable",
      query: "select * from items where id = {{id}}",
      caching: { enabled: true, ttl: 60 },
    });
  });

  it("refuses JSON and numbers that do not parse, naming the field", () => {
    const bad = (over: object) => () => configOf({ ...emptyDraft("rest"), ...over });
    expect(bad({ body: "{nope" })).toThrow(DraftError);
    expect(bad({ body: "{nope" })).toThrow("The body is not valid JSON.");
    expect(bad({ timeoutMs: "1.5" })).toThrow("The time limit must be a whole number.");
    try {
      configOf({ ...emptyDraft("database"), port: "-1" });
      expect.unreachable();
    } catch (e) {
      expect((e as DraftError).field).toBe("port");
    }
  });
});

describe("editing a stored source", () => {
  const stored = source({
    config: {
      url: "https://crm.example/api",
      method: "GET",
      headers: { Accept: "application/json", "X-Key": SECRET_MASK },
      secretHeaders: ["X-Key"],
      authentication: { type: "basic", credentials: { username: "ada", password: SECRET_MASK } },
      caching: { enabled: false, ttl: 300 },
    },
    credentialsSet: true,
  });

  it("starts with every secret input empty and knows which secrets are kept", () => {
    const d = draftOf(stored);
    expect(d.password).toBe("");
    expect(d.username).toBe("ada");
    expect(d.headers).toEqual([
      { name: "Accept", value: "application/json", secret: false },
      { name: "X-Key", value: "", secret: true },
    ]);
    expect([...storedSecrets(stored.config)].sort()).toEqual(["authentication.credentials.password", "headers.X-Key"]);
  });

  it("sends nothing when nothing changed, and never a kept secret", () => {
    const d = draftOf(stored);
    expect(changesFrom(stored.config, configOf(d, stored.config))).toEqual({});
    // As the server shows a bearer token: with empty credentials.
    const bearer = source({
      config: { url: "https://x.example/", method: "GET", authentication: { type: "bearer", credentials: {}, token: SECRET_MASK }, caching: { enabled: false, ttl: 300 } },
    });
    expect(changesFrom(bearer.config, configOf(draftOf(bearer), bearer.config))).toEqual({});
    const renamed = { ...d, url: "https://crm.example/v2" };
    expect(changesFrom(stored.config, configOf(renamed, stored.config))).toEqual({ url: "https://crm.example/v2" });
  });

  it("sends a new secret, removes what is gone with null, and leaves a blank secret out when the auth type changes", () => {
    const d = draftOf(stored);
    const typed = { ...d, password: "new pw", headers: d.headers.filter((h) => h.name !== "Accept") };
    expect(changesFrom(stored.config, configOf(typed, stored.config))).toEqual({
      headers: { Accept: null },
      authentication: { credentials: { password: "new pw" } },
    });
    const bearer = { ...d, authType: "bearer" as const };
    expect(changesFrom(stored.config, configOf(bearer, stored.config))).toEqual({
      authentication: { type: "bearer", credentials: null },
    });
  });
});

describe("what the server merges", () => {
  it("sends a body or variables whole, since the server replaces them", () => {
    const caching = { enabled: false, ttl: 300 };
    const stored = source({ config: { url: "https://x.example/", method: "POST", body: { a: 1, b: { c: 2 } }, caching } });
    const d = { ...draftOf(stored), body: '{"b": {"c": 3}}' };
    expect(changesFrom(stored.config, configOf(d, stored.config))).toEqual({ body: { b: { c: 3 } } });
    const g = source({ type: "graphql", config: { url: "https://g.example/", query: "{ a }", variables: { n: 1, m: 2 }, caching } });
    expect(changesFrom(g.config, configOf({ ...draftOf(g), variables: '{"n": 1}' }, g.config))).toEqual({ variables: { n: 1 } });
    expect(changesFrom(g.config, configOf({ ...draftOf(g), variables: "" }, g.config))).toEqual({ variables: null });
  });

  it("keeps a header the server always masks without naming it secret", () => {
    // No method: the server's default (GET) is not written in by the form.
    const stored = source({
      config: { url: "https://x.example/", headers: { Authorization: SECRET_MASK, Accept: "a/b" }, caching: { enabled: false, ttl: 300 } },
    });
    const d = draftOf(stored);
    expect(d.headers).toEqual([
      { name: "Authorization", value: "", secret: false },
      { name: "Accept", value: "a/b", secret: false },
    ]);
    expect(storedSecrets(stored.config).has("headers.Authorization")).toBe(true);
    expect(changesFrom(stored.config, configOf(d, stored.config))).toEqual({});
    const replaced = { ...d, headers: d.headers.map((h) => (h.name === "Authorization" ? { ...h, value: "Basic eA==" } : h)) };
    expect(changesFrom(stored.config, configOf(replaced, stored.config))).toEqual({ headers: { Authorization: "Basic eA==" } });
  });

  it("leaves the server's defaults unset when an edited source left them so", () => {
    const db = source({
      type: "database",
      config: { engine: "postgresql", host: "db", database: "shop", user: "r", query: "select 1", caching: { enabled: false, ttl: 300 } },
    });
    expect(changesFrom(db.config, configOf(draftOf(db), db.config))).toEqual({});
    expect(changesFrom(db.config, configOf({ ...draftOf(db), sslMode: "require" }, db.config))).toEqual({ sslMode: "require" });
  });
});

describe("small helpers", () => {
  it("reads test parameters as numbers, booleans and null where they look like them", () => {
    expect(
      paramsOf([
        { name: "id", value: "42", secret: false },
        { name: "q", value: "New York", secret: false },
        { name: "on", value: "true", secret: false },
        { name: "none", value: "null", secret: false },
        { name: "zip", value: "0042a", secret: false },
        { name: "", value: "dropped", secret: false },
      ]),
    ).toEqual({ id: 42, q: "New York", on: true, none: null, zip: "0042a" });
  });

  it("finds placeholders anywhere in a configuration, once each", () => {
    expect(
      placeholders({ url: "https://x.example/{{id}}?q={{ q }}", headers: { A: "{{id}}" }, body: { deep: ["{{page}}"] } }),
    ).toEqual(["id", "q", "page"]);
  });

  it("names secret fields the way the form labels them", () => {
    expect(fieldLabel("authentication.token")).toBe("Bearer token");
    expect(fieldLabel("headers.X-Key")).toBe("Value of header X-Key");
    expect(fieldLabel("url")).toBe("url");
  });
});
