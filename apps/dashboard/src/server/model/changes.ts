/**
 * What changed in the live model since the live fan-out last took it: link ends and nodes whose figures or
 * state moved, link ends that went away. The model records; the fan-out takes the set once per tick
 * (`Fleet.takeChanges()`, like `AlertEngine.takeChanges()`) and the model starts a fresh one.
 */
export class FleetChanges {
  readonly links = new Set<string>();
  readonly nodes = new Set<string>();
  readonly removedLinks = new Set<string>();

  link(key: string): void {
    this.links.add(key);
  }
  node(id: string): void {
    this.nodes.add(id);
  }
  /** A link end left the model: it is no longer "changed", only removed. */
  removed(key: string): void {
    this.links.delete(key);
    this.removedLinks.add(key);
  }
  /** A link end (re)appeared: not removed any more. */
  added(key: string): void {
    this.removedLinks.delete(key);
  }
}
