package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine/change"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
)

// liveProblems checks each PostgreSQL source of cfg against its live
// database (`sluice validate --live`): the server, tables, keys and
// replica identity, excluded columns, slot and publication (the source's
// CheckLive), and then every column the transforms that read the source
// name — in select, exclude, mask, rename and in expressions — with a
// hint where an expression compares a column with a literal of the wrong
// kind. Then it checks the existing tables of each MySQL sink those
// sources feed (mysqlProblems). Each problem points at the attribute that
// causes it.
func liveProblems(ctx context.Context, cfg *dsl.Config) dsl.Diagnostics {
	var diags dsl.Diagnostics
	described := map[string][]*change.Relation{} // by source name
	for _, s := range cfg.Sources {
		if s.Postgres == nil {
			continue
		}
		pg := pgsource.WithDefaults(s.Postgres, cfg.Pipeline.Name)
		for _, f := range append(pgsource.CheckLive(ctx, pg), pgsource.CheckRetention(ctx, pg)...) {
			subject, ok := pg.Ranges[f.Attribute]
			if !ok {
				subject = s.DeclRange
			}
			diags = append(diags, dsl.Problem(f.Severity == pgsource.Warning, subject, f.Message, f.Fix))
		}
		rels, err := pgsource.Describe(ctx, pg)
		if err != nil {
			if !diags.HasErrors() { // else CheckLive has said why already
				diags = append(diags, dsl.Problem(false, s.DeclRange, fmt.Sprintf("source %q: %v", s.Name, err), ""))
			}
			continue
		}
		described[s.Name] = rels
		for _, t := range cfg.Transforms {
			if readsSource(t, s.Name) {
				diags = append(diags, checkTransformColumns(t, scoped(t, rels))...)
			}
		}
	}
	for _, s := range cfg.Sinks {
		if s.MySQL != nil {
			diags = append(diags, mysqlProblems(ctx, cfg, s, described)...)
		}
	}
	return diags
}

// mysqlProblems checks the existing target tables of MySQL sink s for
// what would make them differ from the source: key columns whose
// collation is not byte for byte (rows collapse), DECIMAL columns
// narrower than the source's numeric (rows refused). The tables are those
// of the PostgreSQL sources s reads, directly or through transforms, as
// described; transforms that rename tables or columns are not followed.
// Problems are warnings: the pipeline runs, and these say what it will do.
func mysqlProblems(ctx context.Context, cfg *dsl.Config, s *dsl.Sink, described map[string][]*change.Relation) dsl.Diagnostics {
	var tables []mysqlsink.TargetTable
	for _, src := range feedingSources(cfg, s.From, map[string]bool{}) {
		for _, r := range described[src] {
			t := mysqlsink.TargetTable{Name: r.Table, Key: s.MySQL.Key, Columns: map[string]string{}}
			if s.MySQL.Table != "" {
				t.Name = s.MySQL.Table
			}
			if len(t.Key) == 0 {
				t.Key = r.KeyNames()
			}
			for _, c := range r.Columns {
				t.Columns[c.Name] = c.Type
			}
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	// Warnings point at the sink's dsn (connection) or at what picks the
	// key and table, else at the block (ranges, not hcl, in this package).
	dsnAt, keyAt := s.DeclRange, s.DeclRange
	if r, ok := s.MySQL.Ranges["dsn"]; ok {
		dsnAt, keyAt = r, r
	}
	for _, a := range []string{"table", "key"} {
		if r, ok := s.MySQL.Ranges[a]; ok {
			keyAt = r
		}
	}
	findings, err := mysqlsink.CheckTargets(ctx, s.MySQL.DSN, s.MySQL.TLS, tables)
	var diags dsl.Diagnostics
	if err != nil {
		diags = append(diags, dsl.Problem(true, dsnAt, fmt.Sprintf("sink %q: could not check the target tables: %v", s.Name, redactDSN(err, s.MySQL.DSN)), ""))
	}
	seen := map[string]bool{}
	for _, f := range findings {
		if seen[f.Message] { // several source tables into one target
			continue
		}
		seen[f.Message] = true
		diags = append(diags, dsl.Problem(true, keyAt, fmt.Sprintf("sink %q: %s", s.Name, f.Message), f.Fix))
	}
	return diags
}

// feedingSources returns the sources that refs read, directly or through
// transforms.
func feedingSources(cfg *dsl.Config, refs []dsl.Ref, seen map[string]bool) []string {
	var out []string
	for _, r := range refs {
		key := string(r.Kind) + "." + r.Name
		if seen[key] {
			continue
		}
		seen[key] = true
		switch r.Kind {
		case dsl.SourceRef:
			out = append(out, r.Name)
		case dsl.TransformRef:
			for _, t := range cfg.Transforms {
				if t.Name == r.Name {
					out = append(out, feedingSources(cfg, t.From, seen)...)
				}
			}
		}
	}
	return out
}

// redactDSN removes the DSN's password from an error's text.
func redactDSN(err error, dsn string) string {
	msg := err.Error()
	if cfg, perr := mysqlsink.ParseDSN(dsn); perr == nil && cfg.Passwd != "" {
		msg = strings.ReplaceAll(msg, cfg.Passwd, "***")
	}
	return msg
}

func readsSource(t *dsl.Transform, source string) bool {
	for _, r := range t.From {
		if r.Kind == dsl.SourceRef && r.Name == source {
			return true
		}
	}
	return false
}

// scoped returns the relations a transform applies to.
func scoped(t *dsl.Transform, rels []*change.Relation) []*change.Relation {
	if len(t.Tables) == 0 {
		return rels
	}
	var out []*change.Relation
	for _, r := range rels {
		for _, name := range t.Tables {
			schema, table, _ := strings.Cut(name, ".")
			if r.Schema == schema && (table == "*" || r.Table == table) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// checkTransformColumns reports columns a transform names that none of
// its tables has.
func checkTransformColumns(t *dsl.Transform, rels []*change.Relation) dsl.Diagnostics {
	if len(rels) == 0 {
		return nil
	}
	types := map[string]string{} // column → type, of any scoped table
	var tables []string
	for _, r := range rels {
		tables = append(tables, r.Schema+"."+r.Table)
		for _, c := range r.Columns {
			types[c.Name] = c.Type
		}
	}
	known := func(col string) bool { _, ok := types[col]; return ok }
	var computed []string
	for _, s := range t.Set {
		computed = append(computed, s.Column)
	}
	var diags dsl.Diagnostics
	missing := func(attr, col string) {
		diags = append(diags, dsl.Problem(false, t.Ranges[attr],
			fmt.Sprintf("transform %q: %s names column %q, which %s does not have", t.Name, attr, col, strings.Join(tables, " and ")),
			"Its columns are: "+strings.Join(sortedColumns(types), ", ")+"."))
	}
	afterSet := func(attr string, cols []string) {
		for _, c := range cols {
			if !known(c) && !slices.Contains(computed, c) {
				missing(attr, c)
			}
		}
	}
	afterSet("select", t.Select)
	afterSet("exclude", t.Exclude)
	var masked []string
	for _, m := range t.Mask {
		masked = append(masked, m.Column)
	}
	afterSet("mask", masked)
	var renamed []string
	for _, r := range t.Rename {
		renamed = append(renamed, r.From)
	}
	afterSet("rename", renamed)

	var exprs []expression
	if t.Where != nil {
		exprs = append(exprs, expression{"where", t.Where.Source, t.Where.Columns()})
	}
	for _, s := range t.Set {
		exprs = append(exprs, expression{"set", s.Expr.Source, s.Expr.Columns()})
	}
	for _, e := range exprs {
		for _, ref := range e.columns {
			typ, ok := types[ref.Column]
			if !ok {
				missing(e.attr, ref.Column)
				continue
			}
			if hint := typeHint(ref.ComparedWith, typ); hint != "" {
				diags = append(diags, dsl.Problem(true, t.Ranges[e.attr],
					fmt.Sprintf("transform %q: %q compares column %s (%s) with a %s", t.Name, e.source, ref.Column, typ, ref.ComparedWith), hint))
			}
		}
	}
	return diags
}

// expression is one compiled expression of a transform, for reporting.
type expression struct {
	attr, source string
	columns      []eventexpr.ColumnRef
}

func sortedColumns(types map[string]string) []string {
	cols := make([]string, 0, len(types))
	for c := range types {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	return cols
}

// typeHint says what to write when a column of PostgreSQL type typ is
// compared with a literal of kind lit ("number", "string", "bool").
func typeHint(lit, typ string) string {
	numeric := strings.HasPrefix(typ, "integer") || strings.HasPrefix(typ, "bigint") || strings.HasPrefix(typ, "smallint") ||
		strings.HasPrefix(typ, "numeric") || strings.HasPrefix(typ, "real") || strings.HasPrefix(typ, "double")
	text := strings.HasPrefix(typ, "text") || strings.HasPrefix(typ, "character") || strings.HasPrefix(typ, "uuid")
	switch {
	case lit == "number" && text:
		return "The column holds text, so this comparison is never true. Quote the value ('50'), or compare a number column."
	case lit == "string" && numeric:
		return "The column holds numbers, so this comparison is never true. Write the value without quotes (50)."
	case lit == "bool" && typ != "boolean":
		return "The column is not boolean. Compare it with a value of its own type."
	}
	return ""
}

// liveTLS connects to the database of each PostgreSQL source, PostgreSQL
// sink and MySQL sink as the pipeline would (the DSN; for MySQL also the
// tls block) and says what TLS each session negotiated: a note per
// encrypted connection (protocol and cipher), and a warning, pointing at
// the dsn, for one that is not encrypted. A PostgreSQL source's
// replication connection is made from the same DSN, so it has the same
// TLS settings. A source that cannot connect is left to CheckLive, which
// says why; a sink that cannot connect is a warning with the fix.
func liveTLS(ctx context.Context, cfg *dsl.Config) (notes []string, diags dsl.Diagnostics) {
	// judge says what one connection's state is: a note, or a warning.
	judge := func(label string, st tlsState, err error, quiet bool) (note, warning string) {
		switch {
		case err != nil && !quiet:
			return "", fmt.Sprintf("%s: could not check TLS: %v", label, redactTLS(err, st.secret))
		case err != nil:
			return "", ""
		case st.encrypted:
			return fmt.Sprintf("%s: TLS on (%s)", label, st.detail), ""
		}
		return "", fmt.Sprintf("%s: the connection is not encrypted (TLS off): rows and credentials cross the network in clear", label)
	}
	const pgFix = "Add sslmode=verify-full&sslrootcert=/path/to/ca.pem to dsn (with sslcert and sslkey where the server wants a client certificate)."
	const mysqlFix = `Add a tls { ca_file = "/path/to/ca.pem" } block to the sink (cert_file and key_file where the server wants a client certificate), or tls=true in dsn for a certificate the system's roots sign.`
	for _, s := range cfg.Sources {
		if s.Postgres == nil {
			continue
		}
		st, err := postgresTLS(ctx, s.Postgres.DSN)
		note, warning := judge(fmt.Sprintf("source %q", s.Name), st, err, true)
		if note != "" {
			notes = append(notes, note+"; its replication connection uses the same dsn")
		}
		if warning != "" {
			diags = append(diags, dsl.Problem(true, rangeOf(s.Postgres.Ranges, "dsn", s.DeclRange), warning, pgFix))
		}
	}
	for _, s := range cfg.Sinks {
		var note, warning, fix string
		var refused bool
		at := s.DeclRange
		switch {
		case s.Postgres != nil:
			st, err := postgresTLS(ctx, s.Postgres.DSN)
			note, warning = judge(fmt.Sprintf("sink %q", s.Name), st, err, false)
			at, fix, refused = rangeOf(s.Postgres.Ranges, "dsn", s.DeclRange), pgFix, certRefused(err)
			if err != nil {
				fix = ""
			}
		case s.MySQL != nil:
			at = rangeOf(s.MySQL.Ranges, "dsn", s.DeclRange)
			if s.MySQL.TLS != nil {
				at = rangeOf(s.MySQL.TLS.Ranges, "ca_file", at)
			}
			m, err := mysqlsink.CheckTLS(ctx, s.MySQL.DSN, s.MySQL.TLS)
			refused = certRefused(err)
			if err != nil {
				err = errors.New(redactDSN(err, s.MySQL.DSN))
			}
			note, warning = judge(fmt.Sprintf("sink %q", s.Name), tlsState{encrypted: m.Encrypted(), detail: m.String()}, err, false)
			if err == nil { // else the error says what to set
				fix = mysqlFix
			}
		}
		if note != "" {
			notes = append(notes, note)
		}
		if warning != "" {
			// A certificate the sink refuses fails the pipeline at start.
			diags = append(diags, dsl.Problem(!refused, at, warning, fix))
		}
	}
	return notes, diags
}

type tlsState struct {
	encrypted bool
	detail    string // protocol and cipher
	secret    string // the DSN's password, to keep out of messages
}

// certRefused reports whether err is a server certificate the client did
// not trust (CA or name): a pipeline with it fails at start.
func certRefused(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		host      x509.HostnameError
		verify    *tls.CertificateVerificationError
	)
	return err != nil && (errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify))
}

func redactTLS(err error, secret string) string {
	if secret == "" {
		return err.Error()
	}
	return strings.ReplaceAll(err.Error(), secret, "***")
}

// postgresTLS opens one session with dsn and reads its TLS state from
// pg_stat_ssl. The state carries the DSN's password for the caller to
// redact errors with.
func postgresTLS(ctx context.Context, dsn string) (tlsState, error) {
	c, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return tlsState{}, errors.New("dsn is not a valid PostgreSQL connection string")
	}
	st := tlsState{secret: c.Password}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return st, err
	}
	defer conn.Close(context.Background())
	var version, cipher string
	err = conn.QueryRow(ctx, "SELECT ssl, coalesce(version, ''), coalesce(cipher, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&st.encrypted, &version, &cipher)
	st.detail = version + ", " + cipher
	return st, err
}

// rangeOf is ranges[attr], else def.
func rangeOf[R any](ranges map[string]R, attr string, def R) R {
	if r, ok := ranges[attr]; ok {
		return r
	}
	return def
}
