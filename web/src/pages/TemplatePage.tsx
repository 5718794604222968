import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { ApiError, type Template } from "../api";
import { ErrorAlert, Page } from "../components";
import { Link } from "../router";
import { api } from "../session";

function when(ms: number): string {
  return new Date(ms).toLocaleString();
}

export function TemplatePage(props: { id: string }) {
  const template = useSignal<Template | null>(null);
  const error = useSignal<unknown>(null);

  useEffect(() => {
    let live = true;
    template.value = null;
    error.value = null;
    api.template(props.id).then(
      (t) => live && (template.value = t),
      (e) => live && (error.value = e),
    );
    return () => {
      live = false;
    };
  }, [props.id]);

  const t = template.value;
  const missing = error.value instanceof ApiError && error.value.status === 404;
  const title = t ? t.name : missing ? "Template not found" : error.value ? "Template" : "Loading template";
  return (
    <Page title={title}>
      <p>
        <Link href="/">Back to workspaces</Link>
      </p>
      <ErrorAlert error={error.value} />
      {!t && !error.value && <p aria-live="polite">Loading…</p>}
      {t && (
        <dl class="listing">
          <dt>Description</dt>
          <dd>{t.description || "No description"}</dd>
          <dt>Tags</dt>
          <dd>{t.tags.length > 0 ? t.tags.join(", ") : "None"}</dd>
          <dt>Visibility</dt>
          <dd>{t.isPublic ? "Public" : "Private"}</dd>
          <dt>Version</dt>
          <dd>{t.version}</dd>
          <dt>Created</dt>
          <dd>{when(t.createdAt)}</dd>
          <dt>Last changed</dt>
          <dd>{when(t.updatedAt)}</dd>
          <dt>Template ID</dt>
          <dd>
            <code>{t.id}</code>
          </dd>
        </dl>
      )}
    </Page>
  );
}
