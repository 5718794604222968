// A workspace's data sources: the REST APIs, GraphQL endpoints and
// PostgreSQL databases its forms can take data from. Every member sees
// the list and each source's figures; owners, admins and editors add,
// change, test and delete sources, browse what a source offers, check its
// health and clear its cache.
import { useSignal, type Signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { ComponentChildren, JSX } from "preact";
import {
  invalidField,
  requiredSecrets,
  type DataSource,
  type DataSourceChanges,
  type DataSourceHealth,
  type DataSourceKind,
  type DataSourcePage,
  type DataSourceSchema,
  type DataSourceTestResult,
  type InferredSchema,
  type SchemaTable,
  type WorkspaceDetail,
} from "@coform/sdk";
import { ConfirmButton, ErrorAlert, Field, Page, Pager, SelectField, Time, useResource } from "../components";
import { Link } from "../router";
import { client, CoformError, describe, fieldErrors } from "../client";
import { atLeast } from "./roles";
import { WorkspaceGate } from "./WorkspaceGate";
import {
  AUTH_TYPES,
  changesFrom,
  configOf,
  draftOf,
  DraftError,
  emptyDraft,
  fieldLabel,
  KINDS,
  kindLabel,
  METHODS,
  paramsOf,
  placeholders,
  SSL_MODES,
  storedSecrets,
  type Draft,
  type Row,
} from "./dataSourceDraft";
import "./workspace.css";
import "./datasources.css";

/** How long typing must pause before the search is sent. */
const SEARCH_DELAY_MS = 300;
const PAGE_SIZE = 20;

export function DataSources(props: { id: string }) {
  // A fresh page per workspace: nothing of one workspace shows on another's.
  return <DataSourcesPage key={props.id} id={props.id} />;
}

function DataSourcesPage(props: { id: string }) {
  const ws = useResource(() => client.workspaces.get(props.id), [props.id]);
  // Counts sources created here: each one asks the list again.
  const created = useSignal(0);
  const done = useSignal("");
  const w = ws.data.value;

  if (!w) return <WorkspaceGate title="Data sources" loading="Loading data sources…" error={ws.error.value} retry={ws.reload} />;

  const canManage = atLeast(w.role, "editor");
  const base = "/workspaces/" + encodeURIComponent(w.id);
  return (
    <Page title={`Data sources of ${w.name}`}>
      <div class="wide">
        <nav aria-label="Workspace" class="crumbs">
          <Link href="/">All workspaces</Link>
          <Link href={base}>Templates of {w.name}</Link>
          <Link href={base + "/members"}>Members</Link>
        </nav>
        {canManage ? (
          <NewSource
            workspace={ws.data as Signal<WorkspaceDetail>}
            onCreated={(ds) => {
              done.value = `Data source “${ds.name}” created.`;
              created.value++;
            }}
          />
        ) : (
          <p class="muted">
            Owners, admins and editors add, change and test data sources. You can see which ones this workspace has.
          </p>
        )}
        <SourceList workspace={w} canManage={canManage} refresh={created.value} done={done} />
      </div>
    </Page>
  );
}

// ------------------------------------------------------------ the list

function SourceList(props: { workspace: WorkspaceDetail; canManage: boolean; refresh: number; done: Signal<string> }) {
  const w = props.workspace;
  const search = useSignal("");
  const query = useSignal("");
  const type = useSignal<DataSourceKind | "">("");
  const page = useSignal(1);
  const heading = useRef<HTMLHeadingElement>(null);
  const list = useResource(
    () =>
      client.dataSources.list({
        workspaceId: w.id,
        search: query.value || undefined,
        type: type.value || undefined,
        page: page.value,
        pageSize: PAGE_SIZE,
      }),
    [query.value, type.value, page.value, props.refresh],
  );

  useEffect(() => {
    const q = search.value.trim();
    if (q === query.value) return;
    const timer = setTimeout(() => {
      query.value = q;
      page.value = 1;
    }, SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [search.value]);

  const result = list.data.value;

  function changed(ds: DataSource) {
    if (result) list.data.value = { ...result, items: result.items.map((x) => (x.id === ds.id ? ds : x)) };
  }

  function deleted(ds: DataSource) {
    props.done.value = `Data source “${ds.name}” deleted.`;
    // The row and its buttons are gone: continue from the list's heading.
    heading.current?.focus();
    if (result && result.items.length === 1 && page.value > 1) page.value -= 1;
    else list.reload();
  }

  return (
    <section aria-labelledby="ds-heading">
      <h2 id="ds-heading" tabIndex={-1} ref={heading}>
        Data sources
      </h2>
      <div class="ds-filters" role="search">
        <Field id="ds-search" label="Search data sources" type="search" required={false} value={search} />
        <SelectField
          id="ds-type"
          label="Type"
          value={type}
          options={[{ value: "" as const, label: "All types" }, ...KINDS]}
        />
      </div>
      <ErrorAlert error={list.error.value} />
      <p role="status" class="count">
        {countText(result, query.value || type.value, list.loading.value)}
      </p>
      <p role="status" class="note">
        {props.done.value}
      </p>
      {result && result.items.length > 0 && (
        <ul class="list sources" aria-busy={list.loading.value}>
          {result.items.map((ds) => (
            <SourceCard
              key={ds.id}
              source={ds}
              canManage={props.canManage}
              onChanged={changed}
              onCalled={list.reload}
              onDeleted={deleted}
            />
          ))}
        </ul>
      )}
      {result && <Pager page={result} label="Data source pages" go={(p) => (page.value = p)} busy={list.loading.value} />}
    </section>
  );
}

function countText(result: DataSourcePage | null, filtered: string, loading: boolean): string {
  if (loading && !result) return "Loading data sources…";
  if (!result) return "";
  if (result.total === 0) return filtered ? "No data sources match." : "No data sources yet.";
  const noun = `${result.total} ${result.total === 1 ? "data source" : "data sources"}`;
  const pages = Math.ceil(result.total / result.pageSize);
  const found = filtered ? `${noun} ${result.total === 1 ? "matches" : "match"}` : noun;
  return pages > 1 ? `${found}, page ${result.page} of ${pages}.` : `${found}.`;
}

const STATUS_LABEL: Record<DataSource["status"], string> = {
  untested: "Untested",
  active: "Active",
  failing: "Failing",
};

const HEALTH_LABEL: Record<DataSource["monitoring"]["health"], string> = {
  unknown: "Health unknown",
  healthy: "Healthy",
  unhealthy: "Unhealthy",
};

type Panel = "edit" | "test" | "schema" | null;

function SourceCard(props: {
  source: DataSource;
  canManage: boolean;
  onChanged: (ds: DataSource) => void;
  /** After a call that changes the source's figures. */
  onCalled: () => void;
  onDeleted: (ds: DataSource) => void;
}) {
  const ds = props.source;
  const panel = useSignal<Panel>(null);
  const done = useSignal("");
  const failure = useSignal<{ error: unknown; title: string } | null>(null);
  const busy = useSignal(false);
  const openers = {
    edit: useRef<HTMLButtonElement>(null),
    test: useRef<HTMLButtonElement>(null),
    schema: useRef<HTMLButtonElement>(null),
  };
  const wasOpen = useRef<Panel>(null);
  const headingId = "ds-name-" + ds.id;

  // Focus follows the panel: into it when it opens (each panel focuses
  // its own first control), back to its button when it closes.
  useEffect(() => {
    const before = wasOpen.current;
    if (panel.value === null && before !== null) openers[before].current?.focus();
    wasOpen.current = panel.value;
  }, [panel.value]);

  function toggle(p: Exclude<Panel, null>) {
    done.value = "";
    failure.value = null;
    panel.value = panel.value === p ? null : p;
  }

  async function health() {
    if (busy.value) return;
    busy.value = true;
    done.value = "";
    failure.value = null;
    try {
      const h: DataSourceHealth = await client.dataSources.health(ds.id);
      if (h.health === "healthy") done.value = `${ds.name} is healthy: it answered in ${h.durationMs} ms.`;
      else
        failure.value = {
          error: new CoformError(0, h.error?.code ?? "unhealthy", h.error?.message ?? "The source did not answer."),
          title: `${ds.name} is unhealthy.`,
        };
      props.onCalled();
    } catch (error) {
      failure.value = { error, title: `The health of ${ds.name} could not be checked.` };
    } finally {
      busy.value = false;
    }
  }

  async function clearCache() {
    if (busy.value) return;
    busy.value = true;
    done.value = "";
    failure.value = null;
    try {
      props.onChanged(await client.dataSources.cache(ds.id, { invalidate: true }));
      done.value = `The cached answers of ${ds.name} were cleared.`;
    } catch (error) {
      failure.value = { error, title: `The cache of ${ds.name} was not cleared.` };
    } finally {
      busy.value = false;
    }
  }

  const rate = ds.performance.successRate;
  return (
    <li class="source" aria-labelledby={headingId}>
      <div class="source-head">
        <h3 id={headingId}>{ds.name}</h3>
        <span class="kind">{kindLabel(ds.type)}</span>
        <span class={"badge " + ds.status}>
          <span class="visually-hidden">Status: </span>
          {STATUS_LABEL[ds.status]}
        </span>
        <span class={"badge " + ds.monitoring.health}>{HEALTH_LABEL[ds.monitoring.health]}</span>
      </div>
      <dl class="figures">
        <div>
          <dt>Last used</dt>
          <dd>{ds.lastUsed === null ? "Never" : <Time ms={ds.lastUsed} />}</dd>
        </div>
        <div>
          <dt>Average response</dt>
          <dd>{rate === null ? "—" : `${Math.round(ds.performance.responseTime)} ms`}</dd>
        </div>
        <div>
          <dt>Success rate</dt>
          <dd>{rate === null ? "—" : `${Math.round(rate * 1000) / 10}%`}</dd>
        </div>
        <div>
          <dt>Errors</dt>
          <dd>{ds.errorCount}</dd>
        </div>
      </dl>
      {ds.monitoring.alerts.length > 0 && (
        <ul class="ds-alerts">
          {ds.monitoring.alerts.map((a) => (
            <li key={a}>{a}</li>
          ))}
        </ul>
      )}
      {props.canManage && (
        <div class="actions">
          <PanelButton panel={panel} which="edit" opener={openers.edit} toggle={toggle} label="Edit" subject={ds.name} />
          <PanelButton panel={panel} which="test" opener={openers.test} toggle={toggle} label="Test" subject={ds.name} />
          <PanelButton
            panel={panel}
            which="schema"
            opener={openers.schema}
            toggle={toggle}
            label="Schema"
            subject={ds.name}
          />
          <button type="button" class="secondary" onClick={health} aria-disabled={busy.value}>
            Check health<span class="visually-hidden"> of {ds.name}</span>
          </button>
          <button type="button" class="secondary" onClick={clearCache} aria-disabled={busy.value}>
            Clear cache<span class="visually-hidden"> of {ds.name}</span>
          </button>
          <ConfirmButton
            label="Delete"
            subject={ds.name}
            question={`Delete the data source “${ds.name}”? Forms that use it will no longer get its data.`}
            confirm="Yes, delete"
            action={async () => {
              await client.dataSources.remove(ds.id);
              props.onDeleted(ds);
            }}
          />
        </div>
      )}
      <p role="status" class="note">
        {done.value}
      </p>
      {failure.value && <CallError error={failure.value.error} title={failure.value.title} />}
      {panel.value === "edit" && (
        <SourceForm
          idPrefix={"ds-edit-" + ds.id}
          workspaceId={ds.workspaceId}
          source={ds}
          onSaved={(saved, changed) => {
            props.onChanged(saved);
            done.value = changed ? `Changes to ${saved.name} saved.` : "Nothing was changed.";
            panel.value = null;
          }}
          onCancel={() => (panel.value = null)}
        />
      )}
      {panel.value === "test" && <TestPanel source={ds} onTested={props.onCalled} close={() => (panel.value = null)} />}
      {panel.value === "schema" && <SchemaPanel source={ds} close={() => (panel.value = null)} />}
    </li>
  );
}

function PanelButton(props: {
  panel: Signal<Panel>;
  which: Exclude<Panel, null>;
  opener: { current: HTMLButtonElement | null };
  toggle: (p: Exclude<Panel, null>) => void;
  label: string;
  subject: string;
}) {
  return (
    <button
      type="button"
      class="secondary"
      ref={props.opener}
      aria-expanded={props.panel.value === props.which}
      onClick={() => props.toggle(props.which)}
    >
      {props.label}
      <span class="visually-hidden"> {props.subject}</span>
    </button>
  );
}

/** A failed call: what failed, the error's code and its message, announced. */
function CallError(props: { error: unknown; title: string }) {
  const e = props.error;
  const code = e instanceof CoformError ? e.code : null;
  return (
    <div role="alert" class="alert">
      <p>
        <strong>{props.title}</strong>
      </p>
      <p>
        {code && (
          <>
            <code>{code}</code>:{" "}
          </>
        )}
        {describe(e)}
      </p>
    </div>
  );
}

// ------------------------------------------------------------ create and edit

function NewSource(props: { workspace: Signal<WorkspaceDetail>; onCreated: (ds: DataSource) => void }) {
  const open = useSignal(false);
  const toggle = useRef<HTMLButtonElement>(null);
  const wasOpen = useRef(false);

  useEffect(() => {
    if (!open.value && wasOpen.current) toggle.current?.focus();
    wasOpen.current = open.value;
  }, [open.value]);

  return (
    <section aria-labelledby="ds-add-heading">
      <h2 id="ds-add-heading">Add a data source</h2>
      {open.value ? (
        <SourceForm
          idPrefix="ds-new"
          workspaceId={props.workspace.value.id}
          onSaved={(ds) => {
            open.value = false;
            props.onCreated(ds);
          }}
          onCancel={() => (open.value = false)}
        />
      ) : (
        <button type="button" ref={toggle} onClick={() => (open.value = true)}>
          New data source
        </button>
      )}
    </section>
  );
}

/** Which input holds a configuration field the server names (`headers.X` is a header row's value). */
const INPUT_OF: Record<string, keyof Draft> = {
  name: "name",
  url: "url",
  method: "method",
  body: "body",
  query: "query",
  variables: "variables",
  host: "host",
  port: "port",
  database: "database",
  user: "user",
  password: "dbPassword",
  sslMode: "sslMode",
  timeoutMs: "timeoutMs",
  retries: "retries",
  "caching.ttl": "ttl",
  "authentication.type": "authType",
  "authentication.token": "token",
  "authentication.credentials.username": "username",
  "authentication.credentials.password": "password",
  "authentication.credentials.name": "keyName",
  "authentication.credentials.value": "keyValue",
  "authentication.credentials.tokenUrl": "tokenUrl",
  "authentication.credentials.clientId": "clientId",
  "authentication.credentials.clientSecret": "clientSecret",
  "authentication.credentials.scope": "scope",
};

/** The input id of a configuration field, if the form shows it. */
function inputId(prefix: string, path: string, d: Draft): string | null {
  const key = INPUT_OF[path] ?? INPUT_OF[path.replace(/^config\./, "")];
  if (!key && /^(?:config\.)?url\.password$/.test(path)) return `${prefix}-url`;
  if (key) return `${prefix}-${key}`;
  const header = /^(?:config\.)?headers\.(.+)$/.exec(path);
  if (header) {
    const i = d.headers.findIndex((r) => r.name.trim() === header[1]);
    if (i >= 0) return `${prefix}-headers-${i}-value`;
  }
  return null;
}

/**
 * The form of a new source, or of a stored one (`source`): its name and
 * type, then the fields of that type. Secrets of a stored source start
 * empty and are kept when left so.
 */
function SourceForm(props: {
  idPrefix: string;
  workspaceId: string;
  source?: DataSource;
  onSaved: (ds: DataSource, changed: boolean) => void;
  onCancel: () => void;
}) {
  const stored = props.source;
  const p = props.idPrefix;
  const draft = useSignal<Draft>(stored ? draftOf(stored) : emptyDraft());
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);
  /** Input ids marked invalid by the last attempt, with why. */
  const invalid = useSignal<Record<string, string>>({});
  const kept = storedSecrets(stored?.config);

  useEffect(() => {
    document.getElementById(`${p}-name`)?.focus();
  }, []);

  const d = draft.value;
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => (draft.value = { ...draft.value, [k]: v });

  async function submit(e: Event) {
    e.preventDefault();
    if (busy.value) return;
    error.value = null;
    invalid.value = {};
    let config;
    try {
      config = configOf(draft.value, stored?.config);
    } catch (err) {
      error.value = err;
      if (err instanceof DraftError) mark({ [err.field]: err.message });
      return;
    }
    busy.value = true;
    try {
      const name = draft.value.name.trim();
      if (!stored) {
        props.onSaved(await client.dataSources.create({ workspaceId: props.workspaceId, name, type: d.type, config }), true);
        return;
      }
      const changes: DataSourceChanges = {};
      if (name !== stored.name) changes.name = name;
      const c = changesFrom(stored.config, config);
      if (Object.keys(c).length > 0) changes.config = c;
      if (Object.keys(changes).length === 0) props.onSaved(stored, false);
      else props.onSaved(await client.dataSources.update(stored.id, changes), true);
    } catch (err) {
      error.value = err;
      const missing = requiredSecrets(err);
      if (missing.length > 0) {
        mark(Object.fromEntries(missing.map((f) => [f, "Enter this again: the change needs it."])));
      } else {
        // Every field a validation error lists, or the one invalid_config names.
        const listed = fieldErrors(err);
        const field = invalidField(err);
        if (listed.length > 0) mark(Object.fromEntries(listed.map((x) => [x.field, x.message])));
        else if (field) mark({ [field]: describe(err) });
      }
    } finally {
      busy.value = false;
    }
  }

  /** Marks the inputs of the named fields and moves to the first. */
  function mark(fields: Record<string, string>) {
    const out: Record<string, string> = {};
    for (const [path, why] of Object.entries(fields)) {
      const id = inputId(p, path, draft.value);
      if (id) out[id] = why;
    }
    invalid.value = out;
    const first = Object.keys(out)[0];
    if (first) document.getElementById(first)?.focus();
  }

  /** The props every input of the form shares: id, its error. */
  const f = (key: string) => ({ id: `${p}-${key}`, invalid: invalid.value[`${p}-${key}`] });
  const secretHint = (path: string) => (kept.has(path) ? "Set — leave blank to keep it." : undefined);
  const missing = requiredSecrets(error.value);
  const http = d.type === "rest" || d.type === "graphql";

  return (
    <form
      class="card ds-form"
      onSubmit={submit}
      aria-busy={busy.value}
      aria-label={stored ? `Edit ${stored.name}` : "New data source"}
      onKeyDown={(e) => e.key === "Escape" && !busy.value && props.onCancel()}
    >
      {missing.length > 0 ? (
        <div role="alert" class="alert">
          <p>
            <strong>Enter these secrets again to save:</strong>
          </p>
          <ul>
            {missing.map((m) => (
              <li key={m}>{fieldLabel(m)}</li>
            ))}
          </ul>
          <p>{describe(error.value)}</p>
        </div>
      ) : (
        <ErrorAlert
          error={error.value}
          title={error.value ? (stored ? "The changes were not saved." : "The data source was not created.") : undefined}
        />
      )}
      <div class="ds-grid">
        <Input {...f("name")} label="Name" value={d.name} set={(v) => set("name", v)} required maxLength={200} />
        {stored ? (
          <div class="field">
            <span class="label">Type</span>
            <span>{kindLabel(stored.type)}</span>
          </div>
        ) : (
          <Choice {...f("type")} label="Type" value={d.type} options={KINDS} set={(v) => set("type", v)} />
        )}
      </div>

      {http && (
        <fieldset>
          <legend>Request</legend>
          <div class="ds-grid">
            <Input
              {...f("url")}
              label="URL"
              type="url"
              value={d.url}
              set={(v) => set("url", v)}
              required
              wide
              hint="http or https; {{name}} in the path or query takes a parameter."
            />
            {d.type === "rest" && (
              <Choice
                {...f("method")}
                label="Method"
                value={d.method}
                options={METHODS.map((m) => ({ value: m, label: m }))}
                set={(v) => set("method", v)}
              />
            )}
          </div>
          <Rows
            id={`${p}-headers`}
            title="Headers"
            noun="header"
            rows={d.headers}
            set={(rows) => set("headers", rows)}
            secrets
            keptSecret={(name) => kept.has("headers." + name)}
            invalid={invalid.value}
          />
          <Rows
            id={`${p}-queryParams`}
            title="Query parameters"
            noun="query parameter"
            rows={d.queryParams}
            set={(rows) => set("queryParams", rows)}
            invalid={invalid.value}
          />
          {d.type === "rest" && (
            <Input
              {...f("body")}
              label="Body (JSON)"
              value={d.body}
              set={(v) => set("body", v)}
              multiline
              hint="Sent with POST, PUT and PATCH."
            />
          )}
          {d.type === "graphql" && (
            <>
              <Input {...f("query")} label="GraphQL query" value={d.query} set={(v) => set("query", v)} multiline required />
              <Input {...f("variables")} label="Variables (JSON)" value={d.variables} set={(v) => set("variables", v)} multiline />
            </>
          )}
        </fieldset>
      )}

      {http && (
        <fieldset>
          <legend>Authentication</legend>
          <Choice {...f("authType")} label="Authentication type" value={d.authType} options={AUTH_TYPES} set={(v) => set("authType", v)} />
          {d.authType === "bearer" && (
            <Input
              {...f("token")}
              label="Bearer token"
              type="password"
              value={d.token}
              set={(v) => set("token", v)}
              hint={secretHint("authentication.token")}
            />
          )}
          {d.authType === "basic" && (
            <div class="ds-grid">
              <Input {...f("username")} label="Username" value={d.username} set={(v) => set("username", v)} />
              <Input
                {...f("password")}
                label="Password"
                type="password"
                value={d.password}
                set={(v) => set("password", v)}
                hint={secretHint("authentication.credentials.password")}
              />
            </div>
          )}
          {d.authType === "apiKey" && (
            <div class="ds-grid">
              <Input {...f("keyName")} label="Key name" value={d.keyName} set={(v) => set("keyName", v)} hint="The header or query parameter." />
              <Input
                {...f("keyValue")}
                label="API key"
                type="password"
                value={d.keyValue}
                set={(v) => set("keyValue", v)}
                hint={secretHint("authentication.credentials.value")}
              />
              <Choice
                {...f("keyIn")}
                label="Send the key in"
                value={d.keyIn}
                options={[
                  { value: "header", label: "A header" },
                  { value: "query", label: "The query" },
                ]}
                set={(v) => set("keyIn", v)}
              />
            </div>
          )}
          {d.authType === "oauth2" && (
            <div class="ds-grid">
              <Input {...f("tokenUrl")} label="Token URL" type="url" value={d.tokenUrl} set={(v) => set("tokenUrl", v)} wide />
              <Input {...f("clientId")} label="Client ID" value={d.clientId} set={(v) => set("clientId", v)} />
              <Input
                {...f("clientSecret")}
                label="Client secret"
                type="password"
                value={d.clientSecret}
                set={(v) => set("clientSecret", v)}
                hint={secretHint("authentication.credentials.clientSecret")}
              />
              <Input {...f("scope")} label="Scope" value={d.scope} set={(v) => set("scope", v)} />
            </div>
          )}
        </fieldset>
      )}

      {d.type === "database" && (
        <fieldset>
          <legend>PostgreSQL</legend>
          <div class="ds-grid">
            <Input {...f("host")} label="Host" value={d.host} set={(v) => set("host", v)} required />
            <Input {...f("port")} label="Port" inputMode="numeric" value={d.port} set={(v) => set("port", v)} />
            <Input {...f("database")} label="Database" value={d.database} set={(v) => set("database", v)} required />
            <Input {...f("user")} label="User" value={d.user} set={(v) => set("user", v)} required autocomplete="off" />
            <Input
              {...f("dbPassword")}
              label="Database password"
              type="password"
              value={d.dbPassword}
              set={(v) => set("dbPassword", v)}
              hint={secretHint("password")}
            />
            <Choice {...f("sslMode")} label="TLS (sslmode)" value={d.sslMode} options={SSL_MODES} set={(v) => set("sslMode", v)} />
          </div>
          <Input
            {...f("query")}
            label="SQL query"
            value={d.query}
            set={(v) => set("query", v)}
            multiline
            required
            hint="Read only. {{name}} becomes a bound parameter."
          />
        </fieldset>
      )}

      <fieldset>
        <legend>Caching and limits</legend>
        <div class="field check">
          <input
            id={`${p}-caching`}
            type="checkbox"
            checked={d.cachingEnabled}
            onChange={(e) => set("cachingEnabled", e.currentTarget.checked)}
          />
          <label for={`${p}-caching`}>Keep answers in a cache</label>
        </div>
        <div class="ds-grid">
          <Input
            {...f("ttl")}
            label="Cache time (seconds)"
            inputMode="numeric"
            value={d.ttl}
            set={(v) => set("ttl", v)}
            disabled={!d.cachingEnabled}
          />
          <Input
            {...f("timeoutMs")}
            label="Time limit (ms)"
            inputMode="numeric"
            value={d.timeoutMs}
            set={(v) => set("timeoutMs", v)}
            hint="Blank: 10 000."
          />
          <Input {...f("retries")} label="Retries" inputMode="numeric" value={d.retries} set={(v) => set("retries", v)} hint="0 to 3." />
        </div>
      </fieldset>

      <div class="actions">
        <button type="submit" aria-disabled={busy.value}>
          {stored ? "Save changes" : "Create data source"}
        </button>
        <button type="button" class="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** A labelled text input (or text area) of the data-source forms. */
function Input(props: {
  id: string;
  label: string;
  value: string;
  set: (v: string) => void;
  type?: "text" | "password" | "url";
  inputMode?: "numeric";
  hint?: string;
  invalid?: string;
  required?: boolean;
  multiline?: boolean;
  maxLength?: number;
  autocomplete?: string;
  disabled?: boolean;
  /** Takes a whole row of the grid. */
  wide?: boolean;
}) {
  const { id } = props;
  const described = [props.hint && id + "-hint", props.invalid && id + "-error"].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    value: props.value,
    required: props.required,
    maxLength: props.maxLength,
    disabled: props.disabled,
    "aria-describedby": described,
    "aria-invalid": props.invalid ? true : undefined,
    onInput: (e: { currentTarget: { value: string } }) => props.set(e.currentTarget.value),
  };
  return (
    <div class={"field" + (props.wide || props.multiline ? " wide" : "")}>
      <label for={id}>{props.label}</label>
      {props.hint && (
        <p id={id + "-hint"} class="hint">
          {props.hint}
        </p>
      )}
      {props.multiline ? (
        <textarea {...common} rows={4} spellcheck={false} class="mono" />
      ) : (
        <input
          {...({
            ...common,
            type: props.type ?? "text",
            inputMode: props.inputMode,
            autocomplete: props.autocomplete ?? (props.type === "password" ? "new-password" : "off"),
            spellcheck: false,
          } as JSX.IntrinsicElements["input"])}
        />
      )}
      {props.invalid && (
        <p id={id + "-error"} class="field-error">
          {props.invalid}
        </p>
      )}
    </div>
  );
}

/** A labelled drop-down of the data-source forms. */
function Choice<T extends string>(props: {
  id: string;
  label: string;
  value: T;
  options: ReadonlyArray<{ value: T; label: string }>;
  set: (v: T) => void;
  invalid?: string;
}) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select
        id={props.id}
        value={props.value}
        aria-invalid={props.invalid ? true : undefined}
        onChange={(e) => props.set(e.currentTarget.value as T)}
      >
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

/**
 * Name/value rows (headers, query parameters, test parameters): add one,
 * remove one. A new row takes focus; after a removal focus goes to "Add".
 */
function Rows(props: {
  id: string;
  title: string;
  /** One row, for button names: "header", "parameter". */
  noun: string;
  rows: Row[];
  set: (rows: Row[]) => void;
  /** Rows may be marked secret (headers). */
  secrets?: boolean;
  keptSecret?: (name: string) => boolean;
  invalid?: Record<string, string>;
  hint?: ComponentChildren;
}) {
  const { id, rows, noun } = props;
  const add = useRef<HTMLButtonElement>(null);
  const focusRow = useRef<number | null>(null);

  useEffect(() => {
    if (focusRow.current === null) return;
    if (focusRow.current < 0) add.current?.focus();
    else document.getElementById(`${id}-${focusRow.current}-name`)?.focus();
    focusRow.current = null;
  }, [rows.length]);

  const change = (i: number, patch: Partial<Row>) => props.set(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  return (
    <fieldset class="rows">
      <legend>{props.title}</legend>
      {props.hint}
      {rows.length > 0 && (
        <ol class="row-list">
          {rows.map((r, i) => {
            const n = i + 1;
            const valueId = `${id}-${i}-value`;
            const why = props.invalid?.[valueId];
            const kept = r.secret && props.keptSecret?.(r.name.trim());
            const hintId = kept ? valueId + "-hint" : undefined;
            const described = [hintId, why && valueId + "-error"].filter(Boolean).join(" ") || undefined;
            return (
              <li key={i} class="row">
                <div class="field">
                  <label for={`${id}-${i}-name`}>
                    Name<span class="visually-hidden"> of {noun} {n}</span>
                  </label>
                  <input
                    id={`${id}-${i}-name`}
                    value={r.name}
                    autocomplete="off"
                    spellcheck={false}
                    onInput={(e) => change(i, { name: e.currentTarget.value })}
                  />
                </div>
                <div class="field">
                  <label for={valueId}>
                    Value<span class="visually-hidden"> of {noun} {n}</span>
                  </label>
                  {kept && (
                    <p id={hintId} class="hint">
                      Set — leave blank to keep it.
                    </p>
                  )}
                  <input
                    {...({
                      id: valueId,
                      type: r.secret ? "password" : "text",
                      value: r.value,
                      autocomplete: r.secret ? "new-password" : "off",
                      spellcheck: false,
                      "aria-describedby": described,
                      "aria-invalid": why ? true : undefined,
                      onInput: (e: { currentTarget: { value: string } }) => change(i, { value: e.currentTarget.value }),
                    } as JSX.IntrinsicElements["input"])}
                  />
                  {why && (
                    <p id={valueId + "-error"} class="field-error">
                      {why}
                    </p>
                  )}
                </div>
                {props.secrets && (
                  <div class="field check">
                    <input
                      id={`${id}-${i}-secret`}
                      type="checkbox"
                      checked={r.secret}
                      onChange={(e) => change(i, { secret: e.currentTarget.checked })}
                    />
                    <label for={`${id}-${i}-secret`}>
                      Secret<span class="visually-hidden"> {noun} {n}</span>
                    </label>
                  </div>
                )}
                <button
                  type="button"
                  class="secondary"
                  onClick={() => {
                    focusRow.current = -1;
                    props.set(rows.filter((_, j) => j !== i));
                  }}
                >
                  Remove<span class="visually-hidden"> {noun} {n}</span>
                </button>
              </li>
            );
          })}
        </ol>
      )}
      <button
        type="button"
        class="secondary"
        ref={add}
        onClick={() => {
          focusRow.current = rows.length;
          props.set([...rows, { name: "", value: "", secret: false }]);
        }}
      >
        Add {noun}
      </button>
    </fieldset>
  );
}

// ------------------------------------------------------------ test and schema

/** Calls the stored source with parameters and shows what came back. */
function TestPanel(props: { source: DataSource; onTested: () => void; close: () => void }) {
  const ds = props.source;
  const p = "ds-test-" + ds.id;
  const rows = useSignal<Row[]>(placeholders(ds.config).map((name) => ({ name, value: "", secret: false })));
  const busy = useSignal(false);
  const result = useSignal<DataSourceTestResult | null>(null);
  const error = useSignal<unknown>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    heading.current?.focus();
  }, []);

  async function run(e: Event) {
    e.preventDefault();
    if (busy.value) return;
    busy.value = true;
    result.value = null;
    error.value = null;
    try {
      result.value = await client.dataSources.test({ id: ds.id }, paramsOf(rows.value));
    } catch (err) {
      error.value = err;
    } finally {
      busy.value = false;
      props.onTested();
    }
  }

  const r = result.value;
  return (
    <form
      class="card ds-panel"
      onSubmit={run}
      aria-labelledby={p + "-heading"}
      aria-busy={busy.value}
      onKeyDown={(e) => e.key === "Escape" && !busy.value && props.close()}
    >
      <h4 id={p + "-heading"} tabIndex={-1} ref={heading}>
        Test {ds.name}
      </h4>
      <Rows
        id={p + "-params"}
        title="Parameters"
        noun="parameter"
        rows={rows.value}
        set={(v) => (rows.value = v)}
        hint={<p class="hint">Values for the {"{{name}}"} placeholders of the source.</p>}
      />
      <div class="actions">
        <button type="submit" aria-disabled={busy.value}>
          Run test
        </button>
        <button type="button" class="secondary" onClick={props.close}>
          Close<span class="visually-hidden"> test of {ds.name}</span>
        </button>
      </div>
      <p role="status" class="note">
        {busy.value ? "Testing…" : r ? `The test passed in ${r.durationMs} ms.` : ""}
      </p>
      {error.value !== null && <CallError error={error.value} title="The test failed." />}
      {r && (
        <div class="sample" role="region" aria-label={`Sample answer of ${ds.name}`} tabIndex={0}>
          <pre>{JSON.stringify(r.sample, null, 2)}</pre>
        </div>
      )}
    </form>
  );
}

/** What the source offers: tables and columns, GraphQL types, or the shape of a REST answer. */
function SchemaPanel(props: { source: DataSource; close: () => void }) {
  const ds = props.source;
  const schema = useResource(() => client.dataSources.schema(ds.id), [ds.id, ds.configVersion]);
  const heading = useRef<HTMLHeadingElement>(null);
  const id = "ds-schema-" + ds.id;

  useEffect(() => {
    heading.current?.focus();
  }, []);

  const s = schema.data.value;
  return (
    <section
      class="card ds-panel"
      aria-labelledby={id}
      onKeyDown={(e) => e.key === "Escape" && props.close()}
    >
      <h4 id={id} tabIndex={-1} ref={heading}>
        Schema of {ds.name}
      </h4>
      {schema.loading.value && <p role="status">Loading the schema…</p>}
      {schema.error.value !== null && <CallError error={schema.error.value} title="The schema could not be read." />}
      {schema.error.value instanceof CoformError && schema.error.value.code === "parameter_refused" && (
        <p class="hint">
          The schema is read from an answer to a call without parameters, which this source cannot make. Test it
          with parameters to see what it answers.
        </p>
      )}
      {s && <SchemaView schema={s} />}
      <div class="actions">
        <button type="button" class="secondary" onClick={() => !schema.loading.value && schema.reload()} aria-disabled={schema.loading.value}>
          Reload<span class="visually-hidden"> schema of {ds.name}</span>
        </button>
        <button type="button" class="secondary" onClick={props.close}>
          Close<span class="visually-hidden"> schema of {ds.name}</span>
        </button>
      </div>
    </section>
  );
}

function SchemaView(props: { schema: DataSourceSchema }) {
  const s = props.schema;
  if ("tables" in s && Array.isArray(s.tables)) {
    const tables = s.tables as SchemaTable[];
    if (tables.length === 0) return <p>The database user can read no tables.</p>;
    return (
      <ul class="schema">
        {tables.map((t) => (
          <li key={t.schema + "." + t.name}>
            <details>
              <summary>
                <code>
                  {t.schema}.{t.name}
                </code>{" "}
                <span class="muted">({t.columns.length} columns)</span>
              </summary>
              <ul>
                {t.columns.map((c) => (
                  <li key={c.name}>
                    <code>{c.name}</code> <span class="type">{c.type}</span>
                    {c.nullable && <span class="muted"> nullable</span>}
                  </li>
                ))}
              </ul>
            </details>
          </li>
        ))}
      </ul>
    );
  }
  if ("types" in s && Array.isArray(s.types)) {
    const types = (s.types as GraphqlType[]).filter((t) => typeof t.name === "string" && !t.name.startsWith("__"));
    return (
      <ul class="schema">
        {types.map((t) => (
          <li key={t.name}>
            <details>
              <summary>
                <code>{t.name}</code> {t.kind && <span class="muted">{t.kind.toLowerCase()}</span>}
              </summary>
              {t.fields && t.fields.length > 0 ? (
                <ul>
                  {t.fields.map((f) => (
                    <li key={f.name}>
                      <code>{f.name}</code> <span class="type">{graphqlType(f.type)}</span>
                    </li>
                  ))}
                </ul>
              ) : (
                <p class="muted">No fields.</p>
              )}
            </details>
          </li>
        ))}
      </ul>
    );
  }
  return (
    <ul class="schema">
      <InferredNode name="answer" schema={s as InferredSchema} />
    </ul>
  );
}

type GraphqlType = { name: string; kind?: string; fields?: Array<{ name: string; type?: unknown }> | null };

/** A GraphQL introspection type reference as written in SDL: `[Item!]!`. */
function graphqlType(t: unknown): string {
  if (typeof t === "string") return t;
  if (typeof t !== "object" || t === null) return "";
  const r = t as { kind?: string; name?: string | null; ofType?: unknown };
  if (r.kind === "NON_NULL") return graphqlType(r.ofType) + "!";
  if (r.kind === "LIST") return "[" + graphqlType(r.ofType) + "]";
  return r.name ?? "";
}

function typeText(t: InferredSchema["type"]): string {
  return Array.isArray(t) ? t.join(" or ") : (t ?? "any");
}

function InferredNode(props: { name: string; schema: InferredSchema }) {
  const s = props.schema;
  const props_ = s.properties ? Object.entries(s.properties) : [];
  const label = (
    <>
      <code>{props.name}</code> <span class="type">{typeText(s.type)}</span>
    </>
  );
  if (props_.length === 0 && !s.items) return <li>{label}</li>;
  return (
    <li>
      <details open>
        <summary>{label}</summary>
        <ul>
          {props_.map(([k, v]) => (
            <InferredNode key={k} name={k} schema={v} />
          ))}
          {s.items && <InferredNode name="[items]" schema={s.items} />}
        </ul>
      </details>
    </li>
  );
}
