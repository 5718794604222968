import { useSignal, type Signal } from "@preact/signals";
import { useRef } from "preact/hooks";
import type { Invitation, Member, Role, WorkspaceDetail } from "@coform/sdk";
import { ConfirmButton, ErrorAlert, Field, FormCard, Page, SelectField, Time, useResource } from "../components";
import { Link, navigate } from "../router";
import { client, user } from "../client";
import { atLeast, grantable, roleLabel } from "./roles";
import { WorkspaceGate } from "./WorkspaceGate";
import "./workspace.css";

export function Members(props: { id: string }) {
  // A fresh page per workspace: nothing of one workspace shows on another's.
  return <MembersPage key={props.id} id={props.id} />;
}

function MembersPage(props: { id: string }) {
  const ws = useResource(() => client.workspaces.get(props.id), [props.id]);
  const w = ws.data.value;
  const e = ws.error.value;

  if (!w) return <WorkspaceGate title="Members" loading="Loading members…" error={e} retry={ws.reload} />;

  const admin = atLeast(w.role, "admin");
  return (
    <Page title={`Members of ${w.name}`}>
      <div class="wide">
        <nav aria-label="Workspace" class="crumbs">
          <Link href="/">All workspaces</Link>
          <Link href={"/workspaces/" + encodeURIComponent(w.id)}>Templates of {w.name}</Link>
          <Link href={"/workspaces/" + encodeURIComponent(w.id) + "/data-sources"}>Data sources</Link>
        </nav>
        {!admin && (
          <p class="muted">Admins and owners add members and change roles. You can see who is here.</p>
        )}
        <MemberTable workspace={ws.data as Signal<WorkspaceDetail>} reload={ws.reload} />
        {admin && <Invitations workspace={ws.data as Signal<WorkspaceDetail>} />}
      </div>
    </Page>
  );
}

function MemberTable(props: { workspace: Signal<WorkspaceDetail>; reload: () => void }) {
  const w = props.workspace.value;
  const me = user.value?.id;
  const mine = w.role;
  const admin = atLeast(mine, "admin");
  const done = useSignal("");
  const failure = useSignal<{ error: unknown; title: string } | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  // Admins manage members, but only owners touch owners.
  const manages = (m: Member) => admin && (m.role !== "owner" || mine === "owner");

  function setMembers(members: Member[]) {
    props.workspace.value = { ...props.workspace.value, members };
  }

  async function changeRole(m: Member, role: Role) {
    failure.value = null;
    done.value = "";
    try {
      await client.workspaces.updateMember(w.id, m.userId, { role });
    } catch (error) {
      failure.value = { error, title: `The role of ${m.name} was not changed.` };
      return false;
    }
    done.value = `${m.name} is now ${roleLabel(role)}.`;
    // One's own new role changes what this page may offer.
    if (m.userId === me) props.reload();
    else setMembers(w.members.map((x) => (x.userId === m.userId ? { ...x, role } : x)));
    return true;
  }

  async function remove(m: Member) {
    failure.value = null;
    done.value = "";
    await client.workspaces.removeMember(w.id, m.userId);
    if (m.userId === me) {
      navigate("/");
      return;
    }
    setMembers(props.workspace.value.members.filter((x) => x.userId !== m.userId));
    done.value = `${m.name} was removed from the workspace.`;
    // The row and its buttons are gone: continue from the table's heading.
    heading.current?.focus();
  }

  return (
    <section aria-labelledby="members-heading">
      <h2 id="members-heading" tabIndex={-1} ref={heading}>
        Current members
      </h2>
      {failure.value && <ErrorAlert error={failure.value.error} title={failure.value.title} />}
      <p role="status" class="note">
        {done.value}
      </p>
      <div class="table-wrap">
        <table class="table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {w.members.map((m) => (
              <tr key={m.userId}>
                <th scope="row">
                  {m.name}
                  {m.userId === me && <span class="muted"> (you)</span>}
                </th>
                <td>{m.email}</td>
                <td>
                  {manages(m) ? (
                    <RoleSelect member={m} options={grantable(mine)} change={(r) => changeRole(m, r)} />
                  ) : (
                    roleLabel(m.role)
                  )}
                </td>
                <td>
                  {m.userId === me ? (
                    <ConfirmButton
                      label="Leave workspace"
                      question={`Leave ${w.name}? You will need a new invitation to come back.`}
                      confirm="Yes, leave"
                      action={() => remove(m)}
                    />
                  ) : (
                    manages(m) && (
                      <ConfirmButton
                        label="Remove"
                        subject={m.name}
                        question={`Remove ${m.name} from ${w.name}?`}
                        confirm="Yes, remove"
                        action={() => remove(m)}
                      />
                    )
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/**
 * A role picker with its own "Save": changing the selection alone does
 * nothing, as some browsers fire a change for every arrow key.
 */
function RoleSelect(props: {
  member: Member;
  options: Array<{ value: Role; label: string }>;
  change: (role: Role) => Promise<boolean>;
}) {
  const m = props.member;
  const chosen = useSignal<Role>(m.role);
  const busy = useSignal(false);
  const id = "role-" + m.userId;

  async function save() {
    busy.value = true;
    const ok = await props.change(chosen.value);
    busy.value = false;
    // Refused: show the role the member still has.
    if (!ok) chosen.value = m.role;
  }

  return (
    <div class="role-select">
      <label for={id} class="visually-hidden">
        Role of {m.name}
      </label>
      <select id={id} value={chosen.value} onChange={(e) => (chosen.value = e.currentTarget.value as Role)}>
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {chosen.value !== m.role && (
        <button type="button" onClick={save} disabled={busy.value}>
          Save<span class="visually-hidden"> role of {m.name}</span>
        </button>
      )}
    </div>
  );
}

/** Inviting by e-mail, and the invitations still waiting (admins and owners). */
function Invitations(props: { workspace: Signal<WorkspaceDetail> }) {
  const w = props.workspace.value;
  const list = useResource(() => client.workspaces.invitations(w.id), [w.id]);
  const email = useSignal("");
  const role = useSignal<Role>("editor");
  const invited = useSignal("");
  const done = useSignal("");
  const heading = useRef<HTMLHeadingElement>(null);
  const owner = w.role === "owner";

  async function invite() {
    invited.value = "";
    const r = await client.workspaces.addMember(w.id, { email: email.value.trim(), role: role.value });
    if ("userId" in r) {
      props.workspace.value = { ...props.workspace.value, members: [...props.workspace.value.members, r] };
      invited.value = `${r.name} (${r.email}) is now a member as ${roleLabel(r.role)}.`;
    } else {
      invited.value = `${r.email} is invited as ${roleLabel(r.role)} and joins once the address is verified.`;
      list.reload();
    }
    email.value = "";
  }

  async function cancel(i: Invitation) {
    done.value = "";
    await client.workspaces.cancelInvitation(w.id, i.email);
    const items = list.data.value ?? [];
    list.data.value = items.filter((x) => x.email !== i.email);
    done.value = `The invitation of ${i.email} was cancelled.`;
    heading.current?.focus();
  }

  const items = list.data.value;
  return (
    <>
      <section aria-labelledby="invite-heading">
        <h2 id="invite-heading">Invite someone</h2>
        <FormCard
          class="card compact"
          action={invite}
          submit="Invite"
          after={
            <p role="status" class="note">
              {invited.value}
            </p>
          }
        >
          <Field id="invite-email" label="Email" type="email" autocomplete="off" value={email} />
          <SelectField id="invite-role" label="Role" value={role} options={grantable(w.role)} />
        </FormCard>
      </section>
      <section aria-labelledby="pending-heading">
        <h2 id="pending-heading" tabIndex={-1} ref={heading}>
          Pending invitations
        </h2>
        <ErrorAlert error={list.error.value} />
        <p role="status" class="note">
          {done.value}
        </p>
        {list.loading.value && items === null && <p role="status">Loading invitations…</p>}
        {items?.length === 0 && <p>No invitations are waiting.</p>}
        {items && items.length > 0 && (
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                  <th scope="col">Expires</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((i) => (
                  <InvitationRow key={i.email} invitation={i} canCancel={owner || i.role !== "owner"} cancel={cancel} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

function InvitationRow(props: { invitation: Invitation; canCancel: boolean; cancel: (i: Invitation) => Promise<void> }) {
  const i = props.invitation;
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);

  // Not confirmed first: inviting again undoes it.
  async function cancel() {
    busy.value = true;
    error.value = null;
    try {
      await props.cancel(i);
    } catch (e) {
      error.value = e;
      busy.value = false;
    }
  }

  return (
    <tr>
      <th scope="row">{i.email}</th>
      <td>{roleLabel(i.role)}</td>
      <td>
        <Time ms={i.expiresAt} />
      </td>
      <td>
        {props.canCancel && (
          <button type="button" class="secondary" onClick={cancel} disabled={busy.value}>
            Cancel invitation<span class="visually-hidden"> of {i.email}</span>
          </button>
        )}
        <ErrorAlert error={error.value} />
      </td>
    </tr>
  );
}
