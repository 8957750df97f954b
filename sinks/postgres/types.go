package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

var _ sqltable.SourceTypes = dialect{}

// catalogTypes are pg_catalog's types besides those sqltable maps
// specifically (SourceType.Builtin): every PostgreSQL server has them,
// so a replica keeps them as they are.
var catalogTypes = map[string]bool{
	"tsvector": true, "tsquery": true, "int4range": true, "int8range": true, "numrange": true,
	"tsrange": true, "tstzrange": true, "daterange": true, "int4multirange": true, "int8multirange": true,
	"nummultirange": true, "tsmultirange": true, "tstzmultirange": true, "datemultirange": true,
	"point": true, "line": true, "lseg": true, "box": true, "path": true, "polygon": true, "circle": true,
	"bit": true, "bit varying": true, "macaddr8": true, "pg_lsn": true, "name": true, "int2vector": true,
	"oidvector": true, "regclass": true, "regtype": true, "regproc": true, "txid_snapshot": true,
	"pg_snapshot": true, "xid": true, "xid8": true, "cid": true, "tid": true, `"char"`: true,
}

// SourceColumnType keeps the source's type exactly as format_type
// printed it (with its modifiers, array brackets and, outside the
// search_path, its schema): built-in types, and the user types the
// source described (TypeDef), which TypeStatements creates when the
// target lacks them. Composite and other user types, and names without
// a TypeDef that are not built in, fall back to ColumnType's text.
func (dialect) SourceColumnType(c change.Column, _ bool) (string, bool) {
	if c.Type == "" || strings.HasPrefix(c.Type, "oid:") {
		return "", false
	}
	if td := c.TypeDef; td != nil {
		return c.Type, td.Kind != change.TypeOther
	}
	t := sqltable.ParseSourceType(c.Type)
	return c.Type, t.Builtin() || catalogTypes[t.Base]
}

// TypeStatements creates what c's type needs: its schema, a domain's
// base type first, then the enum (its labels in order), the domain
// (base type, DEFAULT, NOT NULL and every CHECK) or the range. An
// extension's type needs the extension on the target: it is not
// created (that takes privileges and the server's packages).
func (d dialect) TypeStatements(ctx context.Context, q sqltable.Querier, c change.Column) ([]string, error) {
	return d.typeStatements(ctx, q, c.TypeDef, 0)
}

func (d dialect) typeStatements(ctx context.Context, q sqltable.Querier, td *change.TypeDef, depth int) ([]string, error) {
	if td == nil || td.Kind == change.TypeOther || depth > 8 {
		return nil, nil
	}
	if td.Kind == change.TypeExtension {
		var ok bool
		if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1)", td.Extension).Scan(&ok); err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("type %s.%s belongs to extension %s, which the target database lacks: run CREATE EXTENSION %s on the target (its package must be installed on the server), or cast the column to text in the source's view of it",
				td.Schema, td.Name, td.Extension, pgx.Identifier{td.Extension}.Sanitize())
		}
		return nil, nil
	}
	name := pgx.Identifier{td.Schema, td.Name}.Sanitize()
	var exists bool
	if err := q.QueryRowContext(ctx, "SELECT to_regtype($1) IS NOT NULL", name).Scan(&exists); err != nil {
		return nil, err
	}
	if exists {
		return nil, nil
	}
	var stmts []string
	var schema bool
	if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", td.Schema).Scan(&schema); err != nil {
		return nil, err
	}
	if !schema {
		stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{td.Schema}.Sanitize())
	}
	switch td.Kind {
	case change.TypeEnum:
		labels := make([]string, len(td.Labels))
		for i, l := range td.Labels {
			labels[i] = d.Literal(l)
		}
		stmts = append(stmts, "CREATE TYPE "+name+" AS ENUM ("+strings.Join(labels, ", ")+")")
	case change.TypeDomain:
		base, err := d.typeStatements(ctx, q, td.BaseDef, depth+1)
		if err != nil {
			return nil, err
		}
		stmts = append(base, stmts...)
		def := "CREATE DOMAIN " + name + " AS " + td.Base
		if td.Default != "" {
			def += " DEFAULT " + td.Default
		}
		if td.NotNull {
			def += " NOT NULL"
		}
		for _, c := range td.Checks {
			def += " " + c
		}
		stmts = append(stmts, def)
	case change.TypeRange:
		stmts = append(stmts, "CREATE TYPE "+name+" AS RANGE (SUBTYPE = "+td.Base+")")
	}
	return stmts, nil
}

// LabelStatements adds the labels of c's enum that the target's enum
// lacks, each where the source has it (AFTER the label before it), with
// IF NOT EXISTS so that a replay adds nothing twice. A target column
// whose type is not the source's (created as text by an older sluice)
// needs none.
func (d dialect) LabelStatements(ctx context.Context, q sqltable.Querier, _, _ string, def sqltable.ColumnDef, c change.Column) ([]string, error) {
	td := c.TypeDef
	for td != nil && td.Kind == change.TypeDomain {
		td = td.BaseDef
	}
	if td == nil || td.Kind != change.TypeEnum || def.Type != c.Type {
		return nil, nil
	}
	name := pgx.Identifier{td.Schema, td.Name}.Sanitize()
	rows, err := q.QueryContext(ctx, "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = to_regtype($1) ORDER BY enumsortorder", name)
	if err != nil {
		return nil, err
	}
	var have []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			rows.Close()
			return nil, err
		}
		have = append(have, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var stmts []string
	for i, l := range td.Labels {
		if slices.Contains(have, l) {
			continue
		}
		stmt := "ALTER TYPE " + name + " ADD VALUE IF NOT EXISTS " + d.Literal(l)
		switch {
		case i > 0:
			stmt += " AFTER " + d.Literal(td.Labels[i-1])
		case len(have) > 0:
			stmt += " BEFORE " + d.Literal(have[0])
		}
		stmts = append(stmts, stmt)
	}
	return stmts, nil
}

// GeneratedColumn makes the column the source's generated column: the
// target computes it from the replicated columns with the source's
// expression, as pgoutput never sends its values.
func (dialect) GeneratedColumn(c change.Column) (string, bool) {
	if c.Default == "" {
		return "", false
	}
	return "GENERATED ALWAYS AS (" + c.Default + ") STORED", true
}

var _ sqltable.Defaulter = dialect{}

// DefaultExpr keeps the source's DEFAULT expression as it is ('x'::text,
// now(), gen_random_uuid()), except a sequence's nextval(...): the target
// has no such sequence, and every row's value comes from the source
// anyway. A target that refuses an expression (a function only the
// source has) gets the table without defaults, with a warning.
func (dialect) DefaultExpr(c change.Column) (string, bool) {
	if c.Default == "" || strings.Contains(c.Default, "nextval(") {
		return "", false
	}
	return c.Default, true
}
