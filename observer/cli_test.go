package observer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

func TestStatus(t *testing.T) {
	f := newFixture(t)
	var out strings.Builder
	if err := Status(&out, f.srv.Index()); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"t-two", "TASK_RUNNING", "www/prod/hello/0", "blue (eth0)", "198.18.0.2/24 2001:db8:1::2/64",
		"green (eth1)", "198.19.0.7/24 2001:db8:2::7/64", "thermos-t-bad", "UNREADABLE", "t-done", "TASK_FINISHED"} {
		if !strings.Contains(s, want) {
			t.Errorf("status lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "t-done") < strings.Index(s, "t-two") {
		t.Errorf("finished task listed before the active one:\n%s", s)
	}
}

func TestTail(t *testing.T) {
	f := newFixture(t)
	x := f.srv.Index()
	var out strings.Builder
	if err := Tail(context.Background(), &out, x, "t-two", "web", TailOptions{Run: -1, Lines: 1}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "serving on 198.18.0.2:31000\n" {
		t.Errorf("tail -n 1 = %q", out.String())
	}
	for _, tc := range []struct{ task, process, want string }{
		{"nope", "web", "`dewar-observer status` lists the tasks"},
		{"t-two", "nope", "its processes: setup, web, sidecar, cleanup, reaper"},
		{"t-two", "cleanup", "has not run yet"},
		{"thermos-t-bad", "web", "unreadable"},
	} {
		err := Tail(context.Background(), &out, x, tc.task, tc.process, TailOptions{Run: -1})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Tail(%s, %s) = %v, want %q", tc.task, tc.process, err, tc.want)
		}
	}
	if err := Tail(context.Background(), &out, x, "nope", "web", TailOptions{}); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("unknown task: %v", err)
	}

	// -f: what is appended shows up.
	ctx, cancel := context.WithCancel(context.Background())
	var buf testenv.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Tail(ctx, &buf, x, "t-two", "web", TailOptions{Run: 1, Follow: true, Poll: 10 * time.Millisecond})
	}()
	lf, err := os.OpenFile(filepath.Join(f.run, ".logs", "web", "1", "stdout"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !strings.Contains(buf.String(), "appended 3"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("tail -f never showed the appended lines:\n%s", buf.String())
		}
		if i < 4 {
			lf.WriteString("appended " + string(rune('0'+i)) + "\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.HasPrefix(got, "line one\n") || strings.Count(got, "appended 0") != 1 {
		t.Errorf("tail -f output:\n%s", got)
	}
}
