import { Page } from "../components";

// Placeholder: this page is being built.
export function ForgotPassword() {
  return <Page title="ForgotPassword">{null}</Page>;
}
