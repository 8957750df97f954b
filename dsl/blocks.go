package dsl

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// typedSpec finds the spec of a `source "TYPE"` or `sink "TYPE"` block and
// reports an unknown or missing TYPE.
func (l *loader) typedSpec(b *hclsyntax.Block, specs []*blockSpec) *blockSpec {
	kinds := kindsOf(specs)
	if len(b.Labels) == 0 {
		l.errorf(b.OpenBraceRange, fmt.Sprintf("Write %s \"TYPE\" \"NAME\" { ... } where TYPE is one of %s.", b.Type, quoteList(kinds)),
			"%s block needs a type and a name", b.Type)
		return nil
	}
	spec := specOf(specs, b.Labels[0])
	if spec == nil {
		l.errorf(b.LabelRanges[0], didYouMean(b.Labels[0], kinds, b.Type+" types"), "unknown %s type %q", b.Type, b.Labels[0])
		return nil
	}
	if !l.labels(b, spec) {
		return nil
	}
	return spec
}

// drop remembers a block that could not be decoded, so that its name
// does not also show up as an unknown reference or an unread source.
func (l *loader) drop(b *hclsyntax.Block, kind RefKind) {
	l.unsureFrom = l.unsureFrom || kind == TransformRef
	if n := len(b.Labels); n > 0 {
		l.dropped[Ref{Kind: kind, Name: b.Labels[n-1]}] = true
	}
}

func (l *loader) source(b *hclsyntax.Block, seen map[string]hcl.Range) *Source {
	spec := l.typedSpec(b, sourceSpecs)
	if spec == nil || !l.name(b, "source", seen) {
		l.drop(b, SourceRef)
		return nil
	}
	s := &Source{Type: spec.Kind, Name: b.Labels[1], DeclRange: b.DefRange()}
	def := DefaultName(l.cfg.Pipeline.Name)
	switch spec.Kind {
	case "postgres":
		s.Postgres = &PostgresSource{}
		present := l.decodeBody(b, spec, s.Postgres)
		if present["slot"] == nil {
			s.Postgres.Slot = def
		}
		if present["publication"] == nil {
			s.Postgres.Publication = def
		}
	case "kafka":
		s.Kafka = &KafkaSource{}
		if present := l.decodeBody(b, spec, s.Kafka); present["group"] == nil {
			s.Kafka.Group = def
		}
		s.Kafka.TLS, s.Kafka.SASL = l.kafkaBlocks(b, spec)
	case "file":
		s.File = &FileSource{}
		l.decodeBody(b, spec, s.File, s)
		s.File.Path = l.inputPath(s.File.Path)
	}
	return s
}

func (l *loader) transform(b *hclsyntax.Block, seen map[string]hcl.Range) *Transform {
	if !l.labels(b, transformSpec) || !l.name(b, "transform", seen) {
		l.drop(b, TransformRef)
		return nil
	}
	t := &Transform{Name: b.Labels[0], DeclRange: b.DefRange()}
	present := l.decodeBody(b, transformSpec, t)
	if present["select"] != nil && present["exclude"] != nil {
		second := present["exclude"]
		if second.SrcRange.Start.Byte < present["select"].SrcRange.Start.Byte {
			second = present["select"]
		}
		l.errorf(second.NameRange, "select keeps only the listed columns and exclude drops the listed ones; use one of them.",
			"select and exclude cannot both be set")
	}
	if l.cfg.Pipeline.MaskKey == "" {
		for _, m := range t.Mask {
			if m.Kind == "hash" {
				l.warnf(present["mask"].Expr.Range(), `Set mask_key in the pipeline block or the environment variable SLUICE_MASK_KEY; an empty key makes hashes easy to reverse for guessable values.`,
					"mask %q uses hash without a mask key", m.Column)
				break
			}
		}
	}
	return t
}

func (l *loader) sink(b *hclsyntax.Block, seen map[string]hcl.Range) *Sink {
	spec := l.typedSpec(b, allSinkSpecs())
	if spec == nil || !l.name(b, "sink", seen) {
		l.unsureFrom = true
		return nil
	}
	s := &Sink{Type: spec.Kind, Name: b.Labels[1], DeclRange: b.DefRange()}
	switch spec.Kind {
	case "mysql", "postgres":
		ts := &TableSink{}
		present := l.decodeBody(b, spec, ts, s)
		l.tableSink(ts, present)
		if spec.Kind == "mysql" {
			s.MySQL = ts
			ts.TLS, _ = l.kafkaBlocks(b, spec)
		} else {
			s.Postgres = ts
		}
	case "kafka":
		s.Kafka = &KafkaSink{}
		present := l.decodeBody(b, spec, s.Kafka, s)
		if present["topic"] == nil {
			s.Kafka.Topic = l.cfg.Pipeline.Name + ".{schema}.{table}"
		}
		if present["transactions_topic"] == nil {
			s.Kafka.TransactionsTopic = l.cfg.Pipeline.Name + ".transaction"
		}
		s.Kafka.TLS, s.Kafka.SASL = l.kafkaBlocks(b, spec)
		for _, nb := range b.Body.Blocks {
			if nb.Type == "outbox" && l.labels(nb, kafkaOutboxSpec) {
				s.Kafka.Outbox = &KafkaOutbox{}
				l.decodeBody(nb, kafkaOutboxSpec, s.Kafka.Outbox)
			}
		}
	case "webhook":
		s.Webhook = &WebhookSink{}
		l.decodeBody(b, spec, s.Webhook, s)
	case "file":
		s.File = &FileSink{}
		l.decodeBody(b, spec, s.File, s)
	default:
		k, _ := registeredSink(spec.Kind)
		s.Config = k.Config()
		present := l.decodeBody(b, spec, s.Config, s)
		if k.Defaults != nil {
			written := make(map[string]bool, len(present))
			for name := range present {
				written[name] = true
			}
			k.Defaults(s.Config, l.cfg.Pipeline.Name, written)
		}
	}
	return s
}

// tableSink checks the attributes of mysql and postgres sinks that only
// make sense together.
func (l *loader) tableSink(ts *TableSink, present map[string]*hclsyntax.Attribute) {
	if ts.Mode == "update" && len(ts.Columns) == 0 && present["mode"] != nil {
		l.errorf(present["mode"].Expr.Range(), `Add columns = ["col1", "col2"]: mode = "update" writes only the listed columns of existing rows.`,
			`mode = "update" needs columns`)
	}
}

// inputPath resolves a path the pipeline reads (a file source's change
// log) against the pipeline file's directory, as file() does, so that a
// pipeline and its test data move together. Paths it writes (state, file
// sinks) stay relative to the working directory, where run-time data
// belongs.
// kafkaBlocks decodes the tls and sasl blocks of a Kafka sink or source,
// or the tls block of a MySQL sink (decodeBody reported any other block);
// each may appear once.
func (l *loader) kafkaBlocks(b *hclsyntax.Block, spec *blockSpec) (*TLS, *KafkaSASL) {
	var tls *TLS
	var sasl *KafkaSASL
	seen := map[string]hcl.Range{}
	for _, nb := range b.Body.Blocks {
		nested := spec.block(nb.Type)
		if nested == nil || !l.labels(nb, nested) {
			continue
		}
		if prev, dup := seen[nb.Type]; dup {
			l.errorf(nb.TypeRange, fmt.Sprintf("The first %s block is at %s. Write one.", nb.Type, where(prev)), "duplicate %s block in %s", nb.Type, header(b))
			continue
		}
		seen[nb.Type] = nb.TypeRange
		switch nb.Type {
		case "outbox":
			continue // the sink decodes it (a source has none)
		case "tls":
			tls = &TLS{}
			l.decodeBody(nb, nested, tls)
			tls.CAFile, tls.CertFile, tls.KeyFile = l.inputPath(tls.CAFile), l.inputPath(tls.CertFile), l.inputPath(tls.KeyFile)
			if (tls.CertFile == "") != (tls.KeyFile == "") {
				l.errorf(nb.DefRange(), "Set both cert_file and key_file, or neither.", "tls block has only one of cert_file and key_file")
			}
		case "sasl":
			sasl = &KafkaSASL{}
			l.decodeBody(nb, nested, sasl)
		}
	}
	return tls, sasl
}

func (l *loader) inputPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(l.cfg.Filename), p)
}
