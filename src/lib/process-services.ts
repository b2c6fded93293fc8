// A capability's services for its job handlers (S3, HTTP clients, settings):
// made from the process's config on first use, or handed in by tests, the
// demo and `herald serve` (undefined: back to "make on first use").

export interface ProcessServices<S> {
  use(services: S | undefined): void;
  get(): S;
  /** The services in use, without making them. */
  current(): S | undefined;
}

export function processServices<S>(make: () => S): ProcessServices<S> {
  let current: S | undefined;
  return {
    use: (services) => void (current = services),
    get: () => (current ??= make()),
    current: () => current,
  };
}
