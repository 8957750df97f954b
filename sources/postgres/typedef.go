package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/engine/change"
)

// firstUserOID is PostgreSQL's FirstNormalObjectId: every type below it
// is built in (pg_catalog's), and needs no TypeDef.
const firstUserOID = 16384

// typeDefsQuery describes user types, each given OID resolved to its
// element type when it is an array: kind, schema, name, enum labels in
// order, a domain's base type or a range's subtype, the base's OID, a
// domain's CHECKs, NOT NULL and DEFAULT, and the owning extension.
const typeDefsQuery = `WITH q AS (
  SELECT o, CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END AS tid
  FROM unnest($1::oid[]) AS o JOIN pg_type t ON t.oid = o)
SELECT q.o, t.typtype::text, n.nspname::text, t.typname::text,
  coalesce((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}'),
  CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
    WHEN t.typtype = 'r' THEN (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid)
    ELSE '' END,
  CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE 0 END,
  coalesce((SELECT array_agg(pg_get_constraintdef(c.oid) ORDER BY c.conname) FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), '{}'),
  t.typnotnull, coalesce(pg_get_expr(t.typdefaultbin, 0), ''),
  coalesce((SELECT x.extname::text FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
    WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' LIMIT 1), '')
FROM q JOIN pg_type t ON t.oid = q.tid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.oid >= 16384`

// readTypeDefs describes the user types among oids (arrays by their
// element type), keyed by the OID asked for; built-in types are left
// out. A domain over a user type gets that type's TypeDef as BaseDef.
func readTypeDefs(ctx context.Context, conn *pgx.Conn, oids []uint32) (map[uint32]*change.TypeDef, error) {
	return readTypeDefsDepth(ctx, conn, oids, 0)
}

func readTypeDefsDepth(ctx context.Context, conn *pgx.Conn, oids []uint32, depth int) (map[uint32]*change.TypeDef, error) {
	var ask []uint32
	for _, o := range oids {
		if o >= firstUserOID && !slices.Contains(ask, o) {
			ask = append(ask, o)
		}
	}
	if len(ask) == 0 || conn == nil {
		return nil, nil
	}
	if depth > 8 {
		return nil, errors.New("describe types: domains nested more than 8 deep")
	}
	rows, err := conn.Query(ctx, typeDefsQuery, ask)
	if err != nil {
		return nil, fmt.Errorf("describe types: %w", err)
	}
	out := map[uint32]*change.TypeDef{}
	bases := map[uint32]uint32{} // asked OID → its domain's base OID
	for rows.Next() {
		var (
			oid, base    uint32
			typtype      string
			td           change.TypeDef
			labels, chks []string
		)
		if err := rows.Scan(&oid, &typtype, &td.Schema, &td.Name, &labels, &td.Base, &base, &chks, &td.NotNull, &td.Default, &td.Extension); err != nil {
			rows.Close()
			return nil, fmt.Errorf("describe types: %w", err)
		}
		switch {
		case td.Extension != "":
			td.Kind = change.TypeExtension
		case typtype == "e":
			td.Kind, td.Labels = change.TypeEnum, labels
		case typtype == "d":
			td.Kind, td.Checks = change.TypeDomain, chks
			if base >= firstUserOID {
				bases[oid] = base
			}
		case typtype == "r":
			td.Kind = change.TypeRange
		default:
			td.Kind = change.TypeOther
		}
		out[oid] = &td
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe types: %w", err)
	}
	if len(bases) > 0 {
		var list []uint32
		for _, b := range bases {
			list = append(list, b)
		}
		defs, err := readTypeDefsDepth(ctx, conn, list, depth+1)
		if err != nil {
			return nil, err
		}
		for o, b := range bases {
			out[o].BaseDef = defs[b]
		}
	}
	return out, nil
}

// enumSets holds, for each column of a relation (by index in its
// Columns) whose type is an enum or an array of one, the labels its
// TypeDef knows; nil when no column is one.
func enumSets(rel *change.Relation) []map[string]struct{} {
	var sets []map[string]struct{}
	for i, c := range rel.Columns {
		td := c.TypeDef
		for td != nil && td.Kind == change.TypeDomain {
			td = td.BaseDef
		}
		if td == nil || td.Kind != change.TypeEnum {
			continue
		}
		if sets == nil {
			sets = make([]map[string]struct{}, len(rel.Columns))
		}
		sets[i] = make(map[string]struct{}, len(td.Labels))
		for _, l := range td.Labels {
			sets[i][l] = struct{}{}
		}
	}
	return sets
}

// unknownLabel reports whether v (a string or an array of them) holds a
// label that set lacks.
func unknownLabel(set map[string]struct{}, v any) bool {
	switch v := v.(type) {
	case string:
		_, ok := set[v]
		return !ok
	case []any:
		for _, el := range v {
			if unknownLabel(set, el) {
				return true
			}
		}
	}
	return false
}

// errNewLabel is returned by row when a value is an enum label its
// relation's TypeDef lacks: one added on the source since the relation
// was described. The decoder then describes the types again.
var errNewLabel = errors.New("enum label newer than the relation")

// refreshTypes gives rs's relation the types as the catalog shows them
// now, as a new Relation with the next Version, so that sinks learn of
// labels added to an enum before the first row that uses them (adding a
// label sends no Relation message). Labels still unknown afterwards (an
// enum value renamed since the row was written) are accepted from then
// on.
func (d *decoder) refreshTypes(ctx context.Context, id uint32, rs *relState, row change.Row) (*relState, error) {
	oids := rs.oidsByColumn()
	defs, err := readTypeDefs(ctx, d.conn, oids)
	if err != nil {
		return nil, &lookupError{err}
	}
	n := *rs
	rel := *rs.rel
	rel.Version = d.latestVersion(rs) + 1
	rel.Columns = append([]change.Column(nil), rs.rel.Columns...)
	for i := range rel.Columns {
		if o := oids[i]; o != 0 {
			if td := defs[o]; td != nil {
				rel.Columns[i].TypeDef = td
			}
		}
	}
	n.rel = &rel
	n.enums = enumSets(&rel)
	for i, set := range n.enums {
		if set != nil && unknownLabel(set, row.Get(rel.Columns[i].Name)) {
			addLabels(set, row.Get(rel.Columns[i].Name))
		}
	}
	d.rels[id] = &n
	q := rel.Schema + "." + rel.Table
	if cur := d.byName[q]; cur == nil || cur == rs {
		d.byName[q] = &n
	}
	return &n, nil
}

// oidsByColumn returns the type OID of each column of rel.Columns, 0 for
// generated ones (whose OIDs the stream does not send).
func (rs *relState) oidsByColumn() []uint32 {
	out := make([]uint32, len(rs.rel.Columns))
	for i, o := range rs.oids {
		out[rs.col(i)] = o
	}
	for i, c := range rs.rel.Columns {
		if out[i] == 0 && c.Generated {
			out[i] = rs.genOIDs[c.Name]
		}
	}
	return out
}

// latestVersion is the highest Version any shape of rs's table has had.
func (d *decoder) latestVersion(rs *relState) uint32 {
	v := rs.rel.Version
	if cur := d.byName[rs.rel.Schema+"."+rs.rel.Table]; cur != nil && cur.rel.Version > v {
		v = cur.rel.Version
	}
	return v
}

func addLabels(set map[string]struct{}, v any) {
	switch v := v.(type) {
	case string:
		set[v] = struct{}{}
	case []any:
		for _, el := range v {
			addLabels(set, el)
		}
	}
}
