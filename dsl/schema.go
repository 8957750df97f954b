package dsl

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/dsl/eventexpr"
)

// The decoder is table-driven: every block type has one blockSpec that
// lists its attributes with their type, default and documentation. The
// same tables drive decoding, the did-you-mean suggestions and the test
// that keeps docs/reference.md complete, so they cannot drift apart.

// attrType is the kind of value an attribute takes.
type attrType int

const (
	tString   attrType = iota
	tSecret            // a string that is never printed
	tBool              // true | false
	tInt               // a whole number
	tDuration          // "10s", "500ms"
	tStrings           // a list of strings
	tHeaders           // a map of string → string (header values are secrets)
	tRefs              // source.NAME / transform.NAME or a list of them
	tWhere             // an expression string that must be boolean
	tExpr              // an expression string of any value
	tSet               // a map column → expression string
	tMask              // a map column → mask kind
	tRename            // a map column → new column name
	tRetry             // { max = N, backoff = "DURATION" }
	tRow               // an object: one row
	tRows              // a list of objects
	tAny               // any literal (variable defaults)
)

// typeNames are how attribute types read in diagnostics and the reference.
var typeNames = map[attrType]string{
	tString:   "string",
	tSecret:   "string (secret)",
	tBool:     "bool",
	tInt:      "number",
	tDuration: "duration",
	tStrings:  "list of strings",
	tHeaders:  "map of strings",
	tRefs:     "reference or list of references",
	tWhere:    "expression",
	tExpr:     "expression",
	tSet:      "map of expressions",
	tMask:     "map of mask kinds",
	tRename:   "map of strings",
	tRetry:    "object",
	tRow:      "object",
	tRows:     "list of objects",
	tAny:      "any",
}

func (t attrType) String() string { return typeNames[t] }

// attrSpec describes one attribute of a block.
type attrSpec struct {
	Name     string
	Type     attrType
	Required bool
	// Default is applied when the attribute is absent (nil: no default or
	// one computed by the loader, described by DefaultDoc).
	Default    any
	DefaultDoc string
	Enum       []string // allowed values of a string attribute
	Min        int64    // smallest value of a number attribute
	// Check validates each string (or each element of a list of strings);
	// it returns what is wrong (a predicate: "is not ...") and what to
	// write instead, or "" when fine.
	Check func(s string) (problem, fix string)
	Field string // the struct field it decodes into
	Doc   string
}

// DefaultText is the default as the reference documents it.
func (a *attrSpec) DefaultText() string {
	if a.DefaultDoc != "" {
		return a.DefaultDoc
	}
	switch v := a.Default.(type) {
	case nil:
		if a.Required {
			return "required"
		}
		return "none"
	case string:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return fmt.Sprintf("%q", v.String())
	default:
		return fmt.Sprint(v)
	}
}

// blockSpec describes one block type (for typed blocks, one TYPE label).
type blockSpec struct {
	Type   string   // the block keyword: "source"
	Kind   string   // the TYPE label for source and sink blocks: "postgres"
	Labels []string // what the labels mean, for diagnostics: "TYPE", "NAME"
	Attrs  []attrSpec
	Blocks []*blockSpec // nested blocks (test blocks', the Kafka blocks' tls and sasl)
	Doc    string
}

// Title is how the reference and diagnostics name the block:
// `source "postgres"`, `transform`.
func (b *blockSpec) Title() string {
	if b.Kind != "" {
		return fmt.Sprintf("%s %q", b.Type, b.Kind)
	}
	return b.Type
}

// Usage is how to write the block's header, e.g. `source "postgres" "NAME"`.
func (b *blockSpec) Usage() string {
	s := b.Type
	if b.Kind != "" {
		s += fmt.Sprintf(" %q", b.Kind)
		for _, l := range b.Labels[1:] {
			s += fmt.Sprintf(" %q", l)
		}
		return s
	}
	for _, l := range b.Labels {
		s += fmt.Sprintf(" %q", l)
	}
	return s
}

func (b *blockSpec) attr(name string) *attrSpec {
	for i := range b.Attrs {
		if b.Attrs[i].Name == name {
			return &b.Attrs[i]
		}
	}
	return nil
}

func (b *blockSpec) attrNames() []string {
	names := make([]string, len(b.Attrs))
	for i, a := range b.Attrs {
		names[i] = a.Name
	}
	return names
}

func (b *blockSpec) block(name string) *blockSpec {
	for _, n := range b.Blocks {
		if n.Type == name {
			return n
		}
	}
	return nil
}

// Allowed values of the enumerated attributes.
var (
	onErrorValues       = []string{"retry", "dead_letter", "pause", "fail"}
	snapshotValues      = []string{"initial", "incremental", "never"}
	modeValues          = []string{"upsert", "append", "update"}
	deleteValues        = []string{"hard", "soft", "skip"}
	formatValues        = []string{"debezium", "native"}
	schemaChangesValues = []string{"add_columns", "drop_columns", "fail"}
	truncateValues      = []string{"apply", "skip", "fail"}
	onSlotLostValues    = []string{"fail", "resnapshot"}
	enumsValues         = []string{"enum", "varchar"}
	saslMechanisms      = []string{"plain", "scram-sha-256", "scram-sha-512", "aws-msk-iam"}
	maskKinds           = []string{"hash", "redact", "partial", "null"}
	testOps             = eventexpr.Ops
)

// qualifiedTable checks "schema.table".
func qualifiedTable(s string) (string, string) {
	if p := strings.Split(s, "."); len(p) == 2 && p[0] != "" && p[1] != "" {
		return "", ""
	}
	return `is not a table name of the form "schema.table"`,
		`Write the schema and the table separated by one dot, like "public.users".`
}

// tablePattern checks "schema.table" or "schema.*".
func tablePattern(s string) (string, string) {
	if p, _ := qualifiedTable(s); p == "" {
		return "", ""
	}
	return `is not a table of the form "schema.table" or "schema.*"`,
		`Write the schema and the table separated by one dot, like "public.users", or "public.*" for every table of a schema.`
}

// qualifiedColumn checks "schema.table.column".
func qualifiedColumn(s string) (string, string) {
	if p := strings.Split(s, "."); len(p) == 3 && p[0] != "" && p[1] != "" && p[2] != "" {
		return "", ""
	}
	return `is not a column of the form "schema.table.column"`,
		`Write the schema, table and column separated by dots, like "public.users.password".`
}

// hostPort checks a broker address "host:port".
func hostPort(s string) (string, string) {
	if host, port, err := net.SplitHostPort(s); err == nil && host != "" && port != "" {
		return "", ""
	}
	return `is not a broker address of the form "host:port"`, `Write each broker as host and port, like "127.0.0.1:9092".`
}

// httpURL checks a webhook URL.
func httpURL(s string) (string, string) {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return "", ""
	}
	return "is not an http or https URL", `Write the full URL, like "https://hooks.example.com/users".`
}

// slotName checks a replication slot name as PostgreSQL does.
func slotName(s string) (string, string) {
	ok := s != "" && len(s) <= 63
	for _, r := range s {
		ok = ok && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
	}
	if ok {
		return "", ""
	}
	return "is not a replication slot name", "Slot names hold only lower-case letters, digits and _, at most 63 of them."
}

// topicTemplate checks that a topic uses no placeholder but {schema} and {table}.
func topicTemplate(s string) (string, string) {
	rest := strings.NewReplacer("{schema}", "", "{table}", "").Replace(s)
	if s != "" && !strings.ContainsAny(rest, "{}") {
		return "", ""
	}
	return "is not a topic template", `A topic is a name in which {schema} and {table} are replaced by the event's, like "app.{schema}.{table}".`
}

// fromAttr is the `from` attribute of transforms and sinks.
func fromAttr(what string) attrSpec {
	return attrSpec{Name: "from", Type: tRefs, Required: true, Field: "From",
		Doc: "What this " + what + " reads: `source.NAME`, `transform.NAME`, or a list of them to merge several inputs."}
}

// resolvedAttr and transactionsAttr are the Kafka, webhook and file
// sinks' messages that tell consumers when they have everything
// (docs/operations.md (Resolved timestamps and transaction metadata)).
var (
	resolvedAttr = attrSpec{Name: "resolved", Type: tDuration, Field: "Resolved", DefaultDoc: "off",
		Doc: "Emit a resolved message at most this often: a timestamp T such that every change committed at or before T (`tx.commit_time`, Debezium's `source.ts_ms`) has been written before it. T follows the source server's clock, through its heartbeats also while the tables are idle, and never goes backwards."}
	transactionsAttr = attrSpec{Name: "transactions", Type: tBool, Field: "Transactions", Default: false,
		Doc: "Transaction metadata, as Debezium's provide.transaction.metadata: a BEGIN and an END (with the transaction's event count in total and per table) around each source transaction's events, and a `transaction` block (id, total_order, data_collection_order) in each event."}
)

// lingerAttr is every sink's flush interval.
var lingerAttr = attrSpec{Name: "linger", Type: tDuration, Field: "Linger", DefaultDoc: `"5ms"`,
	Doc: "The least time between two commits of the sink (a target transaction, a Kafka transaction, a webhook request, a file sync): a longer one gathers more events into each, fewer and bigger, and delays them at most this much. A sink that holds events commits them within this or 200ms, whichever is longer, at the next transaction boundary."}

var pipelineSpec = &blockSpec{
	Type: "pipeline", Labels: []string{"NAME"},
	Doc: "Names the pipeline and holds its settings. Exactly one per file.",
	Attrs: []attrSpec{
		{Name: "state", Type: tString, Field: "State", DefaultDoc: `".sluice/NAME.db"`,
			Doc: "The bbolt file holding checkpoints, the dead-letter queue and snapshot progress."},
		{Name: "on_error", Type: tString, Field: "OnError", Default: "retry", Enum: onErrorValues,
			Doc: "What to do when a sink rejects a row: `retry` transient errors then pause on a rejected row, `dead_letter` the row and go on, `pause` the pipeline, or `fail` (exit)."},
		{Name: "mask_key", Type: tSecret, Field: "MaskKey", DefaultDoc: "env SLUICE_MASK_KEY",
			Doc: "The key of the `hash` mask (HMAC-SHA256). Never printed."},
	},
}

var variableSpec = &blockSpec{
	Type: "variable", Labels: []string{"NAME"},
	Doc: "A value referenced as `var.NAME` and overridden on the command line with `-var NAME=value`.",
	Attrs: []attrSpec{
		{Name: "default", Type: tAny, Field: "Default",
			Doc: "The value used when no `-var NAME=value` is given. Without a default the variable must be set with `-var`."},
	},
}

var sourceSpecs = []*blockSpec{
	{
		Type: "source", Kind: "postgres", Labels: []string{"TYPE", "NAME"},
		Doc: "Reads every committed change of some PostgreSQL tables through logical replication (pgoutput), after an optional initial snapshot.",
		Attrs: []attrSpec{
			{Name: "dsn", Type: tString, Required: true, Field: "DSN",
				Doc: "A postgres URL or keyword/value DSN; the replication connection is derived from it. May hold a password: it is never printed."},
			{Name: "tables", Type: tStrings, Required: true, Field: "Tables", Check: tablePattern,
				Doc: `The tables to read, as "schema.table"; "schema.*" reads every table of a schema, including tables created while the pipeline runs; "*.*" every schema but PostgreSQL's own.`},
			{Name: "slot", Type: tString, Field: "Slot", Check: slotName, DefaultDoc: `"sluice_<pipeline>"`,
				Doc: "The replication slot; created if missing. The default uses the pipeline name lower-cased, with characters other than a-z, 0-9 and _ replaced by _."},
			{Name: "publication", Type: tString, Field: "Publication", DefaultDoc: `"sluice_<pipeline>"`,
				Doc: "The publication; created, or altered to match `tables` and `exclude`, if needed."},
			{Name: "snapshot", Type: tString, Field: "Snapshot", Default: "initial", Enum: snapshotValues,
				Doc: "`initial` copies the existing rows before streaming changes, in one consistent read (and the rows of tables added to `tables` later, when the pipeline next starts); `incremental` copies them while streaming, in key-range chunks between watermarks (no long transaction, WAL is released as the copy goes, changes reach the targets during the copy; `sluice snapshot` re-copies any table the same way); `never` streams changes only."},
			{Name: "exclude", Type: tStrings, Field: "Exclude", Check: qualifiedColumn,
				Doc: `Columns, as "schema.table.column", that never leave PostgreSQL (left out of the publication's column list). Needs PostgreSQL 15 or later, and a table whose replica identity is not FULL (PostgreSQL refuses updates and deletes of such a table when its publication leaves a column out).`},
			{Name: "heartbeat", Type: tDuration, Field: "Heartbeat", Default: 10 * time.Second,
				Doc: "How often to confirm progress to PostgreSQL when no changes arrive, so WAL does not pile up."},
			{Name: "max_rows_per_second", Type: tInt, Field: "MaxRowsPerSecond", DefaultDoc: "no limit", Min: 1,
				Doc: "The most snapshot rows read per second, so that a copy of a production database takes no more than its share (streamed changes are not held back)."},
			{Name: "snapshot_workers", Type: tInt, Field: "SnapshotWorkers", DefaultDoc: "the number of CPUs, at least 2", Min: 1,
				Doc: "How many connections read the initial snapshot at once, all in one exported snapshot: tables of more than a few megabytes are split into primary-key ranges, and the ranges spread over the readers. A sink that writes tables (mysql, postgres) writes each reader's rows on a connection of its own, committed with that reader's position, so a restart resumes every range where it stopped. 1 reads the tables one after the other."},
			{Name: "on_slot_lost", Type: tString, Field: "OnSlotLost", Default: "fail", Enum: onSlotLostValues,
				Doc: "When the replication slot is gone or invalidated (dropped, `max_slot_wal_keep_size`, a restore or failover): `fail` stops with the cause, the lost range and the recovery command; `resnapshot` creates a new slot and copies the tables again while the pipeline goes on, with a warning and the `sluice_slot_recoveries_total` metric (upsert targets converge, but rows deleted while the slot was lost stay in them until re-synced)."},
		},
	},
	{
		Type: "source", Kind: "kafka", Labels: []string{"TYPE", "NAME"},
		Doc:    "Consumes change events from Kafka topics, committing offsets only once the sinks have the events.",
		Blocks: []*blockSpec{tlsSpec, kafkaSASLSpec},
		Attrs: []attrSpec{
			{Name: "brokers", Type: tStrings, Required: true, Field: "Brokers", Check: hostPort,
				Doc: `Seed brokers, "host:port".`},
			{Name: "topics", Type: tStrings, Required: true, Field: "Topics",
				Doc: "The topics to consume."},
			{Name: "group", Type: tString, Field: "Group", DefaultDoc: `"sluice_<pipeline>"`,
				Doc: "The consumer group; several sluice processes with the same group share the partitions."},
			{Name: "format", Type: tString, Field: "Format", Default: "debezium", Enum: formatValues,
				Doc: "The event encoding: `debezium` envelopes or sluice's `native` JSON."},
		},
	},
	{
		Type: "source", Kind: "file", Labels: []string{"TYPE", "NAME"},
		Doc: "Reads change events in the native JSON format, one per line.",
		Attrs: []attrSpec{
			{Name: "path", Type: tString, Required: true, Field: "Path",
				Doc: "The JSON Lines file of native change events, relative to the pipeline file (like file())."},
			{Name: "follow", Type: tBool, Field: "Follow", Default: false,
				Doc: "Keep reading as the file grows instead of stopping at its end."},
		},
	},
}

var transformSpec = &blockSpec{
	Type: "transform", Labels: []string{"NAME"},
	Doc: "Filters and reshapes events. Steps run in the order where → set → mask → select/exclude → rename.",
	Attrs: []attrSpec{
		fromAttr("transform"),
		{Name: "tables", Type: tStrings, Field: "Tables", Check: qualifiedTable,
			Doc: `The tables, as "schema.table", this transform applies to; events of other tables pass through untouched. Default: every table.`},
		{Name: "where", Type: tWhere, Field: "Where",
			Doc: "A boolean expression; events for which it is false are dropped for everything downstream."},
		{Name: "set", Type: tSet, Field: "Set",
			Doc: "Computed columns: column name → expression, evaluated against the event as it entered the transform."},
		{Name: "mask", Type: tMask, Field: "Mask",
			Doc: "Masked columns: column name → `hash` (keyed HMAC-SHA256, hex), `redact` (\"***\"), `partial` (first and last character, e-mail domain kept) or `null`."},
		{Name: "select", Type: tStrings, Field: "Select",
			Doc: "The only columns kept. Cannot be combined with `exclude`."},
		{Name: "exclude", Type: tStrings, Field: "Exclude",
			Doc: "Columns removed. Cannot be combined with `select`."},
		{Name: "rename", Type: tRename, Field: "Rename",
			Doc: "Renamed columns: old name → new name."},
	},
}

// tableSinkAttrs are the attributes shared by the mysql and postgres sinks.
func tableSinkAttrs() []attrSpec {
	return []attrSpec{
		fromAttr("sink"),
		lingerAttr,
		{Name: "dsn", Type: tString, Required: true, Field: "DSN",
			Doc: "The target database: a go-sql-driver DSN or mysql:// URL for MySQL, a postgres URL for PostgreSQL. May hold a password: it is never printed."},
		{Name: "table", Type: tString, Field: "Table", DefaultDoc: "the source table's name",
			Doc: "The target table."},
		{Name: "key", Type: tStrings, Field: "Key", DefaultDoc: "the source primary key",
			Doc: "The columns that identify a row in the target."},
		{Name: "mode", Type: tString, Field: "Mode", Default: "upsert", Enum: modeValues,
			Doc: "`upsert` inserts or updates by key; `append` writes every change as a new row with op and position columns; `update` changes only the `columns` of existing rows, and only where a value differs."},
		{Name: "columns", Type: tStrings, Field: "Columns",
			Doc: "With `mode = \"update\"`, the only columns written."},
		{Name: "delete", Type: tString, Field: "Delete", Default: "hard", Enum: deleteValues,
			Doc: "`hard` deletes the row, `soft` sets `__deleted = true`, `skip` ignores deletes."},
		{Name: "auto_create", Type: tBool, Field: "AutoCreate", Default: false,
			Doc: "Create the target table from the source table's columns when it does not exist."},
		{Name: "batch_size", Type: tInt, Field: "BatchSize", Default: int64(1000), Min: 1,
			Doc: "How many events the sink applies before it commits (at the next source-transaction boundary), in statements of up to 500 rows; a row the target rejects costs replaying at most this many events one by one."},
		{Name: "schema_changes", Type: tString, Field: "SchemaChanges", Default: "add_columns", Enum: schemaChangesValues,
			Doc: "When the source table's columns change: `add_columns` adds new ones (with the source's constant default), widens a column whose type widened and makes a dropped one nullable; `drop_columns` does the same but drops the dropped ones; `fail` stops the pipeline. A narrowing type change always stops it (docs/operations.md)."},
		{Name: "max_rows_per_second", Type: tInt, Field: "MaxRowsPerSecond", DefaultDoc: "no limit", Min: 1,
			Doc: "The most rows written to the target per second, for a backfill or a copy into a production database; events wait, nothing is dropped."},
		{Name: "truncate", Type: tString, Field: "Truncate", Default: "apply", Enum: truncateValues,
			Doc: "When a source table is truncated: `apply` empties the target table in the same target transaction (soft deletes mark every row, append mode records the truncate), `skip` ignores it, `fail` stops the pipeline."},
	}
}

// tlsSpec and kafkaSASLSpec are the connection blocks of the Kafka
// sink and source.
var (
	tlsSpec = &blockSpec{
		Type: "tls",
		Doc:  "Connect over TLS with certificates given as files (in `sink \"kafka\"`, `source \"kafka\"` and `sink \"mysql\"`): the CA that signed the server's certificate, and a client certificate where the server requires one. For Kafka, without this block the connection is plaintext; for MySQL the block replaces the DSN's `tls` parameter (which can name only the system's roots or skip verification). Relative paths are relative to the pipeline file.",
		Attrs: []attrSpec{
			{Name: "ca_file", Type: tString, Field: "CAFile", DefaultDoc: "the system's roots",
				Doc: "PEM file of the certificate authorities that sign the servers' certificates."},
			{Name: "cert_file", Type: tString, Field: "CertFile",
				Doc: "PEM file of the client certificate, for brokers that require one (with `key_file`)."},
			{Name: "key_file", Type: tString, Field: "KeyFile",
				Doc: "PEM file of the client certificate's private key."},
			{Name: "server_name", Type: tString, Field: "ServerName", DefaultDoc: "each server's host",
				Doc: "The name the servers' certificates must carry."},
			{Name: "insecure_skip_verify", Type: tBool, Field: "InsecureSkipVerify", Default: false,
				Doc: "Do not verify the servers' certificates (tests only: anyone on the path can read and change the data)."},
		},
	}
	kafkaSASLSpec = &blockSpec{
		Type: "sasl",
		Doc:  "Authenticate to the brokers with SASL (in `sink \"kafka\"` and `source \"kafka\"`), usually together with `tls`.",
		Attrs: []attrSpec{
			{Name: "mechanism", Type: tString, Required: true, Field: "Mechanism", Enum: saslMechanisms,
				Doc: "`plain`, `scram-sha-256`, `scram-sha-512`, or `aws-msk-iam` (Amazon MSK: `username` is the access key id, `password` the secret access key)."},
			{Name: "username", Type: tString, Required: true, Field: "Username",
				Doc: "The user (or AWS access key id)."},
			{Name: "password", Type: tSecret, Required: true, Field: "Password",
				Doc: "The password (or AWS secret access key). Never printed."},
			{Name: "session_token", Type: tSecret, Field: "SessionToken",
				Doc: "With `aws-msk-iam`, the session token of temporary credentials. Never printed."},
		},
	}
)

// kafkaOutboxSpec routes the rows of a transactional-outbox table to
// topics, keys and values of their own (Debezium's outbox event router).
var kafkaOutboxSpec = &blockSpec{
	Type: "outbox",
	Doc:  "Route the rows of an outbox table (in `sink \"kafka\"`): each inserted or snapshot row becomes one record whose topic, key, value and headers are expressions over the event, as Debezium's outbox event router does; updates and deletes of the table are not routed. Each expression sees what `where` sees (`row`, `after`, `table`, ...). A string result is written as it is, a JSON column as its text, anything else as JSON. `format`, `key`, `topic` and `tombstones` do not apply to routed records; the Debezium defaults are in pipelines/outbox.hcl.",
	Attrs: []attrSpec{
		{Name: "topic", Type: tExpr, Required: true, Field: "Topic",
			Doc: "The record's topic, e.g. `\"'outbox.event.' + row.aggregatetype\"`."},
		{Name: "key", Type: tExpr, Field: "Key", DefaultDoc: "no key",
			Doc: "The record's key (so its partition), e.g. `\"row.aggregateid\"`."},
		{Name: "value", Type: tExpr, Required: true, Field: "Value",
			Doc: "The record's value, e.g. `\"row.payload\"`."},
		{Name: "headers", Type: tSet, Field: "Headers",
			Doc: "More record headers: name → expression, e.g. `{ id = \"row.id\" }`."},
	},
}

var sinkSpecs = []*blockSpec{
	{
		Type: "sink", Kind: "mysql", Labels: []string{"TYPE", "NAME"},
		Doc:    "Writes rows into MySQL or MariaDB tables, exactly once.",
		Blocks: []*blockSpec{tlsSpec},
		Attrs: append(tableSinkAttrs(),
			attrSpec{Name: "enums", Type: tString, Field: "Enums", Default: "enum", Enum: enumsValues,
				Doc: "What a PostgreSQL enum column becomes in a table sluice creates: `enum` an ENUM of the source's labels in their order (altered when labels are added), `varchar` a VARCHAR as long as the longest label."}),
	},
	{
		Type: "sink", Kind: "postgres", Labels: []string{"TYPE", "NAME"},
		Doc:   "Writes rows into PostgreSQL tables, exactly once.",
		Attrs: tableSinkAttrs(),
	},
	{
		Type: "sink", Kind: "kafka", Labels: []string{"TYPE", "NAME"},
		Doc:    "Produces change events to Kafka topics.",
		Blocks: []*blockSpec{tlsSpec, kafkaSASLSpec, kafkaOutboxSpec},
		Attrs: []attrSpec{
			fromAttr("sink"),
			lingerAttr,
			{Name: "brokers", Type: tStrings, Required: true, Field: "Brokers", Check: hostPort,
				Doc: `Seed brokers, "host:port".`},
			{Name: "topic", Type: tString, Field: "Topic", Check: topicTemplate, DefaultDoc: `"<pipeline>.{schema}.{table}"`,
				Doc: "The topic of each event; `{schema}` and `{table}` are replaced by the event's."},
			{Name: "format", Type: tString, Field: "Format", Default: "debezium", Enum: formatValues,
				Doc: "The record value: a `debezium` envelope or sluice's `native` JSON."},
			{Name: "schemas", Type: tBool, Field: "Schemas", Default: false,
				Doc: "Include Debezium's `schema` part next to the `payload`."},
			{Name: "key", Type: tStrings, Field: "Key", DefaultDoc: "the source primary key",
				Doc: "The columns that make the record key (and so the partition)."},
			{Name: "tombstones", Type: tBool, Field: "Tombstones", Default: false,
				Doc: "Follow each delete with a record with a null value, so compacted topics forget the key."},
			{Name: "exactly_once", Type: tBool, Field: "ExactlyOnce", Default: false,
				Doc: "Use a transactional producer so each event is written exactly once."},
			{Name: "partitions", Type: tInt, Field: "Partitions", Default: int64(1), Min: 1,
				Doc: "The partition count of topics the sink creates."},
			{Name: "producer_linger", Type: tDuration, Field: "ProducerLinger", Default: 5 * time.Millisecond,
				Doc: "How long the producer may wait to fill a batch of records for a partition before it sends it: longer means fewer, bigger requests."},
			{Name: "batch_bytes", Type: tInt, Field: "BatchBytes", Default: int64(1000012), Min: 1024,
				Doc: "The largest batch of records the producer sends to one partition in one request (the brokers' message.max.bytes must allow it)."},
			{Name: "replication_factor", Type: tInt, Field: "ReplicationFactor", Default: int64(1), Min: 1,
				Doc: "The replication factor of topics the sink creates."},
			withDoc(resolvedAttr, " Resolved messages go to every partition of every topic the sink writes, so a consumer of any one partition sees them; with `exactly_once` in the Kafka transaction that commits what they cover."),
			withDoc(transactionsAttr, " BEGIN and END go to `transactions_topic`, keyed by the transaction id. Not with an `outbox` block."),
			{Name: "transactions_topic", Type: tString, Field: "TransactionsTopic", DefaultDoc: `"<pipeline>.transaction"`,
				Doc: "With `transactions`, the topic of the BEGIN and END events (Debezium's `<topic.prefix>.transaction`)."},
		},
	},
	{
		Type: "sink", Kind: "webhook", Labels: []string{"TYPE", "NAME"},
		Doc: "POSTs batches of events as a JSON array, signed and retried.",
		Attrs: []attrSpec{
			fromAttr("sink"),
			lingerAttr,
			{Name: "url", Type: tString, Required: true, Field: "URL", Check: httpURL,
				Doc: "Where to POST."},
			{Name: "secret", Type: tSecret, Field: "Secret",
				Doc: "Signs each body: header X-Sluice-Signature is `sha256=` followed by the hex HMAC-SHA256 of the body under this secret. Never printed."},
			{Name: "headers", Type: tHeaders, Field: "Headers",
				Doc: "Extra request headers. Values are never printed."},
			{Name: "batch", Type: tInt, Field: "Batch", Default: int64(100), Min: 1,
				Doc: "The most events in one request."},
			{Name: "max_bytes", Type: tInt, Field: "MaxBytes", DefaultDoc: "no limit", Min: 1,
				Doc: "The largest request body: a batch is sent early rather than grow past it (a single larger event is sent alone)."},
			{Name: "timeout", Type: tDuration, Field: "Timeout", Default: 5 * time.Second,
				Doc: "How long one request may take."},
			{Name: "retry", Type: tRetry, Default: retryPolicy{Max: 8, Backoff: 500 * time.Millisecond}, DefaultDoc: `{ max = 8, backoff = "500ms" }`,
				Doc: "`max` attempts after the first failure, the first waiting `backoff` and each next one twice as long."},
			{Name: "format", Type: tString, Field: "Format", Default: "native", Enum: formatValues,
				Doc: "The encoding of each event: sluice's `native` JSON or a `debezium` envelope."},
			withDoc(resolvedAttr, " Each is a request of its own whose body is the resolved object (not an array), signed and retried like the others."),
			withDoc(transactionsAttr, " BEGIN and END are elements of the batches' arrays, in order with the events."),
		},
	},
	{
		Type: "sink", Kind: "file", Labels: []string{"TYPE", "NAME"},
		Doc: "Appends events as JSON Lines.",
		Attrs: []attrSpec{
			fromAttr("sink"),
			lingerAttr,
			{Name: "path", Type: tString, Required: true, Field: "Path",
				Doc: `The file to append to, relative to the working directory; "-" is standard output.`},
			{Name: "format", Type: tString, Field: "Format", Default: "native", Enum: formatValues,
				Doc: "The encoding of each line: sluice's `native` JSON or a `debezium` envelope."},
			withDoc(resolvedAttr, " Each is a line of its own, synced with the lines it covers."),
			withDoc(transactionsAttr, " BEGIN and END are lines of their own, in order with the events."),
		},
	},
}

// withDoc returns a resolved or transactions attribute with what it
// means for one sink after its documentation.
func withDoc(a attrSpec, more string) attrSpec {
	a.Doc += more + " See docs/operations.md (Resolved timestamps and transaction metadata)."
	return a
}

// eventAttrs are the attributes of test input and expect blocks.
func eventAttrs(opRequired bool, what string) []attrSpec {
	return []attrSpec{
		{Name: "op", Type: tString, Required: opRequired, Field: "Op", Enum: testOps,
			Doc: "The operation" + what + "."},
		{Name: "before", Type: tRow, Field: "Before",
			Doc: "The row before the change (updates and deletes)."},
		{Name: "after", Type: tRow, Field: "After",
			Doc: "The row after the change (inserts, updates, snapshots)."},
		{Name: "key", Type: tRow, Field: "Key",
			Doc: "The primary-key columns; default: none given."},
	}
}

var testSpec = &blockSpec{
	Type: "test", Labels: []string{"DESCRIPTION"},
	Doc: "A pipeline unit test, run by `sluice test` with no database or network. It holds input, expect and expect_table blocks.",
	Blocks: []*blockSpec{
		{
			Type: "input", Labels: []string{"SCHEMA.TABLE"},
			Doc:   "One change event fed to every source, in the order written.",
			Attrs: eventAttrs(true, ""),
		},
		{
			Type: "expect", Labels: []string{"SINK.NAME"},
			Doc:   "The next event the named sink receives. A sink the test names in no expect and no expect_table block must receive nothing, unless the test asserts only expect_table blocks.",
			Attrs: eventAttrs(false, " expected; default: not compared"),
		},
		{
			Type: "expect_table", Labels: []string{"SINK.NAME"},
			Doc: "The rows of a mysql or postgres sink's target table after every input, computed in memory with the sink's semantics.",
			Attrs: []attrSpec{
				{Name: "rows", Type: tRows, Required: true, Field: "Rows",
					Doc: "The expected rows, in key order."},
				{Name: "table", Type: tString, Field: "Table", DefaultDoc: "the only table the sink writes",
					Doc: "Which target table, when the sink writes several."},
			},
		},
	},
}

// topSpecs are the top-level block types in the order the reference
// lists them.
func topSpecs() []*blockSpec {
	specs := []*blockSpec{pipelineSpec, variableSpec}
	specs = append(specs, sourceSpecs...)
	specs = append(specs, transformSpec)
	specs = append(specs, allSinkSpecs()...)
	specs = append(specs, tlsSpec, kafkaSASLSpec, kafkaOutboxSpec)
	specs = append(specs, testSpec)
	return append(specs, testSpec.Blocks...)
}

var topBlockTypes = []string{"pipeline", "variable", "source", "transform", "sink", "test"}

func kindsOf(specs []*blockSpec) []string {
	kinds := make([]string, len(specs))
	for i, s := range specs {
		kinds[i] = s.Kind
	}
	return kinds
}

func specOf(specs []*blockSpec, kind string) *blockSpec {
	for _, s := range specs {
		if s.Kind == kind {
			return s
		}
	}
	return nil
}
