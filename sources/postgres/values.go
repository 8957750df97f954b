package postgres

import (
	"context"
	"maps"

	"github.com/jackc/pgx/v5"
)

// Values decodes PostgreSQL values from their text form into the Go values
// this source's events carry (see the package documentation), for readers
// outside the source that must see rows exactly as the pipeline does —
// `sluice verify` reads source and target tables with it. Safe for
// concurrent use.
type Values struct{ r *typeRegistry }

// NewValues returns a decoder that knows the built-in types; Prepare
// teaches it the user-defined ones (enums, domains, arrays of them).
func NewValues() *Values { return &Values{r: newTypeRegistry()} }

// Prepare looks up, once, the types of oids that are not built in.
func (v *Values) Prepare(ctx context.Context, conn *pgx.Conn, oids []uint32) error {
	return v.r.ensure(ctx, conn, oids)
}

// Decode returns the Go value of text, a value of type oid as a session
// with SessionParams writes it. Unknown types stay text.
func (v *Values) Decode(oid uint32, text []byte) (any, error) { return v.r.decode(oid, text) }

// SessionParams returns the run-time parameters a connection must set for
// Decode to read its values (ISO dates, UTC, hex bytea, ...).
func SessionParams() map[string]string { return maps.Clone(sessionParams) }
