// Package tlsfiles builds the client side of a pipeline's `tls` block
// (CA, client certificate and key as PEM files, server name,
// insecure_skip_verify) as a *tls.Config, for every client that takes the
// block: the Kafka sink and source, and the MySQL sink. Errors name the
// attribute and file at fault; the files hold no secrets that an error
// could print (a key file's content is never quoted).
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/sluice-cdc/sluice/dsl"
)

// Config builds the client side of a tls block: the servers'
// certificates verified against ca_file (else the system's roots), and a
// client certificate when cert_file and key_file are set. ServerName is
// left empty unless server_name is set: the client library fills in the
// host it dials. TLS 1.2 is the minimum. The files are read once, here.
func Config(t *dsl.TLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%stls: ca_file: %w", dsl.At(t.Ranges, "ca_file"), err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%stls: ca_file %s holds no PEM certificate: give the CA's certificate, BEGIN CERTIFICATE", dsl.At(t.Ranges, "ca_file"), t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%stls: the client certificate (cert_file %s, key_file %s): %w", dsl.At(t.Ranges, "cert_file"), t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Untrusted reports whether err is a refused certificate: signed by an
// authority the client does not trust, invalid, or for another name. No
// retry makes such a certificate trusted, so callers make it permanent.
func Untrusted(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify)
}
