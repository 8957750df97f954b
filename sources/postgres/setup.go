package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/tlsfiles"
)

// connect opens a regular connection with the session settings decoding
// relies on. Errors never include the DSN (it may hold a password).
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("dsn is not a valid PostgreSQL connection string (postgres://user@host:5432/db): %v", redactErr(err, dsn)))
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classifyConnect(err, cfg.User, dsn)
	}
	return conn, nil
}

// connectReplication opens a logical replication connection (replication=database).
func connectReplication(ctx context.Context, dsn string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("dsn is not a valid PostgreSQL connection string: %v", redactErr(err, dsn)))
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classifyConnect(err, cfg.User, dsn)
	}
	return conn, nil
}

// classifyConnect turns a connection failure into a message with the fix;
// authentication and privilege problems are permanent, the rest (server
// down, restarting) retriable.
func classifyConnect(err error, user, dsn string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42501": // insufficient_privilege: no REPLICATION attribute
			return engine.Permanent(fmt.Errorf("role %q may not start logical replication (%s): run ALTER ROLE %s REPLICATION as a superuser", user, pgErr.Message, pgx.Identifier{user}.Sanitize()))
		case "28P01", "28000":
			return engine.Permanent(fmt.Errorf("PostgreSQL rejected the login of role %q (%s): check the user and password in dsn and pg_hba.conf", user, pgErr.Message))
		case "3D000":
			return engine.Permanent(fmt.Errorf("connect: %s: correct the database name in dsn", pgErr.Message))
		}
	}
	if tlsfiles.Untrusted(err) {
		return engine.Permanent(fmt.Errorf("connect to PostgreSQL: %v: the server's certificate is not trusted: set sslrootcert in dsn to the CA that signed it (with sslmode=verify-full), or check the host name it carries", redactErr(err, dsn)))
	}
	return fmt.Errorf("connect to PostgreSQL: %v", redactErr(err, dsn))
}

var passwordInURL = regexp.MustCompile(`(://[^:/@]*:)[^@]*@`)
var passwordKV = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// redactErr returns err's text with any password removed: pgx quotes
// parts of the connection string in some errors.
func redactErr(err error, dsn string) string {
	s := err.Error()
	if dsn != "" {
		s = strings.ReplaceAll(s, dsn, "(dsn)")
	}
	s = passwordInURL.ReplaceAllString(s, "${1}***@")
	return passwordKV.ReplaceAllString(s, "${1}***")
}

// serverChecks verifies what logical replication needs from the server.
func serverChecks(ctx context.Context, conn *pgx.Conn) (version int, findings []Finding, err error) {
	var walLevel string
	var canReplicate bool
	err = conn.QueryRow(ctx, `SELECT current_setting('wal_level'), current_setting('server_version_num')::int,
		(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&walLevel, &version, &canReplicate)
	if err != nil {
		return 0, nil, fmt.Errorf("read server settings: %w", err)
	}
	if walLevel != "logical" {
		findings = append(findings, Finding{Severity: Error, Attribute: "dsn", Subject: "wal_level",
			Message: fmt.Sprintf("PostgreSQL runs with wal_level = %s, and logical replication needs wal_level = logical", walLevel),
			Fix:     "run ALTER SYSTEM SET wal_level = logical as a superuser and restart PostgreSQL"})
	}
	if !canReplicate {
		findings = append(findings, Finding{Severity: Error, Attribute: "dsn", Subject: "REPLICATION",
			Message: "the role in dsn has no REPLICATION attribute",
			Fix:     "run ALTER ROLE <user> REPLICATION as a superuser"})
	}
	return version, findings, nil
}

// publication is an existing publication as the catalog shows it.
type publication struct {
	exists, mine, allTables bool // mine: the current user may alter it
	viaRoot                 bool // publish_via_partition_root
	owner                   string
	tables                  map[string]string // see publicationTables
	// schemas lists the schemas it publishes as schemas (FOR TABLES IN
	// SCHEMA, PostgreSQL 15), sorted.
	schemas []string
}

func readPublication(ctx context.Context, conn *pgx.Conn, pub string, version int) (publication, error) {
	var p publication
	viaRoot := "false"
	if version >= 130000 {
		viaRoot = "p.pubviaroot"
	}
	err := conn.QueryRow(ctx, `SELECT r.rolname, pg_has_role(current_user, p.pubowner, 'USAGE'), p.puballtables, `+viaRoot+`
		FROM pg_publication p JOIN pg_roles r ON r.oid = p.pubowner WHERE p.pubname = $1`, pub).Scan(&p.owner, &p.mine, &p.allTables, &p.viaRoot)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read publication %s: %w", pub, err)
	}
	p.exists = true
	if p.tables, err = publicationTables(ctx, conn, pub, version); err != nil {
		return p, err
	}
	if version >= 150000 {
		rows, err := conn.Query(ctx, `SELECT n.nspname::text FROM pg_publication_namespace pn JOIN pg_publication p ON p.oid = pn.pnpubid
			JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE p.pubname = $1 ORDER BY 1`, pub)
		if err == nil {
			p.schemas, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return p, fmt.Errorf("read publication %s: schemas: %w", pub, err)
		}
	}
	return p, nil
}

// publicationTables returns what a publication publishes table by table
// (FOR TABLE): qualified table → its column list ("" when it has none
// and so publishes every column, including ones added later). Tables it
// publishes through a schema (FOR TABLES IN SCHEMA) are not listed.
func publicationTables(ctx context.Context, conn *pgx.Conn, pub string, version int) (map[string]string, error) {
	sql := `SELECT schemaname || '.' || tablename, '' FROM pg_publication_tables WHERE pubname = $1`
	if version >= 150000 {
		sql = `SELECT n.nspname || '.' || c.relname,
			coalesce((SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs)), '')
			FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
			JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE p.pubname = $1`
	}
	rows, err := conn.Query(ctx, sql, pub)
	if err != nil {
		return nil, fmt.Errorf("read publication %s: %w", pub, err)
	}
	out := map[string]string{}
	for rows.Next() {
		var t, cols string
		if err := rows.Scan(&t, &cols); err != nil {
			rows.Close()
			return nil, err
		}
		out[t] = cols
	}
	rows.Close()
	return out, rows.Err()
}

// publicationSpec is the member list of CREATE/ALTER PUBLICATION: the
// schemas published as schemas (TABLES IN SCHEMA, which then include
// tables created later), then every other table (TABLE), with a column
// list for tables that exclude columns. want maps each table listed
// one by one to its column list (see publicationTables).
func publicationSpec(schemas []string, tables []*table) (string, map[string]string) {
	var parts []string
	want := map[string]string{}
	for _, t := range tables {
		if slices.Contains(schemas, t.Schema) {
			continue // published through its schema
		}
		part := t.ident()
		cols := ""
		if len(t.Excluded) > 0 {
			var names []string
			for _, c := range t.Columns {
				names = append(names, pgx.Identifier{c.Name}.Sanitize())
			}
			part += " (" + strings.Join(names, ", ") + ")"
			cols = strings.Join(t.columnNames(), ",")
		}
		parts = append(parts, part)
		want[t.qualified()] = cols
	}
	var spec []string
	if len(schemas) > 0 {
		var quoted []string
		for _, s := range schemas {
			quoted = append(quoted, pgx.Identifier{s}.Sanitize())
		}
		spec = append(spec, "TABLES IN SCHEMA "+strings.Join(quoted, ", "))
	}
	if len(parts) > 0 {
		spec = append(spec, "TABLE "+strings.Join(parts, ", "))
	}
	return strings.Join(spec, ", "), want
}

// needsViaRoot reports whether the publication must publish the changes
// of partitions under their partitioned table's name
// (publish_via_partition_root): when it captures a partitioned table,
// or a schema, where one may be created later. Without it, streamed
// changes would name the partitions while the snapshot names the
// partitioned table.
func needsViaRoot(schemas []string, tables []*table) bool {
	return len(schemas) > 0 || slices.ContainsFunc(tables, func(t *table) bool { return t.Partitioned })
}

// matches reports whether an existing publication publishes exactly what
// the declared schemas and tables need.
func (p publication) matches(schemas []string, tables []*table, want map[string]string) bool {
	return !p.allTables && p.sameMembers(schemas, want) && (p.viaRoot || !needsViaRoot(schemas, tables))
}

// sameMembers reports whether the publication lists exactly these
// schemas and tables (with their column lists).
func (p publication) sameMembers(schemas []string, want map[string]string) bool {
	return sameTables(p.tables, want) && sameSet(p.schemas, schemas)
}

// ensurePublication creates the publication or alters it to publish
// exactly the declared schemas (see publishedSchemas), tables and
// columns, partitions under their partitioned table's name. A
// publication created as a FOR TABLE list is migrated to TABLES IN
// SCHEMA when schemas asks for it, and back. Idempotent.
func ensurePublication(ctx context.Context, conn *pgx.Conn, pub string, schemas []string, tables []*table, version int) error {
	spec, want := publicationSpec(schemas, tables)
	for _, t := range tables {
		if len(t.Excluded) > 0 && version < 150000 {
			return engine.Permanent(fmt.Errorf("exclude for %s needs PostgreSQL 15 publication column lists, and this server is version %d: upgrade, or drop exclude and remove the columns in a transform (they then leave PostgreSQL)", t.qualified(), version/10000))
		}
	}
	cur, err := readPublication(ctx, conn, pub, version)
	if err != nil {
		return err
	}
	ident := pgx.Identifier{pub}.Sanitize()
	switch {
	case !cur.exists:
		if spec == "" {
			return engine.Permanent(fmt.Errorf("no table to publish: tables matched nothing"))
		}
		with := ""
		if version >= 130000 {
			// Always: harmless without partitioned tables, and right for
			// one added to tables later.
			with = " WITH (publish_via_partition_root = true)"
		}
		if _, err := conn.Exec(ctx, "CREATE PUBLICATION "+ident+" FOR "+spec+with); err != nil {
			return publicationError(err, pub, "create")
		}
		return nil
	case cur.matches(schemas, tables, want):
		return nil
	case !cur.mine && cur.sameMembers(schemas, want) && !cur.allTables:
		return engine.Permanent(fmt.Errorf("publication %s publishes partitioned tables under their partitions' names (publish_via_partition_root is off) and is owned by role %s, so sluice cannot turn it on: run ALTER PUBLICATION %s SET (publish_via_partition_root = true) as its owner, or name another publication in publication", pub, cur.owner, ident))
	case !cur.mine:
		return engine.Permanent(fmt.Errorf("publication %s exists but is owned by role %s, so it cannot be altered to publish %s: run ALTER PUBLICATION %s OWNER TO <the dsn's user>, or name another publication in publication", pub, cur.owner, members(schemas, want), ident))
	case cur.allTables:
		return engine.Permanent(fmt.Errorf("publication %s publishes ALL TABLES and cannot be narrowed: name another publication in publication", pub))
	}
	if !cur.sameMembers(schemas, want) && spec != "" {
		// SET replaces every member, schemas and tables alike.
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+ident+" SET "+spec); err != nil {
			return publicationError(err, pub, "alter")
		}
	}
	if !cur.viaRoot && version >= 130000 {
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+ident+" SET (publish_via_partition_root = true)"); err != nil {
			return publicationError(err, pub, "alter")
		}
	}
	return nil
}

// members names what a publication should publish, for messages.
func members(schemas []string, want map[string]string) string {
	var out []string
	for _, s := range schemas {
		out = append(out, "schema "+s)
	}
	return strings.Join(append(out, slices.Sorted(maps.Keys(want))...), ", ")
}

func publicationError(err error, pub, verb string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return engine.Permanent(fmt.Errorf("cannot %s publication %s: %s: grant CREATE on the database and ownership of the tables to the dsn's user, or create the publication as their owner", verb, pub, pgErr.Message))
	}
	return engine.Permanent(fmt.Errorf("%s publication %s: %w", verb, pub, err))
}

func sameTables(have, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for t, cols := range want {
		if h, ok := have[t]; !ok || h != cols {
			return false
		}
	}
	return true
}

// slotInfo is a replication slot's state, from pg_replication_slots.
type slotInfo struct {
	Exists    bool
	Plugin    string
	Database  string
	ActivePID int32
	Confirmed pglogrepl.LSN
	Current   string // the database the connection is in
	// WALStatus is pg_replication_slots.wal_status: reserved, extended,
	// unreserved (about to be invalidated), or lost (invalidated: the
	// WAL it needs was removed, max_slot_wal_keep_size).
	WALStatus string
	// ServerLSN is the server's current WAL position (pg_current_wal_lsn).
	ServerLSN pglogrepl.LSN
}

func readSlot(ctx context.Context, conn *pgx.Conn, slot string) (slotInfo, error) {
	var s slotInfo
	var pid *int32
	var name, plugin, db, confirmed, walStatus *string
	var server string
	err := conn.QueryRow(ctx, `SELECT current_database(), slot_name::text, plugin::text, database::text, active_pid, confirmed_flush_lsn::text,
		to_jsonb(s)->>'wal_status', pg_current_wal_lsn()::text -- wal_status: PostgreSQL 13+
		FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON slot_name = $1`, slot).Scan(&s.Current, &name, &plugin, &db, &pid, &confirmed, &walStatus, &server)
	if err != nil {
		return s, fmt.Errorf("read replication slot %s: %w", slot, err)
	}
	s.Exists = name != nil
	if plugin != nil {
		s.Plugin = *plugin
	}
	if db != nil {
		s.Database = *db
	}
	if pid != nil {
		s.ActivePID = *pid
	}
	if confirmed != nil {
		s.Confirmed, _ = pglogrepl.ParseLSN(*confirmed)
	}
	if walStatus != nil {
		s.WALStatus = *walStatus
	}
	s.ServerLSN, _ = pglogrepl.ParseLSN(server)
	return s, nil
}

// checkSlot reports a slot this source cannot use.
func checkSlot(s slotInfo, slot string) *Finding {
	switch {
	case !s.Exists:
		return nil
	case s.Plugin != "pgoutput":
		return &Finding{Severity: Error, Attribute: "slot", Subject: slot,
			Message: fmt.Sprintf("replication slot %s exists but is not a logical slot of the pgoutput plugin (plugin %q)", slot, s.Plugin),
			Fix:     "name another slot in slot, or drop this one with SELECT pg_drop_replication_slot('" + slot + "')"}
	case s.Database != s.Current:
		return &Finding{Severity: Error, Attribute: "slot", Subject: slot,
			Message: fmt.Sprintf("replication slot %s belongs to database %s, not %s", slot, s.Database, s.Current),
			Fix:     "slot names are cluster-wide: name another slot in slot"}
	case s.ActivePID != 0:
		return &Finding{Severity: Error, Attribute: "slot", Subject: slot,
			Message: fmt.Sprintf("replication slot %s is in use by another process (PID %d)", slot, s.ActivePID),
			Fix:     "stop the other consumer (another sluice running this pipeline?) or name another slot in slot"}
	}
	return nil
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// createSlot creates the logical slot. With export it returns the name of
// the exported snapshot, valid until the next command on conn.
func createSlot(ctx context.Context, conn *pgconn.PgConn, slot string, export bool) (pglogrepl.CreateReplicationSlotResult, error) {
	action := "NOEXPORT_SNAPSHOT"
	if export {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch pgErr.Code {
			case "53400": // configuration_limit_exceeded
				return res, engine.Permanent(fmt.Errorf("cannot create replication slot %s: %s: raise max_replication_slots or drop unused slots", slot, pgErr.Message))
			case "55000": // object_not_in_prerequisite_state: wal_level
				return res, engine.Permanent(fmt.Errorf("cannot create replication slot %s: %s: set wal_level = logical (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL", slot, pgErr.Message))
			}
		}
		return res, fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	return res, nil
}
