package sqltable

import (
	"fmt"
	"strings"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
)

// Values of the table sink attributes and their defaults (LANGUAGE.md).
const (
	ModeUpsert = "upsert" // default
	ModeAppend = "append"
	ModeUpdate = "update"

	DeleteHard = "hard" // default
	DeleteSoft = "soft"
	DeleteSkip = "skip"

	SchemaAddColumns  = "add_columns" // default
	SchemaDropColumns = "drop_columns"
	SchemaFail        = "fail"

	TruncateApply = "apply" // default
	TruncateSkip  = "skip"
	TruncateFail  = "fail"

	// DefaultBatchSize is batch_size when unset: the number of events
	// applied between two savepoints, so a rejected row costs replaying
	// at most this many rows one by one.
	DefaultBatchSize = 1000
	// MaxStatementRows bounds the rows of one multi-row statement.
	MaxStatementRows = 500
	// MaxStatementBytes ends a statement once its values reach this size,
	// well below MySQL's default max_allowed_packet (16 MiB), so wide
	// rows never make a statement the server refuses. A single row
	// larger than this still goes alone.
	MaxStatementBytes = 4 << 20
)

// Reserved columns the sink writes besides the event's own.
const (
	DeletedColumn    = "__deleted"     // delete = "soft": true once the source row is deleted
	OpColumn         = "__op"          // mode = "append": insert, update, delete or snapshot
	PositionColumn   = "__position"    // mode = "append": the event's source position
	CommitTimeColumn = "__commit_time" // mode = "append": the source transaction's commit time (UTC)
)

// CheckpointTable is the table, in the target database, holding one row
// per (pipeline, sink): the checkpoint JSON (change.Checkpoint's
// MarshalJSON) written in the same transaction as the rows it covers.
const CheckpointTable = "sluice_checkpoints"

// options is a TableSink with defaults applied and values checked.
type options struct {
	table   Name
	key     []string
	mode    string
	columns []string
	delete  string
	create  bool
	batch   int
	schema  string
	// truncate is what a source TRUNCATE does to the target.
	truncate string
}

func newOptions(sinkName string, c *dsl.TableSink) (options, error) {
	o := options{
		key: c.Key, mode: c.Mode, columns: c.Columns, delete: c.Delete,
		create: c.AutoCreate, batch: c.BatchSize, schema: c.SchemaChanges, truncate: c.Truncate,
	}
	if o.mode == "" {
		o.mode = ModeUpsert
	}
	if o.delete == "" {
		o.delete = DeleteHard
	}
	if o.batch <= 0 {
		o.batch = DefaultBatchSize
	}
	if o.schema == "" {
		o.schema = SchemaAddColumns
	}
	if o.truncate == "" {
		o.truncate = TruncateApply
	}
	if c.Table != "" {
		if s, t, ok := strings.Cut(c.Table, "."); ok {
			o.table = Name{Schema: s, Table: t}
		} else {
			o.table = Name{Table: c.Table}
		}
	}
	bad := func(attr, format string, args ...any) error {
		return engine.Permanent(fmt.Errorf("%ssink %q: %s", dsl.At(c.Ranges, attr), sinkName, fmt.Sprintf(format, args...)))
	}
	switch o.mode {
	case ModeUpsert, ModeAppend:
	case ModeUpdate:
		if len(o.columns) == 0 {
			return o, bad("mode", `mode = "update" needs columns = [...]: the only columns it writes`)
		}
	default:
		return o, bad("mode", "mode %q is not one of upsert, append, update", o.mode)
	}
	switch o.delete {
	case DeleteHard, DeleteSoft, DeleteSkip:
	default:
		return o, bad("delete", "delete %q is not one of hard, soft, skip", o.delete)
	}
	switch o.schema {
	case SchemaAddColumns, SchemaDropColumns, SchemaFail:
	default:
		return o, bad("schema_changes", "schema_changes %q is not one of add_columns, drop_columns, fail", o.schema)
	}
	switch o.truncate {
	case TruncateApply, TruncateSkip, TruncateFail:
	default:
		return o, bad("truncate", "truncate %q is not one of apply, skip, fail", o.truncate)
	}
	if c.Table != "" && (o.table.Table == "" || strings.Contains(o.table.Table, ".")) {
		return o, bad("table", "table %q: write TABLE or SCHEMA.TABLE", c.Table)
	}
	return o, nil
}
