package aurora

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestResolvePorts(t *testing.T) {
	tests := []struct {
		name           string
		announce       *Announcer
		assigned       map[string]int32
		want           map[string]int
		wantUnresolved []string
		wantErr        string
	}{
		{name: "no announce", assigned: map[string]int32{"http": 31001}, want: map[string]int{"http": 31001}},
		{
			name:     "aliases and static ports as port_resolver.py's example",
			announce: &Announcer{Portmap: map[string]string{"http": "80", "aurora": "http", "https": "aurora", "thrift": "service"}},
			want:     map[string]int{"http": 80, "aurora": 80, "https": 80}, wantUnresolved: []string{"thrift => service"},
		},
		{
			name:     "assigned ports override the portmap",
			announce: &Announcer{Portmap: map[string]string{"aurora": "http", "health": "http", "http": "8080"}},
			assigned: map[string]int32{"http": 31001},
			want:     map[string]int{"aurora": 31001, "health": 31001, "http": 31001},
		},
		{
			name:     "cycle",
			announce: &Announcer{Portmap: map[string]string{"a": "b", "b": "a"}},
			wantErr:  "cycle of port aliases",
		},
		{
			name:     "static port out of range",
			announce: &Announcer{Portmap: map[string]string{"a": "70000"}},
			wantErr:  "announce.portmap.a",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, unresolved, err := ResolvePorts(tc.announce, tc.assigned)
			if tc.wantErr != "" {
				var je *JobError
				if !errors.As(err, &je) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want a *JobError saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(unresolved, tc.wantUnresolved) {
				t.Errorf("got %v %v, want %v %v", got, unresolved, tc.want, tc.wantUnresolved)
			}
		})
	}
}
