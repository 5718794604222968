import { useSignal } from "@preact/signals";
import { Field, FormCard, Page, PasswordField } from "../components";
import { here, Link, navigate, safeNext } from "../router";
import { client, endedBecause } from "../client";

export function SignIn() {
  const email = useSignal("");
  const password = useSignal("");
  const next = here.value.query.get("next");

  async function signIn() {
    await client.login({ email: email.value, password: password.value });
    navigate(safeNext(next), true);
  }

  const registerHref = next ? "/register?next=" + encodeURIComponent(next) : "/register";
  return (
    <Page title="Sign in">
      {endedBecause.value && (
        <p role="alert" class="alert">
          Your session has ended. Sign in again to go on; changes you made in an open template are kept on this
          device and sent once you are back.
        </p>
      )}
      <FormCard action={signIn} submit="Sign in">
        <Field id="signin-email" label="Email" type="email" autocomplete="username" value={email} />
        <PasswordField id="signin-password" value={password} />
      </FormCard>
      <p>
        <Link href="/forgot-password">Forgot your password?</Link>
      </p>
      <p>
        No account yet? <Link href={registerHref}>Create an account</Link>
      </p>
    </Page>
  );
}
