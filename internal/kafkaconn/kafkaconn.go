// Package kafkaconn turns a pipeline's Kafka `tls` and `sasl` blocks into
// franz-go client options, for the Kafka sink and source alike: managed
// Kafka (Confluent Cloud, MSK, Aiven, Heroku) requires TLS, often with a
// client certificate, and SASL. The mechanisms are franz-go's own
// (pkg/sasl); errors name the file or block at fault and never hold a
// password.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/tlsfiles"
)

// Options returns the client options of a tls and a sasl block; either
// may be nil (plaintext, no authentication).
func Options(t *dsl.TLS, s *dsl.KafkaSASL) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if t != nil {
		cfg, err := TLSConfig(t)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s != nil {
		user, pass := s.Username, s.Password.Reveal()
		switch s.Mechanism {
		case "plain":
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		case "scram-sha-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		case "aws-msk-iam":
			opts = append(opts, kgo.SASL(aws.Auth{AccessKey: user, SecretKey: pass, SessionToken: s.SessionToken.Reveal()}.AsManagedStreamingIAMMechanism()))
		default:
			return nil, fmt.Errorf("%ssasl: mechanism %q is not one of plain, scram-sha-256, scram-sha-512, aws-msk-iam", dsl.At(s.Ranges, "mechanism"), s.Mechanism)
		}
	}
	return opts, nil
}

// TLSConfig builds the client side of a tls block (tlsfiles.Config,
// shared with the MySQL sink).
func TLSConfig(t *dsl.TLS) (*tls.Config, error) { return tlsfiles.Config(t) }

// Ping asks a broker for its metadata, so that a pipeline learns at
// start, not at its first write, that it cannot reach the brokers or is
// refused by them. A refused certificate or login is engine.Permanent
// with what to check; anything else (a broker that is down) is returned
// as it is, for the engine to retry.
func Ping(ctx context.Context, cl *kgo.Client, label string) error {
	err := cl.Ping(ctx)
	if err == nil {
		return nil
	}
	var (
		record tls.RecordHeaderError
		remote *net.OpError
		kafka  *kerr.Error
	)
	switch {
	case tlsfiles.Untrusted(err):
		return engine.Permanent(fmt.Errorf("%s: the brokers' certificate is not trusted: %w: set tls { ca_file = ... } to the CA that signed it, or server_name to the name it carries", label, err))
	case errors.As(err, &remote) && remote.Op == "remote error": // a TLS alert from the broker
		return engine.Permanent(fmt.Errorf("%s: the brokers refused the TLS handshake: %w: if they require a client certificate, set tls { cert_file = ..., key_file = ... } to one their CA signed", label, err))
	case errors.As(err, &record):
		return engine.Permanent(fmt.Errorf("%s: the brokers do not speak TLS on this port: %w: remove the tls block, or use the brokers' TLS listener", label, err))
	case errors.As(err, &kafka) && (kafka == kerr.SaslAuthenticationFailed || kafka == kerr.IllegalSaslState || kafka == kerr.UnsupportedSaslMechanism):
		return engine.Permanent(fmt.Errorf("%s: the brokers refused the SASL login: %w: check sasl's mechanism, username and password", label, err))
	}
	return fmt.Errorf("%s: reach the brokers: %w", label, err)
}
