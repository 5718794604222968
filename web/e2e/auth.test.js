// Signing in, deep links, new accounts, wrong passwords and signing out,
// in a real browser against a real server.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  axe,
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

describe("signing in and out", () => {
  /** @type {Harness} */
  let h;
  let alice;

  before(async () => {
    h = await Harness.start();
    alice = await h.user("Alice Example");
  });
  after(() => h?.close());

  test("a signed-out visitor to / gets the sign-in form", (t) =>
    h.diagnose(t, async () => {
      const { page } = await h.newPage();
      await page.goto("/");
      await expectPath(page, "/signin", "the home page sends a signed-out visitor to sign in");
      await expectVisible(page.getByRole("heading", { name: "Sign in", level: 1 }), "the sign-in heading");
      await expectVisible(page.getByLabel("Email", { exact: true }), "the Email field");
      await expectVisible(page.getByLabel("Password", { exact: true }), "the Password field");
      await expectVisible(page.getByRole("button", { name: "Sign in", exact: true }), "the Sign in button");
      assert.equal(
        await page.getByRole("button", { name: "Sign out" }).count(),
        0,
        "a signed-out page offers to sign out",
      );
      await screenshot(page, "auth-sign-in");
      await axe(page, "the sign-in page");
    }));

  test("a deep link to a template goes through sign-in and back", (t) =>
    h.diagnose(t, async () => {
      const ws = await h.workspace(alice, "Deep links");
      const tpl = await h.template(alice, ws.id, "Linked form");
      const { page } = await h.newPage();
      await page.goto(`/templates/${tpl.id}`);
      await expectPath(
        page,
        `/signin?next=${encodeURIComponent(`/templates/${tpl.id}`)}`,
        "a signed-out deep link goes to sign-in, keeping the page asked for",
      );
      await signIn(page, alice);
      await expectPath(page, `/templates/${tpl.id}`, "after signing in, the deep link itself");
      await expectVisible(page.getByRole("button", { name: "Sign out" }), "the Sign out button of a signed-in page");
      await screenshot(page, "auth-deep-link-after-sign-in");
    }));

  test("a new account is created and signed in", (t) =>
    h.diagnose(t, async () => {
      const { page } = await h.newPage();
      await page.goto("/signin");
      await page.getByRole("link", { name: "Create an account" }).click();
      await expectPath(page, "/register", "the link to the registration page");
      await expectVisible(page.getByRole("heading", { name: "Create account", level: 1 }), "the registration heading");
      const email = h.email("Rosa New");
      await page.getByLabel("Name", { exact: true }).fill("Rosa New");
      await page.getByLabel("Email", { exact: true }).fill(email);
      await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await screenshot(page, "auth-register");
      await axe(page, "the registration page");
      await page.getByRole("button", { name: "Create account", exact: true }).click();

      await expectPath(page, "/", "a new account lands on its workspaces");
      await expectVisible(page.getByRole("heading", { name: "Workspaces", level: 1 }), "the workspaces heading");
      await expectVisible(page.getByRole("banner").getByText("Rosa New"), "the new person's name in the header");
      await expectVisible(page.getByText("You are not a member of any workspace yet."), "an empty workspace list");

      // The account exists on the server with that password.
      const login = await h.request(null, "POST", "/api/auth/login", { email, password: PASSWORD });
      assert.equal(login.status, 200, `signing in over REST as the new account: ${JSON.stringify(login.body)}`);
      assert.equal(login.body.user.name, "Rosa New");

      // A workspace made on the page is the account's, on the server too,
      // and listed on the workspaces page.
      const rosa = { ...login.body.user, email, password: PASSWORD, token: login.body.accessToken };
      await page.getByLabel("Name", { exact: true }).fill("Rosa's team");
      await page.getByRole("button", { name: "Create workspace", exact: true }).click();
      let mine;
      await waitUntil(
        async () => {
          mine = (await h.api(rosa, "GET", "/api/workspaces")).map((w) => [w.name, w.role]);
          return mine.length > 0;
        },
        "the new workspace on the server",
        { detail: () => mine },
      );
      assert.deepEqual(mine, [["Rosa's team", "owner"]]);
      await expectVisible(page.getByRole("main").getByText("Rosa's team"), "the new workspace on the page");
      await page.goto("/");
      await expectVisible(page.getByRole("main").getByText("Rosa's team"), "the new workspace in the list");
      await screenshot(page, "auth-workspaces");
      await axe(page, "the workspaces page");
    }));

  test("a wrong password is refused with an alert", (t) =>
    h.diagnose(t, async () => {
      const { page } = await h.newPage();
      await page.goto("/signin");
      await page.getByLabel("Email", { exact: true }).fill(alice.email);
      await page.getByLabel("Password", { exact: true }).fill("not the password at all");
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      const alert = page.getByRole("alert");
      await expectVisible(alert, "an alert about the failed sign-in");
      await expectText(alert, /\S/, "the alert's message");
      assert.equal(here(page), "/signin", "a refused sign-in stays on the sign-in page");
      assert.equal(
        await page.evaluate(() => sessionStorage.getItem("coform.auth")),
        null,
        "a refused sign-in stores no session",
      );
      await screenshot(page, "auth-wrong-password");
      await axe(page, "the sign-in page with its alert");
    }));

  test("the account page changes the name, the password, and signs other sessions out", (t) =>
    h.diagnose(t, async () => {
      const acct = await h.user("Andrea Account");
      // Another session of the same account, as another device would have.
      const other = await h.request(null, "POST", "/api/auth/login", { email: acct.email, password: acct.password });
      assert.equal(other.status, 200);
      const { page } = await h.newPage();
      await signIn(page, acct);
      await page.getByRole("link", { name: `Your account: ${acct.name}` }).click();
      await expectVisible(page.getByRole("heading", { name: "Your account", level: 1 }), "the account page");

      await page.getByLabel("Name", { exact: true }).fill("Andrea Renamed");
      await page.getByRole("button", { name: "Save profile" }).click();
      await expectText(page.getByRole("status").filter({ hasText: "Saved" }), /Saved/, "the profile saved");
      await expectVisible(page.getByRole("link", { name: "Your account: Andrea Renamed" }), "the new name in the header");
      const me = await h.api(acct, "GET", "/api/auth/me", undefined, 200);
      assert.equal(me.name, "Andrea Renamed");

      // Two sessions listed; the other one is signed out from here.
      const sessions = page.getByRole("region", { name: "Where you are signed in" }).getByRole("listitem");
      await waitUntil(async () => (await sessions.count()) >= 2, "both sessions listed", { detail: () => sessions.allTextContents() });
      await expectVisible(page.getByText("— this browser"), "this browser's session marked");
      await screenshot(page, "auth-account");
      await axe(page, "the account page");
      const signOutOther = page.getByRole("button", { name: /^Sign out / }).first();
      await signOutOther.click();
      await page.getByRole("button", { name: "Yes, sign it out" }).click();
      await waitUntil(
        async () => (await h.request(null, "POST", "/api/auth/refresh", { refreshToken: other.body.refreshToken })).status === 401,
        "the other session to be ended on the server",
      );

      // A new password: the old one stops working, this tab stays signed in.
      await page.getByLabel("Current password", { exact: true }).fill(acct.password);
      await page.getByLabel("New password", { exact: true }).fill("a much newer passphrase 7");
      await page.getByRole("button", { name: "Change password" }).click();
      await expectText(page.getByRole("status").filter({ hasText: "Password changed" }), /Password changed/, "the password changed");
      const old = await h.request(null, "POST", "/api/auth/login", { email: acct.email, password: acct.password });
      assert.equal(old.status, 401, "the old password still signs in");
      const renewed = await h.request(null, "POST", "/api/auth/login", { email: acct.email, password: "a much newer passphrase 7" });
      assert.equal(renewed.status, 200, "the new password does not sign in");
      await page.reload();
      await expectVisible(page.getByRole("heading", { name: "Your account", level: 1 }), "still signed in after a reload");
    }));

  test("signing out ends the session", (t) =>
    h.diagnose(t, async () => {
      const { page } = await h.newPage();
      await signIn(page, alice);
      await expectPath(page, "/", "signed in, on the workspaces page");
      await expectVisible(page.getByRole("heading", { name: "Workspaces", level: 1 }), "the workspaces heading");
      await axe(page, "the workspaces page");
      const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem("coform.auth") ?? "null"));
      assert.ok(stored?.refreshToken, "a signed-in tab keeps its session in sessionStorage");

      await page.getByRole("button", { name: "Sign out", exact: true }).click();
      await expectPath(page, "/signin", "signing out goes to the sign-in page");
      await expectVisible(page.getByRole("button", { name: "Sign in", exact: true }), "the sign-in form");
      await waitUntil(
        async () => (await page.evaluate(() => sessionStorage.getItem("coform.auth"))) === null,
        "the session to leave sessionStorage",
      );
      // The server ended the session too: its refresh token is refused.
      const refresh = await h.request(null, "POST", "/api/auth/refresh", { refreshToken: stored.refreshToken });
      assert.equal(refresh.status, 401, `refresh after sign-out: ${JSON.stringify(refresh.body)}`);
      // And the app does not let the visitor back in.
      await page.goto("/");
      await expectPath(page, "/signin", "after signing out, / asks to sign in again");
      await screenshot(page, "auth-signed-out");
    }));
});
