// Package mysql is the `sink "mysql"` of pipeline files: MySQL and
// MariaDB tables kept equal to their sources exactly once, through
// go-sql-driver/mysql. The semantics (modes, deletes, auto_create, schema
// changes, checkpoints, rejects) are sqltable's; this package supplies
// MySQL's SQL and its type mapping (docs/type-mapping.md).
//
// Sessions run with time_zone '+00:00' (timestamptz values are stored as
// UTC in DATETIME(6)), strict SQL mode (a value that does not fit is a
// rejected row, never silently truncated) and client-side parameter
// interpolation (one round trip per statement).
//
// Known limit: MySQL's ON DUPLICATE KEY UPDATE fires on any unique index,
// not only the sink's key; a target table with another unique index can
// thus merge two source rows that collide on it. The sink logs a warning
// naming such indexes when it first writes the table.
package mysql
