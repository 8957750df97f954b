package sqltable

// Dialect is what differs between the SQL targets. Everything else —
// batching by table, statement planning, checkpoints, rejects — is shared
// by Sink. Implementations are stateless and safe for concurrent use.
type Dialect interface {
	// Name is the sink type as written in pipeline files ("mysql").
	Name() string
	// Quote quotes an identifier.
	Quote(ident string) string
	// Placeholder returns the i-th (1-based) statement parameter.
	Placeholder(i int) string
	// MaxParams bounds the parameters of one statement.
	MaxParams() int
	// OnConflict returns the clause appended to a multi-row INSERT so
	// that a row whose key exists updates the update columns instead
	// (which may be empty: the row is then left as it is).
	OnConflict(key, update []string) string
	// UpsertsOnAnyUniqueKey reports that OnConflict's clause fires on a
	// collision with any unique index, not only the key (MySQL), which
	// the sink then warns about.
	UpsertsOnAnyUniqueKey() bool
	// NotDistinct returns a null-safe equality of a column and a
	// parameter ("c <=> ?", "c IS NOT DISTINCT FROM $1").
	NotDistinct(col, param string) string
	// TransactionalDDL reports whether CREATE/ALTER TABLE run inside the
	// open transaction. Where they do not (MySQL commits implicitly),
	// Sink runs them on another connection and never while its own
	// transaction holds rows of the altered table.
	TransactionalDDL() bool
	// RowsSource returns a derived table aliased v with the given columns
	// (of the given types, as ColumnsQuery reads them) and rows rows of
	// placeholders, numbered from 1 in row order.
	RowsSource(cols, types []string, rows int) string
	// UpdateFrom returns an UPDATE of table (aliased t) joined to the
	// derived table src (aliased v) on the condition match, setting each
	// of set from v's column of that name where the condition changed
	// holds.
	UpdateFrom(table, src, match, changed string, set []string) string
	// AtomicStatements reports that a statement failing with a data error
	// leaves no effect and the transaction usable (MySQL/InnoDB), so
	// writes need no savepoint; PostgreSQL aborts the transaction.
	AtomicStatements() bool
	// TableOptions is appended to CREATE TABLE.
	TableOptions() string
	// ColumnType maps a source column type to the target's type for
	// auto_create and added columns; key columns need an indexable type.
	ColumnType(t SourceType, key bool) string
	// ValueType is the column type for a value when no source schema is
	// known (file and Kafka sources): bool, int64, float64, string,
	// []byte, time.Time, change.Numeric, change.JSON, []any, map[string]any
	// or nil.
	ValueType(v any, key bool) string
	// Value converts an event value for a column of the target type
	// colType (as Columns reported it, lower-case) into a driver argument.
	Value(v any, colType string) (any, error)
	// FoldsCase reports that column names match case-insensitively
	// (MySQL), so that a source column "Name" writes the target's "name"
	// rather than adding a second one.
	FoldsCase() bool
	// ColumnsQuery selects the name and type of every column of a table,
	// given the schema (NULL for the connection's current one) and the
	// table name as parameters.
	ColumnsQuery() string
	// UniqueKeysQuery selects, for every primary key and unique index of
	// a table, one row with the index's columns comma-separated in index
	// order; same parameters as ColumnsQuery.
	UniqueKeysQuery() string
	// ColumnDefQuery selects the definition of one column (ColumnDef's
	// fields in order), given the schema (NULL for the current one), the
	// table and the column name as parameters.
	ColumnDefQuery() string
	// AlterColumn returns the ALTER TABLE that gives column col of table
	// type typ ("" keeps cur.Type) and, with nullable, drops its NOT NULL;
	// the rest of cur (default, collation) stays.
	AlterColumn(table, col, typ string, nullable bool, cur ColumnDef) string
	// SourceTypeOf returns the source type that target column type
	// colType (as ColumnsQuery reads it) holds exactly, where it knows.
	SourceTypeOf(colType string) (SourceType, bool)
	// Literal quotes a string literal.
	Literal(s string) string
	// Classify tells what an error returned by the driver means.
	Classify(err error) Class
}

// Class is the meaning of a driver error.
type Class uint8

const (
	// Retry covers lost connections, deadlocks, serialization failures,
	// restarts: the engine reopens the sink and replays from its checkpoint.
	Retry Class = iota
	// Reject is a data error caused by one row (value too long, constraint
	// violation, a value the column's type cannot take).
	Reject
	// Fatal is an error no retry can fix: a missing table, column or
	// privilege, a missing unique index for the key.
	Fatal
)

// Name is a target table, optionally qualified by a schema (PostgreSQL)
// or database (MySQL).
type Name struct {
	Schema string // "" means the connection's current schema/database
	Table  string
}

func (n Name) String() string {
	if n.Schema == "" {
		return n.Table
	}
	return n.Schema + "." + n.Table
}

// quoted returns n quoted for d.
func (n Name) quoted(d Dialect) string {
	if n.Schema == "" {
		return d.Quote(n.Table)
	}
	return d.Quote(n.Schema) + "." + d.Quote(n.Table)
}

// ArrayInserter is implemented by dialects that can pass each column of
// a multi-row INSERT as one array parameter (PostgreSQL's unnest): one
// parameter per column instead of one per value, and a statement text
// that stays the same for every batch, so the server parses and plans it
// once.
type ArrayInserter interface {
	// ArrayType returns the array type values of a column of type colType
	// travel in, and false when they cannot (the column is an array
	// itself).
	ArrayType(colType string) (string, bool)
	// ArrayParam builds one array parameter from values Value returned.
	ArrayParam(vals []any) (any, error)
}
