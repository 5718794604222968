import { useEffect, useRef } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { ApiError } from "./api";
import { navigated } from "./router";

/** A page: sets the document title and owns the page's single <h1>. */
export function Page(props: { title: string; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = props.title + " · Coform";
  }, [props.title]);
  useEffect(() => {
    // After an in-app navigation, screen readers start at the new page.
    if (navigated) heading.current?.focus();
  }, []);
  return (
    <>
      <h1 tabIndex={-1} ref={heading}>
        {props.title}
      </h1>
      {props.children}
    </>
  );
}

/** A server or network error, announced to assistive technology. */
export function ErrorAlert(props: { error: unknown }) {
  const e = props.error;
  if (!e) return null;
  const message = e instanceof Error ? e.message : String(e);
  const fields = e instanceof ApiError ? e.fields : [];
  return (
    <div role="alert" class="alert">
      <p>{message}</p>
      {fields.length > 0 && (
        <ul>
          {fields.map((f) => (
            <li key={f.field}>
              {f.field}: {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
