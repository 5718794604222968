import { useSignal } from "@preact/signals";
import { Field, FormCard, Page, PasswordField } from "../components";
import { here, Link, navigate, safeNext } from "../router";
import { client } from "../client";

export function Register() {
  const name = useSignal("");
  const email = useSignal("");
  const password = useSignal("");
  const next = here.value.query.get("next");

  async function register() {
    await client.register({ name: name.value, email: email.value, password: password.value });
    navigate(safeNext(next), true);
  }

  const signInHref = next ? "/signin?next=" + encodeURIComponent(next) : "/signin";
  return (
    <Page title="Create account">
      <FormCard action={register} submit="Create account">
        <Field id="register-name" label="Name" autocomplete="name" maxLength={100} value={name} />
        <Field id="register-email" label="Email" type="email" autocomplete="email" value={email} />
        <PasswordField id="register-password" value={password} isNew />
      </FormCard>
      <p>
        Already have an account? <Link href={signInHref}>Sign in</Link>
      </p>
    </Page>
  );
}
