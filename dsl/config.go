package dsl

import (
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Config is one checked pipeline file: every block decoded, every
// reference resolved, every expression compiled. Components are built
// from it by the engine's registry.
type Config struct {
	Filename   string
	Pipeline   Pipeline
	Variables  []*Variable
	Sources    []*Source
	Transforms []*Transform
	Sinks      []*Sink
	Tests      []*Test
}

// Pipeline is the `pipeline "NAME" {}` block.
type Pipeline struct {
	Name string
	// State is the bbolt state file; default ".sluice/NAME.db".
	State string
	// OnError is retry | dead_letter | pause | fail; default "retry"
	// (retry transient errors; a rejected row then pauses).
	OnError string
	// MaskKey keys the "hash" mask; default env SLUICE_MASK_KEY.
	MaskKey   Secret
	DeclRange hcl.Range
}

// Variable is a `variable "NAME" { default = ... }` block.
type Variable struct {
	Name      string
	Default   string
	DeclRange hcl.Range
}

// Secret is a string that never prints: fmt, %v, JSON and logs show
// "***". Reveal returns the value for the one place that needs it.
type Secret string

func (s Secret) String() string   { return redacted(s) }
func (s Secret) GoString() string { return redacted(s) }

// MarshalText keeps secrets out of JSON and slog output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted(s)), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func redacted(s Secret) string {
	if s == "" {
		return ""
	}
	return "***"
}

// RefKind is what a reference points at.
type RefKind string

const (
	SourceRef    RefKind = "source"
	TransformRef RefKind = "transform"
	SinkRef      RefKind = "sink"
)

// Ref is a resolved reference such as `source.app` in a `from` attribute.
type Ref struct {
	Kind  RefKind
	Name  string
	Range hcl.Range // where the reference is written
}

func (r Ref) String() string { return string(r.Kind) + "." + r.Name }

// Source is a `source "TYPE" "NAME"` block. Exactly one of the typed
// fields is set, according to Type.
type Source struct {
	Type      string // "postgres" | "kafka" | "file"
	Name      string
	DeclRange hcl.Range
	Postgres  *PostgresSource
	Kafka     *KafkaSource
	File      *FileSource
}

// PostgresSource configures logical replication from PostgreSQL.
type PostgresSource struct {
	DSN         string   // postgres URL or keyword/value DSN (may hold a password: never print it)
	Tables      []string // "schema.table" or "schema.*"
	Slot        string   // default "sluice_<pipeline>"
	Publication string   // default "sluice_<pipeline>"
	Snapshot    string   // "initial" (default) | "incremental" | "never"
	Exclude     []string // "schema.table.column": never leaves PostgreSQL
	Heartbeat   time.Duration
	OnSlotLost  string // "fail" (default) | "resnapshot"
	// MaxRowsPerSecond limits the snapshot's read rate; 0: none.
	MaxRowsPerSecond int
	// SnapshotWorkers is how many connections read the initial snapshot;
	// 0: the default (the number of CPUs, at least 2).
	SnapshotWorkers int
	Ranges          map[string]hcl.Range // attribute name → where it is written, for later diagnostics
}

// KafkaSource consumes change events from Kafka topics.
type KafkaSource struct {
	Brokers []string
	Topics  []string
	Group   string
	Format  string // "debezium" (default) | "native"
	TLS     *TLS
	SASL    *KafkaSASL
	Ranges  map[string]hcl.Range
}

// FileSource reads native change events, one JSON object per line.
type FileSource struct {
	Path   string
	Follow bool // keep reading as the file grows; default false (stop at end)
	Ranges map[string]hcl.Range
}

// Transform is a `transform "NAME"` block. Its steps always run in the
// order where → set → mask → select/exclude → rename.
type Transform struct {
	Name      string
	DeclRange hcl.Range
	From      []Ref
	Tables    []string           // "schema.table"; empty means every table
	Where     *eventexpr.Program // nil when absent
	Set       []SetColumn        // in the order written
	Mask      []MaskColumn       // in the order written
	Select    []string
	Exclude   []string
	Rename    []RenameColumn // in the order written
	Ranges    map[string]hcl.Range
}

// SetColumn is one entry of `set`: a computed column.
type SetColumn struct {
	Column string
	Expr   *eventexpr.Program
}

// MaskColumn is one entry of `mask`.
type MaskColumn struct {
	Column string
	Kind   string // "hash" | "redact" | "partial" | "null"
}

// RenameColumn is one entry of `rename`.
type RenameColumn struct{ From, To string }

// Sink is a `sink "TYPE" "NAME"` block. Exactly one of the typed fields is
// set, according to Type.
type Sink struct {
	Type      string // "mysql" | "postgres" | "kafka" | "webhook" | "file", or a registered kind
	Name      string
	DeclRange hcl.Range
	From      []Ref
	Linger    time.Duration // least time between two commits; default 5ms
	MySQL     *TableSink
	Postgres  *TableSink
	Kafka     *KafkaSink
	Webhook   *WebhookSink
	File      *FileSink
	// Config is the decoded block of a kind a component registered
	// (RegisterSink): a pointer to its config struct; nil for the
	// built-in kinds, which have the typed fields above.
	Config any
}

// TableSink configures the MySQL/MariaDB and PostgreSQL sinks.
type TableSink struct {
	DSN           string
	Table         string   // default: the source table's name
	Key           []string // default: the source primary key
	Mode          string   // "upsert" (default) | "append" | "update"
	Columns       []string // with mode "update": the only columns written
	Delete        string   // "hard" (default) | "soft" | "skip"
	AutoCreate    bool
	BatchSize     int    // default 1000
	SchemaChanges string // "add_columns" (default) | "drop_columns" | "fail"
	Truncate      string // "apply" (default) | "skip" | "fail"
	// MaxRowsPerSecond limits the rows written per second; 0: none.
	MaxRowsPerSecond int
	Enums            string // MySQL only: "enum" (default) | "varchar"
	TLS              *TLS   // MySQL only: the tls block
	Ranges           map[string]hcl.Range
}

// KafkaSink writes change events to Kafka topics.
type KafkaSink struct {
	Brokers           []string
	Topic             string // template with {schema} and {table}; default "<pipeline>.{schema}.{table}"
	Format            string // "debezium" (default) | "native"
	Schemas           bool   // Debezium's schema part
	Key               []string
	Tombstones        bool
	ExactlyOnce       bool
	Partitions        int           // for topics it creates; default 1
	ReplicationFactor int           // for topics it creates; default 1
	ProducerLinger    time.Duration // default 5ms
	BatchBytes        int           // producer batch limit; default 1000012
	Resolved          time.Duration // resolved messages at most this often; 0: none
	Transactions      bool          // transaction metadata: BEGIN/END on TransactionsTopic, each event's transaction block
	TransactionsTopic string        // default "<pipeline>.transaction"
	TLS               *TLS
	SASL              *KafkaSASL
	Outbox            *KafkaOutbox
	Ranges            map[string]hcl.Range
}

// KafkaOutbox is the Kafka sink's `outbox` block: records routed by
// expressions over each row.
type KafkaOutbox struct {
	Topic, Key, Value *eventexpr.Program // Key nil: no key
	Headers           []SetColumn
	Ranges            map[string]hcl.Range
}

// TLS is a `tls` block (Kafka clients, the MySQL sink); nil means none.
// Paths are resolved against the pipeline file's directory.
type TLS struct {
	CAFile, CertFile, KeyFile string
	ServerName                string
	InsecureSkipVerify        bool
	Ranges                    map[string]hcl.Range
}

// KafkaSASL is a Kafka client's `sasl` block; nil means none.
type KafkaSASL struct {
	Mechanism    string // "plain" | "scram-sha-256" | "scram-sha-512" | "aws-msk-iam"
	Username     string
	Password     Secret
	SessionToken Secret // aws-msk-iam only
	Ranges       map[string]hcl.Range
}

// WebhookSink POSTs batches of events.
type WebhookSink struct {
	URL          string
	Secret       Secret
	Headers      map[string]Secret // header values may hold tokens
	Batch        int               // default 100
	MaxBytes     int               // request body limit; 0: none
	Timeout      time.Duration     // default 5s
	RetryMax     int               // retry = { max = 8, ... }; default 8
	RetryBackoff time.Duration     // default 500ms
	Format       string            // "native" (default) | "debezium"
	Resolved     time.Duration     // resolved requests at most this often; 0: none
	Transactions bool              // transaction metadata: BEGIN/END elements, each event's transaction block
	Ranges       map[string]hcl.Range
}

// FileSink writes JSON Lines.
type FileSink struct {
	Path         string        // "-" is stdout
	Format       string        // "native" (default) | "debezium"
	Resolved     time.Duration // resolved lines at most this often; 0: none
	Transactions bool          // transaction metadata: BEGIN/END lines, each event's transaction block
	Ranges       map[string]hcl.Range
}

// Test is a `test "DESCRIPTION"` block.
type Test struct {
	Name         string
	DeclRange    hcl.Range
	Inputs       []TestInput
	Expects      []TestExpect // in the order written
	ExpectTables []TestExpectTable
}

// TestInput is an `input "schema.table"` block: one change event.
type TestInput struct {
	Event     change.Event // Op, Schema, Table, Before, After, Key (when given)
	DeclRange hcl.Range
}

// TestExpect is an `expect "sink.NAME"` block: the next event that sink
// receives.
type TestExpect struct {
	Sink      string // the sink's name
	Event     change.Event
	DeclRange hcl.Range
}

// TestExpectTable is an `expect_table "sink.NAME"` block: the target
// table's rows after every input, in key order.
type TestExpectTable struct {
	Sink      string
	Table     string // optional: which target table, when the sink writes several
	Rows      []change.Row
	DeclRange hcl.Range
}
