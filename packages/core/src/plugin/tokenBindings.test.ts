import 'reflect-metadata';
import { container, type DependencyContainer } from 'tsyringe';
import { beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { silentLogger, type Logger } from '../contracts/Logger.js';
import { LoggerToken } from './coreTokens.js';
import { createToken } from './createToken.js';
import { registerFactory, registerValue, resolveToken } from './tokenBindings.js';

describe('tokenBindings', () => {
  let root: DependencyContainer;
  beforeEach(() => {
    root = container.createChildContainer();
  });

  it('should bind and resolve a value under its token', () => {
    const count = createToken<number>('test.count');
    registerValue(root, count, 3);
    expect(resolveToken(root, count)).toBe(3);
    expect(root.isRegistered(Symbol.for('test.count'))).toBe(true);
  });

  it('should create a factory value once and reuse it', () => {
    const widget = createToken<{ serial: number }>('test.widget');
    let created = 0;
    registerFactory(root, widget, () => ({ serial: ++created }));
    const first = resolveToken(root, widget);
    expect(resolveToken(root, widget)).toBe(first);
    expect(created).toBe(1);
  });

  it('should let a factory on a child reach tokens bound on the parent', () => {
    const greeting = createToken<string>('test.greeting');
    const child = root.createChildContainer();
    const messages: string[] = [];
    const logger: Logger = { ...silentLogger, info: (message) => messages.push(message) };
    registerValue(root, LoggerToken, logger);
    registerFactory(child, greeting, (resolving) => {
      resolveToken(resolving, LoggerToken).info('creating greeting');
      return 'hello';
    });
    expect(resolveToken(child, greeting)).toBe('hello');
    expect(messages).toEqual(['creating greeting']);
    expect(root.isRegistered(greeting.symbol)).toBe(false);
  });

  it('should type values and factories by the token', () => {
    expectTypeOf(registerValue<number>).parameter(2).toEqualTypeOf<number>();
    expectTypeOf(registerFactory<number>).parameter(2).returns.toEqualTypeOf<number>();
  });
});
