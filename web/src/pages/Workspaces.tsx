import { useSignal } from "@preact/signals";
import { ErrorAlert, Field, FormCard, Page, useResource } from "../components";
import { Link, navigate } from "../router";
import { client } from "../client";
import { roleLabel } from "./roles";
import "./workspace.css";

export function Workspaces() {
  const list = useResource(() => client.workspaces.list(), []);
  const name = useSignal("");
  const description = useSignal("");

  async function create() {
    const w = await client.workspaces.create({ name: name.value.trim(), description: description.value.trim() });
    // The new workspace is empty: the next step is to add templates to it.
    navigate("/workspaces/" + encodeURIComponent(w.id));
  }

  const items = list.data.value;
  return (
    <Page title="Workspaces">
      <section aria-labelledby="ws-list-heading">
        <h2 id="ws-list-heading">Your workspaces</h2>
        <ErrorAlert error={list.error.value} />
        {list.loading.value && items === null && <p role="status">Loading workspaces…</p>}
        {items?.length === 0 && <p>You are not a member of any workspace yet. Create one below.</p>}
        {items && items.length > 0 && (
          <ul class="list">
            {items.map((w) => (
              <li key={w.id}>
                <Link href={"/workspaces/" + encodeURIComponent(w.id)} class="name">
                  {w.name}
                </Link>
                {w.role && (
                  <span class="role">
                    <span class="visually-hidden">Your role: </span>
                    {roleLabel(w.role)}
                  </span>
                )}
                {w.description && <p class="muted">{w.description}</p>}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="ws-new-heading">
        <h2 id="ws-new-heading">New workspace</h2>
        <FormCard action={create} submit="Create workspace">
          <Field id="ws-name" label="Name" maxLength={200} value={name} />
          <Field id="ws-description" label="Description" multiline maxLength={2000} required={false} value={description} />
        </FormCard>
      </section>
    </Page>
  );
}
