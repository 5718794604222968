import { useSignal } from "@preact/signals";
import type { TargetedSubmitEvent } from "preact";
import { auth } from "../api";
import { ErrorAlert, Page } from "../components";
import { here, Link, navigate, safeNext } from "../router";
import { start } from "../session";

export function SignIn() {
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
      start(await auth.login(email.value, password.value));
      navigate(safeNext(next), true);
    } catch (err) {
      error.value = err;
      busy.value = false;
    }
  }

  const registerHref = next ? "/register?next=" + encodeURIComponent(next) : "/register";
  return (
    <Page title="Sign in">
      <form class="card" onSubmit={submit} aria-busy={busy.value}>
        <ErrorAlert error={error.value} />
        <div class="field">
          <label for="signin-email">Email</label>
          <input
            id="signin-email"
            type="email"
            autocomplete="username"
            required
            value={email.value}
            onInput={(e) => (email.value = e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="signin-password">Password</label>
          <input
            id="signin-password"
            type="password"
            autocomplete="current-password"
            required
            value={password.value}
            onInput={(e) => (password.value = e.currentTarget.value)}
          />
        </div>
        <button type="submit" disabled={busy.value}>
          Sign in
        </button>
      </form>
      <p>
        No account yet? <Link href={registerHref}>Create an account</Link>
      </p>
    </Page>
  );
}
