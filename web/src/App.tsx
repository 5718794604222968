import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { Page } from "./components";
import { Register } from "./pages/Register";
import { SignIn } from "./pages/SignIn";
import { TemplatePage } from "./pages/TemplatePage";
import { Workspaces } from "./pages/Workspaces";
import { here, Link, navigate, safeNext, signInPath } from "./router";
import { session, signOut } from "./session";

const PUBLIC = new Set(["/signin", "/register"]);

function Header() {
  const s = session.value;
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
          <span>{s.user.name}</span>
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
  if (path === "/") return <Workspaces />;
  const m = /^\/templates\/([^/]+)\/?$/.exec(path);
  if (m) return <TemplatePage id={decodeURIComponent(m[1])} />;
  return <NotFound />;
}

export function App() {
  const { path, query } = here.value;
  const signedIn = session.value !== null;
  const isPublic = PUBLIC.has(path);
  const blocked = !signedIn && !isPublic;

  useEffect(() => {
    if (blocked) {
      // Signed out: sign in first, then come back to the page asked for.
      navigate(signInPath(path + location.search), true);
    } else if (signedIn && isPublic) {
      navigate(safeNext(query.get("next")), true);
    }
  }, [blocked, signedIn, isPublic, path]);

  return (
    <>
      <Header />
      <main id="main">{blocked || (signedIn && isPublic) ? null : <Route path={path} />}</main>
    </>
  );
}
