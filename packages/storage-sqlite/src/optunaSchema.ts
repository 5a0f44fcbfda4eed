import type Database from 'better-sqlite3';

/** The four key/value attribute tables (user and system attributes of studies and of trials). */
function attributeTable(table: string, idColumn: string, ownerColumn: string, ownerTable: string): string {
  return `CREATE TABLE ${table} (
\t${idColumn} INTEGER NOT NULL, 
\t${ownerColumn} INTEGER, 
\t"key" VARCHAR(512), 
\tvalue_json TEXT, 
\tPRIMARY KEY (${idColumn}), 
\tUNIQUE (${ownerColumn}, "key"), 
\tFOREIGN KEY(${ownerColumn}) REFERENCES ${ownerTable} (${ownerColumn})
)`;
}

/**
 * Optuna's RDB schema in SQLite, statement for statement as SQLAlchemy emits it for Optuna 3.1
 * (`Base.metadata.create_all` then an alembic stamp). Enums are stored as their names in VARCHAR
 * columns sized to the longest name, without CHECK constraints (SQLAlchemy >= 1.4's default).
 */
const createStatements = [
  `CREATE TABLE studies (
\tstudy_id INTEGER NOT NULL, 
\tstudy_name VARCHAR(512) NOT NULL, 
\tPRIMARY KEY (study_id)
)`,
  'CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name)',
  `CREATE TABLE version_info (
\tversion_info_id INTEGER NOT NULL, 
\tschema_version INTEGER, 
\tlibrary_version VARCHAR(256), 
\tPRIMARY KEY (version_info_id), 
\tCHECK (version_info_id=1)
)`,
  `CREATE TABLE study_directions (
\tstudy_direction_id INTEGER NOT NULL, 
\tdirection VARCHAR(8) NOT NULL, 
\tstudy_id INTEGER NOT NULL, 
\tobjective INTEGER NOT NULL, 
\tPRIMARY KEY (study_direction_id), 
\tUNIQUE (study_id, objective), 
\tFOREIGN KEY(study_id) REFERENCES studies (study_id)
)`,
  attributeTable('study_user_attributes', 'study_user_attribute_id', 'study_id', 'studies'),
  attributeTable('study_system_attributes', 'study_system_attribute_id', 'study_id', 'studies'),
  `CREATE TABLE trials (
\ttrial_id INTEGER NOT NULL, 
\tnumber INTEGER, 
\tstudy_id INTEGER, 
\tstate VARCHAR(8) NOT NULL, 
\tdatetime_start DATETIME, 
\tdatetime_complete DATETIME, 
\tPRIMARY KEY (trial_id), 
\tFOREIGN KEY(study_id) REFERENCES studies (study_id)
)`,
  attributeTable('trial_user_attributes', 'trial_user_attribute_id', 'trial_id', 'trials'),
  attributeTable('trial_system_attributes', 'trial_system_attribute_id', 'trial_id', 'trials'),
  `CREATE TABLE trial_params (
\tparam_id INTEGER NOT NULL, 
\ttrial_id INTEGER, 
\tparam_name VARCHAR(512), 
\tparam_value FLOAT, 
\tdistribution_json TEXT, 
\tPRIMARY KEY (param_id), 
\tUNIQUE (trial_id, param_name), 
\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)
)`,
  `CREATE TABLE trial_values (
\ttrial_value_id INTEGER NOT NULL, 
\ttrial_id INTEGER NOT NULL, 
\tobjective INTEGER NOT NULL, 
\tvalue FLOAT, 
\tvalue_type VARCHAR(7) NOT NULL, 
\tPRIMARY KEY (trial_value_id), 
\tUNIQUE (trial_id, objective), 
\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)
)`,
  `CREATE TABLE trial_intermediate_values (
\ttrial_intermediate_value_id INTEGER NOT NULL, 
\ttrial_id INTEGER NOT NULL, 
\tstep INTEGER NOT NULL, 
\tintermediate_value FLOAT, 
\tintermediate_value_type VARCHAR(7) NOT NULL, 
\tPRIMARY KEY (trial_intermediate_value_id), 
\tUNIQUE (trial_id, step), 
\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)
)`,
  `CREATE TABLE trial_heartbeats (
\ttrial_heartbeat_id INTEGER NOT NULL, 
\ttrial_id INTEGER NOT NULL, 
\theartbeat DATETIME NOT NULL, 
\tPRIMARY KEY (trial_heartbeat_id), 
\tUNIQUE (trial_id), 
\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)
)`,
  `CREATE TABLE alembic_version (
\tversion_num VARCHAR(32) NOT NULL, 
\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)`,
];

/** The tables of Optuna's schema; a file holding all of them is an Optuna database. */
export const optunaTables = [
  'studies',
  'version_info',
  'study_directions',
  'study_user_attributes',
  'study_system_attributes',
  'trials',
  'trial_user_attributes',
  'trial_system_attributes',
  'trial_params',
  'trial_values',
  'trial_intermediate_values',
  'trial_heartbeats',
  'alembic_version',
] as const;

/**
 * The alembic revision written in new files: the head of Optuna 3.0 and 3.1. Optuna 3.1 refuses
 * any other stamp; Optuna >= 3.2 expects `v3.2.0.a` and offers `optuna storage upgrade`.
 */
export const writtenAlembicRevision = 'v3.0.0.d';

/**
 * The revisions whose tables this package reads and writes: `v3.2.0.a` (Optuna 3.2 and later) only
 * adds an index on `trials.study_id`, so the rows are the same.
 */
export const supportedAlembicRevisions: readonly string[] = ['v3.0.0.d', 'v3.2.0.a'];

/** `version_info.schema_version`: frozen at 12 by Optuna since alembic took over migrations. */
export const optunaSchemaVersion = 12;

/** The Optuna release whose schema new files follow, written to `version_info.library_version`. */
export const optunaLibraryVersion = '3.1.0';

/**
 * Creates every table, index and version row of an Optuna 3.1 database in `db` if it has no table
 * yet, in one transaction that holds the write lock: of two processes opening a new file at once,
 * one creates the schema and the other finds it. Returns whether this call created it.
 */
export function createOptunaSchema(db: Database.Database): boolean {
  return db
    .transaction(() => {
      const { count } = db.prepare("SELECT COUNT(*) AS count FROM sqlite_master WHERE type = 'table'").get() as { count: number };
      if (count > 0) return false;
      for (const statement of createStatements) db.exec(statement);
      db.prepare('INSERT INTO version_info (version_info_id, schema_version, library_version) VALUES (1, ?, ?)').run(optunaSchemaVersion, optunaLibraryVersion);
      db.prepare('INSERT INTO alembic_version (version_num) VALUES (?)').run(writtenAlembicRevision);
      return true;
    })
    .immediate();
}
