// Who is here: an avatar per person (their name and colour as the server
// attests them), idle ones dimmed, "+N" past a handful. Choosing an
// avatar follows that person: your selection tracks theirs until you act.
import { useComputed } from "@preact/signals";
import { textOn, visiblePeers } from "./model";
import type { EditorStore } from "./store";

const MAX_AVATARS = 5;

export function Presence(props: { store: EditorStore }) {
  const { store } = props;
  const list = store.people.value;
  const following = store.following.value;
  const { shown, more } = visiblePeers(list, MAX_AVATARS);
  const followed = useComputed(() => store.people.value.find((p) => p.key === store.following.value) ?? null);
  const hidden = list.slice(shown.length);
  return (
    <div class="presence">
      <ul class="avatars" aria-label="People here">
        {list.length === 0 && <li class="alone">Only you</li>}
        {shown.map((p) => (
          <li key={p.key} aria-label={`${p.name}${p.idle ? " (idle)" : ""}`}>
            <button
              type="button"
              class={p.idle ? "avatar idle" : "avatar"}
              style={{ "--peer": p.color, "--peer-fg": textOn(p.color) }}
              aria-label={`Follow ${p.name}${p.idle ? " (idle)" : ""}`}
              aria-pressed={following === p.key}
              title={`${p.name}${p.idle ? " (idle)" : ""}: follow their selection`}
              onClick={() => store.follow(following === p.key ? null : p.key)}
            >
              {p.initials}
            </button>
          </li>
        ))}
        {more > 0 && (
          <li class="more" aria-label={`${more} more: ${hidden.map((p) => p.name).join(", ")}`} title={hidden.map((p) => p.name).join(", ")}>
            +{more}
          </li>
        )}
      </ul>
      {followed.value && (
        <p class="following">
          Following {followed.value.name}.{" "}
          <button type="button" class="link-button" onClick={() => store.follow(null)}>
            Stop following
          </button>
        </p>
      )}
    </div>
  );
}
