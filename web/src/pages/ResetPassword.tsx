import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { Field, FormCard, Page, PasswordField } from "../components";
import { here, Link } from "../router";
import { client } from "../client";

export function ResetPassword() {
  // A link may carry the token; otherwise it is copied from the e-mail.
  const fromLink = here.value.query.get("token") ?? "";
  const token = useSignal(fromLink);
  const password = useSignal("");
  const done = useSignal(false);
  const message = useRef<HTMLParagraphElement>(null);

  // The form and its button are gone: read the outcome next.
  useEffect(() => {
    if (done.value) message.current?.focus();
  }, [done.value]);

  async function reset() {
    await client.resetPassword(token.value.trim(), password.value);
    password.value = "";
    done.value = true;
  }

  return (
    <Page title="Set a new password">
      {done.value ? (
        <p role="status" tabIndex={-1} ref={message}>
          Your password has been changed, and every session of your account has been signed out.{" "}
          <Link href="/signin">Sign in with your new password</Link>
        </p>
      ) : (
        <>
          <FormCard action={reset} submit="Set new password">
            {!fromLink && (
              <Field
                id="reset-token"
                label="Reset token"
                hint="The token in the e-mail we sent you."
                autocomplete="one-time-code"
                value={token}
              />
            )}
            <PasswordField id="reset-password" label="New password" value={password} isNew />
          </FormCard>
          <p>
            Token expired or already used? <Link href="/forgot-password">Send me a new one</Link>
          </p>
        </>
      )}
    </Page>
  );
}
