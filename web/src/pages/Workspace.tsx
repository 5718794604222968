import { Page } from "../components";

// Placeholder: this page is being built.
export function Workspace(props: { id: string }) {
  return <Page title="Workspace">{props.id}</Page>;
}
