// The form as a person filling it will see it, live: every edit made in
// the editor (by anyone) shows here at once.
import type { Component, SessionStatus, TemplateSession } from "@coform/sdk";
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { client } from "../client";
import { ErrorAlert, Page } from "../components";
import { FormView } from "../form/FormView";
import { SourcesContext } from "../form/sources";
import { text } from "../form/values";
import { Link } from "../router";
import { catalog, loadCatalog } from "../schema";
import { sourceRunner } from "../sources";
import "./preview.css";

type Width = "desktop" | "phone";

function WidthToggle(props: { width: Width; onChange: (w: Width) => void }) {
  const choices: Array<[Width, string]> = [
    ["desktop", "Desktop"],
    ["phone", "Phone"],
  ];
  return (
    <div class="toggle" role="group" aria-label="Preview width">
      {choices.map(([w, label]) => (
        <button
          key={w}
          type="button"
          class="secondary"
          aria-pressed={props.width === w}
          onClick={() => props.onChange(w)}
        >
          {label}
        </button>
      ))}
    </div>
  );
}

export function Preview(props: { id: string }) {
  const { id } = props;
  const name = useSignal<string | null>(null);
  const components = useSignal<Component[] | null>(null);
  const description = useSignal("");
  const status = useSignal<SessionStatus>("connecting");
  const error = useSignal<unknown>(null);
  const width = useSignal<Width>("desktop");

  useEffect(() => {
    let gone = false;
    let session: TemplateSession | null = null;
    // Without the catalog the form still shows, only without the
    // catalog's defaults; so its failure is not the page's.
    loadCatalog().catch(() => undefined);
    client.templates.get(id).then(
      (t) => {
        if (!gone) name.value = t.name;
      },
      (e: unknown) => {
        if (!gone) error.value = e;
      },
    );
    client.openTemplate(id).then(
      (s) => {
        if (gone) {
          s.close();
          return;
        }
        session = s;
        const read = () => {
          components.value = s.components();
          description.value = text(s.getMeta("description")) ?? "";
        };
        read();
        status.value = s.status;
        s.on("change", read);
        s.on("status", (st) => (status.value = st));
        s.on("closed", (e) => {
          if (e.error) error.value = e.error;
        });
      },
      (e: unknown) => {
        if (!gone) error.value = e;
      },
    );
    return () => {
      gone = true;
      session?.close();
    };
  }, [id]);

  const base = "/templates/" + encodeURIComponent(id);
  const list = components.value;
  return (
    <Page title={name.value === null ? "Preview" : "Preview: " + name.value}>
      <div class="preview">
        <div class="preview-bar">
          <WidthToggle width={width.value} onChange={(w) => (width.value = w)} />
          <nav class="preview-links" aria-label="Template">
            <Link href={base}>Back to editor</Link>
            <Link href={base + "/history"}>History</Link>
          </nav>
        </div>
        <ErrorAlert error={error.value} />
        {status.value === "offline" && list !== null && (
          <p class="muted">The connection was lost: this is the form as last received. It updates again once back.</p>
        )}
        {list === null ? (
          !error.value && <p class="muted">Loading the form…</p>
        ) : (
          <div class={"preview-frame is-" + width.value}>
            {description.value && <p class="preview-description">{description.value}</p>}
            <SourcesContext.Provider value={sourceRunner(id)}>
              <FormView components={list} catalog={catalog.value} interactive={true} idPrefix="preview" />
            </SourcesContext.Provider>
          </div>
        )}
      </div>
    </Page>
  );
}
