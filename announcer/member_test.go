package announcer_test

import (
	"strings"
	"testing"

	"github.com/dewarhq/dewar/announcer"
)

func TestParseMember(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
		check   func(t *testing.T, m announcer.Member)
	}{{
		name: "finagle member without shard or additional endpoints",
		data: `{"serviceEndpoint":{"host":"10.0.0.1","port":9990},"status":"ALIVE"}`,
		check: func(t *testing.T, m announcer.Member) {
			if m.ServiceEndpoint != (announcer.Endpoint{Host: "10.0.0.1", Port: 9990}) || m.Shard != nil || m.AdditionalEndpoints == nil {
				t.Errorf("got %+v", m)
			}
		},
	}, {
		name: "unknown fields are ignored",
		data: `{"serviceEndpoint":{"host":"h","port":1,"inet":"x"},"additionalEndpoints":{},"status":"STARTING","shard":3,"member_id":"m"}`,
		check: func(t *testing.T, m announcer.Member) {
			if m.Shard == nil || *m.Shard != 3 || m.Status != "STARTING" {
				t.Errorf("got %+v", m)
			}
		},
	}, {
		name: "ipv6 host", data: `{"serviceEndpoint":{"host":"2001:db8::2","port":1},"status":"ALIVE","shard":0}`,
		check: func(t *testing.T, m announcer.Member) {
			if m.ServiceEndpoint.Host != "2001:db8::2" {
				t.Errorf("host %q", m.ServiceEndpoint.Host)
			}
		},
	},
		{name: "not json", data: `member`, wantErr: "not a JSON object"},
		{name: "json array", data: `[1]`, wantErr: "not a JSON object"},
		{name: "empty", data: ``, wantErr: "not a JSON object"},
		{name: "no service endpoint", data: `{"status":"ALIVE"}`, wantErr: "no serviceEndpoint"},
		{name: "empty host", data: `{"serviceEndpoint":{"port":1}}`, wantErr: "serviceEndpoint: empty host"},
		{name: "port as string", data: `{"serviceEndpoint":{"host":"h","port":"80"}}`, wantErr: "malformed member"},
		{name: "port out of range", data: `{"serviceEndpoint":{"host":"h","port":70000}}`, wantErr: "port 70000"},
		{name: "fractional shard", data: `{"serviceEndpoint":{"host":"h","port":1},"shard":1.5}`, wantErr: "malformed member"},
		{name: "negative shard", data: `{"serviceEndpoint":{"host":"h","port":1},"shard":-1}`, wantErr: "negative shard"},
		{name: "bad additional endpoint", data: `{"serviceEndpoint":{"host":"h","port":1},"additionalEndpoints":{"http":{"port":2}}}`, wantErr: `additionalEndpoints["http"]: empty host`},
		{name: "unknown status", data: `{"serviceEndpoint":{"host":"h","port":1},"status":"SLEEPY"}`, wantErr: `unknown status "SLEEPY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := announcer.ParseMember([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m)
		})
	}
}

func TestMemberMarshalAlwaysHasAdditionalEndpoints(t *testing.T) {
	b, err := announcer.Member{ServiceEndpoint: announcer.Endpoint{Host: "h", Port: 1}, Status: announcer.StatusAlive}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"serviceEndpoint":{"host":"h","port":1},"additionalEndpoints":{},"status":"ALIVE"}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
}

func TestMemberSequence(t *testing.T) {
	tests := []struct {
		name string
		seq  int64
		ok   bool
	}{
		{"member_0000000042", 42, true},
		{"member_0000000000", 0, true},
		{"_c_0b9f-member_0000000001", 0, false}, // a "protected" name
		{"member_", 0, false},
		{"member_12ab", 0, false},
		{"lock-0000000001", 0, false},
	}
	for _, tt := range tests {
		seq, ok := announcer.MemberSequence(tt.name)
		if seq != tt.seq || ok != tt.ok {
			t.Errorf("MemberSequence(%q) = %d, %v; want %d, %v", tt.name, seq, ok, tt.seq, tt.ok)
		}
	}
}

func FuzzParseMember(f *testing.F) {
	f.Add([]byte(`{"serviceEndpoint":{"host":"h","port":1},"additionalEndpoints":{"a":{"host":"h","port":2}},"status":"ALIVE","shard":0,"metadata":{"k":"v"}}`))
	f.Add([]byte(`{"serviceEndpoint":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := announcer.ParseMember(data)
		if err != nil {
			return
		}
		// What parses must survive a round trip.
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed member: %v", err)
		}
		if _, err := announcer.ParseMember(b); err != nil {
			t.Fatalf("re-parse %s: %v", b, err)
		}
	})
}
