package announcer

import (
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"
)

// zkLogger adapts zap to go-zookeeper's one-method logger. The client logs
// connection changes and failures only, so Info is the right level.
// Once silent is set (a connection abandoned in the background), it drops
// everything: the caller's logger may be gone by then (a finished test's).
type zkLogger struct {
	log    *zap.Logger
	silent *atomic.Bool
}

func (l zkLogger) Printf(format string, args ...any) {
	if l.silent != nil && l.silent.Load() {
		return
	}
	l.log.Info(fmt.Sprintf(format, args...))
}
