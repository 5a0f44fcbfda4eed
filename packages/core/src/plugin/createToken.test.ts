import 'reflect-metadata';
import { container } from 'tsyringe';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { Pass } from '../contracts/Pass.js';
import { PluginError } from '../errors/errors.js';
import { PassToken } from './coreTokens.js';
import { createToken, isToken, type Token, type TokenValue } from './createToken.js';
import { registerValue, resolveToken } from './tokenBindings.js';

describe('createToken', () => {
  it('should build the token on Symbol.for(id) with a readable toString', () => {
    const token = createToken<number>('core.pruner');
    expect(token.id).toBe('core.pruner');
    expect(token.symbol).toBe(Symbol.for('core.pruner'));
    expect(token.toString()).toBe('Token{core.pruner}');
    expect(`${token}`).toBe('Token{core.pruner}');
    expect(Object.isFrozen(token)).toBe(true);
  });

  it('should give interchangeable tokens from two separately loaded copies of the module', async () => {
    vi.resetModules();
    const copy = await import('./createToken.js');
    expect(copy.createToken).not.toBe(createToken);
    const local = createToken<string>('test.shared');
    const foreign = copy.createToken<string>('test.shared');
    expect(foreign.symbol).toBe(local.symbol);
    expect(isToken(foreign)).toBe(true);

    const root = container.createChildContainer();
    registerValue(root, foreign, 'bound with the other copy');
    expect(resolveToken(root, local)).toBe('bound with the other copy');
  });

  it('should reject ids that are not dotted owner.thing names', () => {
    for (const id of ['pass', '', 'core.', 'core pass.x', '.core']) {
      expect(() => createToken(id), id).toThrow(PluginError);
    }
    expect(() => createToken('pass')).toThrow(/Invalid token id "pass".*owner first/);
  });

  it('should not take lookalike objects for tokens', () => {
    expect(isToken({ id: 'core.pass', symbol: Symbol.for('core.pass') })).toBe(false);
    expect(isToken(Symbol.for('core.pass'))).toBe(false);
    expect(isToken(PassToken)).toBe(true);
  });

  it('should carry the value type', () => {
    expectTypeOf(PassToken).toEqualTypeOf<Token<Pass>>();
    expectTypeOf<TokenValue<typeof PassToken>>().toEqualTypeOf<Pass>();
    expectTypeOf(resolveToken<number>).parameter(1).toEqualTypeOf<Token<number>>();
    expectTypeOf(resolveToken<number>).returns.toEqualTypeOf<number>();
  });
});
