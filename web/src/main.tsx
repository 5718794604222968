import { render } from "preact";
import { App } from "./App";
import "./styles.css";

render(<App />, document.getElementById("app")!);

// The offline app shell (public/sw.js): pages open without a network once
// visited. Only in builds: the dev server's files are not an app shell.
// The page's CSP allows it without a worker-src rule: workers fall back
// to script-src 'self', and /sw.js is on this origin.
if (import.meta.env.PROD && "serviceWorker" in navigator) {
  addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch((e: unknown) => {
      console.warn("The offline app shell is not available:", e);
    });
  });
}
