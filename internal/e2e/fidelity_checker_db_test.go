package e2e

import (
	"context"
	"strings"
	"testing"
)

// TestFidelityCheckerOnRealDatabases checks the checker itself, without
// sluice: rows written by hand into a PostgreSQL source and a MariaDB or
// PostgreSQL target with the same values compare equal, however each
// database renders them, and each single changed value, missing row and
// extra row is reported with its table, key and column.
func TestFidelityCheckerOnRealDatabases(t *testing.T) {
	const srcDDL = `CREATE TABLE chk (id bigint PRIMARY KEY, t text, d numeric(40,35), n numeric, b bytea, u uuid,
		ia integer[], ta text[], ts timestamptz, j jsonb, f boolean)`
	srcRows := []string{
		`INSERT INTO chk VALUES (1, 'abc', '12345.12345678901234567890123456789012345', '1.500000000000000000000000000001', '\xdeadbeef00',
			'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,-3}', '{"a b",NULL,"NULL","x\"y"}', '2026-03-01 14:34:56.123456+02',
			'{"b": 1.50, "a": [1, "x", null]}', true)`,
		`INSERT INTO chk VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`INSERT INTO chk VALUES (3, '', '0', '0.10', '', '00000000-0000-0000-0000-000000000000', '{}', '{}', '1999-12-31 23:59:59+00', '[]', false)`,
	}
	tb := fidTable{"chk", []fidColumn{{"id", vInt}, {"t", vText}, {"d", vDecimal}, {"n", vDecimal}, {"b", vBytes}, {"u", vUUID},
		{"ia", vIntArray}, {"ta", vTextArray}, {"ts", vTime}, {"j", vJSON}, {"f", vBool}}, 1}
	targets := map[string]struct {
		ddl       string
		rows      []string
		mutations map[string]string // column → a statement that changes row 1's value of it slightly
	}{
		"mysql": {
			ddl: `CREATE TABLE chk (id BIGINT PRIMARY KEY, t LONGTEXT, d VARCHAR(43), n DECIMAL(65,30), b LONGBLOB, u CHAR(36),
				ia JSON, ta JSON, ts DATETIME(6), j JSON, f BOOLEAN)`,
			rows: []string{
				`INSERT INTO chk VALUES (1, 'abc', '12345.12345678901234567890123456789012345', 1.500000000000000000000000000001, X'DEADBEEF00',
					'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '[1, null, -3]', '["a b", null, "NULL", "x\\"y"]', '2026-03-01 12:34:56.123456',
					'{"a":[1,"x",null],"b":1.5}', 1)`,
				`INSERT INTO chk VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
				`INSERT INTO chk VALUES (3, '', '0.000', 0.1, X'', '00000000-0000-0000-0000-000000000000', '[]', '[]', '1999-12-31 23:59:59', '[]', 0)`,
			},
			mutations: map[string]string{
				"t":  `UPDATE chk SET t = 'ABC' WHERE id = 1`,
				"d":  `UPDATE chk SET d = '12345.12345678901234567890123456789012346' WHERE id = 1`,
				"n":  `UPDATE chk SET n = 1.5 WHERE id = 1`,
				"b":  `UPDATE chk SET b = X'DEADBEEF01' WHERE id = 1`,
				"u":  `UPDATE chk SET u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12' WHERE id = 1`,
				"ia": `UPDATE chk SET ia = '["1", null, "-3"]' WHERE id = 1`,
				"ta": `UPDATE chk SET ta = '["a b", "NULL", "NULL", "x\\"y"]' WHERE id = 1`,
				"ts": `UPDATE chk SET ts = '2026-03-01 12:34:56.123457' WHERE id = 1`,
				"j":  `UPDATE chk SET j = '{"a":[1,"x",null],"b":"1.5"}' WHERE id = 1`,
				"f":  `UPDATE chk SET f = 0 WHERE id = 1`,
			},
		},
		"postgres": {
			ddl: srcDDL,
			rows: []string{
				`INSERT INTO chk VALUES (1, 'abc', '12345.12345678901234567890123456789012345', '1.500000000000000000000000000001', '\xDEADBEEF00',
					'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{1,NULL,-3}', '{"a b",NULL,"NULL","x\"y"}', '2026-03-01 12:34:56.123456+00',
					'{"a":[1,"x",null],"b":1.5}', 't')`,
				`INSERT INTO chk VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
				`INSERT INTO chk VALUES (3, '', '0.000', '0.1', '', '00000000-0000-0000-0000-000000000000', '{}', '{}', '2000-01-01 00:59:59+01', '[]', 'f')`,
			},
			mutations: map[string]string{
				"t":  `UPDATE chk SET t = 'abc ' WHERE id = 1`,
				"d":  `UPDATE chk SET d = '12345.12345678901234567890123456789012346' WHERE id = 1`,
				"n":  `UPDATE chk SET n = '1.5' WHERE id = 1`,
				"b":  `UPDATE chk SET b = '\xdeadbeef' WHERE id = 1`,
				"u":  `UPDATE chk SET u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12' WHERE id = 1`,
				"ia": `UPDATE chk SET ia = '{-3,NULL,1}' WHERE id = 1`,
				"ta": `UPDATE chk SET ta = '{"a b","NULL","NULL","x\"y"}' WHERE id = 1`,
				"ts": `UPDATE chk SET ts = '2026-03-01 12:34:56.123456+01' WHERE id = 1`,
				"j":  `UPDATE chk SET j = '{"a":[1,"x",null],"b":1.5,"c":null}' WHERE id = 1`,
				"f":  `UPDATE chk SET f = false WHERE id = 1`,
			},
		},
	}
	ctx := context.Background()
	src := openPG(t, pg.CreateDB(t))
	mustExec(t, src, srcDDL)
	mustExec(t, src, srcRows...)
	for _, sink := range []string{"mysql", "postgres"} {
		t.Run(sink, func(t *testing.T) {
			tt := targets[sink]
			tgt := newTarget(t, sink)
			mustExec(t, tgt.db, tt.ddl)
			reset := func() {
				t.Helper()
				mustExec(t, tgt.db, "DELETE FROM chk")
				mustExec(t, tgt.db, tt.rows...)
			}
			reset()
			if n, problems, err := compareTable(ctx, src, tgt, tb); err != nil || len(problems) > 0 || n != 3 {
				t.Fatalf("equal tables: %d rows, %v, %q", n, err, problems)
			}
			for _, c := range tb.cols[1:] {
				reset()
				mustExec(t, tgt.db, tt.mutations[c.name])
				_, problems, err := compareTable(ctx, src, tgt, tb)
				want := "first difference at key (id=\"1\"): column " + c.name + " "
				if err != nil || len(problems) != 1 || !strings.Contains(problems[0], want) || !strings.Contains(problems[0], "1 with other values") {
					t.Errorf("after %s: %v %q, want one problem naming %q", tt.mutations[c.name], err, problems, want)
				}
			}
			reset()
			mustExec(t, tgt.db, "DELETE FROM chk WHERE id = 2", "INSERT INTO chk (id) VALUES (4)")
			_, problems, err := compareTable(ctx, src, tgt, tb)
			if err != nil || len(problems) != 1 || !strings.Contains(problems[0], `1 missing in the target, 1 only in the target`) ||
				!strings.Contains(problems[0], `key (id="2"): missing in the target`) {
				t.Errorf("missing row 2, extra row 4: %v %q", err, problems)
			}
			mustExec(t, tgt.db, "DROP TABLE chk")
			if _, problems, err := compareTable(ctx, src, tgt, tb); err != nil || len(problems) != 1 || !strings.Contains(problems[0], "the target has no such table") {
				t.Errorf("no target table: %v %q", err, problems)
			}
		})
	}
}
