package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Severity grades a Finding.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem found in the live database for a source block.
// Attribute names the block attribute it concerns (a key of
// dsl.PostgresSource.Ranges: "dsn", "tables", "exclude", "slot",
// "publication"), so that the CLI can point at file:line:col.
type Finding struct {
	Severity  Severity
	Attribute string
	Subject   string // the table, column, slot or publication concerned
	Message   string // what is wrong
	Fix       string // what to do about it
}

func (f Finding) String() string {
	if f.Fix == "" {
		return f.Message
	}
	return f.Message + ": " + f.Fix
}

// table is one captured table as the catalog describes it.
type table struct {
	Schema, Name string
	OID          uint32
	Columns      []tableColumn // published columns (exclude removed), in table order
	// Generated lists the stored generated columns (exclude removed):
	// in the relation, never read or published (pgoutput does not send
	// them before PostgreSQL 18, and a publication column list of
	// version 15 may not name them).
	Generated    []tableColumn
	Excluded     []string
	PK           []string // primary-key columns in key order; empty without a primary key
	IdentityCols []string // the replica identity index's columns under REPLICA IDENTITY USING INDEX
	Identity     byte     // relreplident: d(efault), f(ull), i(ndex), n(othing)
	Estimate     int64    // pg_class.reltuples, 0 when never analysed
	CanSelect    bool     // the current role may read it (the snapshot does)
	Partitioned  bool     // a partitioned table (relkind p): its partitions' rows replicate under its name
	Partition    bool     // a partition (relispartition) of another table
	// LeafIdentity maps each leaf partition of a partitioned table whose
	// replica identity differs from the table's to its relreplident.
	LeafIdentity map[string]byte
}

type tableColumn struct {
	Num       int16 // attnum
	Name      string
	TypeOID   uint32
	TypeMod   int32
	TypeName  string
	NotNull   bool
	Toastable bool            // varlena stored out of line when large (attstorage x or e)
	Default   string          // pg_get_expr of the default (the generation expression when Generated), "" when none
	Generated bool            // attgenerated = 's'
	TypeDef   *change.TypeDef // a user type's definition (readTypeDefs), nil for built-in ones
}

func (t *table) qualified() string { return t.Schema + "." + t.Name }

func (t *table) ident() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// relation describes the table's published columns for events, and its
// generated ones, in table order.
func (t *table) relation() *change.Relation {
	r := &change.Relation{Schema: t.Schema, Table: t.Name, Version: 1}
	for _, c := range t.allColumns() {
		r.Columns = append(r.Columns, change.Column{Name: c.Name, Type: c.TypeName, Key: slices.Contains(t.PK, c.Name), NotNull: c.NotNull,
			Default: c.Default, Generated: c.Generated, TypeDef: c.TypeDef})
	}
	return r
}

// allColumns returns Columns and Generated merged in table order.
func (t *table) allColumns() []tableColumn {
	if len(t.Generated) == 0 {
		return t.Columns
	}
	all := append(slices.Clone(t.Columns), t.Generated...)
	slices.SortFunc(all, func(a, b tableColumn) int { return int(a.Num) - int(b.Num) })
	return all
}

// splitQualified splits "schema.table" (a bare name means public).
func splitQualified(s string) (schema, name string) {
	if schema, name, ok := strings.Cut(s, "."); ok {
		return schema, name
	}
	return "public", s
}

// userSchema is the SQL condition on pg_namespace n that "*.*" covers:
// every schema but PostgreSQL's own (pg_catalog, information_schema,
// pg_toast and the temporary ones).
const userSchema = `n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'`

// publishedSchemas returns the schemas whose every table the
// publication publishes as a schema (FOR TABLES IN SCHEMA), so that a
// table created in one later is captured from its first row without a
// restart: those of "schema.*" patterns, and for "*.*" every user schema
// that exists now (a schema created later is not covered until the
// next start). It returns none, with a warning when a pattern asked for
// a schema, where PostgreSQL cannot: before version 15, for a role that
// is not a superuser (PostgreSQL requires one for TABLES IN SCHEMA), and
// with exclude (PostgreSQL refuses column lists in a publication that
// publishes a schema). Those pipelines keep the list of tables found at
// start (FOR TABLE), and take a new table at the next start.
func publishedSchemas(ctx context.Context, conn *pgx.Conn, patterns, exclude []string, version int) ([]string, []Finding, error) {
	var asked []string
	all := false
	for _, p := range patterns {
		if schema, name := splitQualified(p); name == "*" {
			all = all || schema == "*"
			asked = append(asked, schema)
		}
	}
	if len(asked) == 0 {
		return nil, nil, nil
	}
	var why string
	var super bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return nil, nil, fmt.Errorf("read the role's attributes: %w", err)
	}
	switch {
	case version < 150000:
		why = fmt.Sprintf("PostgreSQL %d has no FOR TABLES IN SCHEMA publications (15 has)", version/10000)
	case len(exclude) > 0:
		why = "exclude needs publication column lists, which PostgreSQL refuses in a publication that publishes a schema (FOR TABLES IN SCHEMA)"
	case !super:
		why = "PostgreSQL lets only a superuser publish a schema (FOR TABLES IN SCHEMA), and the role in dsn is not one"
	}
	if why != "" {
		return nil, []Finding{{Severity: Warning, Attribute: "tables", Subject: strings.Join(patterns, ", "),
			Message: "tables created while the pipeline runs are captured only from its next start: " + why,
			Fix:     "restart the pipeline after a migration creates tables (their rows are then copied), or upgrade, drop exclude, or use a superuser"}}, nil
	}
	rows, err := conn.Query(ctx, `SELECT n.nspname::text FROM pg_namespace n WHERE n.nspname = ANY($1) OR $2 AND `+userSchema+` ORDER BY 1`, asked, all)
	if err != nil {
		return nil, nil, fmt.Errorf("list schemas: %w", err)
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("list schemas: %w", err)
	}
	return schemas, nil, nil
}

// resolveTables expands the declared table patterns against the catalog
// and describes each table. Problems a user can fix come back as
// findings; err is a failure to ask.
func resolveTables(ctx context.Context, conn *pgx.Conn, patterns, exclude []string) ([]*table, []Finding, error) {
	var findings []Finding
	var names [][2]string
	seen := map[[2]string]bool{}
	for _, p := range patterns {
		schema, name := splitQualified(p)
		var found [][2]string
		if name == "*" {
			// "*.*": every table of every schema but the system ones.
			rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE (n.nspname = $1 OR $1 = '*' AND `+userSchema+`) AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY n.nspname, c.relname`, schema)
			if err != nil {
				return nil, nil, fmt.Errorf("list tables of schema %s: %w", schema, err)
			}
			for rows.Next() {
				var s, n string
				if err := rows.Scan(&s, &n); err != nil {
					rows.Close()
					return nil, nil, err
				}
				found = append(found, [2]string{s, n})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, nil, fmt.Errorf("list tables of schema %s: %w", schema, err)
			}
			if len(found) == 0 {
				findings = append(findings, Finding{Severity: Warning, Attribute: "tables", Subject: p,
					Message: fmt.Sprintf("%q matches no table: schema %s has no tables", p, schema),
					Fix:     "create the tables first or correct the schema name"})
			}
		} else {
			found = [][2]string{{schema, name}}
		}
		for _, f := range found {
			if !seen[f] {
				seen[f] = true
				names = append(names, f)
			}
		}
	}

	excl := map[string][]string{}
	for _, e := range exclude {
		i := strings.LastIndexByte(e, '.')
		if i < 0 || strings.Count(e, ".") != 2 {
			findings = append(findings, Finding{Severity: Error, Attribute: "exclude", Subject: e,
				Message: fmt.Sprintf("exclude entry %q is not schema.table.column", e),
				Fix:     `write it as "public.users.password"`})
			continue
		}
		excl[e[:i]] = append(excl[e[:i]], e[i+1:])
	}

	var tables []*table
	for _, n := range names {
		t, err := describeTable(ctx, conn, n[0], n[1])
		if err != nil {
			return nil, nil, err
		}
		if t == nil {
			findings = append(findings, Finding{Severity: Error, Attribute: "tables", Subject: n[0] + "." + n[1],
				Message: fmt.Sprintf("table %s.%s does not exist", n[0], n[1]),
				Fix:     "create it, or correct the name in tables (names are case-sensitive; write schema.table)"})
			continue
		}
		t.Excluded = excl[t.qualified()]
		delete(excl, t.qualified())
		if !t.CanSelect {
			findings = append(findings, Finding{Severity: Error, Attribute: "tables", Subject: t.qualified(),
				Message: fmt.Sprintf("the role in dsn may not read table %s (the snapshot and the publication need SELECT)", t.qualified()),
				Fix:     fmt.Sprintf("run GRANT SELECT ON %s TO <the dsn's user>", t.ident())})
		}
		findings = append(findings, t.applyExclude()...)
		findings = append(findings, t.checkIdentity()...)
		tables = append(tables, t)
	}
	tables, findings, err := dropCapturedPartitions(ctx, conn, tables, findings)
	if err != nil {
		return nil, nil, err
	}
	for q, cols := range excl {
		for _, c := range cols {
			findings = append(findings, Finding{Severity: Error, Attribute: "exclude", Subject: q + "." + c,
				Message: fmt.Sprintf("exclude names %s.%s, but table %s is not captured by this source", q, c, q),
				Fix:     "add the table to tables or remove the entry"})
		}
	}
	return tables, findings, nil
}

// dropCapturedPartitions removes the partitions whose partitioned
// ancestor is captured too: the publication publishes their changes
// under the ancestor's name (publish_via_partition_root), and the
// snapshot of the ancestor reads their rows, so capturing them as well
// would copy each row twice, into two target tables. A partition
// captured without its ancestor stays a table of its own. The findings
// about a dropped partition's table give way to one saying so.
func dropCapturedPartitions(ctx context.Context, conn *pgx.Conn, tables []*table, findings []Finding) ([]*table, []Finding, error) {
	captured := map[uint32]*table{}
	for _, t := range tables {
		captured[t.OID] = t
	}
	kept := tables[:0:0]
	for _, t := range tables {
		if !t.Partition {
			kept = append(kept, t)
			continue
		}
		rows, err := conn.Query(ctx, `SELECT relid::oid FROM pg_partition_ancestors($1) WHERE relid <> $1::regclass`, t.OID)
		if err != nil {
			return nil, nil, fmt.Errorf("read the partition ancestors of %s: %w", t.qualified(), err)
		}
		ancestors, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
		if err != nil {
			return nil, nil, fmt.Errorf("read the partition ancestors of %s: %w", t.qualified(), err)
		}
		var root *table
		for _, a := range ancestors {
			if r := captured[a]; r != nil {
				root = r // the last is the topmost: the one the publication names
			}
		}
		if root == nil {
			kept = append(kept, t)
			continue
		}
		findings = slices.DeleteFunc(findings, func(f Finding) bool { return f.Attribute == "tables" && f.Subject == t.qualified() })
		findings = append(findings, Finding{Severity: Warning, Attribute: "tables", Subject: t.qualified(),
			Message: fmt.Sprintf("table %s is a partition of %s, which is captured too: its rows replicate as rows of %s, once", t.qualified(), root.qualified(), root.qualified()),
			Fix:     fmt.Sprintf("remove %s from tables", t.qualified())})
		for _, x := range t.Excluded {
			findings = append(findings, Finding{Severity: Error, Attribute: "exclude", Subject: t.qualified() + "." + x,
				Message: fmt.Sprintf("exclude names %s.%s, but partition %s replicates as %s", t.qualified(), x, t.qualified(), root.qualified()),
				Fix:     fmt.Sprintf("exclude %s.%s instead", root.qualified(), x)})
		}
	}
	return kept, findings, nil
}

// describeTable reads a table's columns, key and replica identity; nil
// when the table does not exist.
func describeTable(ctx context.Context, conn *pgx.Conn, schema, name string) (*table, error) {
	t := &table{Schema: schema, Name: name}
	var ident string
	err := conn.QueryRow(ctx, `SELECT c.oid, c.relreplident::text, greatest(c.reltuples, 0)::bigint, has_table_privilege(c.oid, 'SELECT'),
			c.relkind = 'p', c.relispartition
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&t.OID, &ident, &t.Estimate, &t.CanSelect, &t.Partitioned, &t.Partition)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe table %s.%s: %w", schema, name, err)
	}
	t.Identity = ident[0]
	rows, err := conn.Query(ctx, `SELECT a.attnum, a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attstorage IN ('x', 'e'),
			coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attgenerated = 's'
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, t.OID)
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", t.qualified(), err)
	}
	for rows.Next() {
		var c tableColumn
		if err := rows.Scan(&c.Num, &c.Name, &c.TypeOID, &c.TypeMod, &c.TypeName, &c.NotNull, &c.Toastable, &c.Default, &c.Generated); err != nil {
			rows.Close()
			return nil, err
		}
		if c.Generated {
			t.Generated = append(t.Generated, c)
		} else {
			t.Columns = append(t.Columns, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe table %s: %w", t.qualified(), err)
	}
	var oids []uint32
	for _, c := range t.allColumns() {
		oids = append(oids, c.TypeOID)
	}
	defs, err := readTypeDefs(ctx, conn, oids)
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", t.qualified(), err)
	}
	for i := range t.Columns {
		t.Columns[i].TypeDef = defs[t.Columns[i].TypeOID]
	}
	for i := range t.Generated {
		t.Generated[i].TypeDef = defs[t.Generated[i].TypeOID]
	}
	pk, err := primaryKey(ctx, conn, t.OID)
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", t.qualified(), err)
	}
	if t.Partitioned {
		// REPLICA IDENTITY of a partitioned table does not reach its
		// partitions, and PostgreSQL logs a row's old values by the
		// identity of the partition that holds it.
		rows, err := conn.Query(ctx, `SELECT n.nspname || '.' || c.relname, c.relreplident::text FROM pg_partition_tree($1) p
			JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE p.isleaf AND c.relreplident <> $2::"char" ORDER BY 1`, t.OID, ident)
		if err != nil {
			return nil, fmt.Errorf("describe table %s: partitions: %w", t.qualified(), err)
		}
		for rows.Next() {
			var leaf, id string
			if err := rows.Scan(&leaf, &id); err != nil {
				rows.Close()
				return nil, err
			}
			if t.LeafIdentity == nil {
				t.LeafIdentity = map[string]byte{}
			}
			t.LeafIdentity[leaf] = id[0]
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("describe table %s: partitions: %w", t.qualified(), err)
		}
	}
	t.PK = pk
	if t.Identity == 'i' {
		rows, err := conn.Query(ctx, `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = $1 AND i.indisreplident`, t.OID)
		if err == nil {
			t.IdentityCols, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return nil, fmt.Errorf("describe table %s: %w", t.qualified(), err)
		}
	}
	return t, nil
}

// primaryKey returns a table's primary-key columns in key order.
func primaryKey(ctx context.Context, conn *pgx.Conn, oid uint32) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n`, oid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// applyExclude removes excluded columns from the published ones.
func (t *table) applyExclude() []Finding {
	var findings []Finding
	for _, x := range t.Excluded {
		i := -1
		for j, c := range t.Columns {
			if c.Name == x {
				i = j
			}
		}
		if g := slices.IndexFunc(t.Generated, func(c tableColumn) bool { return c.Name == x }); g >= 0 {
			t.Generated = slices.Delete(t.Generated, g, g+1) // never published anyway: only the relation loses it
			continue
		}
		switch {
		case i < 0:
			findings = append(findings, Finding{Severity: Error, Attribute: "exclude", Subject: t.qualified() + "." + x,
				Message: fmt.Sprintf("column %s does not exist in table %s", x, t.qualified()),
				Fix:     fmt.Sprintf("the columns of %s are %s", t.qualified(), strings.Join(allNamesOf(t.allColumns()), ", "))})
		case t.Identity == 'f':
			// PostgreSQL 15 then rejects the application's own UPDATE and
			// DELETE statements on the table ("column list ... does not
			// cover the replica identity"): never let exclude cause that.
			findings = append(findings, Finding{Severity: Error, Attribute: "exclude", Subject: t.qualified() + "." + x,
				Message: fmt.Sprintf("table %s has REPLICA IDENTITY FULL, and PostgreSQL refuses every UPDATE and DELETE on a table whose publication leaves a column out under FULL identity", t.qualified()),
				Fix:     fmt.Sprintf("use a primary key with REPLICA IDENTITY DEFAULT (ALTER TABLE %s REPLICA IDENTITY DEFAULT), or remove %s in a transform's exclude instead", t.ident(), x)})
		case slices.Contains(t.IdentityCols, x):
			findings = append(findings, Finding{Severity: Error, Attribute: "exclude", Subject: t.qualified() + "." + x,
				Message: fmt.Sprintf("column %s is part of the replica identity index of %s and cannot be excluded (PostgreSQL would refuse UPDATE and DELETE on the table)", x, t.qualified()),
				Fix:     "mask it in a transform instead"})
		case slices.Contains(t.PK, x):
			findings = append(findings, Finding{Severity: Error, Attribute: "exclude", Subject: t.qualified() + "." + x,
				Message: fmt.Sprintf("column %s is part of the primary key of %s and cannot be excluded", x, t.qualified()),
				Fix:     "updates and deletes are identified by the key; mask it in a transform instead"})
		default:
			t.Columns = append(t.Columns[:i:i], t.Columns[i+1:]...)
		}
	}
	return findings
}

func (t *table) columnNames() []string { return allNamesOf(t.Columns) }

func allNamesOf(cols []tableColumn) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// checkIdentity reports tables whose updates and deletes PostgreSQL
// could not identify, TOAST columns that updates may leave absent, and
// an identity index that is not the primary key.
func (t *table) checkIdentity() []Finding {
	q := t.qualified()
	var weaker []string // partitions that log less of the old row than the table says
	for leaf, id := range t.LeafIdentity {
		if t.Identity == 'f' || id == 'n' {
			weaker = append(weaker, leaf)
		}
	}
	sort.Strings(weaker)
	switch {
	case len(weaker) > 0 && t.Identity == 'f':
		// pgoutput then marks old rows as whole (the table's FULL) but
		// sends NULL for every column the partition did not log, and an
		// unchanged TOASTed value would be taken from that NULL.
		return []Finding{{Severity: Error, Attribute: "tables", Subject: q,
			Message: fmt.Sprintf("partitioned table %s has REPLICA IDENTITY FULL, but its partitions %s do not (a partitioned table's replica identity does not reach its partitions): their updates and deletes would carry NULL for the old values they do not log", q, strings.Join(weaker, ", ")),
			Fix:     fmt.Sprintf("run ALTER TABLE <partition> REPLICA IDENTITY FULL for each of %s", strings.Join(weaker, ", "))}}
	case len(weaker) > 0:
		return []Finding{{Severity: Error, Attribute: "tables", Subject: q,
			Message: fmt.Sprintf("partitions %s of %s have REPLICA IDENTITY NOTHING: their updates and deletes cannot be captured", strings.Join(weaker, ", "), q),
			Fix:     "run ALTER TABLE <partition> REPLICA IDENTITY DEFAULT for each"}}
	case t.Identity == 'i' && len(t.PK) > 0 && !sameSet(t.PK, t.IdentityCols):
		// Events are keyed by the primary key, but PostgreSQL identifies
		// the old row by the index: an update that changes the primary
		// key and not the index sends no old key, so a sink writes the new
		// key and keeps the row under the old one.
		return []Finding{{Severity: Warning, Attribute: "tables", Subject: q,
			Message: fmt.Sprintf("table %s has REPLICA IDENTITY USING INDEX on (%s), not its primary key (%s): an update that changes the primary key sends the old row's index columns, not its old primary key, so the target keeps a stale row under the old key", q, strings.Join(t.IdentityCols, ", "), strings.Join(t.PK, ", ")),
			Fix:     fmt.Sprintf("run ALTER TABLE %s REPLICA IDENTITY FULL, or REPLICA IDENTITY DEFAULT to identify rows by the primary key", t.ident())}}
	case t.Identity == 'n':
		return []Finding{{Severity: Error, Attribute: "tables", Subject: q,
			Message: fmt.Sprintf("table %s has REPLICA IDENTITY NOTHING: its updates and deletes cannot be captured", q),
			Fix:     fmt.Sprintf("run ALTER TABLE %s REPLICA IDENTITY DEFAULT (with a primary key) or REPLICA IDENTITY FULL", t.ident())}}
	case t.Identity == 'd' && len(t.PK) == 0:
		return []Finding{{Severity: Error, Attribute: "tables", Subject: q,
			Message: fmt.Sprintf("table %s has no primary key and REPLICA IDENTITY DEFAULT: its updates and deletes cannot be identified", q),
			Fix:     fmt.Sprintf("add a primary key, or run ALTER TABLE %s REPLICA IDENTITY FULL", t.ident())}}
	case t.Identity == 'd':
		var toast []string
		for _, c := range t.Columns {
			if c.Toastable && !slices.Contains(t.PK, c.Name) {
				toast = append(toast, c.Name)
			}
		}
		if len(toast) > 0 {
			return []Finding{{Severity: Warning, Attribute: "tables", Subject: q,
				Message: fmt.Sprintf("table %s has TOASTable columns (%s) under REPLICA IDENTITY DEFAULT: an update that leaves a large value unchanged does not carry it, so such columns are absent from the event's after", q, strings.Join(toast, ", ")),
				Fix:     fmt.Sprintf("database sinks keep the value they stored; append-mode, Kafka, webhook and file sinks receive such an event without the column: if they need every column, run ALTER TABLE %s REPLICA IDENTITY FULL", t.ident())}}
		}
	}
	return nil
}

// sameSet reports whether a and b hold the same names, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// excludedColumns maps each qualified table to the columns exclude
// names for it (entries that are not schema.table.column are skipped:
// resolveTables reports them).
func excludedColumns(exclude []string) map[string][]string {
	out := map[string][]string{}
	for _, e := range exclude {
		if i := strings.LastIndexByte(e, '.'); i >= 0 && strings.Count(e, ".") == 2 {
			out[e[:i]] = append(out[e[:i]], e[i+1:])
		}
	}
	return out
}
