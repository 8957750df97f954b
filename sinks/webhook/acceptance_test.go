package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sinktest"
	"github.com/sluice-cdc/sluice/sinks/webhook"
)

// refusedNote is the note the test receiver refuses events with.
const refusedNote = "REFUSE"

// TestAcceptance runs the acceptance kit every sink passes against an
// HTTP receiver of its own per case: it keeps the events of every request
// it answers 2xx, in order, and answers 400 to a request holding an
// event whose note is refusedNote. The batch (100) is larger than any
// batch of the cases, so the sink delivers only at Flush; a webhook is
// at least once, so after the refused event the events delivered before
// it in its flush come again (Redelivers).
func TestAcceptance(t *testing.T) {
	sinktest.Run(t, sinktest.Factory{
		Name: "webhook",
		Kind: sinktest.Log,
		NewTarget: func(t *testing.T) *sinktest.Target {
			rc := &acceptingReceiver{t: t}
			srv := httptest.NewServer(rc)
			t.Cleanup(srv.Close)
			block := &dsl.Sink{Type: "webhook", Name: "hook", Webhook: &dsl.WebhookSink{
				URL: srv.URL, Secret: "acceptance", Batch: 100, Timeout: 5 * time.Second, RetryMax: 3, RetryBackoff: time.Millisecond,
			}}
			return &sinktest.Target{
				New:      func(b engine.Build) (engine.Sink, error) { return webhook.New(b, block) },
				Messages: func(*testing.T) []sinktest.Message { return rc.messages() },
			}
		},
		Reject: func(e change.Event) change.Event {
			after := e.After.Clone()
			after.Set("note", refusedNote)
			e.After = after
			return e
		},
		Truncate:   sinktest.TruncateMessage,
		Redelivers: true,
	})
}

// acceptingReceiver is the webhook's target.
type acceptingReceiver struct {
	t    *testing.T
	mu   sync.Mutex
	msgs []sinktest.Message
}

func (rc *acceptingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if !webhook.Verify([]byte("acceptance"), body, r.Header.Get(webhook.HeaderSignature)) {
		rc.t.Errorf("request without a valid signature: %s", body)
	}
	if bytes.Contains(body, []byte(`"note":"`+refusedNote+`"`)) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "the test receiver refuses this note")
		return
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		rc.t.Errorf("request body %s: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var got []sinktest.Message
	for _, el := range elems {
		m, err := sinktest.DecodeNative(el)
		if err != nil {
			rc.t.Errorf("%v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got = append(got, m)
	}
	rc.mu.Lock()
	rc.msgs = append(rc.msgs, got...)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *acceptingReceiver) messages() []sinktest.Message {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]sinktest.Message(nil), rc.msgs...)
}
