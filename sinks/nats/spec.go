package nats

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/format"
)

// Kind is the block's TYPE label: `sink "nats" "NAME"`.
const Kind = "nats"

// Spec is the block's schema, registered with dsl by this package's init.
var Spec = &dsl.BlockSpec{
	Type: "sink", Kind: Kind,
	Doc: "Publishes change events to NATS JetStream, one message per change, exactly once.",
	Attrs: []dsl.AttrSpec{
		{Name: "url", Type: dsl.AttrString, Field: "URL", Default: DefaultURL, Check: checkURLAttr,
			Doc: "The NATS server, or servers of one cluster separated by commas; `tls://` verifies the server's certificate against the system's roots."},
		{Name: "subject", Type: dsl.AttrString, Field: "Subject", Check: checkSubjectAttr, DefaultDoc: `"<pipeline>.{schema}.{table}"`,
			Doc: "The subject of each event; `{schema}` and `{table}` are replaced by the event's (a name with a '.' is refused)."},
		{Name: "format", Type: dsl.AttrString, Field: "Format", Default: "debezium", Enum: format.Names,
			Doc: "The message payload: a `debezium` envelope or sluice's `native` JSON."},
		{Name: "schemas", Type: dsl.AttrBool, Field: "Schemas", Default: false,
			Doc: "Include Debezium's `schema` part next to the `payload`."},
		{Name: "stream", Type: dsl.AttrString, Field: "Stream", Check: checkStreamAttr, DefaultDoc: `"sluice_<pipeline>"`,
			Doc: "The JetStream stream that stores the subjects. It belongs to this sink: the sink recovers its checkpoint from the stream's last message, so nothing else may publish to it."},
		{Name: "create_stream", Type: dsl.AttrBool, Field: "CreateStream", Default: true,
			Doc: "Create the stream when it is missing, with `subjects`, `retention`, `max_age`, `replicas` and `duplicate_window`; they do not change a stream that exists."},
		{Name: "subjects", Type: dsl.AttrStrings, Field: "Subjects", Check: checkFilterAttr, DefaultDoc: "`subject` with each token holding a placeholder turned into `*`",
			Doc: "The subjects of a stream the sink creates; they must include every subject `subject` renders."},
		{Name: "retention", Type: dsl.AttrString, Field: "Retention", Default: DefaultRetention, Enum: Retentions,
			Doc: "The retention policy of a stream the sink creates: `limits` keeps messages up to `max_age`, `interest` while a consumer has not acknowledged them, `workqueue` until one consumer acknowledges them."},
		{Name: "max_age", Type: dsl.AttrDuration, Field: "MaxAge", DefaultDoc: "forever",
			Doc: "How long a stream the sink creates keeps a message."},
		{Name: "replicas", Type: dsl.AttrInt, Field: "Replicas", Default: int64(1), Min: 1,
			Doc: "The replica count of a stream the sink creates (1 to 5; more than 1 needs a JetStream cluster)."},
		{Name: "duplicate_window", Type: dsl.AttrDuration, Field: "DuplicateWindow", Default: DefaultDuplicateWindow,
			Doc: "How long a stream the sink creates remembers message ids (Nats-Msg-Id) to drop a message sent again."},
		{Name: "user", Type: dsl.AttrString, Field: "User",
			Doc: "Authenticate with this user name and `password`."},
		{Name: "password", Type: dsl.AttrSecret, Field: "Password",
			Doc: "The password of `user`. Never printed."},
		{Name: "token", Type: dsl.AttrSecret, Field: "Token",
			Doc: "Authenticate with this token. Never printed."},
		{Name: "credentials_file", Type: dsl.AttrString, Field: "CredentialsFile",
			Doc: "Authenticate with a NATS credentials file (a user JWT and its NKey seed, as `nsc` writes it)."},
	},
}

func init() {
	dsl.RegisterSink(dsl.SinkKind{
		Spec:     Spec,
		Config:   func() any { return new(Config) },
		Defaults: defaults,
	})
}

// defaults fills the attributes whose default depends on the pipeline.
func defaults(cfg any, pipeline string, _ map[string]bool) {
	c := cfg.(*Config)
	*c = c.withDefaults(pipeline)
}

// New builds the sink of a `sink "nats"` block. It checks the block; it
// does not connect (Open does).
func New(b engine.Build, s *dsl.Sink) (engine.Sink, error) {
	cfg, ok := s.Config.(*Config)
	if !ok || cfg == nil {
		return nil, engine.Permanent(fmt.Errorf("nats sink %q: block has no nats configuration", s.Name))
	}
	name := b.Pipeline.Name
	sk, err := newSink(*cfg, name, s.Name, b.Logger)
	if err != nil {
		return nil, err
	}
	if b.Pipeline.Instance != "" {
		sk.owner += "." + b.Pipeline.Instance
	}
	return sk, nil
}

// The Check functions of the attributes: what is wrong, and what to
// write instead.

func checkURLAttr(s string) (string, string) {
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			return "is not a NATS server URL", `Write "nats://host:4222" (or tls://host:4222); servers of one cluster separated by commas.`
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Sprintf("has scheme %q", p.Scheme), `Write "nats://host:4222", "tls://host:4222", or ws:// / wss:// for websockets.`
		}
	}
	return "", ""
}

func checkSubjectAttr(s string) (string, string) {
	if err := CheckTemplate(s); err != nil {
		return "is not a subject template: " + strings.TrimPrefix(err.Error(), fmt.Sprintf("subject %q: ", s)),
			`Write tokens separated by '.', without spaces or wildcards, such as "app.{schema}.{table}".`
	}
	return "", ""
}

func checkStreamAttr(s string) (string, string) {
	if err := CheckStreamName(s); err != nil {
		return "is not a stream name", "Use letters, digits, '_' and '-', such as \"sluice_app\"."
	}
	return "", ""
}

func checkFilterAttr(s string) (string, string) {
	if err := checkFilter(s); err != nil {
		return "is not a subject filter", `Write tokens separated by '.', where a token may be "*" and the last one ">", such as "app.*.*".`
	}
	return "", ""
}
