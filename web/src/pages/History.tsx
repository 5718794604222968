import { Page } from "../components";

// Placeholder: this page is being built.
export function History(props: { id: string }) {
  return <Page title="History">{props.id}</Page>;
}
