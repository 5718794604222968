import { useSignal, type Signal } from "@preact/signals";
import { useEffect, useId, useRef } from "preact/hooks";
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

/**
 * A server or network error, announced to assistive technology. `title`
 * says what failed when the server's message alone would not.
 */
export function ErrorAlert(props: { error: unknown; title?: string }) {
  const e = props.error;
  if (!e) return null;
  const message = describe(e);
  const fields = fieldErrors(e);
  return (
    <div role="alert" class="alert">
      {props.title && (
        <p>
          <strong>{props.title}</strong>
        </p>
      )}
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
  type?: "text" | "email" | "password" | "search";
  autocomplete?: string;
  maxLength?: number;
  required?: boolean;
  multiline?: boolean;
  /** A line of help under the label, read with the field. */
  hint?: string;
}) {
  const { id, label, value } = props;
  const onInput = (e: { currentTarget: { value: string } }) => (value.value = e.currentTarget.value);
  const hintId = props.hint ? id + "-hint" : undefined;
  // The attribute types are a union keyed by `type`; this field's is
  // one of the text-like ones.
  const inputAttributes = {
    id,
    type: props.type ?? "text",
    autocomplete: props.autocomplete,
    required: props.required ?? true,
    maxLength: props.maxLength,
    "aria-describedby": hintId,
    value: value.value,
    onInput,
  } as JSX.IntrinsicElements["input"];
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {props.hint && (
        <p id={hintId} class="hint">
          {props.hint}
        </p>
      )}
      {props.multiline ? (
        <textarea
          id={id}
          rows={3}
          maxLength={props.maxLength}
          aria-describedby={hintId}
          value={value.value}
          onInput={onInput}
        />
      ) : (
        <input {...inputAttributes} />
      )}
    </div>
  );
}

/** One labelled drop-down bound to a signal. */
export function SelectField<T extends string>(props: {
  id: string;
  label: string;
  value: Signal<T>;
  options: ReadonlyArray<{ value: T; label: string }>;
}) {
  const { id, value } = props;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <select id={id} value={value.value} onChange={(e) => (value.value = e.currentTarget.value as T)}>
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
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
  /** Replaces the default "card" look, e.g. for a form inside a list row. */
  class?: string;
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
    <form class={props.class ?? "card"} onSubmit={onSubmit} aria-busy={busy.value}>
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
export function PasswordField(props: { id: string; value: Signal<string>; isNew?: boolean; label?: string }) {
  const autocomplete = props.isNew ? "new-password" : "current-password";
  return (
    <Field
      id={props.id}
      label={props.label ?? "Password"}
      type="password"
      autocomplete={autocomplete}
      value={props.value}
    />
  );
}

/**
 * Data from the server for a component: asked for on mount, again when a
 * value in `deps` changes or `reload()` is called. An answer that comes
 * after a newer request was made, or after the component is gone, is
 * dropped, so a slow answer never overwrites a newer one.
 */
export function useResource<T>(load: () => Promise<T>, deps: unknown[]) {
  const data = useSignal<T | null>(null);
  const error = useSignal<unknown>(null);
  const loading = useSignal(true);
  const round = useSignal(0);
  useEffect(() => {
    let live = true;
    loading.value = true;
    error.value = null;
    load()
      .then(
        (v) => live && (data.value = v),
        (e) => live && (error.value = e),
      )
      .finally(() => live && (loading.value = false));
    return () => {
      live = false;
    };
  }, [...deps, round.value]);
  return { data, error, loading, reload: () => round.value++ };
}

/**
 * A button for something that cannot be undone: the first press asks, and
 * only the explicit answer runs `action`. Escape or "Cancel" steps back and
 * returns focus to the button. A failure is shown with the question, which
 * stays open.
 */
export function ConfirmButton(props: {
  /** The visible text of the button, e.g. "Delete". */
  label: string;
  /** What it acts on; completes the accessible name ("Delete Budget"). */
  subject?: string;
  question: string;
  /** The text of the button that does it, e.g. "Yes, delete". */
  confirm: string;
  action: () => Promise<void>;
}) {
  const asking = useSignal(false);
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);
  const questionId = useId();
  const question = useRef<HTMLParagraphElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const stepBack = useRef(false);

  useEffect(() => {
    if (asking.value) question.current?.focus();
    else if (stepBack.current) opener.current?.focus();
    stepBack.current = false;
  }, [asking.value]);

  function cancel() {
    stepBack.current = true;
    error.value = null;
    asking.value = false;
  }

  async function run() {
    busy.value = true;
    error.value = null;
    try {
      await props.action();
      asking.value = false;
    } catch (e) {
      error.value = e;
    } finally {
      busy.value = false;
    }
  }

  if (!asking.value) {
    return (
      <button type="button" class="secondary danger" ref={opener} onClick={() => (asking.value = true)}>
        {props.label}
        {props.subject && <span class="visually-hidden"> {props.subject}</span>}
      </button>
    );
  }
  return (
    <div
      class="confirm"
      role="group"
      aria-labelledby={questionId}
      aria-busy={busy.value}
      onKeyDown={(e) => e.key === "Escape" && !busy.value && cancel()}
    >
      <p id={questionId} tabIndex={-1} ref={question}>
        {props.question}
      </p>
      <ErrorAlert error={error.value} />
      <div class="actions">
        <button type="button" class="danger" onClick={run} disabled={busy.value}>
          {props.confirm}
        </button>
        <button type="button" class="secondary" onClick={cancel} disabled={busy.value}>
          Cancel
        </button>
      </div>
    </div>
  );
}

const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A server time (ms since the epoch) in the reader's locale. */
export function Time(props: { ms: number }) {
  const d = new Date(props.ms);
  return <time dateTime={d.toISOString()}>{TIME.format(d)}</time>;
}

/**
 * "Previous" and "Next" when a listing does not fit on one page. At either
 * end the button stays focusable (aria-disabled, not disabled), so that
 * keyboard focus is not lost when the last page is reached.
 */
export function Pager(props: {
  page: { page: number; total: number; pageSize: number };
  /** Names the listing for screen readers: "Template pages". */
  label: string;
  go: (page: number) => void;
  busy: boolean;
}) {
  const { page, total, pageSize } = props.page;
  const pages = Math.ceil(total / pageSize);
  if (pages <= 1) return null;
  const to = (p: number) => () => {
    if (p >= 1 && p <= pages && !props.busy) props.go(p);
  };
  return (
    <nav aria-label={props.label} class="pager">
      <button type="button" class="secondary" aria-disabled={page <= 1} onClick={to(page - 1)}>
        Previous
      </button>
      <span aria-hidden="true">
        Page {page} of {pages}
      </span>
      <button type="button" class="secondary" aria-disabled={page >= pages} onClick={to(page + 1)}>
        Next
      </button>
    </nav>
  );
}
