package kafkaconn

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// ping connects to brokers with the options of tls and sasl.
func ping(t *testing.T, brokers []string, tls *dsl.TLS, sasl *dsl.KafkaSASL) error {
	t.Helper()
	opts, err := Options(tls, sasl)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Ping(ctx, cl, "kafka sink \"out\"")
}

func TestTLSWithClientCertificate(t *testing.T) {
	certs := testcerts.New(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(certs.ServerConfig(true)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	if err := ping(t, brokers, &dsl.TLS{CAFile: certs.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, nil); err != nil {
		t.Fatalf("CA and client certificate: %v", err)
	}
	for _, bad := range []struct {
		name string
		tls  *dsl.TLS
		want string
	}{
		{"no client certificate", &dsl.TLS{CAFile: certs.CAFile}, "client certificate"},
		{"the system's roots", &dsl.TLS{CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, "not trusted"},
		{"another name", &dsl.TLS{CAFile: certs.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, ServerName: "kafka.example"}, "not trusted"},
	} {
		err := ping(t, brokers, bad.tls, nil)
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: want a permanent error saying %q, got %v", bad.name, bad.want, err)
		}
	}
	if err := ping(t, brokers, nil, nil); err == nil {
		t.Error("a plaintext client reached the TLS listener")
	}
}

func TestSASLPlainAndScram(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", "alice-pw"), kfake.Superuser("SCRAM-SHA-512", "bob", "bob-pw"), kfake.Superuser("SCRAM-SHA-256", "carol", "carol-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// kfake drops the connection on a failed login; a Kafka broker answers
	// SASL_AUTHENTICATION_FAILED first. Answer a PLAIN login with a wrong
	// password as a broker does.
	c.ControlKey(kmsg.SASLAuthenticate.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		auth := req.(*kmsg.SASLAuthenticateRequest)
		if !bytes.HasPrefix(auth.SASLAuthBytes, []byte("\x00alice\x00")) || bytes.HasSuffix(auth.SASLAuthBytes, []byte("\x00alice-pw")) {
			return nil, nil, false
		}
		resp := auth.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	brokers := c.ListenAddrs()
	for _, ok := range []dsl.KafkaSASL{
		{Mechanism: "plain", Username: "alice", Password: "alice-pw"},
		{Mechanism: "scram-sha-512", Username: "bob", Password: "bob-pw"},
		{Mechanism: "scram-sha-256", Username: "carol", Password: "carol-pw"},
	} {
		if err := ping(t, brokers, nil, &ok); err != nil {
			t.Errorf("%s as %s: %v", ok.Mechanism, ok.Username, err)
		}
	}
	bad := dsl.KafkaSASL{Mechanism: "plain", Username: "alice", Password: "wrong-pw-1234"}
	if err := ping(t, brokers, nil, &bad); !engine.IsPermanent(err) || !strings.Contains(err.Error(), "refused the SASL login") || strings.Contains(err.Error(), "wrong-pw-1234") {
		t.Errorf("plain with a wrong password: want a permanent error without the password, got %v", err)
	}
	bad = dsl.KafkaSASL{Mechanism: "scram-sha-512", Username: "bob", Password: "wrong-pw-1234"}
	if err := ping(t, brokers, nil, &bad); err == nil || strings.Contains(err.Error(), "wrong-pw-1234") {
		t.Errorf("scram-sha-512 with a wrong password: want an error without the password, got %v", err)
	}
}

func TestFileErrorsNameTheFile(t *testing.T) {
	if _, err := Options(&dsl.TLS{CAFile: "/nonexistent/ca.pem"}, nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Errorf("missing ca_file: %v", err)
	}
	certs := testcerts.New(t)
	if _, err := Options(&dsl.TLS{CAFile: certs.ClientKey}, nil); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a key as ca_file: %v", err)
	}
	if _, err := Options(&dsl.TLS{CertFile: certs.ClientCert, KeyFile: certs.ServerKey}, nil); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("mismatched key: %v", err)
	}
}
