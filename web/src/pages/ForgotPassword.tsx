import { useSignal } from "@preact/signals";
import { Field, FormCard, Page } from "../components";
import { Link } from "../router";
import { client } from "../client";
import "./workspace.css";

export function ForgotPassword() {
  const email = useSignal("");
  const sent = useSignal("");

  async function send() {
    sent.value = "";
    await client.forgotPassword(email.value.trim());
    // The same words whether or not the address has an account, as the
    // server's answer is the same: the page must not tell them apart.
    sent.value = "If an account uses this address, an e-mail with a reset token is on its way.";
  }

  return (
    <Page title="Forgot your password?">
      <p>Enter the e-mail address of your account and we will send you a token to set a new password with.</p>
      <FormCard
        action={send}
        submit="Send reset link"
        after={
          <p role="status" class="note">
            {sent.value && (
              <>
                {sent.value} <Link href="/reset-password">Enter the token</Link>
              </>
            )}
          </p>
        }
      >
        <Field id="forgot-email" label="Email" type="email" autocomplete="username" value={email} />
      </FormCard>
      <p>
        Remembered it? <Link href="/signin">Sign in</Link>
      </p>
    </Page>
  );
}
