// The page's one SDK client, and the signed-in user as a signal.
//
// Tokens live in sessionStorage: per tab (two tabs may be two people), kept
// across reloads, gone when the tab closes. Refresh tokens rotate on every
// use, so there is exactly one CoformClient per page.
import { signal } from "@preact/signals";
import { CoformClient, CoformError, localStorageStorage, type SignOutReason, type User } from "@coform/sdk";

const KEY = "coform.auth";

function storedUser(): User | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    const v = raw ? (JSON.parse(raw) as { user?: User; refreshToken?: string }) : null;
    return v && typeof v.refreshToken === "string" && v.user ? v.user : null;
  } catch {
    return null;
  }
}

export const client = new CoformClient({
  baseUrl: location.origin,
  storage: localStorageStorage(KEY, sessionStorage),
});

/** Who is signed in on this tab (null: nobody). */
export const user = signal<User | null>(storedUser());

/** Why the last session ended, when it was not the user's own sign-out. */
export const endedBecause = signal<SignOutReason | null>(null);

client.on("signedIn", (u) => {
  endedBecause.value = null;
  user.value = u;
});
client.on("refreshed", (u) => (user.value = u));
client.on("signedOut", ({ reason }) => {
  endedBecause.value = reason === "logout" ? null : reason;
  user.value = null;
});

export async function signOut(): Promise<void> {
  try {
    await client.logout();
  } catch {
    // An expired or revoked session: the tokens are dropped either way.
  }
  user.value = null;
}

/** Per-field messages of a validation error, if any. */
export function fieldErrors(e: unknown): Array<{ field: string; message: string }> {
  if (!(e instanceof CoformError) || !Array.isArray(e.details)) return [];
  return e.details.filter(
    (d): d is { field: string; message: string } =>
      typeof d === "object" && d !== null && typeof d.field === "string" && typeof d.message === "string",
  );
}

/** A message for a person, not a developer. */
export function describe(e: unknown): string {
  if (e instanceof CoformError) {
    if (e.code === "network_error") return "The server could not be reached. Check your connection.";
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

export { CoformError };
