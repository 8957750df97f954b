// Package components names every source, sink and transform of the
// pipeline language in one engine.Registry. It lives outside engine so that
// engine imports no component, and outside cmd/sluice so that other
// programs (the benchmark command, end-to-end tests) build pipelines the
// same way the command does.
package components

import (
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	filesink "github.com/sluice-cdc/sluice/sinks/file"
	kafkasink "github.com/sluice-cdc/sluice/sinks/kafka"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
	pgsink "github.com/sluice-cdc/sluice/sinks/postgres"
	"github.com/sluice-cdc/sluice/sinks/webhook"
	filesource "github.com/sluice-cdc/sluice/sources/file"
	kafkasource "github.com/sluice-cdc/sluice/sources/kafka"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
	"github.com/sluice-cdc/sluice/transforms"
)

// Registry maps every kind of the language to its constructor. A new
// kind is one line here: its package's New. Naming the package imports
// it, and its init registers the block's schema with dsl (see
// dsl.RegisterSink).
func Registry() Kinds {
	return Kinds{
		Sources: map[string]func(engine.Build, *dsl.Source) (engine.Source, error){
			"postgres": pgsource.New,
			"file":     filesource.New,
			"kafka":    kafkasource.New,
		},
		Sinks: map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){
			"mysql":    mysqlsink.New,
			"postgres": pgsink.New,
			"kafka":    kafkasink.New,
			"webhook":  webhook.New,
			"file":     filesink.New,
			"nats":     natssink.New,
		},
		Transform: transforms.New,
	}
}
