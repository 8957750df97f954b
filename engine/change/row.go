package change

// Numeric is an exact decimal number in its canonical text form
// ("12.50", "-3", "NaN"). It never passes through float64.
type Numeric string

// JSON is a JSON document as the source sent it (json/jsonb columns).
type JSON string

// Column describes one column of a source table.
type Column struct {
	Name string
	// Type is the source's type name as the source spells it, e.g.
	// "integer", "numeric(12,2)", "timestamp with time zone", "text[]".
	Type string
	// Key reports that the column is part of the primary key (or of the
	// replica identity when the table has none).
	Key bool
	// NotNull reports a NOT NULL constraint.
	NotNull bool
	// Default is the column's DEFAULT expression as the source renders it
	// (PostgreSQL: pg_get_expr of pg_attrdef, e.g. "'x'::text", "0",
	// "nextval('t_id_seq'::regclass)", "now()"), "" when it has none. For
	// a Generated column it is the generation expression instead.
	Default string
	// Generated reports a stored generated column (GENERATED ALWAYS AS
	// (expr) STORED; Default holds expr). Events never carry its value:
	// PostgreSQL's logical replication does not send it, and the
	// snapshot leaves it out too, so that a row reads the same either
	// way. A target computes it (from Default) or does without.
	Generated bool
	// TypeDef describes Type where a target needs more than its name to
	// recreate it: a domain, an enum, a range or a type an extension
	// owns (for an array, its element type). nil for a built-in type, or
	// where the source does not know. Shared by every Relation that has
	// the same definition; read-only.
	TypeDef *TypeDef
}

// TypeKind is what kind of type a TypeDef describes.
type TypeKind string

// The kinds of TypeDef.
const (
	TypeEnum      TypeKind = "enum"      // CREATE TYPE ... AS ENUM (Labels)
	TypeDomain    TypeKind = "domain"    // CREATE DOMAIN ... AS Base, with Checks
	TypeRange     TypeKind = "range"     // CREATE TYPE ... AS RANGE (SUBTYPE = Base)
	TypeExtension TypeKind = "extension" // a type CREATE EXTENSION Extension makes
	TypeOther     TypeKind = "other"     // a composite or other user type, recreated by no sink
)

// TypeDef is a source type that is not built in, as a target needs it to
// create the same type or choose the closest one.
type TypeDef struct {
	Kind TypeKind
	// Schema and Name name the type (the element type of an array).
	Schema, Name string
	// Labels are an enum's labels in their sort order.
	Labels []string
	// Base is a domain's base type, a range's subtype, as format_type
	// prints it ("integer", "character varying(40)").
	Base string
	// BaseDef describes Base where it is not built in itself (a domain
	// over an enum).
	BaseDef *TypeDef
	// Checks are a domain's CHECK constraints as the source renders them
	// ("CHECK (VALUE >= 1901 AND VALUE <= 2155)").
	Checks []string
	// NotNull and Default are a domain's own NOT NULL and DEFAULT.
	NotNull bool
	Default string
	// Extension is the extension that owns the type (TypeExtension).
	Extension string
}

// Relation is a source table's shape. A changed relation (a new column)
// arrives as a new *Relation with a higher Version.
type Relation struct {
	Schema  string
	Table   string
	Columns []Column
	Version uint32
}

// KeyNames returns the names of the key columns in table order.
func (r *Relation) KeyNames() []string {
	var names []string
	for _, c := range r.Columns {
		if c.Key {
			names = append(names, c.Name)
		}
	}
	return names
}

// Column returns the named column and whether it exists.
func (r *Relation) Column(name string) (Column, bool) {
	for _, c := range r.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}
