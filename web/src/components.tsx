import { useSignal, type Signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { ComponentChildren, JSX } from "preact";
import { describe, fieldErrors } from "./client";
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
  const message = describe(e);
  const fields = fieldErrors(e);
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

/** One labelled text input bound to a signal; it updates as you type. */
export function Field(props: {
  id: string;
  label: string;
  value: Signal<string>;
  type?: "text" | "email" | "password";
  autocomplete?: string;
  maxLength?: number;
  required?: boolean;
  multiline?: boolean;
}) {
  const { id, label, value } = props;
  const onInput = (e: { currentTarget: { value: string } }) => (value.value = e.currentTarget.value);
  // The attribute types are a union keyed by `type`; this field's is
  // one of the text-like ones.
  const inputAttributes = {
    id,
    type: props.type ?? "text",
    autocomplete: props.autocomplete,
    required: props.required ?? true,
    maxLength: props.maxLength,
    value: value.value,
    onInput,
  } as JSX.IntrinsicElements["input"];
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {props.multiline ? (
        <textarea id={id} rows={3} value={value.value} onInput={onInput} />
      ) : (
        <input {...inputAttributes} />
      )}
    </div>
  );
}

/**
 * A form that runs `action` on submit: the button is disabled while it
 * runs, and a failure is announced above the fields.
 */
export function FormCard(props: {
  action: () => Promise<void>;
  submit: string;
  children: ComponentChildren;
  after?: ComponentChildren;
}) {
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);
  async function onSubmit(e: Event) {
    e.preventDefault();
    busy.value = true;
    error.value = null;
    try {
      await props.action();
    } catch (err) {
      error.value = err;
    } finally {
      busy.value = false;
    }
  }
  return (
    <form class="card" onSubmit={onSubmit} aria-busy={busy.value}>
      <ErrorAlert error={error.value} />
      {props.children}
      <button type="submit" disabled={busy.value}>
        {props.submit}
      </button>
      {props.after}
    </form>
  );
}

/** The password field of a sign-in (`current-password`) or of a new account. */
export function PasswordField(props: { id: string; value: Signal<string>; isNew?: boolean }) {
  const autocomplete = props.isNew ? "new-password" : "current-password";
  return <Field id={props.id} label="Password" type="password" autocomplete={autocomplete} value={props.value} />;
}
