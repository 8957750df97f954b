package kafka

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// route produces an outbox row (the sink's outbox block): the topic, key,
// value and extra headers are the block's expressions over e. Only
// inserted and snapshot rows are routed, as Debezium's outbox event
// router does: an outbox row is an event written once, and its update or
// delete (often right after the insert, to keep the table small) is no
// event of its own. A row whose expressions fail or give no topic is a
// rejected row, for on_error to decide.
func (s *Sink) route(ctx context.Context, e *change.Event) error {
	if e.Op != change.Insert && e.Op != change.Snapshot {
		return nil
	}
	o := s.outbox
	s.eval.Bind(e)
	reject := func(what string, err error) error {
		return &engine.RejectError{Event: *e, Err: fmt.Errorf("%s: outbox %s of the row of %s: %w", s.label, what, e.QualifiedTable(), err)}
	}
	tv, err := s.eval.Value(o.Topic)
	if err != nil {
		return reject("topic", err)
	}
	topic, ok := tv.(string)
	if !ok || topic == "" {
		return reject("topic", fmt.Errorf("%q gave %v, not the name of a topic", o.Topic.Source, tv))
	}
	if err := s.ensure(ctx, topic, func(err error) error { return reject("topic", err) }); err != nil {
		return err
	}
	var key []byte
	if o.Key != nil {
		if key, err = s.bytes(o.Key); err != nil {
			return reject("key", err)
		}
	}
	value, err := s.bytes(o.Value)
	if err != nil {
		return reject("value", err)
	}
	headers := positionHeaders(e)
	for _, h := range o.Headers {
		v, err := s.bytes(h.Expr)
		if err != nil {
			return reject("header "+h.Column, err)
		}
		headers = append(headers, kgo.RecordHeader{Key: h.Column, Value: v})
	}
	s.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value, Headers: headers}, s.promise)
	return nil
}

// bytes runs p and encodes its result: text (and JSON columns) as it is,
// NULL as nothing, anything else as JSON.
func (s *Sink) bytes(p *eventexpr.Program) ([]byte, error) {
	v, err := s.eval.Value(p)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(v), nil
	case change.JSON:
		return []byte(v), nil
	case change.Numeric:
		return []byte(v), nil
	case []byte:
		return v, nil
	}
	return json.Marshal(jsonValue(v))
}
