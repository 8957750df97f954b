package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// This file holds what the CLI needs besides running a pipeline:
// dry-run's --sample and --peek, and validate --live. None of it creates
// or writes anything in the database.

// Sample reads up to n rows of each declared table (in key order) as
// snapshot events of source, for `sluice dry-run --sample N`. Positions
// have Offset 0 and number the rows. Nothing is created or written.
func Sample(ctx context.Context, cfg *dsl.PostgresSource, source string, n int) ([]change.Event, error) {
	conn, tables, err := connectTables(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	types := newTypeRegistry()
	dec := newDecoder(source, types, nil)
	var out []change.Event
	for _, t := range tables {
		oids := make([]uint32, len(t.Columns))
		for i, c := range t.Columns {
			oids[i] = c.TypeOID
		}
		if err := types.ensure(ctx, conn, oids); err != nil {
			return nil, err
		}
		rs := dec.seed(t)
		var cols []string
		for _, c := range t.Columns {
			cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
		}
		order := "ctid"
		if len(t.PK) > 0 {
			var keys []string
			for _, k := range t.PK {
				keys = append(keys, pgx.Identifier{k}.Sanitize())
			}
			order = strings.Join(keys, ", ")
		}
		sql := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.ident() + " ORDER BY " + order + " LIMIT " + strconv.Itoa(max(n, 0))
		res := conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Read()
		if res.Err != nil {
			return nil, fmt.Errorf("sample %s: %w", t.qualified(), res.Err)
		}
		for _, vals := range res.Rows {
			values, _, err := t.decodeValues(types, vals, "sample")
			if err != nil {
				return nil, err
			}
			row := change.MakeRow(rs.row, values)
			out = append(out, change.Event{Op: change.Snapshot, Schema: t.Schema, Table: t.Name, After: row, Key: rs.keyOf(row),
				Changed: rs.names, Relation: rs.rel, Boundary: true,
				Position: change.Position{Source: source, Index: uint32(len(out))}})
		}
	}
	return out, nil
}

// Peek returns the next changes waiting in the slot, without consuming
// them (pg_logical_slot_peek_binary_changes), for `sluice dry-run --peek
// N`: at least n row events when that many are pending (PostgreSQL stops
// at the end of the transaction in which the n-th change falls), Marks
// included. cfg's Slot and Publication must be set (WithDefaults).
func Peek(ctx context.Context, cfg *dsl.PostgresSource, source string, n int) ([]change.Event, error) {
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	slot, err := readSlot(ctx, conn, cfg.Slot)
	if err != nil {
		return nil, err
	}
	if !slot.Exists {
		return nil, engine.Permanent(fmt.Errorf("replication slot %s does not exist yet, so no change is pending: run the pipeline once (it creates the slot), or use --sample to see existing rows", cfg.Slot))
	}
	if f := checkSlot(slot, cfg.Slot); f != nil {
		if slot.ActivePID != 0 {
			f.Message += "; a running pipeline consumes the changes as they come, so there is nothing to peek at"
		}
		return nil, engine.Permanent(errors.New(f.String()))
	}
	// Read every message first: the decoder queries the catalog on the
	// same connection when it meets a relation.
	rows, err := conn.Query(ctx, `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2,
		'proto_version', '1', 'publication_names', $3, 'messages', 'true')`, cfg.Slot, max(n, 1), quoteIdentList(cfg.Publication))
	if err != nil {
		return nil, peekError(err, cfg)
	}
	msgs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, peekError(err, cfg)
	}
	dec := newDecoder(source, newTypeRegistry(), conn)
	dec.excluded = excludedColumns(cfg.Exclude)
	var out []change.Event
	for _, m := range msgs {
		if out, err = dec.decode(ctx, m, out); err != nil {
			return nil, fmt.Errorf("peek slot %s: %w", cfg.Slot, err)
		}
	}
	return out, nil
}

// quoteIdentList quotes a publication name the way publication_names
// parses it (a comma-separated list of identifiers).
func quoteIdentList(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func peekError(err error, cfg *dsl.PostgresSource) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42704":
			return engine.Permanent(fmt.Errorf("peek slot %s: %s: run the pipeline once so that it creates publication %s", cfg.Slot, pgErr.Message, cfg.Publication))
		case "55006":
			return engine.Permanent(fmt.Errorf("peek slot %s: %s: a running pipeline holds the slot; stop it to peek", cfg.Slot, pgErr.Message))
		}
	}
	return fmt.Errorf("peek slot %s: %w", cfg.Slot, err)
}

// connectTables connects and resolves the declared tables; any problem
// that would stop the source is an error.
func connectTables(ctx context.Context, cfg *dsl.PostgresSource) (*pgx.Conn, []*table, error) {
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return nil, nil, err
	}
	tables, findings, err := resolveTables(ctx, conn, cfg.Tables, cfg.Exclude)
	if err == nil {
		err = findingsError(findings)
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, nil, err
	}
	return conn, tables, nil
}

// Describe returns the shape of every declared table as events will carry
// it (excluded columns removed), for checks of the columns that
// transforms name. Problems that stop the source come back as an error.
func Describe(ctx context.Context, cfg *dsl.PostgresSource) ([]*change.Relation, error) {
	conn, tables, err := connectTables(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	out := make([]*change.Relation, len(tables))
	for i, t := range tables {
		out[i] = t.relation()
	}
	return out, nil
}

// CheckLive validates a source block against the live database for
// `sluice validate --live`: the server (wal_level, REPLICATION), every
// table (exists, identifiable, TOAST under DEFAULT identity), every
// excluded column, and the slot and publication as they stand. It
// changes nothing. cfg's Slot and Publication should be set
// (WithDefaults); empty ones are not checked.
func CheckLive(ctx context.Context, cfg *dsl.PostgresSource) []Finding {
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return []Finding{{Severity: Error, Attribute: "dsn", Message: "cannot connect: " + err.Error(),
			Fix: "check that PostgreSQL runs and that dsn names the right host, port, database and user"}}
	}
	defer conn.Close(context.Background())
	version, findings, err := serverChecks(ctx, conn)
	if err != nil {
		return append(findings, Finding{Severity: Error, Attribute: "dsn", Message: err.Error()})
	}
	tables, more, err := resolveTables(ctx, conn, cfg.Tables, cfg.Exclude)
	findings = append(findings, more...)
	if err != nil {
		return append(findings, Finding{Severity: Error, Attribute: "tables", Message: err.Error()})
	}
	if len(cfg.Exclude) > 0 && version < 150000 {
		findings = append(findings, Finding{Severity: Error, Attribute: "exclude",
			Message: fmt.Sprintf("exclude needs PostgreSQL 15 publication column lists; this server is version %d", version/10000),
			Fix:     "upgrade, or remove the columns in a transform's exclude instead (they then leave PostgreSQL)"})
	}
	if cfg.Slot != "" {
		slot, err := readSlot(ctx, conn, cfg.Slot)
		switch {
		case err != nil:
			findings = append(findings, Finding{Severity: Error, Attribute: "slot", Subject: cfg.Slot, Message: err.Error()})
		case !slotName.MatchString(cfg.Slot):
			findings = append(findings, Finding{Severity: Error, Attribute: "slot", Subject: cfg.Slot,
				Message: fmt.Sprintf("slot name %q is not valid", cfg.Slot), Fix: "use lower-case letters, digits and underscores (at most 63)"})
		case checkSlot(slot, cfg.Slot) != nil:
			findings = append(findings, *checkSlot(slot, cfg.Slot))
		case slot.WALStatus == "lost":
			findings = append(findings, Finding{Severity: Warning, Attribute: "slot", Subject: cfg.Slot,
				Message: fmt.Sprintf("replication slot %s was invalidated (wal_status = lost): the WAL it needed was removed, so the pipeline cannot resume from it", cfg.Slot),
				Fix:     "run `sluice drop FILE` and then `sluice run FILE` for a new snapshot, or set on_slot_lost = \"resnapshot\""})
		}
	}
	schemas, more, err := publishedSchemas(ctx, conn, cfg.Tables, cfg.Exclude, version)
	findings = append(findings, more...)
	if err != nil {
		return append(findings, Finding{Severity: Error, Attribute: "tables", Message: err.Error()})
	}
	if cfg.Publication != "" {
		findings = append(findings, checkPublication(ctx, conn, cfg.Publication, schemas, tables, version)...)
	}
	return findings
}

// checkPublication reports what Open would have to change about an
// existing publication, and whether it may.
func checkPublication(ctx context.Context, conn *pgx.Conn, pub string, schemas []string, tables []*table, version int) []Finding {
	cur, err := readPublication(ctx, conn, pub, version)
	if err != nil {
		return []Finding{{Severity: Error, Attribute: "publication", Subject: pub, Message: err.Error()}}
	}
	if !cur.exists {
		return nil // Open creates it
	}
	_, want := publicationSpec(schemas, tables)
	switch {
	case cur.allTables:
		return []Finding{{Severity: Error, Attribute: "publication", Subject: pub,
			Message: fmt.Sprintf("publication %s publishes ALL TABLES and cannot be narrowed to the declared tables", pub), Fix: "name another publication"}}
	case cur.matches(schemas, tables, want):
		return nil
	case !cur.mine && cur.sameMembers(schemas, want):
		return []Finding{{Severity: Error, Attribute: "publication", Subject: pub,
			Message: fmt.Sprintf("publication %s publishes partitioned tables under their partitions' names (publish_via_partition_root is off), and is owned by role %s, so sluice cannot turn it on", pub, cur.owner),
			Fix:     fmt.Sprintf("run ALTER PUBLICATION %s SET (publish_via_partition_root = true) as its owner, or name another publication", pgx.Identifier{pub}.Sanitize())}}
	case !cur.mine:
		return []Finding{{Severity: Error, Attribute: "publication", Subject: pub,
			Message: fmt.Sprintf("publication %s does not publish exactly the declared schemas, tables and columns (%s), and is owned by role %s, so sluice cannot alter it", pub, members(schemas, want), cur.owner),
			Fix:     fmt.Sprintf("run ALTER PUBLICATION %s OWNER TO <the dsn's user>, or name another publication", pgx.Identifier{pub}.Sanitize())}}
	}
	return []Finding{{Severity: Warning, Attribute: "publication", Subject: pub,
		Message: fmt.Sprintf("publication %s does not publish exactly the declared schemas, tables and columns (%s; partitions under their partitioned table's name); the pipeline will alter it when it starts", pub, members(schemas, want))}}
}

// smallKeepFactor: max_slot_wal_keep_size below this many times the
// slot's current lag leaves little room for a stop or a slow sink.
const smallKeepFactor = 4

// CheckRetention warns about the server's max_slot_wal_keep_size for
// `sluice validate --live`: unset (-1), a slot that falls behind keeps WAL
// until the disk fills; set but small against the WAL the slot retains
// now (its lag behind the server), a short stop or a slow sink gets the
// slot invalidated. cfg's Slot must be set (WithDefaults). A server it
// cannot reach yields nothing (CheckLive reports it).
func CheckRetention(ctx context.Context, cfg *dsl.PostgresSource) []Finding {
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return nil
	}
	defer conn.Close(context.Background())
	return walRetention(ctx, conn, cfg.Slot)
}

func walRetention(ctx context.Context, conn *pgx.Conn, slot string) []Finding {
	var keepMB int64
	var retained *int64
	err := conn.QueryRow(ctx, `SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size'), -- in MB
		(SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1)`, slot).Scan(&keepMB, &retained)
	if err != nil {
		return nil // before PostgreSQL 13: no such setting
	}
	if keepMB < 0 {
		return []Finding{{Severity: Warning, Attribute: "dsn", Subject: "max_slot_wal_keep_size",
			Message: "max_slot_wal_keep_size is -1 (unlimited): while the pipeline is stopped or behind, its replication slot keeps WAL until the server's disk fills",
			Fix:     "set a limit the disk can hold (ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf()), and watch sluice_source_slot_safe_wal_bytes; a slot past it is lost (see on_slot_lost)"}}
	}
	keep := keepMB << 20
	if retained != nil && *retained*smallKeepFactor > keep {
		return []Finding{{Severity: Warning, Attribute: "dsn", Subject: "max_slot_wal_keep_size",
			Message: fmt.Sprintf("max_slot_wal_keep_size is %d MB, and replication slot %s already retains %d MB: a short stop or a slow sink gets the slot invalidated", keepMB, slot, *retained>>20),
			Fix:     fmt.Sprintf("raise max_slot_wal_keep_size to at least %d MB, or set on_slot_lost = \"resnapshot\"", max(*retained*smallKeepFactor>>20, 1024))}}
	}
	return nil
}
