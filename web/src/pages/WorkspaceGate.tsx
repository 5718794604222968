// What a workspace's pages show until the workspace is loaded: a loading
// note, the error with "Try again", or "not found" (which is also what a
// non-member gets: the server does not say the workspace exists).
import { CoformError } from "../client";
import { ErrorAlert, Page } from "../components";
import { Link } from "../router";

export function WorkspaceGate(props: { title: string; loading: string; error: unknown; retry: () => void }) {
  const e = props.error;
  const missing = e instanceof CoformError && e.code === "not_found";
  return (
    <Page title={missing ? "Workspace not found" : props.title}>
      {missing ? (
        <p>This workspace does not exist, or you are not a member of it.</p>
      ) : (
        <>
          <ErrorAlert error={e} />
          {e ? (
            <button type="button" onClick={props.retry}>
              Try again
            </button>
          ) : (
            <p role="status">{props.loading}</p>
          )}
        </>
      )}
      <p>
        <Link href="/">All workspaces</Link>
      </p>
    </Page>
  );
}
