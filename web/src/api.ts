// A small typed client for the same-origin Coform REST API.
// Field names follow the server's JSON (camelCase).

export interface User {
  id: string;
  email: string;
  name: string;
  color: string;
  emailVerified: boolean;
  pendingEmail?: string | null;
  lastLogin: number | null;
  createdAt: number;
  updatedAt: number;
  profile: Record<string, unknown>;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  tokenType: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  user: User;
}

export type Role = "owner" | "admin" | "editor" | "viewer";

export interface Workspace {
  id: string;
  name: string;
  description: string;
  createdBy: string;
  settings: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  /** The caller's role in this workspace. */
  role?: Role;
}

export interface Template {
  id: string;
  workspaceId: string;
  name: string;
  description: string;
  tags: string[];
  isPublic: boolean;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
  version: number;
  content?: unknown;
}

export interface FieldError {
  field: string;
  message: string;
}

/** An error answer: `{ "error": { code, message, details } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** Per-field messages of a validation error, if any. */
  get fields(): FieldError[] {
    return Array.isArray(this.details)
      ? this.details.filter(
          (d): d is FieldError =>
            typeof d === "object" && d !== null && "field" in d && "message" in d,
        )
      : [];
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = "http_" + res.status;
  let message = res.statusText || "Request failed";
  let details: unknown = null;
  try {
    const body = (await res.json()) as {
      error?: { code?: string; message?: string; details?: unknown };
    };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      details = body.error.details ?? null;
    }
  } catch {
    // Not JSON (a proxy error page, say): keep the status text.
  }
  return new ApiError(res.status, code, message, details);
}

/** One request; JSON in, JSON (or nothing, for 204) out. */
export async function request<T>(
  method: string,
  path: string,
  options: { body?: unknown; token?: string } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.token) headers.Authorization = "Bearer " + options.token;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
  }
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const auth = {
  login: (email: string, password: string) =>
    request<Tokens>("POST", "/api/auth/login", { body: { email, password } }),
  register: (name: string, email: string, password: string) =>
    request<Tokens>("POST", "/api/auth/register", { body: { email, password, name } }),
  refresh: (refreshToken: string) =>
    request<Tokens>("POST", "/api/auth/refresh", { body: { refreshToken } }),
  logout: (token: string) => request<void>("POST", "/api/auth/logout", { token }),
};
