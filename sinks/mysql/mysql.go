package mysql

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/tlsfiles"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// New builds the sink of a `sink "mysql"` block. It checks the
// configuration and the DSN; it connects in Open.
func New(b engine.Build, s *dsl.Sink) (engine.Sink, error) {
	if s.MySQL == nil {
		return nil, engine.Permanent(fmt.Errorf("sink %q: no mysql configuration", s.Name))
	}
	cfg, err := ParseDSN(s.MySQL.DSN)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("sink %q: dsn: %w", s.Name, err))
	}
	if err := applyTLS(cfg, s.MySQL.TLS); err != nil {
		return nil, engine.Permanent(fmt.Errorf("sink %q: %w", s.Name, err))
	}
	log := b.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg.Logger = driverLog{log.With("sink", s.Name)}
	tgt := sqltable.Target{
		Dialect: dialect{enums: s.MySQL.Enums},
		Secret:  cfg.Passwd,
		Connect: func() (*sql.DB, error) {
			c, err := gomysql.NewConnector(cfg)
			if err != nil {
				return nil, err
			}
			return sql.OpenDB(c), nil
		},
	}
	return sqltable.New(b, s, s.MySQL, tgt)
}

// ParseDSN reads a go-sql-driver DSN ("user:pass@tcp(host:3306)/db") or a
// mysql:// URL ("mysql://user:pass@host:3306/db?param=value") and sets
// what the sink relies on: UTC times (loc and the session's time_zone),
// strict SQL mode (a bad value is an error, never silently truncated)
// and client-side interpolation (one round trip per statement).
// Errors never contain the password.
func ParseDSN(dsn string) (*gomysql.Config, error) {
	var cfg *gomysql.Config
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("not a mysql:// URL (mysql://USER:PASSWORD@HOST:PORT/DATABASE)")
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "3306")
		}
		// Parse the rest as a driver DSN so that its parameters mean
		// what they mean there; the credentials go in unparsed.
		if cfg, err = gomysql.ParseDSN("tcp(" + host + ")" + u.Path + "?" + u.RawQuery); err != nil {
			return nil, fmt.Errorf("mysql:// URL: bad database or parameters")
		}
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	} else {
		var err error
		if cfg, err = gomysql.ParseDSN(dsn); err != nil {
			return nil, fmt.Errorf("not a MySQL DSN (USER:PASSWORD@tcp(HOST:PORT)/DATABASE or mysql://USER:PASSWORD@HOST:PORT/DATABASE)")
		}
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("names no database: add /DATABASE")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'"
	return cfg, nil
}

// applyTLS sets the connection's TLS from a tls block (nil: the DSN's
// own tls parameter stands). The block replaces the DSN's tls parameter:
// it verifies the server's certificate against ca_file (the system's
// roots without it) and the name server_name, else the DSN's host, and
// presents cert_file and key_file. A server without TLS is then an
// error, never a silent fallback to plaintext.
func applyTLS(cfg *gomysql.Config, t *dsl.TLS) error {
	if t == nil {
		return nil
	}
	tc, err := tlsfiles.Config(t)
	if err != nil {
		return err
	}
	cfg.TLS, cfg.TLSConfig, cfg.AllowFallbackToPlaintext = tc, "", false
	return nil
}

// driverLog routes the driver's own messages (a connection that broke
// under it) into the pipeline's structured log at debug level; the sink
// reports what they mean as errors.
type driverLog struct{ l *slog.Logger }

func (d driverLog) Print(v ...any) { d.l.Debug("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...))) }
