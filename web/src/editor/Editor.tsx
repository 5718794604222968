// The editor page: one template open for live, shared editing.
//
//   header   name, save state, who is here, undo/redo, preview, history
//   palette  every component type of the server's catalog
//   canvas   the form as it will look; select, drag, Alt+Up/Down
//   side     properties of the selected component, and the outline
import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { Template } from "@coform/sdk";
import { isCoformError } from "@coform/sdk";
import { client, CoformError } from "../client";
import { ErrorAlert, Page } from "../components";
import { Link } from "../router";
import { SourcesContext } from "../form/sources";
import { catalog, catalogError, loadCatalog } from "../schema";
import { sourceRunner } from "../sources";
import { Canvas } from "./Canvas";
import { Outline } from "./Outline";
import { Palette } from "./Palette";
import { Presence } from "./Presence";
import { Properties } from "./Properties";
import { EditorStore } from "./store";
import { Toast, toast } from "./Toast";
import "./editor.css";

/** What the page remembers of a template, to open it offline after a reload. */
interface Known {
  name: string;
  workspaceId: string;
}

const knownKey = (id: string) => `coform.template:${id}`;

function remember(t: Template): Known {
  const k = { name: t.name, workspaceId: t.workspaceId };
  try {
    localStorage.setItem(knownKey(t.id), JSON.stringify(k));
  } catch {
    // No storage: the name is just not available offline.
  }
  return k;
}

function recall(id: string): Known | null {
  try {
    const v = JSON.parse(localStorage.getItem(knownKey(id)) ?? "null") as Known | null;
    return v && typeof v.name === "string" ? v : null;
  } catch {
    return null;
  }
}

export function Editor(props: { id: string }) {
  const store = useSignal<EditorStore | null>(null);
  const known = useSignal<Known | null>(null);
  const error = useSignal<unknown>(null);

  useEffect(() => {
    let live = true;
    let opened: EditorStore | null = null;
    store.value = null;
    error.value = null;
    known.value = recall(props.id);
    client.templates.get(props.id).then(
      (t) => live && (known.value = remember(t)),
      (e) => {
        // Offline, the remembered name will do; anything else is shown.
        if (live && !(known.value && isCoformError(e, "network_error"))) error.value = e;
      },
    );
    void loadCatalog().catch(() => {});
    client
      .openTemplate(props.id, { offline: true, syncTimeoutMs: 15_000 })
      .then((session) => {
        if (!live) {
          session.close();
          return;
        }
        opened = new EditorStore(session);
        store.value = opened;
      })
      .catch((e) => live && (error.value = e));
    return () => {
      live = false;
      opened?.dispose();
      opened?.session.close();
    };
  }, [props.id]);

  const s = store.value;
  const name = known.value?.name ?? "Template";
  if (error.value instanceof CoformError && (error.value.code === "not_found" || error.value.status === 404)) {
    return (
      <Page title="Template not found">
        <p>This template does not exist, or you are not a member of its workspace.</p>
        <p>
          <Link href="/">Your workspaces</Link>
        </p>
      </Page>
    );
  }
  return (
    <Page title={name}>
      <div class="editor-links">
        {known.value && <Link href={`/workspaces/${encodeURIComponent(known.value.workspaceId)}`}>Back to workspace</Link>}
        <Link href={`/templates/${encodeURIComponent(props.id)}/preview`}>Preview</Link>
        <Link href={`/templates/${encodeURIComponent(props.id)}/history`}>History</Link>
      </div>
      <ErrorAlert error={error.value ?? catalogError.value} />
      {!s && !error.value && <p aria-live="polite">Opening the template…</p>}
      {s && <Workbench store={s} templateId={props.id} workspaceId={known.value?.workspaceId ?? null} />}
    </Page>
  );
}

function Workbench(props: { store: EditorStore; templateId: string; workspaceId: string | null }) {
  const { store } = props;
  const root = useRef<HTMLDivElement>(null);
  const ended = store.ended.value;
  const readOnly = store.readOnly.value;

  // Shortcuts: undo and redo anywhere in the editor (text fields included:
  // their edits are document edits), Delete on a selected component.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      store.active();
      const mod = e.ctrlKey || e.metaKey;
      if (mod && !e.altKey && e.key.toLowerCase() === "z") {
        e.preventDefault();
        if (e.shiftKey) store.redo();
        else store.undo();
      } else if (mod && !e.altKey && e.key.toLowerCase() === "y") {
        e.preventDefault();
        store.redo();
      }
    };
    const onMove = () => store.active();
    const el = root.current;
    el?.addEventListener("keydown", onKey);
    addEventListener("pointermove", onMove, { passive: true });
    return () => {
      el?.removeEventListener("keydown", onKey);
      removeEventListener("pointermove", onMove);
    };
  }, [store]);

  // A change of this designer's that the server repaired: say what came
  // back and why, in the polite live region of the toast.
  const repaired = store.repaired.value;
  useEffect(() => {
    if (repaired) toast(repaired.message);
  }, [repaired]);

  return (
    <div class="workbench" ref={root}>
      <div class="toolbar">
        <SaveStatus store={store} />
        <ProblemsWatcher store={store} templateId={props.templateId} />
        {!readOnly && (
          <div class="toolbar-actions">
            <button type="button" class="secondary" onClick={() => store.undo()} disabled={!store.canUndo.value}
              aria-keyshortcuts="Control+Z">
              Undo
            </button>
            <button type="button" class="secondary" onClick={() => store.redo()} disabled={!store.canRedo.value}
              aria-keyshortcuts="Control+Shift+Z">
              Redo
            </button>
          </div>
        )}
        <Presence store={store} />
      </div>
      {ended && (
        <div role="alert" class="alert">
          <p>{ended.message}</p>
          {ended.why === "session" && (
            <p>
              <Link href={`/signin?next=${encodeURIComponent(location.pathname)}`}>Sign in</Link>
            </p>
          )}
        </div>
      )}
      {readOnly && !ended && (
        <p class="notice" role="note">
          You have view only access: you can see this template and who is here, but not change it.
        </p>
      )}
      <SourcesContext.Provider value={sourceRunner(props.templateId)}>
        <div class={readOnly ? "panes read-only" : "panes"}>
          {!readOnly && <Palette store={store} catalog={catalog.value} />}
          <Canvas store={store} catalog={catalog.value} />
          <div class="side">
            <Properties
              store={store}
              catalog={catalog.value}
              place={{ templateId: props.templateId, workspaceId: props.workspaceId }}
            />
            <Outline store={store} />
          </div>
        </div>
      </SourcesContext.Provider>
      <Toast />
    </div>
  );
}

/** Asks the server's validator again whenever every edit is stored. */
function ProblemsWatcher(props: { store: EditorStore; templateId: string }) {
  const { store, templateId } = props;
  const save = store.saveState.value;
  useEffect(() => {
    if (save.state !== "saved") return;
    let live = true;
    const t = setTimeout(() => {
      client.templates.problems(templateId).then(
        (r) => live && (store.problems.value = r.problems),
        () => {},
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [save]);
  return null;
}

function SaveStatus(props: { store: EditorStore }) {
  const { state, unsaved } = props.store.saveState.value;
  const text =
    state === "offline"
      ? `Offline — ${unsaved} ${unsaved === 1 ? "change" : "changes"} pending`
      : state === "saving"
        ? "Saving…"
        : "All changes saved";
  return (
    <p class={`save-state ${state}`} role="status" data-save-state={state}>
      {text}
    </p>
  );
}
