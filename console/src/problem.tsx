/** A problem to show: announced to screen readers as it appears; nothing when there is none. */
export function Problem({ text }: { text: string | null }) {
  return text ? (
    <p role="alert" class="error">
      {text}
    </p>
  ) : null;
}
