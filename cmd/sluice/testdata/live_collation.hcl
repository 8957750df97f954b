# live_collation.hcl — a test that passes in memory and fails live
# (TestLiveFindsWhatTheModelCannot): the target table that exists in
# MariaDB keys codes by a case-insensitive collation, as a misconfigured
# target would, so 'abc' and 'ABC' are one row there, while PostgreSQL
# and the in-memory model keep two. `sluice test --live` copies the real
# table's DDL into its scratch database and shows the difference.
pipeline "live_collation" {}

source "postgres" "app" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.codes"]
}

sink "mysql" "replica" {
  from  = source.app
  dsn   = env("TARGET_DSN")
  table = "codes"
  key   = ["code"]
}

test "codes that differ only in case stay two rows" {
  input "public.codes" {
    op    = "insert"
    after = { code = "abc", label = "lower" }
  }
  input "public.codes" {
    op    = "insert"
    after = { code = "ABC", label = "upper" }
  }
  expect_table "sink.replica" {
    rows = [
      { code = "ABC", label = "upper" },
      { code = "abc", label = "lower" },
    ]
  }
}
