// Workspace roles as the server ranks them: owner > admin > editor > viewer.
// What each may do is decided by the server; these checks only hide
// controls that would be refused anyway.
import type { Role } from "@coform/sdk";

/** Highest first, the order of a role picker. */
export const ROLES: readonly Role[] = ["owner", "admin", "editor", "viewer"];

const RANK: Record<Role, number> = { viewer: 0, editor: 1, admin: 2, owner: 3 };

/** Whether `role` is `needed` or higher. */
export function atLeast(role: Role | undefined, needed: Role): boolean {
  return role !== undefined && RANK[role] >= RANK[needed];
}

export function roleLabel(role: Role): string {
  return role.charAt(0).toUpperCase() + role.slice(1);
}

/** The roles `mine` may give: only owners make owners. */
export function grantable(mine: Role | undefined): Array<{ value: Role; label: string }> {
  return ROLES.filter((r) => r !== "owner" || mine === "owner").map((r) => ({ value: r, label: roleLabel(r) }));
}
