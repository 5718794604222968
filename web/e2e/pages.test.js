// The pages around the editor, in a real browser against a real server:
// a workspace's template list (search, create, rename, delete, export,
// import), its members, forgotten passwords, the live preview and the
// version history. What a page shows is checked against what the server
// says over REST, and what a page does is checked on the server.

import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  axe,
  expectAttached,
  expectCount,
  expectPath,
  expectText,
  expectVisible,
  Harness,
  here,
  PASSWORD,
  screenshot,
  signIn,
  waitUntil,
} from "./harness.js";

/**
 * Template content from a list of `{ id, type, label, parent?, properties? }`,
 * in list order within each parent.
 */
function formContent(list) {
  const components = {};
  const counts = new Map();
  for (const c of list) {
    const parent = c.parent ?? null;
    const n = (counts.get(parent) ?? 0) + 1;
    counts.set(parent, n);
    components[c.id] = {
      id: c.id,
      type: c.type,
      label: c.label,
      parent,
      // Fractional indices (base-62 digits, never ending in 0).
      index: `V${n}`,
      properties: c.properties ?? {},
      validation: {},
    };
  }
  return { meta: {}, components };
}

describe("the pages around the editor", () => {
  /** @type {Harness} */
  let h;
  // Five accounts in all (with Ivan and Fay below): the server limits
  // sign-ups per address per hour.
  let olivia, ed, vic;

  before(async () => {
    h = await Harness.start();
    olivia = await h.user("Olivia Owner");
    ed = await h.user("Ed Editor");
    vic = await h.user("Vic Viewer");
  });
  after(() => h?.close());

  /** A workspace of Olivia's with Ed as editor and Vic as viewer. */
  async function team(name) {
    const ws = await h.workspace(olivia, name);
    await h.addMember(olivia, ws.id, ed, "editor");
    await h.addMember(olivia, ws.id, vic, "viewer");
    return ws;
  }

  /** Signs `person` in, in a context of their own, and opens `path`. */
  async function open(person, path) {
    const { context, page } = await h.newPage();
    await signIn(page, person);
    await page.goto(path);
    return { context, page };
  }

  // ---------------------------------------------------------- workspace

  /** The template list of the workspace page. */
  function templateList(page) {
    return page.getByRole("region", { name: "Templates", exact: true });
  }

  /** Names of the templates the page lists, in page order. */
  function listedNames(page) {
    return templateList(page).getByRole("listitem").getByRole("link").allTextContents();
  }

  /** The template names REST lists for the workspace (and the search `q`), in its order. */
  async function restNames(person, workspaceId, q) {
    const query = new URLSearchParams({ workspaceId });
    if (q) query.set("q", q);
    const r = await h.api(person, "GET", `/api/templates?${query}`, undefined, 200);
    return r.items.map((t) => t.name);
  }

  /** Waits until the page lists exactly `expected` (names, in order). */
  async function expectListed(page, expected, what) {
    let last;
    await waitUntil(
      async () => {
        last = (await listedNames(page)).map((n) => n.trim());
        return JSON.stringify(last) === JSON.stringify(expected);
      },
      `${what}: the template list ${JSON.stringify(expected)}`,
      { detail: () => last },
    );
  }

  test("the workspace page lists the workspace's templates, and search narrows the list", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Planning");
      for (const name of ["Budget request", "Holiday plan", "Budget review", "Onboarding checklist"]) {
        await h.template(olivia, ws.id, name);
      }
      // Another workspace's template is not listed here.
      const other = await h.workspace(olivia, "Elsewhere");
      await h.template(olivia, other.id, "Budget elsewhere");

      const { page } = await open(olivia, `/workspaces/${ws.id}`);
      await expectVisible(page.getByRole("heading", { name: "Planning", level: 1 }), "the workspace's name as the heading");
      const all = await restNames(olivia, ws.id);
      assert.equal(all.length, 4, `REST lists ${JSON.stringify(all)}`);
      await expectListed(page, all, "the workspace page");
      await expectText(page.getByRole("status").filter({ hasText: /templates?\./ }), "4 templates.", "the count");

      // The search asks the server; the page shows what the server found.
      await page.getByLabel("Search templates", { exact: true }).fill("budget");
      const found = await restNames(olivia, ws.id, "budget");
      assert.deepEqual([...found].sort(), ["Budget request", "Budget review"], "REST's search for budget");
      await expectListed(page, found, "searching for budget");
      await expectText(
        page.getByRole("status").filter({ hasText: /match/ }),
        "2 templates match “budget”.",
        "the count of a search",
      );
      await screenshot(page, "pages-workspace-search");

      await page.getByLabel("Search templates", { exact: true }).fill("nothing like this");
      await expectText(
        page.getByRole("status").filter({ hasText: /match/ }),
        "No templates match “nothing like this”.",
        "a search that finds nothing",
      );
      await expectCount(templateList(page).getByRole("listitem"), 0, "rows of a search that finds nothing");

      // Cleared, everything is back.
      await page.getByLabel("Search templates", { exact: true }).fill("");
      await expectListed(page, all, "the cleared search");
      await screenshot(page, "pages-workspace");
      await axe(page, "the workspace page");
    }));

  test("a template created on the workspace page opens in the editor and is on the server", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Creating");
      const { page } = await open(ed, `/workspaces/${ws.id}`);
      await page.getByLabel("Template name", { exact: true }).fill("Visitor registration");
      await page.getByRole("button", { name: "Create template", exact: true }).click();
      await expectPath(page, /^\/templates\/[^/]+$/, "a new template opens in its editor");
      await expectAttached(page.getByRole("region", { name: "Canvas", exact: true }), "the new template's canvas");
      const id = decodeURIComponent(here(page).split("/")[2]);
      const stored = await h.api(olivia, "GET", `/api/templates/${id}`, undefined, 200);
      assert.equal(stored.name, "Visitor registration");
      assert.equal(stored.workspaceId, ws.id);
      assert.deepEqual(await restNames(olivia, ws.id), ["Visitor registration"]);

      await page.goto(`/workspaces/${ws.id}`);
      await expectListed(page, ["Visitor registration"], "the workspace page after creating a template");
    }));

  test("a template is renamed, and deleted after confirming, on the server too", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Tidying");
      const keep = await h.template(olivia, ws.id, "Holiday plan");
      const doomed = await h.template(olivia, ws.id, "Old survey");
      const { page } = await open(olivia, `/workspaces/${ws.id}`);
      await expectListed(page, await restNames(olivia, ws.id), "the workspace page");

      // Rename: the row's form, focused on its name.
      await page.getByRole("button", { name: "Rename Holiday plan", exact: true }).click();
      const name = templateList(page).getByLabel("Name", { exact: true });
      await expectVisible(name, "the rename field");
      assert.equal(await name.inputValue(), "Holiday plan", "the rename field starts from the current name");
      await name.fill("Holiday plan 2026");
      await templateList(page).getByRole("button", { name: "Save", exact: true }).click();
      await expectVisible(
        templateList(page).getByRole("link", { name: "Holiday plan 2026", exact: true }),
        "the renamed row",
      );
      await expectText(page.getByRole("status").filter({ hasText: /Renamed/ }), "Renamed to “Holiday plan 2026”.", "the rename's status");
      assert.equal((await h.api(olivia, "GET", `/api/templates/${keep.id}`, undefined, 200)).name, "Holiday plan 2026");

      // Delete: asked first; "Cancel" keeps it.
      await page.getByRole("button", { name: "Delete Old survey", exact: true }).click();
      const question = page.getByRole("group").filter({ hasText: "Delete “Old survey” with its history?" });
      await expectVisible(question, "the question before deleting");
      await question.getByRole("button", { name: "Cancel", exact: true }).click();
      await expectCount(question, 0, "the question after Cancel");
      assert.equal((await h.request(olivia, "GET", `/api/templates/${doomed.id}`)).status, 200, "Cancel deleted the template");

      await page.getByRole("button", { name: "Delete Old survey", exact: true }).click();
      await screenshot(page, "pages-workspace-delete-question");
      await question.getByRole("button", { name: "Yes, delete", exact: true }).click();
      await expectListed(page, ["Holiday plan 2026"], "the workspace page after deleting");
      let status;
      await waitUntil(
        async () => {
          status = (await h.request(olivia, "GET", `/api/templates/${doomed.id}`)).status;
          return status === 404;
        },
        "the deleted template to be gone from the server",
        { detail: () => status },
      );
      assert.deepEqual(await restNames(olivia, ws.id), ["Holiday plan 2026"]);
    }));

  test("a template is exported to a file, and that file imported back as a new template", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Moving");
      const source = await h.template(olivia, ws.id, "Budget request", [
        { id: "amount", type: "number", label: "Amount" },
        { id: "reason", type: "textarea", label: "Reason" },
      ]);
      const { page } = await open(olivia, `/workspaces/${ws.id}`);
      await expectListed(page, ["Budget request"], "the workspace page");

      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: "Export Budget request", exact: true }).click(),
      ]);
      assert.equal(download.suggestedFilename(), "Budget request.coform.json");
      const file = await download.path();
      const exported = JSON.parse(fs.readFileSync(file, "utf8"));
      assert.equal(exported.format, "coform-template");
      assert.equal(exported.template?.name, "Budget request", "the file names the template");
      assert.deepEqual(
        Object.values(exported.content?.components ?? {}).map((c) => [c.id, c.type, c.label]).sort(),
        [
          ["amount", "number", "Amount"],
          ["reason", "textarea", "Reason"],
        ],
        "the file's components",
      );
      await expectText(
        page.getByRole("status").filter({ hasText: /Downloaded/ }),
        "Downloaded Budget request.coform.json.",
        "the export's status",
      );

      await page.getByLabel("Import template file", { exact: true }).setInputFiles(file);
      await page.getByRole("button", { name: "Import", exact: true }).click();
      await expectText(
        page.getByRole("status").filter({ hasText: /Imported/ }),
        /^Imported “Budget request”\./,
        "the import's status",
      );
      await expectListed(page, await restNames(olivia, ws.id), "the workspace page after the import");
      const listed = await h.api(olivia, "GET", `/api/templates?workspaceId=${ws.id}`, undefined, 200);
      const copies = listed.items.filter((x) => x.name === "Budget request" && x.id !== source.id);
      assert.equal(copies.length, 1, `one new template on the server: ${JSON.stringify(listed.items)}`);
      assert.equal((await listedNames(page)).filter((n) => n.trim() === "Budget request").length, 2, "both rows listed");
      const copied = await h.components(olivia, copies[0].id);
      assert.deepEqual(
        Object.values(copied).map((c) => [c.type, c.label]).sort(),
        [
          ["number", "Amount"],
          ["textarea", "Reason"],
        ],
        "the imported template's components",
      );
      // The status links to the new template.
      await page.getByRole("link", { name: "Open Budget request", exact: true }).click();
      await expectPath(page, `/templates/${copies[0].id}`, "the link to the imported template");
    }));

  test("a broken template file is refused with an alert and creates nothing", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Refusing");
      await h.template(olivia, ws.id, "Only one");
      const { page } = await open(olivia, `/workspaces/${ws.id}`);
      await expectListed(page, ["Only one"], "the workspace page");
      const input = page.getByLabel("Import template file", { exact: true });
      const importButton = page.getByRole("button", { name: "Import", exact: true });

      // Not JSON at all: refused in the page.
      await input.setInputFiles({ name: "garbled.coform.json", mimeType: "application/json", buffer: Buffer.from("{ this is not") });
      await importButton.click();
      const alert = page.getByRole("alert").filter({ hasText: "garbled.coform.json" });
      await expectVisible(alert, "an alert about the file that is not JSON");
      await expectText(alert, /“garbled\.coform\.json” was not imported\.\s*The file is not JSON/, "the alert's words");
      await screenshot(page, "pages-workspace-broken-import");
      await axe(page, "the workspace page with an import alert");

      // JSON, but not a template file: refused by the server, which says why.
      const wrong = { format: "something-else", version: 1, template: { name: "Wrong" }, content: { meta: {}, components: {} } };
      await input.setInputFiles({ name: "wrong.coform.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(wrong)) });
      await importButton.click();
      const refused = page.getByRole("alert").filter({ hasText: "wrong.coform.json" });
      await expectVisible(refused, "an alert about the file the server refused");
      await expectText(refused, /“wrong\.coform\.json” was not imported\.[\s\S]*format/, "the server's reason");

      assert.deepEqual(await restNames(olivia, ws.id), ["Only one"], "a refused import created a template");
      await expectListed(page, ["Only one"], "the workspace page after the refused imports");
      assert.equal(await page.getByRole("status").filter({ hasText: /Imported/ }).count(), 0, "a refused import says it imported");
    }));

  test("a viewer sees the template list but no create, import, rename or delete", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Looking");
      await h.template(olivia, ws.id, "First form");
      await h.template(ed, ws.id, "Second form");
      const { page } = await open(vic, `/workspaces/${ws.id}`);
      await expectListed(page, await restNames(vic, ws.id), "the viewer's workspace page");
      assert.equal((await listedNames(page)).length, 2);
      await expectVisible(page.getByText("Your role: Viewer", { exact: true }), "the viewer's role");
      // The list is there, so its controls would be too.
      for (const [what, locator] of [
        ["the Template name field", page.getByLabel("Template name", { exact: true })],
        ["the Create template button", page.getByRole("button", { name: "Create template" })],
        ["the Import template file field", page.getByLabel("Import template file")],
        ["Rename buttons", page.getByRole("button", { name: /^Rename/ })],
        ["Delete buttons", page.getByRole("button", { name: /^Delete/ })],
      ]) {
        assert.equal(await locator.count(), 0, `a viewer is offered ${what}`);
      }
      await screenshot(page, "pages-workspace-viewer");
      await axe(page, "the workspace page of a viewer");
    }));

  test("an owner deletes the workspace after confirming; others are not offered it", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Short-lived");
      await h.template(olivia, ws.id, "Soon gone");
      const editor = await open(ed, `/workspaces/${ws.id}`);
      await expectVisible(editor.page.getByRole("heading", { name: "Short-lived", level: 1 }), "the editor's workspace page");
      assert.equal(await editor.page.getByRole("button", { name: /^Delete workspace/ }).count(), 0, "an editor is offered to delete the workspace");

      const { page } = await open(olivia, `/workspaces/${ws.id}`);
      await page.getByRole("button", { name: "Delete workspace Short-lived" }).click();
      await expectVisible(page.getByText(/Delete “Short-lived” with all its templates/), "the question before deleting");
      await page.getByRole("button", { name: "Yes, delete the workspace" }).click();
      await waitUntil(() => new URL(page.url()).pathname === "/", "the owner back on the workspace list", {
        detail: () => page.url(),
      });
      const r = await h.request(olivia, "GET", `/api/workspaces/${ws.id}`);
      assert.equal(r.status, 404, `the workspace is still there: ${JSON.stringify(r.body)}`);
      await expectVisible(page.getByRole("heading", { name: "Workspaces", level: 1 }), "the workspace list");
      assert.equal(await page.getByRole("link", { name: "Short-lived" }).count(), 0, "the deleted workspace still listed");
    }));

  // ---------------------------------------------------------- members

  /** The workspace's members on the server: `{ email: role }`. */
  async function restMembers(workspaceId) {
    const w = await h.api(olivia, "GET", `/api/workspaces/${workspaceId}`, undefined, 200);
    return Object.fromEntries(w.members.map((m) => [m.email, m.role]));
  }

  /** Waits until the server says `email` has `role` (undefined: not a member). */
  async function expectMember(workspaceId, email, role, what) {
    let last;
    await waitUntil(
      async () => {
        last = await restMembers(workspaceId);
        return last[email] === role;
      },
      `${what}: ${email} ${role === undefined ? "not a member" : `a member as ${role}`} on the server`,
      { detail: () => last },
    );
  }

  test("an owner invites a member, changes their role and removes them; the last owner stays", (t) =>
    h.diagnose(t, async () => {
      const ws = await h.workspace(olivia, "Staffing");
      const ivan = await h.user("Ivan Invitee");
      const { page } = await open(olivia, `/workspaces/${ws.id}/members`);
      await expectVisible(page.getByRole("heading", { name: "Members of Staffing", level: 1 }), "the members heading");
      const members = page.getByRole("region", { name: "Current members", exact: true });
      const row = (name) => members.getByRole("row").filter({ has: page.getByRole("rowheader", { name }) });

      // A verified account becomes a member at once.
      await page.getByLabel("Email", { exact: true }).fill(ivan.email);
      await page.getByLabel("Role", { exact: true }).selectOption("editor");
      await page.getByRole("button", { name: "Invite", exact: true }).click();
      await expectText(
        page.getByRole("status").filter({ hasText: /is now a member/ }),
        `Ivan Invitee (${ivan.email}) is now a member as Editor.`,
        "the invitation's status",
      );
      await expectVisible(row("Ivan Invitee"), "Ivan's row among the members");
      await expectMember(ws.id, ivan.email, "editor", "after the invitation");
      assert.equal(await page.getByLabel("Role of Ivan Invitee", { exact: true }).inputValue(), "editor");

      // His role: choose, then Save.
      await page.getByLabel("Role of Ivan Invitee", { exact: true }).selectOption("viewer");
      await page.getByRole("button", { name: "Save role of Ivan Invitee", exact: true }).click();
      await expectText(
        page.getByRole("status").filter({ hasText: /is now/ }).filter({ hasNotText: /member/ }),
        "Ivan Invitee is now Viewer.",
        "the role change's status",
      );
      await expectMember(ws.id, ivan.email, "viewer", "after the role change");
      await expectCount(page.getByRole("button", { name: "Save role of Ivan Invitee" }), 0, "the Save button of a saved role");

      // An address without an account is invited, and the invitation cancelled.
      const stranger = h.email("Nobody Yet");
      await page.getByLabel("Email", { exact: true }).fill(stranger);
      await page.getByLabel("Role", { exact: true }).selectOption("viewer");
      await page.getByRole("button", { name: "Invite", exact: true }).click();
      const pending = page.getByRole("region", { name: "Pending invitations", exact: true });
      await expectVisible(pending.getByRole("rowheader", { name: stranger }), "the pending invitation");
      const invitations = await h.api(olivia, "GET", `/api/workspaces/${ws.id}/invitations`, undefined, 200);
      assert.deepEqual(invitations.map((i) => [i.email, i.role]), [[stranger, "viewer"]], "the server's invitations");
      await screenshot(page, "pages-members");
      await axe(page, "the members page of an owner");
      await page.getByRole("button", { name: `Cancel invitation of ${stranger}`, exact: true }).click();
      await expectCount(pending.getByRole("rowheader", { name: stranger }), 0, "the cancelled invitation's row");
      assert.deepEqual(await h.api(olivia, "GET", `/api/workspaces/${ws.id}/invitations`, undefined, 200), []);

      // Removing asks first.
      await page.getByRole("button", { name: "Remove Ivan Invitee", exact: true }).click();
      const question = page.getByRole("group").filter({ hasText: "Remove Ivan Invitee from Staffing?" });
      await expectVisible(question, "the question before removing");
      await question.getByRole("button", { name: "Yes, remove", exact: true }).click();
      await expectCount(row("Ivan Invitee"), 0, "Ivan's row after his removal");
      await expectMember(ws.id, ivan.email, undefined, "after the removal");

      // The last owner cannot step down: the server refuses, and the page says so.
      await page.getByLabel("Role of Olivia Owner", { exact: true }).selectOption("editor");
      await page.getByRole("button", { name: "Save role of Olivia Owner", exact: true }).click();
      const refusal = page.getByRole("alert");
      await expectVisible(refusal, "an alert about the refused role change");
      await expectText(
        refusal,
        /The role of Olivia Owner was not changed\.\s*a workspace must keep at least one owner/,
        "the refusal's words",
      );
      assert.equal(await page.getByLabel("Role of Olivia Owner", { exact: true }).inputValue(), "owner", "the refused role is still shown as chosen");
      assert.equal((await restMembers(ws.id))[olivia.email], "owner", "the last owner was demoted");
      await screenshot(page, "pages-members-last-owner");
      await axe(page, "the members page with the refusal");
    }));

  test("an editor sees the members but cannot invite, change roles or remove", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Reading members");
      const { page } = await open(ed, `/workspaces/${ws.id}/members`);
      const members = page.getByRole("region", { name: "Current members", exact: true });
      for (const name of ["Olivia Owner", "Ed Editor", "Vic Viewer"]) {
        await expectVisible(members.getByRole("rowheader", { name: new RegExp(`^${name}`) }), `${name}'s row`);
      }
      const vicRow = members.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "Vic Viewer" }) });
      await expectVisible(vicRow.getByRole("cell", { name: "Viewer", exact: true }), "Vic's role as text");
      for (const [what, locator] of [
        ["the invitation form", page.getByRole("button", { name: "Invite", exact: true })],
        ["the Email field", page.getByLabel("Email", { exact: true })],
        ["role pickers", page.getByRole("combobox")],
        ["Remove buttons", page.getByRole("button", { name: /^Remove/ })],
        ["pending invitations", page.getByRole("region", { name: "Pending invitations" })],
      ]) {
        assert.equal(await locator.count(), 0, `an editor is offered ${what}`);
      }
      // One may leave, though.
      await expectVisible(page.getByRole("button", { name: "Leave workspace", exact: true }), "the editor's Leave button");
      await screenshot(page, "pages-members-editor");
      await axe(page, "the members page of an editor");
    }));

  // ---------------------------------------------------------- passwords

  test("a forgotten password is reset through the mailed link", (t) =>
    h.diagnose(t, async () => {
      const fay = await h.user("Fay Forgetful");
      const { page } = await h.newPage();
      await page.goto("/signin");
      await page.getByRole("link", { name: /forgot/i }).click();
      await expectPath(page, "/forgot-password", "the sign-in page's link to reset a password");
      await expectVisible(page.getByRole("heading", { name: "Forgot your password?", level: 1 }), "the heading");
      await page.getByLabel("Email", { exact: true }).fill(fay.email);
      await page.getByRole("button", { name: "Send reset link", exact: true }).click();
      await expectText(page.getByRole("status"), /^If an account uses this address, an e-mail/, "the page's answer");
      await screenshot(page, "pages-forgot-password");
      await axe(page, "the forgot-password page");

      const token = await waitUntil(
        () => h.server.mailedToken(fay.email, "Reset your Coform password"),
        `the reset mail to ${fay.email}`,
      );
      await page.goto(`/reset-password?token=${encodeURIComponent(token)}`);
      await expectVisible(page.getByRole("heading", { name: "Set a new password", level: 1 }), "the reset page's heading");
      // The token came with the link: nobody is asked to type it.
      assert.equal(await page.getByLabel("Reset token").count(), 0, "the reset page asks for the token its link carries");
      await screenshot(page, "pages-reset-password");
      await axe(page, "the reset-password page");
      const fresh = "a brand new passphrase 42";
      await page.getByLabel("New password", { exact: true }).fill(fresh);
      await page.getByRole("button", { name: "Set new password", exact: true }).click();
      await expectText(page.getByRole("status"), /^Your password has been changed/, "the reset's outcome");
      await screenshot(page, "pages-reset-password-done");
      await axe(page, "the reset-password page after the reset");

      // The old password no longer opens the account…
      const old = await h.newPage();
      await old.page.goto("/signin");
      await old.page.getByLabel("Email", { exact: true }).fill(fay.email);
      await old.page.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await old.page.getByRole("button", { name: "Sign in", exact: true }).click();
      await expectVisible(old.page.getByRole("alert"), "an alert about the old password");
      assert.equal(here(old.page), "/signin", "the old password signed in");
      const rest = await h.request(null, "POST", "/api/auth/login", { email: fay.email, password: PASSWORD });
      assert.equal(rest.status, 401, `signing in over REST with the old password: ${JSON.stringify(rest.body)}`);
      // …the new one does.
      await page.getByRole("link", { name: "Sign in with your new password" }).click();
      await expectPath(page, "/signin", "the link to sign in");
      await signIn(page, { ...fay, password: fresh });
      await expectVisible(page.getByRole("banner").getByText("Fay Forgetful"), "Fay's name in the header");
    }));

  // ---------------------------------------------------------- preview

  test("the preview shows every component, at desktop and phone width, and follows edits live", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Previewing");
      const list = [
        { id: "title", type: "heading", label: "Event sign-up" },
        { id: "name", type: "text", label: "Full name" },
        { id: "mail", type: "email", label: "E-mail address" },
        { id: "about", type: "section", label: "About you" },
        { id: "diet", type: "radio", label: "Meal", parent: "about", properties: { options: [{ value: "veg", label: "Vegetarian" }, { value: "any", label: "Anything" }] } },
        { id: "notes", type: "textarea", label: "Anything else?", parent: "about" },
        { id: "send", type: "button", label: "Sign up" },
      ];
      const tpl = await h.api(olivia, "POST", "/api/templates", { workspaceId: ws.id, name: "Event", content: formContent(list) }, 201);
      const { page } = await open(vic, `/templates/${tpl.id}/preview`);
      await expectVisible(page.getByRole("heading", { name: "Preview: Event", level: 1 }), "the preview's heading");
      const frame = page.locator(".preview-frame");
      await expectVisible(frame, "the previewed form");
      await expectVisible(frame.getByRole("heading", { name: "Event sign-up" }), "the heading component");
      await expectVisible(frame.getByLabel("Full name", { exact: true }), "the text field, by its label");
      await expectVisible(frame.getByLabel("E-mail address", { exact: true }), "the e-mail field, by its label");
      await expectVisible(frame.getByRole("group", { name: "About you" }), "the section");
      const section = frame.getByRole("group", { name: "About you" });
      await expectVisible(section.getByRole("radiogroup", { name: "Meal" }), "the radio group, inside the section");
      await expectVisible(section.getByLabel("Vegetarian", { exact: true }), "a radio option");
      await expectVisible(section.getByLabel("Anything else?", { exact: true }), "the long text field, inside the section");
      await expectVisible(frame.getByRole("button", { name: "Sign up", exact: true }), "the button component");

      // The width toggle: one pressed at a time, and the form's width follows.
      const desktop = page.getByRole("button", { name: "Desktop", exact: true });
      const phone = page.getByRole("button", { name: "Phone", exact: true });
      const pressed = async () => [await desktop.getAttribute("aria-pressed"), await phone.getAttribute("aria-pressed")];
      assert.deepEqual(await pressed(), ["true", "false"], "Desktop is pressed at first");
      const wide = (await frame.boundingBox()).width;
      assert.ok(wide > 700, `the desktop preview is ${wide} px wide`);
      await screenshot(page, "pages-preview-desktop");
      await axe(page, "the preview at desktop width");

      await phone.click();
      await waitUntil(async () => (await pressed()).join() === "false,true", "Phone pressed, Desktop not", { detail: pressed });
      let width;
      await waitUntil(
        async () => {
          width = (await frame.boundingBox()).width;
          return Math.abs(width - 390) <= 2;
        },
        "the form at a phone's width (390 px)",
        { detail: () => width },
      );
      await screenshot(page, "pages-preview-phone");
      await axe(page, "the preview at phone width");

      await desktop.click();
      await waitUntil(async () => (await pressed()).join() === "true,false", "Desktop pressed again", { detail: pressed });
      await waitUntil(async () => (await frame.boundingBox()).width === wide, "the desktop width again");

      // An edit made meanwhile (here over REST) shows without a reload.
      const edited = formContent([
        ...list.map((c) => (c.id === "name" ? { ...c, label: "Your name" } : c)),
        { id: "phone", type: "phone", label: "Phone number" },
      ]);
      await h.api(olivia, "PUT", `/api/templates/${tpl.id}`, { content: edited }, 200);
      await expectVisible(frame.getByLabel("Your name", { exact: true }), "the renamed field, live");
      await expectVisible(frame.getByLabel("Phone number", { exact: true }), "the added field, live");
      await expectCount(frame.getByLabel("Full name", { exact: true }), 0, "the field's old label");
    }));

  // ---------------------------------------------------------- history

  test("a version is saved, compared, restored, and the restore undone", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Versions");
      const tpl = await h.template(olivia, ws.id, "Application", [
        { id: "name", type: "text", label: "Name" },
        { id: "cv", type: "file", label: "CV" },
      ]);
      const { page } = await open(ed, `/templates/${tpl.id}/history`);
      await expectVisible(page.getByRole("heading", { name: "History: Application", level: 1 }), "the history heading");
      await expectVisible(page.getByText("No versions saved yet."), "an empty history");

      await page.getByLabel("Version name", { exact: true }).fill("First draft");
      await page.getByRole("button", { name: "Save version", exact: true }).click();
      await expectText(page.getByRole("status").filter({ hasText: /Saved/ }), "Saved version 1: First draft.", "the save's status");
      await expectVisible(page.getByRole("heading", { name: "Version 1: First draft", level: 3 }), "the saved version in the list");
      const versions = await h.api(olivia, "GET", `/api/templates/${tpl.id}/versions`, undefined, 200);
      assert.deepEqual(versions.map((v) => [v.number, v.name]), [[1, "First draft"]], "the server's versions");
      const saved = (await h.api(olivia, "GET", `/api/templates/${tpl.id}/versions/1`, undefined, 200)).content;
      assert.equal(saved.components.name.label, "Name", "the version holds the label of the time");

      // The template changes meanwhile.
      const current = structuredClone(saved);
      current.components.name.label = "Full legal name";
      const changed = (await h.api(olivia, "PUT", `/api/templates/${tpl.id}`, { content: current }, 200)).content;
      assert.equal(changed.components.name.label, "Full legal name");

      const item = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "Version 1: First draft" }) });
      const compare = item.getByRole("button", { name: "Compare with current", exact: true });
      await compare.click();
      assert.equal(await compare.getAttribute("aria-expanded"), "true");
      await expectText(
        item.locator(".diff"),
        /From version 1 to the template as it is now:[\s\S]*Changed \(1\)[\s\S]*Full legal name[\s\S]*Label: from “Name” to “Full legal name”/,
        "the comparison",
      );
      await screenshot(page, "pages-history-compare");
      await axe(page, "the history page with a comparison");

      // Restore asks first.
      await item.getByRole("button", { name: "Restore", exact: true }).click();
      const confirm = item.getByRole("group").filter({ hasText: "Restore version 1?" });
      await expectVisible(confirm, "the question before restoring");
      await confirm.getByRole("button", { name: "Restore version 1", exact: true }).click();
      await expectText(page.getByRole("status").filter({ hasText: /restored/ }), /^Version 1 restored\./, "the restore's status");
      let content;
      await waitUntil(
        async () => {
          content = (await h.api(olivia, "GET", `/api/templates/${tpl.id}`, undefined, 200)).content;
          return content.components.name?.label === "Name";
        },
        "the server's template to be version 1 again",
        { detail: () => content },
      );
      assert.deepEqual(content, saved, "after the restore, the template's content is version 1's");
      // The state before the restore was kept as a version.
      const after = await h.api(olivia, "GET", `/api/templates/${tpl.id}/versions`, undefined, 200);
      assert.ok(after.some((v) => v.name === "Before restoring version 1"), `versions after the restore: ${JSON.stringify(after)}`);
      await screenshot(page, "pages-history-restored");

      await page.getByRole("button", { name: "Undo restore", exact: true }).click();
      await expectText(page.getByRole("status").filter({ hasText: /undone/ }), /^Restore undone/, "the undo's status");
      await waitUntil(
        async () => {
          content = (await h.api(olivia, "GET", `/api/templates/${tpl.id}`, undefined, 200)).content;
          return content.components.name?.label === "Full legal name";
        },
        "the server's template to be the changed one again",
        { detail: () => content },
      );
      assert.deepEqual(content, changed, "after undoing the restore, the content is the changed one");
      await expectCount(page.getByRole("button", { name: "Undo restore" }), 0, "the Undo restore button once used");
      await axe(page, "the history page after undoing a restore");
    }));

  test("a viewer compares versions but cannot save or restore them", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Viewing versions");
      const tpl = await h.template(olivia, ws.id, "Read only history", [{ id: "q", type: "text", label: "Question" }]);
      await h.api(olivia, "POST", `/api/templates/${tpl.id}/versions`, { name: "Baseline", note: "" }, 201);
      const { page } = await open(vic, `/templates/${tpl.id}/history`);
      const item = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "Version 1: Baseline" }) });
      await expectVisible(item, "the saved version");
      await expectVisible(page.getByText(/Saving and restoring them needs the editor role/), "the viewer's note");
      for (const [what, locator] of [
        ["the Version name field", page.getByLabel("Version name")],
        ["the Save version button", page.getByRole("button", { name: "Save version" })],
        ["Restore buttons", page.getByRole("button", { name: /^Restore/ })],
      ]) {
        assert.equal(await locator.count(), 0, `a viewer is offered ${what}`);
      }
      await item.getByRole("button", { name: "Compare with current", exact: true }).click();
      await expectText(item.locator(".diff"), "No differences: the template is as it was in version 1.", "the comparison");
      await screenshot(page, "pages-history-viewer");
      await axe(page, "the history page of a viewer");
    }));
});
