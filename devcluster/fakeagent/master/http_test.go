package master

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
)

func TestCallsNeedTheStreamID(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.subscribe(codecs.MediaTypeJSON, mesos.FrameworkInfo{User: "root", Name: "test"})
	body := []byte(`{"type":"RECONCILE","framework_id":{"value":"` + c.ID + `"},"reconcile":{}}`)
	tests := []struct {
		name     string
		streamID string
		want     int
	}{
		{"missing", "", http.StatusBadRequest},
		{"wrong", "not-the-stream", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tt.streamID != "" {
				req.Header.Set("Mesos-Stream-Id", tt.streamID)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
}

// TestSubscribeRecordIOByHand speaks the API without mesos-go, as a
// Mesos >= 1.2 client does: Accept: application/recordio with
// Message-Accept, then a call Mesos knows but the fake master does not
// implement, which is accepted (202).
func TestSubscribeRecordIOByHand(t *testing.T) {
	h := newHarness(t, Config{})
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"raw"}}}`
	req, _ := http.NewRequest(http.MethodPost, h.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/recordio")
	req.Header.Set("Message-Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/recordio" ||
		res.Header.Get("Message-Content-Type") != "application/json" || res.Header.Get("Mesos-Stream-Id") == "" {
		t.Fatalf("SUBSCRIBE answered %d %v", res.StatusCode, res.Header)
	}
	r := bufio.NewReader(res.Body)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	size, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("record length %q: %v", line, err)
	}
	rec := make([]byte, size)
	if _, err := io.ReadFull(r, rec); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type       string `json:"type"`
		Subscribed struct {
			FrameworkID struct{ Value string } `json:"framework_id"`
		} `json:"subscribed"`
	}
	if err := json.Unmarshal(rec, &ev); err != nil || ev.Type != "SUBSCRIBED" || ev.Subscribed.FrameworkID.Value == "" {
		t.Fatalf("first record %s (%v), want SUBSCRIBED with a framework id", rec, err)
	}

	msg := `{"type":"MESSAGE","framework_id":{"value":"` + ev.Subscribed.FrameworkID.Value + `"},` +
		`"message":{"agent_id":{"value":"agent-1"},"executor_id":{"value":"e"},"data":"aGk="}}`
	req, _ = http.NewRequest(http.MethodPost, h.url, strings.NewReader(msg))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mesos-Stream-Id", res.Header.Get("Mesos-Stream-Id"))
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusAccepted {
		t.Fatalf("MESSAGE answered %d, want 202", res2.StatusCode)
	}
}
