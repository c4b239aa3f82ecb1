package sandbox

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDiskFullNote(t *testing.T) {
	fs := func(avail uint64, err error) func(string, *unix.Statfs_t) error {
		return func(_ string, st *unix.Statfs_t) error {
			st.Bsize, st.Blocks, st.Bavail = 4096, 1024, avail
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		statfs func(string, *unix.Statfs_t) error
		want   string
	}{
		{"full", fs(0, nil), "the sandbox's disk is full (no space left on its 4.0 MiB filesystem)"},
		{"space left", fs(1, nil), ""},
		{"statfs fails", fs(0, errors.New("gone")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diskFullNote("/sb", tc.statfs)
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Errorf("diskFullNote = %q, want prefix %q", got, tc.want)
			}
		})
	}
}
