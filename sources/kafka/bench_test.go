package kafka

import (
	"context"
	"testing"
)

// BenchmarkRead measures events/s from kfake through Read (fetch,
// Debezium decoding, positions) and Ack, 4 partitions.
func BenchmarkRead(b *testing.B) {
	brokers := cluster(b, 4)
	produce(b, brokers, 0, b.N, 1000)
	s := source(b, brokers, nil)
	defer s.Close()
	ctx := context.Background()
	b.ResetTimer()
	for n := 0; n < b.N; {
		evs, err := s.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n += len(evs)
		if err := s.Ack(ctx, through(evs)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeDebezium measures decoding one Debezium value without
// the schema wrapper.
func BenchmarkDecodeDebezium(b *testing.B) {
	key := []byte(`{"id":42}`)
	value := []byte(`{"before":null,"after":{"id":42,"first_name":"Ada","email":"ada@example.com","score":12.5},"source":{"version":"2.7.0.Final","connector":"postgresql","name":"app","ts_ms":1559033904863,"snapshot":"false","db":"app","schema":"public","table":"users","txId":555,"lsn":24023128,"xmin":null},"op":"c","ts_ms":1559033904863}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := DecodeDebezium(key, value); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
