import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { Workspace } from "@coform/sdk";
import { ErrorAlert, Field, FormCard, Page } from "../components";
import { client } from "../client";

export function Workspaces() {
  const list = useSignal<Workspace[] | null>(null);
  const loadError = useSignal<unknown>(null);
  const name = useSignal("");
  const description = useSignal("");
  const created = useSignal("");

  useEffect(() => {
    let live = true;
    client.workspaces.list().then(
      (w) => live && (list.value = w),
      (e) => live && (loadError.value = e),
    );
    return () => {
      live = false;
    };
  }, []);

  async function create() {
    created.value = "";
    const w = await client.workspaces.create({ name: name.value.trim(), description: description.value.trim() });
    list.value = [...(list.value ?? []), w];
    created.value = `Workspace “${w.name}” created.`;
    name.value = "";
    description.value = "";
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
        <FormCard
          action={create}
          submit="Create workspace"
          after={
            <p role="status" class="status">
              {created.value}
            </p>
          }
        >
          <Field id="ws-name" label="Name" maxLength={200} value={name} />
          <Field id="ws-description" label="Description" multiline value={description} />
        </FormCard>
      </section>
    </Page>
  );
}
