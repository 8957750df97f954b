package mysql

import (
	"strings"
	"testing"
	"time"
)

func TestParseDSN(t *testing.T) {
	for _, c := range []struct {
		dsn, addr, user, pass, db string
	}{
		{"mysql://app:p%40ss@db.example:3307/shop?timeout=5s", "db.example:3307", "app", "p@ss", "shop"},
		{"mysql://app@db.example/shop", "db.example:3306", "app", "", "shop"},
		{"app:pw@tcp(127.0.0.1:3306)/shop", "127.0.0.1:3306", "app", "pw", "shop"},
	} {
		cfg, err := ParseDSN(c.dsn)
		if err != nil {
			t.Errorf("%s: %v", c.dsn, err)
			continue
		}
		if cfg.Addr != c.addr || cfg.User != c.user || cfg.Passwd != c.pass || cfg.DBName != c.db {
			t.Errorf("%s: got addr %q user %q pass %q db %q", c.dsn, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName)
		}
		// What the sink relies on, whatever the DSN says.
		if !cfg.ParseTime || cfg.Loc != time.UTC || !cfg.InterpolateParams || cfg.Params["time_zone"] != "'+00:00'" || !strings.Contains(cfg.Params["sql_mode"], "STRICT_ALL_TABLES") {
			t.Errorf("%s: session settings not forced: %+v", c.dsn, cfg)
		}
	}
	for _, bad := range []string{"mysql://u:s3cr3t@host", "u:s3cr3t@tcp(host:3306)/", "mysql://u:s3cr3t@/db", "u:s3cr3t@@@tcp(x"} {
		_, err := ParseDSN(bad)
		if err == nil {
			t.Errorf("%s: accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error shows the password: %v", bad, err)
		}
	}
}
