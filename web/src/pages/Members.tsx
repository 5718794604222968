import { Page } from "../components";

// Placeholder: this page is being built.
export function Members(props: { id: string }) {
  return <Page title="Members">{props.id}</Page>;
}
