// A short message at the bottom of the editor, with an optional action
// ("Deleted “Name”. Undo"). It is a polite live region (not a second
// role="status": that one is the save state), so screen readers
// announce it without moving focus.
import { signal } from "@preact/signals";

interface ToastState {
  message: string;
  action?: { label: string; run: () => void };
  id: number;
}

const current = signal<ToastState | null>(null);
let next = 0;
let timer: ReturnType<typeof setTimeout> | null = null;

/** Shows a message for a while (longer when it offers an action). */
export function toast(message: string, action?: ToastState["action"]): void {
  current.value = { message, action, id: ++next };
  if (timer !== null) clearTimeout(timer);
  timer = setTimeout(() => (current.value = null), action ? 10_000 : 4_000);
}

export function Toast() {
  const t = current.value;
  return (
    <div class="toast-region" aria-live="polite">
      {t && (
        <div class="toast" key={t.id}>
          <span>{t.message}</span>
          {t.action && (
            <button
              type="button"
              class="link-button"
              onClick={() => {
                t.action?.run();
                current.value = null;
              }}
            >
              {t.action.label}
            </button>
          )}
        </div>
      )}
    </div>
  );
}
