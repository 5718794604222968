import { Page } from "../components";

// Placeholder: this page is being built.
export function ResetPassword() {
  return <Page title="ResetPassword">{null}</Page>;
}
