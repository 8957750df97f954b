// Package sqltabletest is the conformance suite every SQL table sink
// (mysql, postgres) passes against a real database: each delete and mode
// option, primary-key updates, absent (unchanged TOAST) columns,
// auto_create with every source type, added columns, streaming of a big
// transaction into one target transaction, checkpoints, rollbacks and
// rejected rows. A sink package runs it with Run(t, Target{...}) and
// measures itself with Bench.
package sqltabletest
