package chans_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/dewarhq/dewar/internal/chans"
)

func TestWakeCollapsesSignals(t *testing.T) {
	w := chans.NewWake()
	for range 3 {
		w.Signal() // never blocks, also with nobody receiving
	}
	select {
	case <-w:
	default:
		t.Fatal("no wake-up pending after Signal")
	}
	select {
	case <-w:
		t.Fatal("three signals gave two wake-ups; want one")
	default:
	}
}

func TestWithCancelOnClose(t *testing.T) {
	t.Run("closing the channel cancels", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			done := make(chan struct{})
			ctx, cancel := chans.WithCancelOnClose(context.Background(), done)
			defer cancel()
			synctest.Wait()
			if ctx.Err() != nil {
				t.Fatal("cancelled before the channel closed")
			}
			close(done)
			synctest.Wait()
			if ctx.Err() == nil {
				t.Fatal("not cancelled after the channel closed")
			}
		})
	})
	t.Run("the parent's end cancels and the watcher ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, stop := context.WithCancel(context.Background())
			ctx, cancel := chans.WithCancelOnClose(parent, make(chan struct{}))
			defer cancel()
			stop()
			synctest.Wait() // and synctest.Test fails if the watcher outlives the bubble
			if ctx.Err() == nil {
				t.Fatal("not cancelled after the parent ended")
			}
		})
	})
}

func TestSendDropOldestKeepsTheNewest(t *testing.T) {
	ch := make(chan int, 2)
	dropped := 0
	for i := range 5 {
		dropped += chans.SendDropOldest(ch, i)
	}
	if dropped != 3 {
		t.Errorf("dropped %d, want 3", dropped)
	}
	if a, b := <-ch, <-ch; a != 3 || b != 4 {
		t.Errorf("left %d, %d; want the newest two, 3 and 4", a, b)
	}
}

func TestOutbox(t *testing.T) {
	t.Run("a full outbox closes", func(t *testing.T) {
		o := chans.NewOutbox[int](2)
		if !o.Send(1) || !o.Send(2) {
			t.Fatal("an outbox with room refused an event")
		}
		if o.Send(3) {
			t.Fatal("a full outbox queued an event")
		}
		select {
		case <-o.Done():
		default:
			t.Fatal("a full outbox is still open")
		}
		if got := <-o.C; got != 1 {
			t.Errorf("first queued event %d, want 1: the queue stays readable after the close", got)
		}
	})
	t.Run("a closed outbox takes nothing", func(t *testing.T) {
		o := chans.NewOutbox[int](2)
		o.Close()
		o.Close() // idempotent
		if o.Send(1) {
			t.Fatal("a closed outbox queued an event")
		}
		if len(o.C) != 0 {
			t.Fatalf("%d events queued after the close", len(o.C))
		}
	})
}
