import type { DependencyContainer } from 'tsyringe';
import type { Token } from './createToken.js';

/**
 * Typed bindings over tsyringe's symbol registrations, so that `register()` code is checked
 * against the token's type (tsyringe itself would accept any value under a symbol).
 */

/** Binds `value` under `token` in `container`. */
export function registerValue<T>(container: DependencyContainer, token: Token<T>, value: T): void {
  container.register<T>(token.symbol, { useValue: value });
}

/**
 * Binds a factory under `token`. It runs on first resolution only (one instance per
 * registration, so a plugin instance's pass is created once), and receives the container it
 * was resolved from to reach other tokens (`LoggerToken` from the root).
 */
export function registerFactory<T>(
  container: DependencyContainer,
  token: Token<T>,
  factory: (container: DependencyContainer) => T,
): void {
  let created: { value: T } | undefined;
  container.register<T>(token.symbol, {
    useFactory: (resolvingContainer) => {
      created ??= { value: factory(resolvingContainer) };
      return created.value;
    },
  });
}

/** Resolves `token` from `container` (or its parents). */
export function resolveToken<T>(container: DependencyContainer, token: Token<T>): T {
  return container.resolve<T>(token.symbol);
}
