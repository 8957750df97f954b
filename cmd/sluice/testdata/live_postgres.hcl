# live_postgres.hcl — passes in memory, fails live
# (TestLiveFindsWhatTheModelCannot): both tables exist, and their DDL is
# what the model cannot know. The source table public.prices gives every
# row a note (DEFAULT 'none') the inputs never mention, so the real target
# table has a note column the expected rows do not.
pipeline "live_postgres" {}

source "postgres" "app" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.prices"]
}

sink "postgres" "copy" {
  from  = source.app
  dsn   = env("SOURCE_DSN")
  table = "prices_copy"
}

test "prices are copied exactly" {
  input "public.prices" {
    op    = "insert"
    after = { id = 1, price = 12.25 }
  }
  input "public.prices" {
    op     = "update"
    before = { id = 1 }
    after  = { id = 1, price = 13.45 }
  }
  input "public.prices" {
    op    = "insert"
    after = { id = 2, price = 7 }
  }
  expect_table "sink.copy" {
    rows = [
      { id = 1, price = 13.45 },
      { id = 2, price = 7 },
    ]
  }
}
