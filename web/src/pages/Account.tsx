// Your account: the name and colour others see you by, your password,
// and where you are signed in (with a way to end any other session).
import { useSignal } from "@preact/signals";
import type { SessionInfo } from "@coform/sdk";
import { client, user } from "../client";
import { ConfirmButton, ErrorAlert, Field, FormCard, Page, PasswordField, Time, useResource } from "../components";
import "./workspace.css";

export function Account() {
  const me = user.value;
  if (me === null) return null;
  return (
    <Page title="Your account">
      <div class="wide">
        <p class="muted">
          Signed in as <strong>{me.email}</strong>
          {!me.emailVerified && " (address not verified yet: open the link in the mail we sent)"}.
        </p>
        <Profile />
        <Password />
        <Sessions />
      </div>
    </Page>
  );
}

/** Name and presence colour: what collaborators see on their canvas. */
function Profile() {
  const me = user.value!;
  const name = useSignal(me.name);
  const color = useSignal(me.color);
  const saved = useSignal("");
  async function save() {
    saved.value = "";
    user.value = await client.updateMe({ name: name.value.trim(), color: color.value });
    saved.value = "Saved. People editing with you see the change when you next open a template.";
  }
  return (
    <section aria-labelledby="account-profile">
      <h2 id="account-profile">How others see you</h2>
      <FormCard
        action={save}
        submit="Save profile"
        after={
          <p role="status" class="note">
            {saved.value}
          </p>
        }
      >
        <Field id="account-name" label="Name" maxLength={100} value={name} autocomplete="name" />
        <div class="field">
          <label for="account-color">Presence colour</label>
          <input
            id="account-color"
            type="color"
            value={color.value}
            onInput={(e) => (color.value = e.currentTarget.value)}
          />
        </div>
      </FormCard>
    </section>
  );
}

function Password() {
  const current = useSignal("");
  const next = useSignal("");
  const saved = useSignal("");
  async function change() {
    saved.value = "";
    await client.changePassword(current.value, next.value);
    current.value = "";
    next.value = "";
    saved.value = "Password changed. Your other sessions have been signed out.";
  }
  return (
    <section aria-labelledby="account-password">
      <h2 id="account-password">Password</h2>
      <FormCard
        action={change}
        submit="Change password"
        after={
          <p role="status" class="note">
            {saved.value}
          </p>
        }
      >
        <PasswordField id="account-current-password" value={current} label="Current password" />
        <PasswordField id="account-new-password" value={next} isNew label="New password" />
      </FormCard>
    </section>
  );
}

function Sessions() {
  const list = useResource(() => client.sessions(), []);
  const items = list.data.value;
  return (
    <section aria-labelledby="account-sessions">
      <h2 id="account-sessions">Where you are signed in</h2>
      <ErrorAlert error={list.error.value} />
      {items === null && !list.error.value && <p role="status">Loading sessions…</p>}
      {items && (
        <ul class="list sessions">
          {items.map((s) => (
            <SessionRow key={s.id} session={s} onEnded={list.reload} />
          ))}
        </ul>
      )}
    </section>
  );
}

function SessionRow(props: { session: SessionInfo; onEnded: () => void }) {
  const s = props.session;
  const what = s.userAgent || "Unknown browser";
  return (
    <li>
      <p>
        <strong>{what}</strong>
        {s.current && " — this browser"}
      </p>
      <p class="muted">
        {s.ip && <>From {s.ip}. </>}
        Last used <Time ms={s.lastUsedAt} />; ends <Time ms={s.expiresAt} />.
      </p>
      {!s.current && (
        <ConfirmButton
          label="Sign out"
          subject={what}
          question="Sign this session out? Whoever uses it will have to sign in again."
          confirm="Yes, sign it out"
          action={async () => {
            await client.revokeSession(s.id);
            props.onEnded();
          }}
        />
      )}
    </li>
  );
}
