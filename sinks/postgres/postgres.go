package postgres

import (
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// New builds the sink of a `sink "postgres"` block. It checks the
// configuration and the DSN; it connects in Open.
func New(b engine.Build, s *dsl.Sink) (engine.Sink, error) {
	if s.Postgres == nil {
		return nil, engine.Permanent(fmt.Errorf("sink %q: no postgres configuration", s.Name))
	}
	cfg, err := pgx.ParseConfig(s.Postgres.DSN)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, engine.Permanent(fmt.Errorf("sink %q: dsn is not a PostgreSQL URL or keyword/value string (postgres://USER:PASSWORD@HOST:PORT/DATABASE)", s.Name))
	}
	tgt := sqltable.Target{
		Dialect: dialect{},
		Secret:  cfg.Password,
		Connect: func() (*sql.DB, error) { return stdlib.OpenDB(*cfg.Copy()), nil },
	}
	return sqltable.New(b, s, s.Postgres, tgt)
}
