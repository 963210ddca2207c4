export function StatePill({ state, label }: { state: string; label?: string }) {
  return <span className={`pill pill-${state}`}>{label ?? state}</span>;
}
