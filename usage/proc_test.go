package usage

import "testing"

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may set.
	line := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 500 0 0 0 " +
		"150 25 7 3 20 0 1 0 123456 10485760 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	got, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{pid: 4242, session: 4242, utime: 150, stime: 25, cutime: 7, cstime: 3, starttime: 123456, rssPages: 321}
	if got != want {
		t.Errorf("parseStat: %+v; want %+v", got, want)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2 3"} {
		if _, err := parseStat(1, []byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"Name:\tsh\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\nRssAnon:\t 512 kB\n", 1536 << 10, true},
		{"Name:\tkthreadd\nThreads:\t1\n", 0, false},
		{"VmRSS:\t12 MB\n", 0, false},
	} {
		got, ok := parseVmRSS([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseVmRSS(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
