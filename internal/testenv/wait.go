package testenv

import (
	"testing"
	"time"
)

// pollEvery is how often WaitUntil asks: often enough that a test never
// waits noticeably longer than it must, rare enough to cost nothing.
const pollEvery = 20 * time.Millisecond

// WaitUntil polls cond until it holds and fails the test, naming what it
// waited for, when d passes first. Tests poll for readiness instead of
// sleeping.
func WaitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitUntilState(t, d, what, func() (bool, string) { return cond(), "" })
}

// WaitUntilState is WaitUntil for a condition that also says where things
// stand: the failure shows its last answer.
func WaitUntilState(t testing.TB, d time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if state != "" {
				t.Fatalf("timed out after %v waiting for %s; last: %s", d, what, state)
			}
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pollEvery)
	}
}
