import { describe } from 'vitest';
import { runStudyStorageConformance } from '@open-autoglm/core/testing';
import { InMemoryStorage } from './InMemoryStorage.js';

describe('InMemoryStorage', () => {
  runStudyStorageConformance({ createStorage: () => new InMemoryStorage() });
});
