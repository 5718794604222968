// A tiny History API router: the current location is a signal.
import { signal } from "@preact/signals";
import type { AnchorHTMLAttributes, ComponentChildren, TargetedMouseEvent } from "preact";

export interface Location {
  path: string;
  query: URLSearchParams;
}

function current(): Location {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

export const here = signal<Location>(current());

/** False until the first in-app navigation: then focus moves to each new page. */
export let navigated = false;

addEventListener("popstate", () => {
  navigated = true;
  here.value = current();
});

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  navigated = true;
  here.value = current();
}

/** Only same-origin paths are followed after sign-in (no open redirect). */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return "/";
  return next;
}

/** Where a signed-out visitor is sent, keeping the page they asked for. */
export function signInPath(next: string): string {
  return next === "/" ? "/signin" : "/signin?next=" + encodeURIComponent(next);
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & {
  href: string;
  children: ComponentChildren;
};

/** An ordinary link that navigates without a page load on a plain click. */
export function Link({ href, children, ...rest }: LinkProps) {
  function onClick(e: TargetedMouseEvent<HTMLAnchorElement>) {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) {
      return;
    }
    e.preventDefault();
    navigate(href);
  }
  return (
    <a {...rest} href={href} onClick={onClick}>
      {children}
    </a>
  );
}
