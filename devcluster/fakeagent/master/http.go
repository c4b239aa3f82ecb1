package master

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/chans"
)

const (
	headerStreamID  = "Mesos-Stream-Id"
	mediaRecordIO   = "application/recordio"
	maxCallBytes    = 16 << 20
	streamQueueSize = 1024
)

// subscription is one SUBSCRIBE connection: events queue in its outbox,
// which the HTTP handler drains.
type subscription struct {
	streamID string
	*chans.Outbox[*scheduler.Event]
}

func newSubscription() *subscription {
	return &subscription{streamID: newID(), Outbox: chans.NewOutbox[*scheduler.Event](streamQueueSize)}
}

// ServeHTTP serves POST /api/v1/scheduler with Master::Http::scheduler's
// checks (src/master/http.cpp): POST only (405), a known Content-Type
// (415), a parsable Call (400), framework_id on every call but SUBSCRIBE
// (400), a subscribed framework (403) and its stream's Mesos-Stream-Id
// (400).
func (m *Master) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Expecting 'POST', received '"+r.Method+"'", http.StatusMethodNotAllowed)
		return
	}
	codec, ok := codecFor(r.Header.Get("Content-Type"))
	if !ok {
		http.Error(w, fmt.Sprintf("Unsupported Content-Type %q; expecting application/json or application/x-protobuf", r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	var call scheduler.Call
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBytes))
	if err == nil {
		err = codec.NewDecoder(encoding.SourceReader(strings.NewReader(string(body)))).Decode(&call)
	}
	if err != nil {
		http.Error(w, "Failed to parse body into Call: "+err.Error(), http.StatusBadRequest)
		return
	}
	if call.Type == scheduler.Call_SUBSCRIBE {
		m.serveSubscribe(w, r, &call)
		return
	}
	fwID := call.GetFrameworkID().GetValue()
	if fwID == "" {
		http.Error(w, "Expecting 'framework_id' to be present", http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	fw, known := m.frameworks[fwID]
	var streamID string
	if known && fw.sub != nil {
		streamID = fw.sub.streamID
	}
	m.mu.Unlock()
	if streamID == "" {
		http.Error(w, "Framework '"+fwID+"' is not subscribed", http.StatusForbidden)
		return
	}
	if got := r.Header.Get(headerStreamID); got != streamID {
		http.Error(w, fmt.Sprintf("The stream ID %q included in this request didn't match the stream ID currently associated with framework ID %s", got, fwID), http.StatusBadRequest)
		return
	}
	if err := m.handleCall(fwID, &call); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (m *Master) serveSubscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call) {
	info := call.GetSubscribe().GetFrameworkInfo()
	if info == nil {
		http.Error(w, "Expecting 'subscribe.framework_info' to be present", http.StatusBadRequest)
		return
	}
	if id := call.GetFrameworkID().GetValue(); id != "" && id != info.GetID().GetValue() {
		http.Error(w, "'framework_id' differs from 'subscribe.framework_info.id'", http.StatusBadRequest)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	contentType, messageType := responseTypes(r.Header)
	codec := codecs.ByMediaType[encoding.MediaType(messageType)]

	sub, fwID, err := m.subscribe(*info)
	var refused errRefused
	if errors.As(err, &refused) {
		// Mesos sends a FrameworkErrorMessage down the new stream, which
		// the scheduler API turns into an ERROR event, and closes it
		// (Master::_subscribe: http.send(message); http.close()).
		// The stream, and its id, exist before the master decides
		// (Master::Http::scheduler opens it, then calls subscribe).
		m.log.Info("subscription refused", zap.String("framework", info.GetID().GetValue()), zap.String("error", refused.msg))
		startStream(w, contentType, messageType, newID())
		_ = codecEncode(codec, w, &scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: refused.msg}})
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	log := m.log.With(zap.String("framework", fwID), zap.String("stream", sub.streamID))
	log.Info("framework subscribed", zap.String("name", info.Name))

	startStream(w, contentType, messageType, sub.streamID)

	defer func() {
		m.mu.Lock()
		if fw, ok := m.frameworks[fwID]; ok && fw.sub == sub {
			m.dropSubscriptionLocked(fw)
		}
		m.mu.Unlock()
		log.Info("subscription ended")
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.Done():
			// Replaced by a newer SUBSCRIBE, torn down, or Close: Mesos
			// hangs up on the old stream.
			return
		case ev := <-sub.C:
			// Events are RecordIO framed whatever the message type.
			if err := codecEncode(codec, w, ev); err != nil {
				log.Info("event stream write failed", zap.Error(err))
				return
			}
			flusher.Flush()
		}
	}
}

// startStream answers a SUBSCRIBE with the headers of an event stream,
// sent at once: the body is then chunked, as every event stream, and
// clients read records rather than one body of known length.
func startStream(w http.ResponseWriter, contentType, messageType, streamID string) {
	w.Header().Set("Content-Type", contentType)
	if contentType == mediaRecordIO {
		w.Header().Set("Message-Content-Type", messageType)
	}
	w.Header().Set(headerStreamID, streamID)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// codecEncode writes msg as one RecordIO record in codec's format.
func codecEncode(codec encoding.Codec, w io.Writer, msg encoding.Marshaler) error {
	var b strings.Builder
	if err := codec.NewEncoder(encoding.SinkWriter(&b)).Encode(msg); err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return recordio.NewWriter(w).WriteFrame([]byte(b.String()))
}

func codecFor(contentType string) (encoding.Codec, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return encoding.Codec{}, false
	}
	c, ok := codecs.ByMediaType[encoding.MediaType(mt)]
	return c, ok
}

// responseTypes picks the SUBSCRIBE response's Content-Type and the type of
// each record, as Mesos does: "Accept: application/recordio" with
// Message-Accept for streaming-aware clients, otherwise the Accept type with
// RecordIO framing implied (Mesos < 1.2 clients; mesos-go's httpsched).
func responseTypes(h http.Header) (contentType, messageType string) {
	accepts := func(v string) (string, bool) {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if _, ok := codecs.ByMediaType[encoding.MediaType(mt)]; ok || mt == mediaRecordIO {
				return mt, true
			}
		}
		return "", false
	}
	accept, _ := accepts(h.Get("Accept"))
	if accept == mediaRecordIO {
		msg, ok := accepts(h.Get("Message-Accept"))
		if !ok || msg == mediaRecordIO {
			msg = string(codecs.MediaTypeJSON)
		}
		return mediaRecordIO, msg
	}
	if accept == "" {
		if c, ok := codecFor(h.Get("Content-Type")); ok {
			accept = string(c.Type)
		} else {
			accept = string(codecs.MediaTypeJSON)
		}
	}
	return accept, accept
}
