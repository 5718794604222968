import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { TargetedSubmitEvent } from "preact";
import type { Workspace } from "../api";
import { ErrorAlert, Page } from "../components";
import { api } from "../session";

export function Workspaces() {
  const list = useSignal<Workspace[] | null>(null);
  const loadError = useSignal<unknown>(null);
  const name = useSignal("");
  const description = useSignal("");
  const busy = useSignal(false);
  const createError = useSignal<unknown>(null);
  const created = useSignal("");

  useEffect(() => {
    let live = true;
    api.workspaces().then(
      (w) => live && (list.value = w),
      (e) => live && (loadError.value = e),
    );
    return () => {
      live = false;
    };
  }, []);

  async function create(e: TargetedSubmitEvent<HTMLFormElement>) {
    e.preventDefault();
    busy.value = true;
    createError.value = null;
    created.value = "";
    try {
      const w = await api.createWorkspace(name.value.trim(), description.value.trim());
      list.value = [...(list.value ?? []), w];
      created.value = `Workspace “${w.name}” created.`;
      name.value = "";
      description.value = "";
    } catch (err) {
      createError.value = err;
    } finally {
      busy.value = false;
    }
  }

  return (
    <Page title="Workspaces">
      <section aria-labelledby="ws-list-heading">
        <h2 id="ws-list-heading">Your workspaces</h2>
        <ErrorAlert error={loadError.value} />
        {list.value === null && !loadError.value && <p aria-live="polite">Loading…</p>}
        {list.value?.length === 0 && <p>You are not a member of any workspace yet.</p>}
        {list.value && list.value.length > 0 && (
          <ul class="list">
            {list.value.map((w) => (
              <li key={w.id}>
                <span class="name">{w.name}</span>{" "}
                <span class="role">{w.role ?? "member"}</span>
                {w.description && <p class="muted">{w.description}</p>}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="ws-new-heading">
        <h2 id="ws-new-heading">New workspace</h2>
        <form class="card" onSubmit={create} aria-busy={busy.value}>
          <ErrorAlert error={createError.value} />
          <div class="field">
            <label for="ws-name">Name</label>
            <input
              id="ws-name"
              type="text"
              required
              maxLength={200}
              value={name.value}
              onInput={(e) => (name.value = e.currentTarget.value)}
            />
          </div>
          <div class="field">
            <label for="ws-description">Description</label>
            <textarea
              id="ws-description"
              rows={3}
              value={description.value}
              onInput={(e) => (description.value = e.currentTarget.value)}
            />
          </div>
          <button type="submit" disabled={busy.value}>
            Create workspace
          </button>
          <p role="status" class="status">
            {created.value}
          </p>
        </form>
      </section>
    </Page>
  );
}
