// The signed-in session: tokens live in sessionStorage (per tab, gone when
// the tab closes) and are mirrored in a signal the UI reads.
import { computed, signal } from "@preact/signals";
import { ApiError, auth, request, type Template, type Tokens, type Workspace } from "./api";

const KEY = "coform.session";

export interface Session {
  accessToken: string;
  refreshToken: string;
  user: Tokens["user"];
}

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Partial<Session>;
    return s.accessToken && s.refreshToken && s.user ? (s as Session) : null;
  } catch {
    return null;
  }
}

export const session = signal<Session | null>(load());
export const signedIn = computed(() => session.value !== null);

function save(s: Session | null): void {
  session.value = s;
  try {
    if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage unavailable (private mode quotas): the session lasts this page.
  }
}

export function start(t: Tokens): void {
  save({ accessToken: t.accessToken, refreshToken: t.refreshToken, user: t.user });
}

let refreshing: Promise<boolean> | null = null;

/** Trade the refresh token for new tokens, once even if asked concurrently. */
function refresh(): Promise<boolean> {
  const s = session.value;
  if (!s) return Promise.resolve(false);
  refreshing ??= auth
    .refresh(s.refreshToken)
    .then((t) => {
      start(t);
      return true;
    })
    .catch(() => {
      save(null);
      return false;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** An authenticated request; an expired access token is refreshed once. */
export async function authed<T>(method: string, path: string, body?: unknown): Promise<T> {
  const s = session.value;
  if (!s) throw new ApiError(401, "unauthorized", "Sign in to continue.");
  try {
    return await request<T>(method, path, { body, token: s.accessToken });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    if (!(await refresh()) || !session.value) throw e;
    return request<T>(method, path, { body, token: session.value.accessToken });
  }
}

export async function signOut(): Promise<void> {
  const s = session.value;
  if (s) {
    try {
      await auth.logout(s.accessToken);
    } catch {
      // An expired or revoked session: the tokens are dropped either way.
    }
  }
  save(null);
}

export const api = {
  workspaces: () => authed<Workspace[]>("GET", "/api/workspaces"),
  createWorkspace: (name: string, description: string) =>
    authed<Workspace>("POST", "/api/workspaces", { name, description }),
  template: (id: string) => authed<Template>("GET", "/api/templates/" + encodeURIComponent(id)),
};
