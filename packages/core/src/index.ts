import 'reflect-metadata';

export * from './errors/errors.js';
