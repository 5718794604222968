import { Page } from "../components";

// Placeholder: the editor is being built.
export function Editor(props: { id: string }) {
  return <Page title="Editor">{props.id}</Page>;
}
