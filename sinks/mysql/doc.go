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
// Values and keys arrive exactly (docs/type-mapping.md): text key
// columns it creates compare byte for byte (utf8mb4_nopad_bin on MariaDB,
// utf8mb4_0900_bin on MySQL 8, learnt from the server when the sink
// connects), and it warns about existing key columns whose collation
// does not; a number a DECIMAL column cannot hold exactly is a rejected
// row, never rounded; arrays go into JSON as PostgreSQL's to_json writes
// them. Names the server refuses (too long, trailing spaces) stop the
// pipeline with the fix instead of being retried.
//
// Known limit: MySQL's ON DUPLICATE KEY UPDATE fires on any unique index,
// not only the sink's key; a target table with another unique index can
// thus merge two source rows that collide on it. The sink logs a warning
// naming such indexes when it first writes the table.
package mysql
