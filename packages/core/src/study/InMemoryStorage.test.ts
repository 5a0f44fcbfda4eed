import { describe } from 'vitest';
import { runStudyStorageConformance } from '../testing/runStudyStorageConformance.js';
import { InMemoryStorage } from './InMemoryStorage.js';

describe('InMemoryStorage', () => {
  runStudyStorageConformance({ createStorage: () => new InMemoryStorage() });
});
