// Saved versions of a template: save one, compare one with the template
// as it is now, restore one. History only grows: a restore first saves
// the current state as a version, so nothing is ever lost.
import type { Role, Template, Version, VersionRestoreResult } from "@coform/sdk";
import { useSignal } from "@preact/signals";
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { client } from "../client";
import { ErrorAlert, Field, FormCard, Page } from "../components";
import { Link } from "../router";
import { catalog, loadCatalog } from "../schema";
import { isEmpty, summarize, type DiffSummary, type FieldChange, type Named } from "./versionDiff";
import "./history.css";

const EDITORS: ReadonlySet<Role> = new Set(["owner", "admin", "editor"]);

function title(v: Version): string {
  return v.name.trim() ? `Version ${v.number}: ${v.name}` : `Version ${v.number}`;
}

function when(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function Who(props: { c: Named }) {
  return (
    <>
      <strong>{props.c.name}</strong> <span class="kind">({props.c.kind})</span>
    </>
  );
}

function Change(props: { f: FieldChange }) {
  const { f } = props;
  return (
    <li>
      {f.label}
      {f.before !== undefined && f.after !== undefined ? `: from ${f.before} to ${f.after}` : " changed"}
    </li>
  );
}

/** One kind of change (added, removed, ...), left out when there is none. */
function Group(props: { title: string; count: number; children: ComponentChildren }) {
  if (props.count === 0) return null;
  return (
    <>
      <h4>
        {props.title} ({props.count})
      </h4>
      <ul class="diff-list">{props.children}</ul>
    </>
  );
}

function DiffView(props: { s: DiffSummary; number: number }) {
  const { s, number } = props;
  if (isEmpty(s)) {
    return <p>No differences: the template is as it was in version {number}.</p>;
  }
  return (
    <>
      <p>From version {number} to the template as it is now:</p>
      <Group title="Template details" count={s.meta.length}>
        {s.meta.map((f) => (
          <Change key={f.label} f={f} />
        ))}
      </Group>
      <Group title="Added" count={s.added.length}>
        {s.added.map((c) => (
          <li key={c.id}>
            <Who c={c} />
          </li>
        ))}
      </Group>
      <Group title="Removed" count={s.removed.length}>
        {s.removed.map((c) => (
          <li key={c.id}>
            <Who c={c} />
          </li>
        ))}
      </Group>
      <Group title="Moved" count={s.moved.length}>
        {s.moved.map((c) => (
          <li key={c.id}>
            <Who c={c} />: {c.where}
          </li>
        ))}
      </Group>
      <Group title="Changed" count={s.changed.length}>
        {s.changed.map((c) => (
          <li key={c.id}>
            <Who c={c} />
            <ul>
              {c.fields.map((f) => (
                <Change key={f.label} f={f} />
              ))}
            </ul>
          </li>
        ))}
      </Group>
    </>
  );
}

function VersionItem(props: {
  templateId: string;
  v: Version;
  canEdit: boolean;
  onRestored: (r: VersionRestoreResult) => Promise<void>;
}) {
  const { templateId, v, canEdit } = props;
  const open = useSignal(false);
  const diff = useSignal<DiffSummary | null>(null);
  const confirming = useSignal(false);
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);
  const restoreButton = useRef<HTMLButtonElement>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const key = `v${v.number}`;

  useEffect(() => {
    if (confirming.value) confirmButton.current?.focus();
  }, [confirming.value]);

  async function compare() {
    if (open.value) {
      open.value = false;
      return;
    }
    open.value = true;
    diff.value = null;
    error.value = null;
    try {
      // The diff names ids and paths; both contents give them names.
      const [d, then, now] = await Promise.all([
        client.versions.diff(templateId, v.number, "current"),
        client.versions.get(templateId, v.number),
        client.templates.get(templateId),
      ]);
      diff.value = summarize(d, then.content, now.content ?? { meta: {}, components: {} }, catalog.value);
    } catch (e) {
      error.value = e;
      open.value = false;
    }
  }

  function cancel() {
    confirming.value = false;
    restoreButton.current?.focus();
  }

  async function restore() {
    busy.value = true;
    error.value = null;
    try {
      const r = await client.versions.restore(templateId, v.number);
      confirming.value = false;
      open.value = false;
      await props.onRestored(r);
      restoreButton.current?.focus();
    } catch (e) {
      error.value = e;
    } finally {
      busy.value = false;
    }
  }

  return (
    <li class="version">
      <h3 id={key + "-title"}>{title(v)}</h3>
      <p class="muted">
        Saved <time dateTime={new Date(v.createdAt).toISOString()}>{when(v.createdAt)}</time> by{" "}
        {v.authorName ?? "a deleted account"}
      </p>
      {v.note.trim() && <p class="version-note">{v.note}</p>}
      <div class="actions">
        <button
          type="button"
          class="secondary"
          aria-expanded={open.value}
          aria-controls={key + "-diff"}
          aria-describedby={key + "-title"}
          onClick={compare}
        >
          Compare with current
        </button>
        {canEdit && (
          <button
            type="button"
            class="secondary"
            ref={restoreButton}
            aria-describedby={key + "-title"}
            disabled={confirming.value}
            onClick={() => (confirming.value = true)}
          >
            Restore
          </button>
        )}
      </div>
      <ErrorAlert error={error.value} />
      {confirming.value && (
        <div class="confirm" role="group" aria-labelledby={key + "-confirm"}>
          <p id={key + "-confirm"}>
            <strong>Restore version {v.number}?</strong> The template becomes what it was in this version, for
            everyone editing it. Its current state is saved as a new version first, so nothing is lost.
          </p>
          <div class="actions">
            <button type="button" ref={confirmButton} onClick={restore} disabled={busy.value}>
              Restore version {v.number}
            </button>
            <button type="button" class="secondary" onClick={cancel} disabled={busy.value}>
              Cancel
            </button>
          </div>
        </div>
      )}
      <div id={key + "-diff"} class="diff" hidden={!open.value}>
        {open.value && (diff.value ? <DiffView s={diff.value} number={v.number} /> : <p class="muted">Comparing…</p>)}
      </div>
    </li>
  );
}

export function History(props: { id: string }) {
  const { id } = props;
  const template = useSignal<Template | null>(null);
  const role = useSignal<Role | null>(null);
  const versions = useSignal<Version[] | null>(null);
  const error = useSignal<unknown>(null);
  const undoable = useSignal<VersionRestoreResult | null>(null);
  const status = useSignal("");
  const name = useSignal("");
  const note = useSignal("");

  useEffect(() => {
    let gone = false;
    // Without the catalog, changed fields are named by their keys.
    loadCatalog().catch(() => undefined);
    (async () => {
      try {
        const t = await client.templates.get(id);
        if (gone) return;
        template.value = t;
        // The role decides whether saving and restoring are offered; the
        // server checks it again on each.
        const [list, workspace] = await Promise.all([
          client.versions.list(id),
          client.workspaces.get(t.workspaceId).catch(() => null),
        ]);
        if (gone) return;
        versions.value = list;
        role.value = workspace?.role ?? null;
      } catch (e) {
        if (!gone) error.value = e;
      }
    })();
    return () => {
      gone = true;
    };
  }, [id]);

  async function reload() {
    versions.value = await client.versions.list(id);
  }

  async function save() {
    status.value = "";
    const v = await client.versions.create(id, { name: name.value.trim(), note: note.value.trim() });
    name.value = "";
    note.value = "";
    status.value = v.name ? `Saved version ${v.number}: ${v.name}.` : `Saved version ${v.number}.`;
    await reload();
  }

  async function restored(r: VersionRestoreResult) {
    status.value =
      `Version ${r.restored} restored. This is an edit like any other: everyone editing the template sees it ` +
      `at once. Undo it to go back to version ${r.backup.number}, saved just before.`;
    undoable.value = r;
    await reload();
  }

  /** Undoing a restore restores what was there just before it. */
  async function undoRestore() {
    const r = undoable.value;
    if (r === null) return;
    undoable.value = null;
    try {
      await client.versions.restore(id, r.backup.number);
      status.value = `Restore undone: the template is as it was before version ${r.restored} was restored.`;
      await reload();
    } catch (e) {
      error.value = e;
    }
  }

  const base = "/templates/" + encodeURIComponent(id);
  const canEdit = role.value !== null && EDITORS.has(role.value);
  const list = versions.value;
  return (
    <Page title={template.value ? "History: " + template.value.name : "History"}>
      <div class="history">
        <nav class="page-links" aria-label="Template">
          <Link href={base}>Back to editor</Link>
          <Link href={base + "/preview"}>Preview</Link>
        </nav>
        <p role="status" class="status">
          {status.value}
        </p>
        {undoable.value && canEdit && (
          <button type="button" class="secondary" onClick={undoRestore}>
            Undo restore
          </button>
        )}
        <ErrorAlert error={error.value} />
        {template.value && canEdit && (
          <section aria-labelledby="save-version">
            <h2 id="save-version">Save a version</h2>
            <FormCard action={save} submit="Save version">
              <Field id="version-name" label="Version name" value={name} maxLength={200} required={false} />
              <Field id="version-note" label="Note (optional)" value={note} multiline required={false} />
            </FormCard>
          </section>
        )}
        {template.value && role.value === "viewer" && (
          <p class="muted">You can compare versions. Saving and restoring them needs the editor role.</p>
        )}
        {list !== null && (
          <section aria-labelledby="versions">
            <h2 id="versions">Versions</h2>
            {list.length === 0 ? (
              <p>No versions saved yet.</p>
            ) : (
              <ol class="versions">
                {list.map((v) => (
                  <VersionItem key={v.number} templateId={id} v={v} canEdit={canEdit} onRestored={restored} />
                ))}
              </ol>
            )}
          </section>
        )}
        {list === null && !error.value && <p class="muted">Loading the history…</p>}
      </div>
    </Page>
  );
}
