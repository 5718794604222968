import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { Page } from "./components";
import { Register } from "./pages/Register";
import { SignIn } from "./pages/SignIn";
import { Editor } from "./editor/Editor";
import { Account } from "./pages/Account";
import { DataSources } from "./pages/DataSources";
import { ForgotPassword } from "./pages/ForgotPassword";
import { History } from "./pages/History";
import { Members } from "./pages/Members";
import { Preview } from "./pages/Preview";
import { ResetPassword } from "./pages/ResetPassword";
import { Workspace } from "./pages/Workspace";
import { Workspaces } from "./pages/Workspaces";
import { here, Link, navigate, safeNext, signInPath } from "./router";
import { signOut, user } from "./client";

const PUBLIC = new Set(["/signin", "/register", "/forgot-password", "/reset-password"]);
/** Pages a signed-in person is sent on from (to where they were going). */
const SIGN_IN_PAGES = new Set(["/signin", "/register"]);

function Header() {
  const s = user.value;
  const busy = useSignal(false);
  async function leave() {
    busy.value = true;
    await signOut();
    busy.value = false;
    navigate("/signin", true);
  }
  return (
    <header class="bar">
      <Link href="/" class="brand">
        Coform
      </Link>
      {s && (
        <div class="who">
          <Link href="/account" aria-label={`Your account: ${s.name}`}>
            {s.name}
          </Link>
          <button type="button" class="secondary" onClick={leave} disabled={busy.value}>
            Sign out
          </button>
        </div>
      )}
    </header>
  );
}

function NotFound() {
  return (
    <Page title="Page not found">
      <p>
        There is nothing at this address. <Link href="/">Go to your workspaces</Link>.
      </p>
    </Page>
  );
}

function Route(props: { path: string }) {
  const { path } = props;
  if (path === "/signin") return <SignIn />;
  if (path === "/register") return <Register />;
  if (path === "/forgot-password") return <ForgotPassword />;
  if (path === "/reset-password") return <ResetPassword />;
  if (path === "/") return <Workspaces />;
  if (path === "/account") return <Account />;
  const m = /^\/(workspaces|templates)\/([^/]+)(?:\/(members|data-sources|preview|history))?\/?$/.exec(path);
  if (!m) return <NotFound />;
  const id = decodeURIComponent(m[2]);
  const page = m[1] + "/" + (m[3] ?? "");
  if (page === "workspaces/") return <Workspace id={id} />;
  if (page === "workspaces/members") return <Members id={id} />;
  if (page === "workspaces/data-sources") return <DataSources id={id} />;
  if (page === "templates/") return <Editor id={id} />;
  if (page === "templates/preview") return <Preview id={id} />;
  if (page === "templates/history") return <History id={id} />;
  return <NotFound />;
}

export function App() {
  const { path, query } = here.value;
  const signedIn = user.value !== null;
  const isPublic = PUBLIC.has(path);
  const blocked = !signedIn && !isPublic;
  const leave = signedIn && SIGN_IN_PAGES.has(path);

  useEffect(() => {
    if (blocked) {
      // Signed out: sign in first, then come back to the page asked for.
      navigate(signInPath(path + location.search), true);
    } else if (leave) {
      navigate(safeNext(query.get("next")), true);
    }
  }, [blocked, leave, path]);

  return (
    <>
      <Header />
      <main id="main">{blocked || leave ? null : <Route path={path} />}</main>
    </>
  );
}
