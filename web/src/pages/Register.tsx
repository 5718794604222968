import { useSignal } from "@preact/signals";
import type { TargetedSubmitEvent } from "preact";
import { auth } from "../api";
import { ErrorAlert, Page } from "../components";
import { here, Link, navigate, safeNext } from "../router";
import { start } from "../session";

export function Register() {
  const name = useSignal("");
  const email = useSignal("");
  const password = useSignal("");
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);
  const next = here.value.query.get("next");

  async function submit(e: TargetedSubmitEvent<HTMLFormElement>) {
    e.preventDefault();
    busy.value = true;
    error.value = null;
    try {
      start(await auth.register(name.value, email.value, password.value));
      navigate(safeNext(next), true);
    } catch (err) {
      error.value = err;
      busy.value = false;
    }
  }

  const signInHref = next ? "/signin?next=" + encodeURIComponent(next) : "/signin";
  return (
    <Page title="Create account">
      <form class="card" onSubmit={submit} aria-busy={busy.value}>
        <ErrorAlert error={error.value} />
        <div class="field">
          <label for="register-name">Name</label>
          <input
            id="register-name"
            type="text"
            autocomplete="name"
            required
            maxLength={100}
            value={name.value}
            onInput={(e) => (name.value = e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="register-email">Email</label>
          <input
            id="register-email"
            type="email"
            autocomplete="email"
            required
            value={email.value}
            onInput={(e) => (email.value = e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="register-password">Password</label>
          <input
            id="register-password"
            type="password"
            autocomplete="new-password"
            required
            value={password.value}
            onInput={(e) => (password.value = e.currentTarget.value)}
          />
        </div>
        <button type="submit" disabled={busy.value}>
          Create account
        </button>
      </form>
      <p>
        Already have an account? <Link href={signInHref}>Sign in</Link>
      </p>
    </Page>
  );
}
