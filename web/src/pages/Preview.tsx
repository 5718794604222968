import { Page } from "../components";

// Placeholder: this page is being built.
export function Preview(props: { id: string }) {
  return <Page title="Preview">{props.id}</Page>;
}
