package nats

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/format"
)

// Defaults of the block's attributes.
const (
	DefaultURL             = "nats://127.0.0.1:4222"
	DefaultDuplicateWindow = 2 * time.Minute // nats-server's own default
	DefaultRetention       = "limits"
)

// Config is the `sink "nats"` block. The zero value of a field means its
// default (see withDefaults), except CreateStream, whose default (true)
// the block's spec applies.
type Config struct {
	// URL is the server, or a comma-separated list of servers of one
	// cluster; default DefaultURL. Credentials in it ("nats://u:p@host")
	// work but are never printed; prefer user and password.
	URL string
	// Subject is the subject of each event: a template where {schema}
	// and {table} are replaced by the event's; default
	// "<pipeline>.{schema}.{table}".
	Subject string
	// Format is the payload: "debezium" (default) or "native".
	Format string
	// Schemas wraps the Debezium envelope with its Kafka Connect schema.
	Schemas bool
	// Stream is the JetStream stream the subjects are stored in, which
	// belongs to this sink; default "sluice_<pipeline>".
	Stream string
	// CreateStream creates Stream when it is missing, with the options
	// below; they do not change a stream that exists. The spec's default
	// is true.
	CreateStream bool
	// Subjects are the stream's subjects when the sink creates it;
	// default: Subject with each token holding a placeholder turned into
	// "*" ("<pipeline>.*.*").
	Subjects []string
	// Retention is the created stream's retention policy: "limits"
	// (default), "interest" or "workqueue".
	Retention string
	// MaxAge is how long the created stream keeps a message; 0 (default)
	// means forever.
	MaxAge time.Duration
	// Replicas is the created stream's replica count; default 1.
	Replicas int
	// DuplicateWindow is how long the created stream remembers message
	// ids to drop re-sent messages; default DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// User and Password authenticate with a user name; Token with a
	// token; CredentialsFile with a NATS .creds file (a user JWT and its
	// NKey seed). At most one of the three ways.
	User            string
	Password        dsl.Secret
	Token           dsl.Secret
	CredentialsFile string
	// TLS verifies the server's certificate (and presents a client
	// certificate) as the tls block says; nil means plaintext unless the
	// URL's scheme is tls://, which verifies against the system's roots.
	TLS *dsl.TLS
}

// Retentions lists the values of retention.
var Retentions = []string{"limits", "interest", "workqueue"}

var retentions = map[string]jetstream.RetentionPolicy{
	"limits":    jetstream.LimitsPolicy,
	"interest":  jetstream.InterestPolicy,
	"workqueue": jetstream.WorkQueuePolicy,
}

// withDefaults fills the fields left empty with their defaults for the
// pipeline named pipeline.
func (c Config) withDefaults(pipeline string) Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject(pipeline)
	}
	if c.Format == "" {
		c.Format = "debezium"
	}
	if c.Stream == "" {
		c.Stream = DefaultStream(pipeline)
	}
	if len(c.Subjects) == 0 {
		c.Subjects = []string{Wildcards(c.Subject)}
	}
	if c.Retention == "" {
		c.Retention = DefaultRetention
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	return c
}

// DefaultSubject is the subject template of a pipeline's sink without a
// subject: "<pipeline>.{schema}.{table}", the pipeline's name with every
// character that a subject token cannot hold replaced by '_'.
func DefaultSubject(pipeline string) string {
	return token(pipeline) + ".{schema}.{table}"
}

// DefaultStream is the stream of a pipeline's sink without a stream:
// "sluice_<pipeline>", with every character other than letters, digits,
// '_' and '-' replaced by '_'.
func DefaultStream(pipeline string) string {
	return "sluice_" + token(pipeline)
}

// token maps s to letters, digits, '_' and '-', valid both in a subject
// token and in a stream name.
func token(s string) string {
	if s == "" {
		return "sluice"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Wildcards turns a subject template into the subject filter that
// matches every subject it renders: each token holding a placeholder
// becomes "*" ("app.{schema}.{table}" → "app.*.*").
func Wildcards(tpl string) string {
	tokens := strings.Split(tpl, ".")
	for i, t := range tokens {
		if strings.Contains(t, "{") {
			tokens[i] = "*"
		}
	}
	return strings.Join(tokens, ".")
}

// check validates the configuration (with defaults applied) and returns
// its payload format. Errors say what to write instead.
func (c *Config) check() (format.Format, error) {
	for _, u := range strings.Split(c.URL, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = "nats://" + u // nats.go reads "host:port" so
		}
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			return nil, fmt.Errorf(`url %q is not a NATS server URL: write "nats://host:4222" (or tls://), servers of one cluster separated by commas`, redactURLs(c.URL))
		}
	}
	if err := CheckTemplate(c.Subject); err != nil {
		return nil, err
	}
	f, err := format.Lookup(c.Format)
	if err != nil {
		return nil, fmt.Errorf("format: %v", err)
	}
	if c.Schemas {
		d, ok := f.(format.Debezium)
		if !ok {
			return nil, fmt.Errorf(`schemas = true adds Debezium's schema part, which the %s format does not have: use format = "debezium" or remove schemas`, f.Name())
		}
		d.Schemas = true
		f = d
	}
	if err := CheckStreamName(c.Stream); err != nil {
		return nil, err
	}
	for _, s := range c.Subjects {
		if err := checkFilter(s); err != nil {
			return nil, fmt.Errorf("subjects: %v", err)
		}
	}
	if !covered(c.Subjects, Wildcards(c.Subject)) {
		return nil, fmt.Errorf("subject %q renders subjects outside subjects %q, so the stream would not store them: add %q to subjects", c.Subject, c.Subjects, Wildcards(c.Subject))
	}
	if _, ok := retentions[c.Retention]; !ok {
		return nil, fmt.Errorf("retention %q: use one of %q", c.Retention, Retentions)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return nil, fmt.Errorf("replicas %d: JetStream keeps 1 to 5 replicas of a stream", c.Replicas)
	}
	if c.MaxAge < 0 || c.DuplicateWindow < 0 {
		return nil, errors.New("max_age and duplicate_window cannot be negative")
	}
	if c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		return nil, fmt.Errorf("duplicate_window %s is longer than max_age %s, which JetStream refuses: shorten duplicate_window", c.DuplicateWindow, c.MaxAge)
	}
	ways := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.CredentialsFile != ""} {
		if set {
			ways++
		}
	}
	if ways > 1 {
		return nil, errors.New("set one way to authenticate: user and password, token, or credentials_file")
	}
	if c.Password != "" && c.User == "" {
		return nil, errors.New("password is set without user: set user too")
	}
	return f, nil
}

// streamConfig is the configuration of a stream the sink creates.
func (c *Config) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        c.Stream,
		Description: "change events written by sluice",
		Subjects:    c.Subjects,
		Retention:   retentions[c.Retention],
		MaxAge:      c.MaxAge,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
	}
}

// CheckTemplate rejects a subject template that cannot render valid
// subjects: placeholders other than {schema} and {table}, wildcards,
// whitespace or empty tokens.
func CheckTemplate(tpl string) error {
	if tpl == "" {
		return errors.New(`subject is empty: write a subject or a template such as "app.{schema}.{table}"`)
	}
	rest := strings.NewReplacer("{schema}", "", "{table}", "").Replace(tpl)
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("subject %q: only {schema} and {table} can be replaced; remove the other braces", tpl)
	}
	if err := checkSubject(strings.NewReplacer("{schema}", "s", "{table}", "t").Replace(tpl)); err != nil {
		return fmt.Errorf("subject %q: %v", tpl, err)
	}
	return nil
}

// CheckStreamName applies JetStream's rules for stream names.
func CheckStreamName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("stream %q: a stream name has 1 to 255 characters", name)
	}
	if i := strings.IndexAny(name, " \t\r\n.*>/\\"); i >= 0 {
		return fmt.Errorf("stream %q has %q: stream names cannot hold whitespace, '.', '*', '>', '/' or '\\'", name, name[i])
	}
	return nil
}

// checkSubject accepts a subject a message can be published to: tokens
// separated by '.', none empty, without whitespace or wildcards.
func checkSubject(s string) error {
	for _, t := range strings.Split(s, ".") {
		switch {
		case t == "":
			return errors.New("a subject cannot have an empty token (a leading or trailing '.', or \"..\")")
		case t == "*" || t == ">" || strings.ContainsAny(t, "*>"):
			return errors.New("a subject to publish to cannot hold the wildcards '*' or '>'")
		}
		for _, r := range t {
			if r <= ' ' || r == 0x7f {
				return fmt.Errorf("a subject cannot hold whitespace or control characters (%q)", r)
			}
		}
	}
	return nil
}

// checkFilter accepts a stream subject: a subject where a token may be
// "*" and the last one ">".
func checkFilter(s string) error {
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "*", t == ">" && i == len(tokens)-1:
		case t == "":
			return fmt.Errorf("%q has an empty token (a leading or trailing '.', or \"..\")", s)
		case strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%q: '*' is a token of its own and '>' only the last token", s)
		default:
			for _, r := range t {
				if r <= ' ' || r == 0x7f {
					return fmt.Errorf("%q holds whitespace or control characters", s)
				}
			}
		}
	}
	return nil
}

// covered reports whether one of filters matches every subject that
// subject matches, where a "*" token of subject stands for any token.
func covered(filters []string, subject string) bool {
	for _, f := range filters {
		if covers(f, subject) {
			return true
		}
	}
	return false
}

func covers(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return i < len(st)
		}
		if i >= len(st) {
			return false
		}
		if f != "*" && f != st[i] {
			return false
		}
	}
	return len(ft) == len(st)
}

// redactURLs returns the comma-separated server URLs with any password
// in them replaced by "xxxxx", for messages.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		if p, err := url.Parse(u); err == nil && p.User != nil {
			if _, has := p.User.Password(); has {
				parts[i] = p.Redacted()
			} else {
				p.User = url.User("xxxxx") // a token alone
				parts[i] = p.String()
			}
		} else if err != nil {
			parts[i] = "(unparsable URL)"
		}
	}
	return strings.Join(parts, ",")
}
