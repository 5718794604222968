import { useSignal, type Signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { Template, TemplatePage, WorkspaceDetail } from "@coform/sdk";
import { ConfirmButton, ErrorAlert, Field, FormCard, Page, Pager, Time, useResource } from "../components";
import { Link, navigate } from "../router";
import { client, user } from "../client";
import { atLeast, roleLabel } from "./roles";
import { WorkspaceGate } from "./WorkspaceGate";
import "./workspace.css";

/** How long typing must pause before the search is sent. */
const SEARCH_DELAY_MS = 300;

const templatePath = (id: string) => "/templates/" + encodeURIComponent(id);

export function Workspace(props: { id: string }) {
  // A fresh page per workspace: nothing of one workspace shows on another's.
  return <WorkspacePage key={props.id} id={props.id} />;
}

function WorkspacePage(props: { id: string }) {
  const ws = useResource(() => client.workspaces.get(props.id), [props.id]);
  // Counts imports: each one asks the template list again.
  const imports = useSignal(0);
  const w = ws.data.value;
  const e = ws.error.value;

  if (!w) return <WorkspaceGate title="Workspace" loading="Loading workspace…" error={e} retry={ws.reload} />;

  return (
    <Page title={w.name}>
      <div class="wide">
        <nav aria-label="Workspace" class="crumbs">
          <Link href="/">All workspaces</Link>
          <Link href={"/workspaces/" + encodeURIComponent(w.id) + "/members"}>Members</Link>
          <Link href={"/workspaces/" + encodeURIComponent(w.id) + "/data-sources"}>Data sources</Link>
        </nav>
        <div class="ws-summary">
          <p>
            {w.role && (
              <span class="role">
                <span class="visually-hidden">Your role: </span>
                {roleLabel(w.role)}
              </span>
            )}
            {w.description && <span class="muted"> {w.description}</span>}
          </p>
          {atLeast(w.role, "admin") && <Details workspace={ws.data as Signal<WorkspaceDetail>} />}
        </div>
        {atLeast(w.role, "editor") && (
          <section aria-labelledby="tpl-add-heading">
            <h2 id="tpl-add-heading">Add a template</h2>
            <div class="card adding">
              <NewTemplate workspaceId={w.id} />
              <ImportTemplate workspaceId={w.id} onImported={() => imports.value++} />
            </div>
          </section>
        )}
        <Templates workspace={w} refresh={imports.value} />
        {w.role === "owner" && (
          <section aria-labelledby="ws-delete-heading" class="danger-zone">
            <h2 id="ws-delete-heading">Delete this workspace</h2>
            <p class="muted">Its templates, their versions and figures go too, and its members lose access.</p>
            <ConfirmButton
              label="Delete workspace"
              subject={w.name}
              question={`Delete “${w.name}” with all its templates and their history? This cannot be undone.`}
              confirm="Yes, delete the workspace"
              action={async () => {
                await client.workspaces.delete(w.id);
                navigate("/", true);
              }}
            />
          </section>
        )}
      </div>
    </Page>
  );
}

/** Name and description of the workspace (admins and owners). */
function Details(props: { workspace: Signal<WorkspaceDetail> }) {
  const w = props.workspace.value;
  const open = useSignal(false);
  const saved = useSignal("");
  const name = useSignal(w.name);
  const description = useSignal(w.description);
  const toggle = useRef<HTMLButtonElement>(null);
  const wasOpen = useRef(false);

  // Focus follows the form: into it when it opens, back to the button
  // that opened it when it closes.
  useEffect(() => {
    if (open.value) document.getElementById("ws-edit-name")?.focus();
    else if (wasOpen.current) toggle.current?.focus();
    wasOpen.current = open.value;
  }, [open.value]);

  function show() {
    name.value = w.name;
    description.value = w.description;
    saved.value = "";
    open.value = true;
  }


  async function save() {
    const updated = await client.workspaces.update(w.id, {
      name: name.value.trim(),
      description: description.value.trim(),
    });
    props.workspace.value = { ...w, ...updated, members: w.members };
    saved.value = "Workspace details saved.";
    open.value = false;
  }

  return (
    <div class="details">
      {open.value ? (
        <FormCard
          action={save}
          submit="Save changes"
          after={
            <button type="button" class="secondary" onClick={() => (open.value = false)}>
              Cancel
            </button>
          }
        >
          <Field id="ws-edit-name" label="Workspace name" maxLength={200} value={name} />
          <Field
            id="ws-edit-description"
            label="Description"
            multiline
            maxLength={2000}
            required={false}
            value={description}
          />
        </FormCard>
      ) : (
        <button type="button" class="secondary" ref={toggle} onClick={show}>
          Edit workspace details
        </button>
      )}
      <p role="status" class="note">
        {saved.value}
      </p>
    </div>
  );
}

/** The templates of the workspace: search, pages and per-template actions. */
function Templates(props: { workspace: WorkspaceDetail; refresh: number }) {
  const w = props.workspace;
  const search = useSignal("");
  const query = useSignal("");
  const page = useSignal(1);
  const done = useSignal("");
  const heading = useRef<HTMLHeadingElement>(null);
  const list = useResource(
    () => client.templates.list({ workspaceId: w.id, q: query.value || undefined, page: page.value }),
    [query.value, page.value, props.refresh],
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
  const me = user.value?.id;
  const canEdit = atLeast(w.role, "editor");

  function renamed(t: Template) {
    if (result) list.data.value = { ...result, items: result.items.map((x) => (x.id === t.id ? t : x)) };
    done.value = `Renamed to “${t.name}”.`;
  }

  function deleted(t: Template) {
    done.value = `Template “${t.name}” deleted.`;
    // The row and its buttons are gone: continue from the list's heading.
    heading.current?.focus();
    if (result && result.items.length === 1 && page.value > 1) page.value -= 1;
    else list.reload();
  }

  return (
    <section aria-labelledby="tpl-heading">
      <h2 id="tpl-heading" tabIndex={-1} ref={heading}>
        Templates
      </h2>
      <div class="search" role="search">
        <Field id="tpl-search" label="Search templates" type="search" required={false} value={search} />
      </div>
      <ErrorAlert error={list.error.value} />
      <p role="status" class="count">
        {countText(result, query.value, list.loading.value)}
      </p>
      <p role="status" class="note">
        {done.value}
      </p>
      {result && result.items.length > 0 && (
        <ul class="list templates" aria-busy={list.loading.value}>
          {result.items.map((t) => (
            <TemplateRow
              key={t.id}
              template={t}
              canEdit={canEdit}
              canDelete={atLeast(w.role, "admin") || (canEdit && t.createdBy === me)}
              onRenamed={renamed}
              onDeleted={deleted}
              onExported={(file) => (done.value = `Downloaded ${file}.`)}
            />
          ))}
        </ul>
      )}
      {result && <Pager page={result} label="Template pages" go={(p) => (page.value = p)} busy={list.loading.value} />}
    </section>
  );
}

function countText(result: TemplatePage | null, query: string, loading: boolean): string {
  if (loading && !result) return "Loading templates…";
  if (!result) return "";
  if (result.total === 0) return query ? `No templates match “${query}”.` : "No templates yet.";
  const one = result.total === 1;
  const noun = `${result.total} ${one ? "template" : "templates"}`;
  const found = query ? `${noun} ${one ? "matches" : "match"} “${query}”` : noun;
  const pages = Math.ceil(result.total / result.pageSize);
  return pages > 1 ? `${found}, page ${result.page} of ${pages}.` : `${found}.`;
}

function TemplateRow(props: {
  template: Template;
  canEdit: boolean;
  canDelete: boolean;
  onRenamed: (t: Template) => void;
  onDeleted: (t: Template) => void;
  onExported: (fileName: string) => void;
}) {
  const t = props.template;
  const renaming = useSignal(false);
  const name = useSignal(t.name);
  const exporting = useSignal(false);
  const error = useSignal<unknown>(null);
  const renameButton = useRef<HTMLButtonElement>(null);
  const wasRenaming = useRef(false);
  const inputId = "rename-" + t.id;

  useEffect(() => {
    if (renaming.value) document.getElementById(inputId)?.focus();
    else if (wasRenaming.current) renameButton.current?.focus();
    wasRenaming.current = renaming.value;
  }, [renaming.value]);

  function startRename() {
    name.value = t.name;
    error.value = null;
    renaming.value = true;
  }

  async function rename() {
    const updated = await client.templates.update(t.id, { name: name.value.trim() });
    renaming.value = false;
    props.onRenamed(updated);
  }

  async function download() {
    exporting.value = true;
    error.value = null;
    try {
      const file = await client.templates.export(t.id);
      props.onExported(saveJson(file, fileName(t.name) + ".coform.json"));
    } catch (e) {
      error.value = e;
    } finally {
      exporting.value = false;
    }
  }

  async function remove() {
    await client.templates.delete(t.id);
    props.onDeleted(t);
  }

  return (
    <li onKeyDown={(e) => e.key === "Escape" && renaming.value && (renaming.value = false)}>
      <div class="template-main">
        <Link href={templatePath(t.id)} class="name">
          {t.name}
        </Link>
        {t.description && <p class="muted">{t.description}</p>}
        <p class="meta">
          Updated <Time ms={t.updatedAt} />
        </p>
      </div>
      {renaming.value ? (
        <FormCard
          class="inline-form"
          action={rename}
          submit="Save"
          after={
            <button type="button" class="secondary" onClick={() => (renaming.value = false)}>
              Cancel
            </button>
          }
        >
          <Field id={inputId} label="Name" maxLength={200} value={name} />
        </FormCard>
      ) : (
        <div class="actions">
          {props.canEdit && (
            <button type="button" class="secondary" ref={renameButton} onClick={startRename}>
              Rename<span class="visually-hidden"> {t.name}</span>
            </button>
          )}
          <button type="button" class="secondary" onClick={download} disabled={exporting.value}>
            Export<span class="visually-hidden"> {t.name}</span>
          </button>
          {props.canDelete && (
            <ConfirmButton
              label="Delete"
              subject={t.name}
              question={`Delete “${t.name}” with its history? This cannot be undone.`}
              confirm="Yes, delete"
              action={remove}
            />
          )}
        </div>
      )}
      <ErrorAlert error={error.value} />
    </li>
  );
}

/** A template name as a file name that every system accepts. */
function fileName(name: string): string {
  const safe = name
    .replace(/[\u0000-\u001f\u007f<>:"/\\|?*]/g, "_")
    .replace(/^[\s.]+|[\s.]+$/g, "")
    .slice(0, 100);
  return safe || "template";
}

/** Hands `data` to the browser as a downloaded JSON file; returns its name. */
function saveJson(data: unknown, name: string): string {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2) + "\n"], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  // Some browsers read the URL after click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}

function NewTemplate(props: { workspaceId: string }) {
  const name = useSignal("");
  async function create() {
    const t = await client.templates.create({ workspaceId: props.workspaceId, name: name.value.trim() });
    navigate(templatePath(t.id));
  }
  return (
    <FormCard class="compact" action={create} submit="Create template">
      <Field id="tpl-name" label="Template name" maxLength={200} value={name} />
    </FormCard>
  );
}

/** A template file (as exported) becomes a new template here. */
function ImportTemplate(props: { workspaceId: string; onImported: () => void }) {
  const file = useSignal<File | null>(null);
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);
  const imported = useSignal<Template | null>(null);
  // Bumped to give the file input a new, empty element after an import.
  const round = useSignal(0);

  async function submit(e: Event) {
    e.preventDefault();
    const f = file.value;
    if (!f) return;
    busy.value = true;
    error.value = null;
    imported.value = null;
    try {
      imported.value = await client.templates.importNew(props.workspaceId, await readJson(f));
      file.value = null;
      round.value += 1;
      props.onImported();
    } catch (err) {
      error.value = err;
    } finally {
      busy.value = false;
    }
  }

  const t = imported.value;
  return (
    <>
      <form class="compact" onSubmit={submit} aria-busy={busy.value}>
        <div class="field">
          <label for="tpl-import">Import template file</label>
          <p id="tpl-import-hint" class="hint">
            A .coform.json file exported from Coform becomes a new template here.
          </p>
          <input
            key={round.value}
            id="tpl-import"
            type="file"
            accept=".json,application/json"
            required
            aria-describedby="tpl-import-hint"
            onChange={(e) => (file.value = e.currentTarget.files?.[0] ?? null)}
          />
        </div>
        <button type="submit" disabled={busy.value}>
          Import
        </button>
        <ErrorAlert error={error.value} title={file.value ? `“${file.value.name}” was not imported.` : undefined} />
      </form>
      <p role="status" class="note">
        {t && (
          <>
            Imported “{t.name}”. <Link href={templatePath(t.id)}>Open {t.name}</Link>
          </>
        )}
      </p>
    </>
  );
}

/**
 * The file's text, sent as it is so that the server checks what the file
 * says; a file that is not JSON at all is refused here with a plain message.
 */
async function readJson(f: File): Promise<string> {
  const text = await f.text();
  try {
    JSON.parse(text);
  } catch {
    throw new Error("The file is not JSON. Choose a file exported from Coform.");
  }
  return text;
}
