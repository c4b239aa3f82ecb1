package fakeagent

import (
	"net/http"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestMesosDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Second, "5secs"},
		{15 * time.Minute, "15mins"},
		{2 * time.Hour, "2hrs"},
		{1500 * time.Millisecond, "1500ms"},
		{90 * time.Second, "90secs"},
		{3 * time.Microsecond, "3us"},
		{7, "7ns"},
	} {
		if got := mesosDuration(tt.d); got != tt.want {
			t.Errorf("mesosDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParseResources(t *testing.T) {
	res, err := ParseResources("cpus:4;mem:4096; ports:[31000-32000,33000-33010]")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Name != "cpus" || res[0].GetScalar().GetValue() != 4 || res[1].GetScalar().GetValue() != 4096 {
		t.Fatalf("parsed %v", res)
	}
	if r := res[2].GetRanges().GetRange(); res[2].GetType() != mesos.RANGES || len(r) != 2 || r[0].Begin != 31000 || r[1].End != 33010 {
		t.Fatalf("ports %v", res[2])
	}
	for _, bad := range []string{"cpus", "cpus:x", "ports:[2-1]", "cpus(role):1", "mem:-1"} {
		if _, err := ParseResources(bad); err == nil {
			t.Errorf("ParseResources(%q) accepted", bad)
		}
	}
}

// TestNegotiate: JSON when acceptable (also without Accept, as Mesos),
// protobuf otherwise, the recordio form with Message-Accept, 406 else.
func TestNegotiate(t *testing.T) {
	for _, tt := range []struct {
		accept, messageAccept string
		ct, mt                string
		ok                    bool
	}{
		{"", "", mediaJSON, mediaJSON, true},
		{"application/x-protobuf", "", mediaProtobuf, mediaProtobuf, true},
		{"application/json", "", mediaJSON, mediaJSON, true},
		{"*/*", "", mediaJSON, mediaJSON, true},
		{"application/json;q=0, application/x-protobuf", "", mediaProtobuf, mediaProtobuf, true},
		{"application/recordio", "application/x-protobuf", mediaRecordIO, mediaProtobuf, true},
		{"application/recordio", "text/html", "", "", false},
		{"text/html", "", "", "", false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		if tt.messageAccept != "" {
			r.Header.Set("Message-Accept", tt.messageAccept)
		}
		ct, mt, ok := negotiate(r)
		if ct != tt.ct || mt != tt.mt || ok != tt.ok {
			t.Errorf("Accept %q / %q: got %q %q %v, want %q %q %v", tt.accept, tt.messageAccept, ct, mt, ok, tt.ct, tt.mt, tt.ok)
		}
	}
}
